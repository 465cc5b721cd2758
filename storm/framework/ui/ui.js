// agora Storm topologies UI: the topologies with their status and sizes,
// a topology's workers (with links to their sandboxes in the master's UI)
// and its spouts' and bolts' counts (#topology=ID), from the /api/v1 API,
// polled (?poll=SECONDS, default 2). Kill is offered on a topology the API
// says this viewer may kill (can_kill).
'use strict';

const POLL_MS = pollMS(2);

const STATUS_KIND = { ACTIVE: 'ok', INACTIVE: 'warn', REBALANCING: 'info', KILLED: 'bad', UNKNOWN: 'warn' };

function status(s) { return pill(s, STATUS_KIND[s] || 'info'); }

function uptime(secs) {
  let s = Math.max(0, secs || 0);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return (d ? d + ' d ' : '') + (d || h ? h + ' h ' : '') + (d || h || m ? m + ' min ' : '') + s + ' s';
}

function executorList(m) {
  return Object.keys(m || {}).sort().map((c) => c + '×' + m[c]).join(' ') || '–';
}

// postJSON posts to the service's API with the header its CSRF guard
// asks of a change (a page of another site cannot send it); a failure's
// error names the path and the service's own message.
async function postJSON(path) {
  const r = await fetch(api(path), { method: 'POST', headers: { Accept: 'application/json', 'X-Requested-By': 'agora' } });
  if (!r.ok) {
    let msg = r.status + ' ' + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(path + ': ' + msg);
  }
  return r.json();
}

// killButton asks twice: the first click arms it for five seconds (kept
// in armed, as the rows are rebuilt on every poll).
function killButton(t) {
  const isArmed = (armed.get(t.id) || 0) > Date.now();
  const b = el('button', { type: 'button', class: 'kill' + (isArmed ? ' confirm' : ''), title: 'Kill ' + t.name }, isArmed ? 'Confirm kill' : 'Kill');
  b.dataset.topology = t.id;
  b.addEventListener('click', async () => {
    if ((armed.get(t.id) || 0) <= Date.now()) {
      armed.set(t.id, Date.now() + 5000);
      b.classList.add('confirm');
      b.textContent = 'Confirm kill';
      return;
    }
    armed.delete(t.id);
    b.disabled = true;
    try {
      await postJSON('api/v1/topologies/' + encodeURIComponent(t.id) + '/kill');
      document.getElementById('kill-banner').hidden = true;
      document.getElementById('status').textContent = 'Killing ' + t.name;
      killed.add(t.id);
      refresh();
    } catch (err) {
      // Not the error banner, which the next poll hides.
      const banner = document.getElementById('kill-banner');
      banner.textContent = 'Cannot kill ' + t.name + ': ' + err.message;
      banner.hidden = false;
      b.disabled = false;
    }
  });
  return b;
}

const armed = new Map();

// killed are the topologies killed from this page: their buttons stay
// off while the kill takes.
const killed = new Set();

// mayKill says whether to offer t's kill: the API says this viewer may
// kill it, and it is not killed already.
function mayKill(t) { return t.can_kill && t.status !== 'KILLED' && !killed.has(t.id); }

function killCell(t) {
  return el('td', { class: 'kill' }, mayKill(t) ? killButton(t) : null);
}

function topologyRow(t) {
  return el('tr', { 'data-topology': t.id, 'data-status': t.status },
    el('td', {}, el('a', { href: '#topology=' + encodeURIComponent(t.id) }, t.name), t.name !== t.id ? el('br') : null, t.name !== t.id ? el('code', { class: 'muted' }, t.id) : null),
    el('td', {}, t.runtime),
    el('td', {}, status(t.status)),
    el('td', { class: 'num' }, uptime(t.uptime_secs)),
    el('td', { class: 'num workers' }, String(t.num_workers)),
    el('td', { class: 'num' }, String(t.num_executors)),
    el('td', { class: 'num' }, String(t.num_tasks)),
    killCell(t));
}

function sandbox(master, w) {
  if (!master || !w.framework_id || !w.task_id) return '–';
  return el('a', { class: 'sandbox', href: master + '/#/task/' + encodeURIComponent(w.framework_id) + '/' + encodeURIComponent(w.task_id), target: '_blank', rel: 'noopener' }, 'sandbox');
}

function workerRow(w, master) {
  return el('tr', { 'data-worker': w.host + ':' + w.port },
    el('td', {}, el('code', {}, w.host + ':' + w.port)),
    el('td', {}, executorList(w.executors), w.error ? el('span', { class: 'muted' }, ' (' + w.error + ')') : null),
    el('td', { class: 'num' }, uptime(w.uptime_secs)),
    el('td', {}, sandbox(master, w)));
}

function componentRow(c) {
  return el('tr', { 'data-component': c.id },
    el('td', {}, el('code', {}, c.id)),
    el('td', {}, c.type || '–'),
    el('td', { class: 'num' }, String(c.executors)),
    el('td', { class: 'num emitted' }, String(c.emitted)),
    el('td', { class: 'num acked' }, String(c.acked)),
    el('td', { class: 'num failed' }, String(c.failed)));
}

function summaryRows(t) {
  const row = (k, ...v) => el('tr', {}, el('th', { scope: 'row' }, k), el('td', {}, ...v));
  const rows = [
    row('Status', status(t.status)),
    row('Runtime', t.runtime),
    row('Uptime', uptime(t.uptime_secs)),
    row('Workers', String(t.num_workers)),
    row('Executors', String(t.num_executors)),
    row('Tasks', String(t.num_tasks)),
  ];
  if (mayKill(t)) rows.push(row('Kill', killButton(t)));
  return rows;
}

function topologyID() {
  const m = location.hash.match(/^#topology=(.+)$/);
  return m ? decodeURIComponent(m[1]) : '';
}

async function showList() {
  const all = await getJSON('api/v1/topologies');
  fill('topologies', all.topologies.map(topologyRow), 'topologies-empty');
  document.getElementById('topologies-count').textContent = all.topologies.length ? '(' + all.topologies.length + ')' : '';
  document.querySelector('#topologies th.kill-col').hidden = !all.kill;
}

async function showTopology(id) {
  const page = await getJSON('api/v1/topologies/' + encodeURIComponent(id));
  const t = page.topology;
  const title = document.getElementById('topology-title');
  // replaceChildren would write null as text: el skips it.
  title.replaceChildren(el('span', {}, t.name, t.name !== t.id ? ' ' : null, t.name !== t.id ? el('code', { class: 'muted' }, t.id) : null));
  title.dataset.topology = t.id;
  fill('topology-summary', summaryRows(t));
  fill('workers', t.workers.map((w) => workerRow(w, page.master)), 'workers-empty');
  document.getElementById('workers-count').textContent = t.workers.length ? '(' + t.workers.length + ')' : '';
  fill('components', t.components.map(componentRow), 'components-empty');
}

const refresh = followPage(topologyID, 'topology', (id) => (id ? showTopology(id) : showList()), POLL_MS);
