// agora Cassandra ring UI: the ring's nodes (state, health, host ID,
// address, agent, volume, tokens, the operation each is in) and its
// operations (replacements, the last repair or cleanup, the last rolling
// restart), from the scheduler's /v1 API, following its change feed (polled
// every ?poll=SECONDS, default 2, while the feed is down).
'use strict';

const POLL_MS = pollMS(2);

const STATE_KIND = { TASK_RUNNING: 'ok', TASK_STAGING: 'info', TASK_STARTING: 'info', TASK_KILLING: 'warn', TASK_UNKNOWN: 'warn', TASK_UNREACHABLE: 'warn',
  TASK_FINISHED: 'warn', TASK_KILLED: 'warn', TASK_FAILED: 'bad', TASK_LOST: 'bad', TASK_ERROR: 'bad', TASK_GONE: 'bad', TASK_DROPPED: 'bad' };

function when(t) { return t && !t.startsWith('0001-') ? new Date(t).toLocaleString() : '–'; }

// optional is getJSON for what may not exist yet (404: null).
async function optional(path) {
  const r = await fetch(api(path), { headers: { Accept: 'application/json' } });
  if (r.status === 404) return null;
  if (!r.ok) throw new Error(path + ': ' + r.status + ' ' + (await r.text()).trim());
  return r.json();
}

function health(n) {
  if (n.healthy === undefined || n.healthy === null) return { key: 'unknown', node: el('span', { class: 'muted' }, 'not checked yet') };
  return n.healthy ? { key: 'healthy', node: pill('HEALTHY', 'ok') } : { key: 'unhealthy', node: pill('UNHEALTHY', 'bad') };
}

function ring(n) {
  if (n.up) return pill('UP', 'ok');
  if (n.joined) return pill('DOWN', 'bad');
  return n.agent_id ? pill('JOINING', 'info') : el('span', { class: 'muted' }, 'not placed');
}

// operation is what the ring is doing with the node now: its
// replacement, the repair that follows one, a rolling restart's turn, a
// repair's or cleanup's turn (or its place in the queue).
function operation(n, rolling, job) {
  const ops = [];
  if (n.replace_address) ops.push('replacing ' + n.replace_address);
  if (n.repair_pending) ops.push('repair after replacement');
  if (rolling && !rolling.finished && rolling.current === n.name) ops.push('restarting');
  else if (rolling && !rolling.finished && (rolling.pending || []).includes(n.name)) ops.push('restart pending');
  if (job && !job.finished && job.current === n.name) ops.push(job.kind + (job.keyspace ? ' of ' + job.keyspace : '') + ' running');
  else if (job && !job.finished && (job.pending || []).includes(n.name)) ops.push(job.kind + ' pending');
  return ops;
}

function taskLink(st, n) {
  if (!n.task_id) return '–';
  if (!st.master_url || !st.framework_id) return el('code', {}, n.task_id);
  const href = st.master_url + '/#/task/' + encodeURIComponent(st.framework_id) + '/' + encodeURIComponent(n.task_id);
  return el('a', { href, target: '_blank', rel: 'noopener', class: 'sandbox', title: n.task_id + ' in the master’s UI' }, 'task & sandbox');
}

function nodeRow(st, cfg, rolling, job, n) {
  const h = health(n);
  const ops = operation(n, rolling, job);
  return el('tr', { 'data-node': n.name, 'data-state': n.state || '', 'data-health': h.key, 'data-up': String(!!n.up) },
    el('th', { scope: 'row' }, n.name, n.seed ? ' ' : null, n.seed ? pill('seed', 'info') : null),
    el('td', { class: 'state' }, n.state ? pill(n.state.replace(/^TASK_/, ''), STATE_KIND[n.state] || 'info') : el('span', { class: 'muted' }, 'not launched'),
      n.launches ? el('span', { class: 'sub' }, n.launches + (n.launches === 1 ? ' launch' : ' launches')) : null),
    el('td', { class: 'health' }, h.node),
    el('td', { class: 'ring' }, ring(n)),
    el('td', { class: 'host-id' }, n.host_id ? el('code', {}, n.host_id) : '–'),
    el('td', { class: 'address' }, n.host ? el('code', {}, n.host + ':' + n.native_port) : '–',
      n.host ? el('span', { class: 'sub' }, 'storage ' + n.storage_port + ', JMX ' + n.jmx_port) : null),
    el('td', { class: 'agent' }, ...(n.agent_id ? [n.host, el('span', { class: 'sub' }, el('code', {}, n.agent_id))] : ['–'])),
    el('td', {}, n.dc ? n.dc + ' / ' + (n.rack || '–') : '–'),
    el('td', { class: 'volume' }, ...(n.volume_id ? [el('code', {}, n.volume_id), el('span', { class: 'sub' }, cfg.disk + ' MB' + (n.reserved ? ', reserved' : ''))] : ['–'])),
    el('td', { class: 'num tokens' }, String(st.num_tokens)),
    el('td', { class: 'operation' }, ...(ops.length ? ops.map((o) => pill(o, 'warn')) : ['–'])),
    el('td', { class: 'task' }, taskLink(st, n)));
}

function opRow(kind, state, kindOf, progress, current, started, finished) {
  return el('tr', { 'data-op': kind, 'data-state': state },
    el('td', {}, kindOf),
    el('td', {}, pill(state, state === 'done' ? 'ok' : state === 'failed' ? 'bad' : 'info')),
    el('td', { class: 'num' }, progress),
    el('td', {}, current || '–'),
    el('td', {}, when(started)),
    el('td', {}, when(finished)));
}

function opRows(nodes, rolling, job) {
  const rows = [];
  for (const n of nodes) {
    if (n.replace_address) rows.push(opRow('replace', 'running', 'replace ' + n.replace_address + ' with ' + n.name, 'joining', n.name));
    else if (n.repair_pending) rows.push(opRow('replace', 'running', 'replacement ' + n.name + ': repairing its ranges', 'repair pending', n.name));
  }
  if (job) {
    const total = (job.done || []).length + (job.pending || []).length + (job.current ? 1 : 0);
    const state = job.failed ? 'failed' : job.finished ? 'done' : 'running';
    const what = job.kind + (job.keyspace ? ' of ' + job.keyspace : '') + (job.full ? ' (full)' : '') + (job.scheduled ? ' (scheduled)' : '');
    const row = opRow(job.kind, state, what, (job.done || []).length + '/' + total + ' nodes', job.current, job.started, job.finished);
    if (job.failed) row.cells[0].append(el('span', { class: 'sub' }, job.failed));
    rows.push(row);
  }
  if (rolling) {
    const total = (rolling.restarted || []).length + (rolling.pending || []).length + (rolling.current ? 1 : 0);
    const keys = Object.keys(rolling.yaml || {});
    rows.push(opRow('restart', rolling.finished ? 'done' : 'running', 'rolling restart' + (keys.length ? ' (' + keys.join(', ') + ')' : ''),
      (rolling.restarted || []).length + '/' + total + ' nodes', rolling.current, rolling.started, rolling.finished));
  }
  return rows;
}

function summary(st, cfg) {
  const items = [
    ['Cluster', st.cluster],
    ['Framework', st.framework_id ? el('code', {}, st.framework_id) : 'not subscribed yet'],
    ['Role', st.role],
    ['Nodes', st.up + ' up, ' + st.running + ' running, ' + st.placed + ' placed of ' + st.nodes],
    ['Each node', cfg.cpus + ' CPUs, ' + cfg.mem + ' MB (heap ' + st.heap_mb + ' MB), ' + cfg.disk + ' MB volume, ' + st.num_tokens + ' tokens'],
  ];
  if (st.replacing) items.push(['Replacing', String(st.replacing)]);
  if (st.retired) items.push(['Placements to release', String(st.retired)]);
  if (st.destroying || st.destroyed) items.push(['Destroy', st.destroyed ? 'done' : 'under way']);
  if (st.master_url) items.push(['Master', el('a', { href: st.master_url + '/#/framework/' + encodeURIComponent(st.framework_id || ''), target: '_blank', rel: 'noopener' }, st.master_url)]);
  const out = [];
  for (const [k, v] of items) out.push(el('dt', {}, k), el('dd', {}, v));
  return out;
}

async function refresh() {
  try {
    const [st, cfg, nodes, rolling, job] = await Promise.all([getJSON('v1/status'), getJSON('v1/config'), getJSON('v1/nodes'),
      optional('v1/restart'), optional('v1/job')]);
    document.getElementById('ring-name').textContent = st.cluster;
    document.title = 'agora Cassandra ring ' + st.cluster;
    document.getElementById('summary').replaceChildren(...summary(st, cfg));
    fill('nodes', nodes.map((n) => nodeRow(st, cfg, rolling, job, n)), 'nodes-empty');
    document.getElementById('nodes-count').textContent = '(' + st.up + ' of ' + nodes.length + ' up)';
    fill('ops', opRows(nodes, rolling, job), 'ops-empty');
    document.getElementById('error-banner').hidden = true;
    document.getElementById('status').textContent = 'Updated ' + new Date().toLocaleTimeString();
    document.body.dataset.loaded = 'ring';
  } catch (err) {
    const b = document.getElementById('error-banner');
    b.textContent = 'Cannot read the API: ' + err.message;
    b.hidden = false;
  }
}

// follow refreshes now and on each change, one refresh at a time.
follow(refresh, POLL_MS);
