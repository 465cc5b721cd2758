// agora web UI: plain JavaScript, no framework, no build step.
//
// The page polls the master on the same origin every REFRESH_MS and renders
// what it read: always /master/summary (the header) and /metrics/snapshot;
// the tasks, agents, task and maintenance views read only the rows they
// show (/master/tasks and /master/slaves take limit, offset and a filter),
// the frameworks, framework and offers views the frameworks without their
// tasks (/master/frameworks?tasks=false), so a cluster of 100,000 tasks
// costs them what a small one does; the roles view reads the master's sums
// by role (/master/roles). No view reads the whole state. Routes live in the URL fragment:
//   #/overview   #/tasks?q=<filter>   #/frameworks   #/framework/<id>   #/agents
//   #/roles   #/offers   #/maintenance   #/explain?subject=<id or role>
//   #/task/<framework>/<task>
// Some views read more, only while they are open: the overview the
// master's metrics history (/metrics/history), the agents and roles views
// /maintenance/status, /weights and /quota, the maintenance view the
// schedule, the explain and framework views /explain.
// Every value from the master is put into the page as text, never as HTML.
'use strict';

(function () {
  const params = new URLSearchParams(location.search);
  // ?refresh=<seconds> polls less (or more) often; operators of big clusters
  // can slow the UI down so it does not load the master.
  const REFRESH_MS = Math.min(600000, Math.max(250, (Number(params.get('refresh')) || 2) * 1000));
  const TIMEOUT_MS = Math.max(5000, REFRESH_MS);
  // PAGE_ROWS is the rows per page of a list. The master filters and cuts
  // the lists; the page reads and draws one page of rows.
  const PAGE_ROWS = Math.min(1000, Math.max(10, Number(params.get('rows')) || 100));
  const TAIL_BYTES = 64 * 1024;
  // FOLLOW_MS is how often an open log is read for new lines: a log tail
  // follows the task even when the state is polled rarely.
  const FOLLOW_MS = 1000;

  const model = {
    summary: null, metrics: null, roles: null, frameworks: null, frameworkByID: new Map(),
    // lists: the pages of rows read for the open view (active, completed,
    // agents: /master/tasks or /master/slaves answers; task: one task and
    // its agent).
    lists: { active: null, completed: null, agents: null, drains: null, task: null },
    updated: null, error: null, errorStatus: 0, errorSince: null,
    filter: '', agentFilter: '',
    // The page shown of each list, from 0; a new filter goes back to 0.
    pages: { active: 0, completed: 0, agents: 0 },
    // extras: what the agents and roles views read besides the state; each
    // is null until read, and a failed read is a note in the view.
    extras: { maintenance: null, weights: null, quota: null, volumes: null, history: null, schedule: null, explain: null, error: '' },
  };

  // ---- small helpers -------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  // h builds an element; children that are not nodes become text.
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      // Styles go through the CSSOM: the page's CSP forbids style attributes.
      else if (k === 'style') Object.assign(el.style, v);
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of kids.flat(Infinity)) {
      if (c == null || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  function setText(id, text) {
    const el = $(id);
    if (el.textContent !== text) el.textContent = text;
  }

  // replaceRows swaps a tbody's rows only when they changed, so a refresh
  // does not lose the user's text selection or scroll position.
  function replaceRows(tbody, rows) {
    const next = document.createElement('tbody');
    next.append(...rows);
    if (next.innerHTML === tbody.innerHTML) return;
    tbody.replaceChildren(...next.childNodes);
  }

  function emptyRow(cols, text) {
    return h('tr', { class: 'empty' }, h('td', { colspan: cols }, text));
  }

  const enc = encodeURIComponent;

  function num(x) {
    const n = Number(x) || 0;
    return String(Math.round(n * 100) / 100);
  }

  // mem formats megabytes, as Mesos reports mem and disk.
  function mem(mb) {
    let v = Number(mb) || 0;
    const units = ['MB', 'GB', 'TB', 'PB'];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return `${Math.round(v * 10) / 10} ${units[i]}`;
  }

  function bytes(n) {
    let v = Number(n) || 0;
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return i === 0 ? `${v} B` : `${Math.round(v * 10) / 10} ${units[i]}`;
  }

  function pct(part, whole) {
    return whole > 0 ? Math.min(100, Math.max(0, (part / whole) * 100)) : 0;
  }

  // when renders a Mesos timestamp (seconds since the epoch) as a coarse
  // relative time, with the exact time in the title.
  function when(secs) {
    const t = Number(secs);
    if (!t) return h('span', { class: 'muted' }, '–');
    const d = new Date(t * 1000);
    return h('time', { datetime: d.toISOString(), title: d.toLocaleString() }, ago(d));
  }

  function ago(d) {
    const s = (Date.now() - d.getTime()) / 1000;
    if (s < 60) return 'under a minute ago';
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  }

  function duration(secs) {
    const s = Math.max(0, Math.floor(secs));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }

  // safeURL allows only http(s) links from data (framework webui_url).
  function safeURL(u) {
    try {
      const url = new URL(u, location.href);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function shortState(s) {
    return String(s || 'UNKNOWN').replace(/^TASK_/, '');
  }

  function stateBadge(s) {
    const short = shortState(s);
    return h('span', { class: `state state-${short.toLowerCase()}`, 'data-state': s || '' }, short);
  }

  function badge(text, kind) {
    return h('span', { class: `badge ${kind}` }, text);
  }

  // byteLength counts UTF-8 bytes: /files/read offsets are in bytes.
  const utf8 = new TextEncoder();
  const byteLength = (s) => utf8.encode(s).length;

  const res = (r, name) => Number((r || {})[name]) || 0;

  // agentAddress returns host:port from an agent's pid ("slave(1)@10.0.0.1:5051").
  function agentAddress(agent) {
    if (!agent) return '';
    const pid = String(agent.pid || '');
    const at = pid.lastIndexOf('@');
    if (at >= 0) return pid.slice(at + 1);
    return agent.hostname ? `${agent.hostname}:${agent.port || 5051}` : '';
  }

  // getJSON reads a JSON document; init, if given, makes it another request
  // (an operator API call).
  async function getJSON(url, timeoutMs, init) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs || TIMEOUT_MS);
    try {
      let r;
      try {
        r = await fetch(url, { cache: 'no-store', headers: { Accept: 'application/json' }, signal: ctl.signal, ...init });
      } catch (e) {
        if (ctl.signal.aborted) throw new Error(`${url}: no answer within ${Math.round((timeoutMs || TIMEOUT_MS) / 1000)} s`);
        throw new Error(`${url}: cannot connect (${e.message})`);
      }
      if (!r.ok) {
        let body = '';
        try { body = (await r.text()).trim().slice(0, 200); } catch (e) { /* the status is enough */ }
        const err = new Error(`${url}: HTTP ${r.status}${r.statusText ? ' ' + r.statusText : ''}${body ? ' — ' + body : ''}`);
        err.status = r.status;
        throw err;
      }
      try {
        return await r.json();
      } catch (e) {
        throw new Error(`${url}: the answer is not JSON (${e.message})`);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- the model -----------------------------------------------------------

  const collator = new Intl.Collator(undefined, { numeric: true });

  // FRAMEWORK_VIEWS read the frameworks without their tasks.
  const FRAMEWORK_VIEWS = new Set(['frameworks', 'framework', 'offers']);

  let timer = null;
  let inflight = false;

  let again = false;
  // lastCost is how long the last refresh took (read, parse, index, draw).
  let lastCost = 0;

  async function refresh() {
    // A refresh asked for while one is under way runs after it: the view
    // may have changed to one that reads more.
    if (inflight) { again = true; return; }
    inflight = true;
    again = false;
    const began = performance.now();
    clearTimeout(timer);
    try {
      const [summary, metrics, roles, frameworks] = await Promise.all([getJSON('/master/summary'), getJSON('/metrics/snapshot'),
        route.view === 'roles' ? getJSON('/master/roles') : null,
        FRAMEWORK_VIEWS.has(route.view) ? getJSON('/master/frameworks?tasks=false') : null,
        refreshExtras(), refreshLists()]);
      model.summary = summary;
      model.metrics = metrics;
      if (roles) model.roles = roles;
      if (frameworks) {
        model.frameworks = frameworks;
        model.frameworkByID = new Map([...(frameworks.frameworks || []), ...(frameworks.completed_frameworks || [])].map((f) => [f.id, f]));
      }
      model.updated = new Date();
      model.error = null;
      model.errorSince = null;
    } catch (e) {
      model.error = e.message;
      model.errorStatus = e.status || 0;
      if (!model.errorSince) model.errorSince = new Date();
    } finally {
      inflight = false;
    }
    render();
    lastCost = performance.now() - began;
    // Each refresh's cost, for the browser's own timing (benchmarks).
    performance.measure('agora-refresh', { start: began, duration: lastCost });
    followTick();
    schedule();
    if (again) refresh();
  }

  // refreshLists reads the page of rows the open view shows, with the
  // filter it was read for (the filter may change while it is read).
  async function refreshLists() {
    const q = (params) => new URLSearchParams(params).toString();
    if (route.view === 'tasks') {
      const filter = model.filter;
      const read = async (state) => ({ filter, ...await getJSON(`/master/tasks?${q({
        state, limit: PAGE_ROWS, offset: model.pages[state] * PAGE_ROWS, filter })}`) });
      [model.lists.active, model.lists.completed] = await Promise.all([read('active'), read('completed')]);
    } else if (route.view === 'agents') {
      const filter = model.agentFilter;
      model.lists.agents = { filter, ...await getJSON(`/master/slaves?${q({ limit: PAGE_ROWS, offset: model.pages.agents * PAGE_ROWS, filter })}`) };
    } else if (route.view === 'maintenance') {
      model.lists.drains = await getJSON(`/master/slaves?${q({ limit: PAGE_ROWS, filter: 'draining' })}`);
    } else if (route.view === 'task') {
      const key = `${route.frameworkID}/${route.taskID}`;
      const got = await getJSON(`/master/tasks?${q({ framework_id: route.frameworkID, task_id: route.taskID, limit: 1 })}`);
      const task = (got.tasks || [])[0] || null;
      let agent = null;
      if (task) {
        const a = await getJSON(`/master/slaves?${q({ slave_id: task.slave_id, limit: 1 })}`);
        agent = (a.slaves || [])[0] || null;
      }
      model.lists.task = { key, task, agent };
    }
  }

  // refreshExtras reads the policy documents the open view needs. Their
  // failure does not stop the page: the view says what it could not read.
  async function refreshExtras() {
    const want = {
      overview: ['history'], agents: ['maintenance', 'volumes'], roles: ['weights', 'quota'],
      maintenance: ['maintenance', 'schedule'], explain: ['explain'], framework: ['explain'],
    }[route.view] || [];
    if (!want.length) return;
    const read = {
      maintenance: () => getJSON('/maintenance/status'),
      weights: () => getJSON('/weights'),
      quota: () => getJSON('/quota'),
      history: () => getJSON('/metrics/history'),
      schedule: () => getJSON('/maintenance/schedule'),
      explain: () => readExplain(route.view === 'framework' ? route.id : route.subject),
      // Persistent volumes are in the operator API's full resources only.
      volumes: async () => volumesByAgent(await getJSON('/api/v1', 0, {
        method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ type: 'GET_AGENTS' }) })),
    };
    const got = await Promise.allSettled(want.map((k) => read[k]()));
    const errors = [];
    got.forEach((r, i) => {
      if (r.status === 'fulfilled') model.extras[want[i]] = r.value;
      else errors.push(describe(r.reason));
    });
    model.extras.error = errors.join('; ');
  }

  // describe is an error as the page says it: a refusal (401, 403) names
  // the principal's missing permission rather than a fault.
  function describe(e) {
    if (e && (e.status === 401 || e.status === 403)) {
      return `${e.message.split(':')[0]}: not allowed for the principal you are signed in as (HTTP ${e.status})`;
    }
    return e ? e.message : '';
  }

  // readExplain asks the master why subject (a framework ID or a role)
  // gets offers or not; an unknown subject is an answer (404), not a fault.
  async function readExplain(subject) {
    if (!subject) return null;
    try {
      const param = model.frameworkByID.has(subject) ? 'framework_id' : 'role';
      return { subject, doc: await getJSON(`/explain?${param}=${enc(subject)}`) };
    } catch (e) {
      if (e.status === 404) return { subject, doc: null, unknown: e.message };
      throw e;
    }
  }

  function schedule() {
    clearTimeout(timer);
    if (!document.hidden) timer = setTimeout(refresh, REFRESH_MS);
  }

  // A hidden tab does not poll: many open tabs must not load the master.
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) clearTimeout(timer);
    else refresh();
  });

  // ---- routing -------------------------------------------------------------

  function parseRoute() {
    const raw = location.hash.replace(/^#\/?/, '');
    const qi = raw.indexOf('?');
    const path = qi >= 0 ? raw.slice(0, qi) : raw;
    const query = new URLSearchParams(qi >= 0 ? raw.slice(qi + 1) : '');
    const parts = path.split('/').filter((p) => p !== '').map((p) => {
      try { return decodeURIComponent(p); } catch (e) { return p; }
    });
    switch (parts[0]) {
      case 'overview': return { view: 'overview' };
      case 'frameworks': return { view: 'frameworks' };
      case 'framework': return { view: 'framework', id: parts.slice(1).join('/') };
      case 'agents': return { view: 'agents' };
      case 'roles': return { view: 'roles' };
      case 'offers': return { view: 'offers' };
      case 'maintenance': return { view: 'maintenance' };
      case 'explain': return { view: 'explain', subject: (query.get('subject') || '').trim() };
      case 'task': return { view: 'task', frameworkID: parts[1] || '', taskID: parts.slice(2).join('/') };
      default: return { view: 'tasks', q: query.get('q') || '' };
    }
  }

  let route = parseRoute();

  function onRoute() {
    route = parseRoute();
    if (route.view === 'tasks' && route.q !== model.filter) {
      model.filter = route.q;
      model.pages.active = 0;
      model.pages.completed = 0;
      $('task-filter').value = route.q;
    }
    if (route.view !== 'task') closeSandbox();
    if (route.view === 'explain' && $('explain-subject').value !== route.subject) $('explain-subject').value = route.subject;
    // A view's extras read for another subject are not shown for this one.
    model.extras.explain = null;
    render();
    // Each view reads what it shows: read it now, not at the next poll.
    refresh();
    const main = $('main');
    if (document.activeElement && document.activeElement.closest && document.activeElement.closest('nav.tabs')) return;
    if (route.view === 'task') main.focus({ preventScroll: true });
  }

  window.addEventListener('hashchange', onRoute);

  $('task-filter').addEventListener('input', (e) => {
    model.filter = e.target.value;
    model.pages.active = 0;
    model.pages.completed = 0;
    const hash = model.filter ? `#/tasks?q=${enc(model.filter)}` : '#/tasks';
    history.replaceState(null, '', hash);
    route = parseRoute();
    renderTasks();
    refresh();
  });

  $('explain-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const subject = $('explain-subject').value.trim();
    location.hash = subject ? `#/explain?subject=${enc(subject)}` : '#/explain';
  });

  $('agent-filter').addEventListener('input', (e) => {
    model.agentFilter = e.target.value;
    model.pages.agents = 0;
    renderAgents();
    refresh();
  });

  // pager draws the controls of a list read a page at a time (list is the
  // master's answer: total rows and the page's offset); a click reads the
  // other page.
  function pager(key, list, what) {
    const total = Number(list.total) || 0;
    const pages = Math.max(1, Math.ceil(total / PAGE_ROWS));
    const p = Math.floor((Number(list.offset) || 0) / PAGE_ROWS);
    const nav = $(`pager-${key}`);
    if (pages === 1 && p === 0) {
      if (nav.childNodes.length) nav.replaceChildren();
    } else {
      const go = (to) => () => { model.pages[key] = to; refresh(); };
      const next = h('div', null,
        h('button', { type: 'button', class: 'prev', disabled: p === 0, onclick: go(p - 1) }, '← Previous'),
        h('span', { class: 'range' }, `${what} ${Math.min(total, p * PAGE_ROWS + 1)}–${Math.min(total, (p + 1) * PAGE_ROWS)} of ${total}`),
        h('button', { type: 'button', class: 'next', disabled: p >= pages - 1, onclick: go(p + 1) }, 'Next →'));
      if (next.innerHTML !== nav.innerHTML) nav.replaceChildren(...next.childNodes);
    }
    // The list shrank under the page shown: show its last page.
    if (p >= pages && model.pages[key] >= pages) {
      model.pages[key] = pages - 1;
      refresh();
    }
  }

  // ---- rendering -----------------------------------------------------------

  function render() {
    renderHeader();
    renderBanners();
    for (const v of ['overview', 'tasks', 'frameworks', 'framework', 'agents', 'roles', 'offers', 'maintenance', 'explain', 'task']) {
      $(`view-${v}`).hidden = route.view !== v;
    }
    const tab = { task: 'tasks', framework: 'frameworks' }[route.view] || route.view;
    for (const a of document.querySelectorAll('nav.tabs a')) {
      const current = a.dataset.view === tab;
      if (current) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    document.body.classList.toggle('stale', !!model.error && !!model.summary);
    switch (route.view) {
      case 'overview': renderOverview(); break;
      case 'frameworks': renderFrameworks(); break;
      case 'framework': renderFramework(); break;
      case 'agents': renderAgents(); break;
      case 'roles': renderRoles(); break;
      case 'offers': renderOffers(); break;
      case 'maintenance': renderMaintenance(); break;
      case 'explain': renderExplain(); break;
      case 'task': renderTask(); break;
      default: renderTasks();
    }
  }

  function renderHeader() {
    const s = model.summary;
    const m = model.metrics || {};
    if (!s) return;
    const bits = [s.hostname || s.pid || 'master'];
    if (s.version) bits.push(`Mesos API ${s.version}`);
    if (s.agora_version) bits.push(`agora ${s.agora_version}`);
    if (s.start_time) bits.push(`up ${duration(Date.now() / 1000 - Number(s.start_time))}`);
    setText('master-info', bits.join(' · '));
    document.title = `agora · ${s.hostname || 'cluster'}`;
    const t = model.updated;
    setText('updated', t ? `${model.error ? 'Last updated' : 'Updated'} ${t.toLocaleTimeString()}` : '');

    setText('sum-agents', String(Number(s.activated_slaves) || 0));
    const agentNotes = [];
    if (Number(s.unreachable_slaves) > 0) agentNotes.push(`${s.unreachable_slaves} unreachable`);
    if (Number(s.disconnected_slaves) > 0) agentNotes.push(`${s.disconnected_slaves} disconnected`);
    setText('sum-agents-note', agentNotes.join(' · '));

    const inactive = Number(s.frameworks_inactive) || 0;
    setText('sum-frameworks', String((Number(s.frameworks_active) || 0) + inactive));
    setText('sum-frameworks-note', inactive ? `${inactive} inactive` : '');

    setText('sum-tasks-running', m['master/tasks_running'] != null ? num(m['master/tasks_running']) : '–');
    const taskNotes = [];
    for (const st of ['staging', 'starting', 'killing', 'unreachable']) {
      const n = Number(m[`master/tasks_${st}`]) || 0;
      if (n) taskNotes.push(`${num(n)} ${st}`);
    }
    setText('sum-tasks-note', taskNotes.join(' · '));
    setText('sum-offers', m['master/outstanding_offers'] != null ? num(m['master/outstanding_offers']) : '–');

    for (const [name, fmt] of [['cpus', num], ['mem', mem]]) {
      const total = Number(m[`master/${name}_total`]) || 0;
      const used = Number(m[`master/${name}_used`]) || 0;
      const offered = res(s.offered_resources, name);
      setText(`sum-${name}`, `${fmt(used)} / ${fmt(total)}`);
      const p = pct(used, total);
      setText(`sum-${name}-pct`, total > 0 ? `${Math.round(p)}% used${offered ? ` · ${fmt(offered)} offered` : ''}` : '');
      const bar = $(`bar-${name}`);
      bar.setAttribute('aria-valuenow', String(Math.round(p)));
      bar.setAttribute('aria-valuetext', `${fmt(used)} of ${fmt(total)} used, ${fmt(offered)} offered`);
      bar.querySelector('.used').style.width = `${p}%`;
      bar.querySelector('.offered').style.width = `${Math.min(100 - p, pct(offered, total))}%`;
    }
  }

  function renderBanners() {
    const err = $('error-banner');
    if (model.error) {
      const since = model.errorSince ? ` since ${model.errorSince.toLocaleTimeString()}` : '';
      const stale = model.updated
        ? `The data below is from ${model.updated.toLocaleTimeString()} and may be out of date.`
        : 'No data has been loaded yet.';
      // Replace the text only when it changes: role=alert re-announces.
      const next = h('div', null,
        h('strong', null, model.errorStatus === 401 || model.errorStatus === 403
          ? `The master does not let the principal you are signed in as read the cluster's state${since}.`
          : model.errorStatus
            ? `The master answers with errors${since}.`
            : `Cannot reach the master${since}.`), ' ',
        h('span', { class: 'detail' }, model.error), ' ',
        `${stale} Retrying every ${REFRESH_MS / 1000} s.`);
      if (next.innerHTML !== err.innerHTML) err.replaceChildren(...next.childNodes);
      err.hidden = false;
    } else {
      err.hidden = true;
      err.replaceChildren();
    }

    const s = model.summary;
    const leader = $('leader-banner');
    if (s && 'leader' in s && s.pid && s.leader !== s.pid) {
      const li = s.leader_info || {};
      const link = li.hostname && li.port ? safeURL(`${location.protocol}//${li.hostname}:${li.port}/`) : null;
      leader.replaceChildren(s.leader
        ? h('span', null, 'This master is not the leader. The leader is ',
          link ? h('a', { href: link }, s.leader) : h('code', null, s.leader), '.')
        : 'No master is elected as the leader; the cluster is not accepting work.');
      leader.hidden = false;
    } else {
      leader.hidden = true;
    }

    const items = [];
    if (s) {
      if (Number(s.unreachable_slaves) > 0) {
        const n = Number(s.unreachable_slaves);
        items.push(h('li', null, h('strong', null, `${n} agent${n === 1 ? ' is' : 's are'} unreachable.`),
          ' Their tasks are shown as UNREACHABLE until the agents come back or are removed.'));
      }
      const notes = s.agent_notes || [];
      for (const a of notes) {
        for (const w of a.warnings || []) {
          items.push(h('li', { class: 'agent-warning' }, h('strong', null, a.hostname || a.id), ` (${a.id}): `, w));
        }
        if (a.connected === false) {
          items.push(h('li', null, h('strong', null, a.hostname || a.id), ` (${a.id}) is disconnected from the master.`));
        }
      }
      const more = (Number(s.agent_notes_total) || 0) - notes.length;
      if (more > 0) items.push(h('li', null, `and ${more} more agents with warnings or disconnected (filter the agents for them).`));
    }
    const list = $('warnings-list');
    const next = h('ul', null, items);
    if (next.innerHTML !== list.innerHTML) list.replaceChildren(...next.childNodes);
    $('warnings').hidden = items.length === 0;
  }

  function taskLink(t) {
    return h('a', { href: `#/task/${enc(t.framework_id)}/${enc(t.id)}`, class: 'task-id' }, t.id);
  }

  // taskRow is a row of a task from a page of /master/tasks, which names
  // the task's framework and agent.
  function taskRow(t, doneCol) {
    const statuses = t.statuses || [];
    const last = statuses.length ? statuses[statuses.length - 1].timestamp : 0;
    const started = statuses.find((s) => s.state === 'TASK_RUNNING');
    return h('tr', { 'data-task-id': t.id, 'data-state': t.state },
      h('th', { scope: 'row' }, taskLink(t)),
      h('td', null, t.name || ''),
      h('td', null, stateBadge(t.state)),
      h('td', { title: t.framework_id }, t.framework_name || t.framework_id),
      h('td', { title: t.slave_id }, t.slave_hostname || t.slave_id),
      h('td', { class: 'num' }, num(res(t.resources, 'cpus'))),
      h('td', { class: 'num' }, mem(res(t.resources, 'mem'))),
      h('td', null, when(doneCol ? last : (started ? started.timestamp : last))));
  }

  let firstRender = false;

  function renderTasks() {
    const active = $('tasks-active').tBodies[0];
    const completed = $('tasks-completed').tBodies[0];
    const la = model.lists.active;
    const lc = model.lists.completed;
    if (!la || !lc) {
      replaceRows(active, [emptyRow(8, model.error ? 'No data.' : 'Loading…')]);
      replaceRows(completed, [emptyRow(8, model.error ? 'No data.' : 'Loading…')]);
      return;
    }
    const words = model.filter.toLowerCase().split(/\s+/).filter(Boolean);
    const all = (Number(la.total_unfiltered) || 0) + (Number(lc.total_unfiltered) || 0);
    const shown = (Number(la.total) || 0) + (Number(lc.total) || 0);
    // Until the lists for the filter typed arrive, their count is not said.
    const current = la.filter === model.filter && lc.filter === model.filter;
    setText('task-count', !current ? 'Filtering…' : words.length ? `${shown} of ${all} tasks match` : `${all} task${all === 1 ? '' : 's'}`);
    const rows = (list, done, what) => {
      pager(what, list, `${what[0].toUpperCase()}${what.slice(1)} tasks`);
      const tasks = list.tasks || [];
      if (!tasks.length) {
        return [emptyRow(8, list.filter.trim() ? `No ${what} tasks match “${list.filter.trim()}”.` : `No ${what} tasks.`)];
      }
      return tasks.map((t) => taskRow(t, done));
    };
    replaceRows(active, rows(la, false, 'active'));
    replaceRows(completed, rows(lc, true, 'completed'));
    // The first screen with data, for the browser's own timing
    // (performance.getEntriesByName('agora-first-render')).
    if (!firstRender) {
      firstRender = true;
      performance.mark('agora-first-render');
    }
  }

  function frameworkStatus(f) {
    if (f.active === false && f.connected === false) return badge('disconnected', 'bad');
    if (f.active === false) return badge('inactive', 'warn');
    return badge('active', 'ok');
  }

  function frameworkName(f) {
    const ui = f.webui_url ? safeURL(f.webui_url) : null;
    return [h('a', { href: `#/framework/${enc(f.id)}`, title: 'Show this framework', class: 'fw-name' }, f.name || f.id),
      ui ? [' ', h('a', { href: ui, class: 'ext', rel: 'noopener noreferrer', target: '_blank' }, 'UI')] : null];
  }

  function renderFrameworks() {
    const s = model.frameworks;
    const body = $('frameworks-table').tBodies[0];
    const done = $('frameworks-completed').tBodies[0];
    if (!s) {
      replaceRows(body, [emptyRow(9, model.error ? 'No data.' : 'Loading…')]);
      replaceRows(done, []);
      return;
    }
    const fws = s.frameworks || [];
    replaceRows(body, fws.length ? fws.map((f) => h('tr', { 'data-framework-id': f.id },
      h('th', { scope: 'row' }, frameworkName(f)),
      h('td', null, h('code', null, f.id)),
      h('td', null, (f.roles || (f.role ? [f.role] : [])).join(', ')),
      h('td', null, frameworkStatus(f)),
      h('td', { class: 'num' }, String(Number(f.task_count) || 0)),
      h('td', { class: 'num' }, num(res(f.used_resources, 'cpus'))),
      h('td', { class: 'num' }, mem(res(f.used_resources, 'mem'))),
      h('td', { class: 'num' }, num(res(f.offered_resources, 'cpus'))),
      h('td', null, when(f.registered_time)))) : [emptyRow(9, 'No frameworks are registered.')]);
    const cf = s.completed_frameworks || [];
    replaceRows(done, cf.length ? cf.map((f) => h('tr', { 'data-framework-id': f.id },
      h('th', { scope: 'row' }, frameworkName(f)),
      h('td', null, h('code', null, f.id)),
      h('td', null, (f.roles || (f.role ? [f.role] : [])).join(', ')),
      h('td', { class: 'num' }, String(Number(f.completed_task_count) || 0)),
      h('td', null, when(f.registered_time)),
      h('td', null, when(f.unregistered_time)))) : [emptyRow(6, 'No completed frameworks.')]);
  }

  function usage(used, total, fmt) {
    const p = pct(used, total);
    return h('div', { class: 'usage' },
      h('span', null, `${fmt(used)} / ${fmt(total)}`),
      h('span', { class: 'minibar', 'aria-hidden': 'true' }, h('span', { style: { width: `${p.toFixed(1)}%` } })));
  }

  function agentStatus(a) {
    const out = [];
    if (a.active === false) out.push(badge('inactive', 'bad'));
    else if (a.connected === false) out.push(badge('disconnected', 'bad'));
    else out.push(badge('active', 'ok'));
    const n = (a.warnings || []).length;
    if (n) out.push(' ', h('span', { class: 'badge warn', title: a.warnings.join('\n') }, `⚠ ${n} warning${n === 1 ? '' : 's'}`));
    return out;
  }

  function renderAgents() {
    const s = model.summary;
    const list = model.lists.agents;
    const body = $('agents-table').tBodies[0];
    if (!s || !list) {
      replaceRows(body, [emptyRow(12, model.error ? 'No data.' : 'Loading…')]);
      return;
    }
    const maint = maintenanceByHost(model.extras.maintenance);
    setText('agents-note', model.extras.error ? `Maintenance state or volumes unknown: ${model.extras.error}` : '');
    const words = list.filter.toLowerCase().split(/\s+/).filter(Boolean);
    const all = Number(list.total_unfiltered) || 0;
    const total = Number(list.total) || 0;
    setText('agent-count', list.filter !== model.agentFilter ? 'Filtering…'
      : words.length ? `${total} of ${all} agents match` : `${all} agent${all === 1 ? '' : 's'}`);
    pager('agents', list, 'Agents');
    const agents = list.slaves || [];
    replaceRows(body, agents.length ? agents.map((a) => h('tr', { 'data-agent-id': a.id, class: (a.warnings || []).length ? 'has-warning' : null },
      h('th', { scope: 'row' }, h('a', { href: `#/tasks?q=${enc(a.id)}`, title: `${a.id} — show this agent’s tasks`, class: 'agent-host nowrap' }, a.hostname || a.id)),
      h('td', null, h('code', { class: 'nowrap' }, agentAddress(a))),
      h('td', null, agentStatus(a)),
      h('td', { class: 'num' }, String(Number(a.active_tasks) || 0)),
      h('td', null, usage(res(a.used_resources, 'cpus'), res(a.resources, 'cpus'), num)),
      h('td', null, usage(res(a.used_resources, 'mem'), res(a.resources, 'mem'), mem)),
      h('td', null, usage(res(a.used_resources, 'disk'), res(a.resources, 'disk'), mem)),
      h('td', null, h('code', { class: 'nowrap' }, (a.resources || {}).ports || '')),
      h('td', { class: 'attributes' }, Object.entries(a.attributes || {}).map(([k, v], i) => [i ? ', ' : '', h('span', { class: 'nowrap' }, `${k}=${v}`)])),
      h('td', { class: 'reservations' }, Object.entries(a.reserved_resources || {}).sort(([x], [y]) => x.localeCompare(y)).map(([role, r], i) =>
        [i ? h('br') : null, h('span', { 'data-role': role }, `${role}: ${resourceText(r)}`)]),
        ((model.extras.volumes || new Map()).get(a.id) || []).map((v) => [h('br'),
          h('span', { class: 'volume', 'data-volume': v.id }, `volume ${v.id}: ${mem(v.mb)} at ${v.path} (${v.role})`)])),
      h('td', { class: 'maintenance' }, maintenanceState(a, maint)),
      h('td', null, when(a.registered_time)))) : [emptyRow(12, words.length ? `No agents match “${list.filter.trim()}”.`
      : s.agents_visible === false
        ? `Not allowed: ${s.activated_slaves} agents are registered, but the principal you are signed in as may not view agents (view_agents).`
        : 'No agents are registered.')]);
  }

  // resourceText is a flat resources object ({cpus, mem, disk, ...}) as text.
  // Zero amounts are left out; cpus, mem, disk and gpus come first.
  const RESOURCE_ORDER = ['cpus', 'mem', 'disk', 'gpus'];
  function resourceText(r) {
    const out = [];
    const rank = (k) => { const i = RESOURCE_ORDER.indexOf(k); return i < 0 ? RESOURCE_ORDER.length : i; };
    const entries = Object.entries(r || {}).sort(([x], [y]) => rank(x) - rank(y) || x.localeCompare(y));
    for (const [k, v] of entries) {
      if (typeof v === 'number' && !v) continue;
      if (k === 'mem' || k === 'disk') out.push(`${mem(v)} ${k}`);
      else if (typeof v === 'number') out.push(`${num(v)} ${k}`);
      else if (typeof v === 'string' && v) out.push(`${k} ${v}`);
    }
    return out.length ? out.join(', ') : 'nothing';
  }

  // volumesByAgent maps agent ID to its persistent volumes, from GET_AGENTS.
  function volumesByAgent(resp) {
    const out = new Map();
    for (const a of ((resp || {}).get_agents || {}).agents || []) {
      const id = ((a.agent_info || {}).id || {}).value;
      const vols = (a.total_resources || []).filter((r) => r.disk && r.disk.persistence).map((r) => {
        const rs = r.reservations || [];
        return {
          id: r.disk.persistence.id, mb: Number((r.scalar || {}).value) || 0,
          path: (r.disk.volume || {}).container_path || '',
          role: rs.length ? rs[rs.length - 1].role : (r.role || '*'),
        };
      });
      if (id && vols.length) out.set(id, vols);
    }
    return out;
  }

  // maintenanceByHost maps hostname (and IP) to "draining" or "down" from
  // /maintenance/status.
  function maintenanceByHost(st) {
    const out = new Map();
    if (!st) return out;
    const put = (id, what) => {
      if (!id) return;
      if (id.hostname) out.set(id.hostname, what);
      if (id.ip) out.set(id.ip, what);
    };
    for (const d of st.draining_machines || []) put(d.id, 'draining');
    for (const id of st.down_machines || []) put(id, 'down');
    return out;
  }

  function maintenanceState(a, maint) {
    const out = [];
    const m = maint.get(a.hostname);
    if (m === 'down') out.push(badge('down', 'bad'));
    else if (m === 'draining') out.push(h('span', { class: 'badge warn', title: 'In the maintenance schedule; not yet down' }, 'scheduled'));
    if (a.drain_info && a.drain_info.state) out.push(out.length ? ' ' : null, badge(String(a.drain_info.state).toLowerCase(), 'warn'));
    if (!out.length) out.push(h('span', { class: 'muted' }, '–'));
    return out;
  }

  // ---- roles -----------------------------------------------------------------

  // roleRows joins the master's roles (/master/roles: weights, frameworks,
  // active tasks, allocated and reserved resources) with the quotas.
  function roleRows() {
    const roles = new Map();
    const role = (name) => {
      if (!roles.has(name)) {
        roles.set(name, { name, weight: null, frameworks: new Set(), tasks: 0, allocated: {}, reserved: {}, guarantee: null, limit: null });
      }
      return roles.get(name);
    };
    // Scalars only: a range of ports adds up to nothing readable.
    const scalarsOf = (r) => Object.fromEntries(Object.entries(r || {}).filter(([, v]) => typeof v === 'number' && v));
    for (const ro of (model.roles || {}).roles || []) {
      const r = role(ro.name);
      r.weight = ro.weight == null ? null : Number(ro.weight);
      for (const id of ro.frameworks || []) r.frameworks.add(id);
      r.tasks = Number(ro.tasks) || 0;
      r.allocated = scalarsOf(ro.allocated || ro.resources);
      r.reserved = scalarsOf(ro.reserved);
    }
    const q = model.extras.quota || {};
    const scalars = (m) => Object.fromEntries(Object.entries(m || {}).map(([k, v]) => [k, Number(v && v.value != null ? v.value : v)]));
    for (const c of q.configs || []) {
      const r = role(c.role);
      r.guarantee = scalars(c.guarantees);
      r.limit = scalars(c.limits);
    }
    return [...roles.values()].sort((x, y) => x.name.localeCompare(y.name));
  }

  function quotaText(q) {
    if (!q || !Object.keys(q).length) return h('span', { class: 'muted' }, '–');
    return resourceText(q);
  }

  function renderRoles() {
    const body = $('roles-table').tBodies[0];
    if (!model.roles) {
      replaceRows(body, [emptyRow(8, model.error ? 'No data.' : 'Loading…')]);
      return;
    }
    setText('roles-note', model.extras.error ? `Weights or quotas unknown: ${model.extras.error}` : '');
    const rows = roleRows();
    replaceRows(body, rows.length ? rows.map((r) => h('tr', { 'data-role': r.name },
      h('th', { scope: 'row' }, h('a', { href: `#/tasks?q=${enc(r.name)}`, title: 'Show tasks that mention this role', class: 'role-name' }, r.name),
        ' ', h('a', { href: `#/explain?subject=${enc(r.name)}`, class: 'explain-link', title: 'Why this role gets offers or not' }, 'why?')),
      h('td', { class: 'num weight' }, r.weight == null ? '1' : num(r.weight)),
      h('td', { class: 'num' }, String(r.frameworks.size)),
      h('td', { class: 'num' }, String(r.tasks)),
      h('td', { class: 'allocated' }, Object.keys(r.allocated).length ? resourceText(r.allocated) : h('span', { class: 'muted' }, '–')),
      h('td', { class: 'reserved' }, Object.keys(r.reserved).length ? resourceText(r.reserved) : h('span', { class: 'muted' }, '–')),
      h('td', { class: 'guarantee' }, quotaText(r.guarantee)),
      h('td', { class: 'limit' }, quotaText(r.limit)))) : [emptyRow(8, 'No roles have weights, quotas, frameworks or reservations.')]);
  }

  // ---- overview ---------------------------------------------------------------

  // CHARTS are the overview's lines: a metric of /metrics/history and,
  // dashed, the total it is a part of.
  const CHARTS = [
    { id: 'cpus', title: 'CPUs used', used: 'master/cpus_used', total: 'master/cpus_total', fmt: num },
    { id: 'mem', title: 'Memory used', used: 'master/mem_used', total: 'master/mem_total', fmt: mem },
    { id: 'disk', title: 'Disk used', used: 'master/disk_used', total: 'master/disk_total', fmt: mem },
    { id: 'tasks', title: 'Running tasks', used: 'master/tasks_running', fmt: num },
    { id: 'agents', title: 'Active agents', used: 'master/slaves_active', fmt: num },
    { id: 'offers', title: 'Outstanding offers', used: 'master/outstanding_offers', fmt: num },
  ];

  // sparkline draws values (and the dashed total, if any) in a 100×40 box,
  // an SVG cloned from the page's template (which gives its namespace).
  function sparkline(values, total) {
    const svg = $('sparkline').content.firstElementChild.cloneNode(true);
    const top = Math.max(1, ...values, ...(total || []));
    const line = (vs, cls) => {
      const pl = document.createElementNS(svg.namespaceURI, 'polyline');
      const step = vs.length > 1 ? 100 / (vs.length - 1) : 0;
      pl.setAttribute('points', vs.map((v, i) => `${(i * step).toFixed(2)},${(40 - (v / top) * 38).toFixed(2)}`).join(' '));
      if (cls) pl.setAttribute('class', cls);
      svg.append(pl);
    };
    if (total) line(total, 'total');
    line(values, 'used');
    return svg;
  }

  function renderOverview() {
    const charts = $('charts');
    const hist = model.extras.history;
    if (!hist) {
      setText('history-note', model.extras.error ? `The master's metrics history is unknown: ${model.extras.error}` : 'Loading…');
      return;
    }
    const times = hist.timestamps || [];
    const series = hist.metrics || {};
    const minutes = Math.round((Number(hist.interval_secs) || 0) * (Number(hist.capacity) || 0) / 60);
    setText('history-note', times.length
      ? `The last ${duration(times[times.length - 1] - times[0])} (${times.length} samples, one each ${num(hist.interval_secs)} s; the master keeps ${minutes} min).`
      : `No samples yet: the master takes one each ${num(hist.interval_secs)} s.`);
    const next = h('div', null, CHARTS.map((c) => {
      const vs = (series[c.used] || []).map(Number);
      const tot = c.total ? (series[c.total] || []).map(Number) : null;
      const last = vs.length ? vs[vs.length - 1] : 0;
      const lastTotal = tot && tot.length ? tot[tot.length - 1] : null;
      return h('figure', { class: 'chart', id: `chart-${c.id}`, 'data-points': String(vs.length) },
        h('h3', null, c.title),
        h('div', { class: 'now' }, lastTotal != null ? `${c.fmt(last)} / ${c.fmt(lastTotal)}` : c.fmt(last)),
        sparkline(vs, tot),
        h('figcaption', { class: 'visually-hidden' }, `${c.title}: ${vs.map(c.fmt).join(', ')}`));
    }));
    if (next.innerHTML !== charts.innerHTML) charts.replaceChildren(...next.childNodes);
  }

  // ---- offers ------------------------------------------------------------------

  function renderOffers() {
    const s = model.frameworks;
    const body = $('offers-table').tBodies[0];
    if (!s) {
      replaceRows(body, [emptyRow(5, model.error ? 'No data.' : 'Loading…')]);
      return;
    }
    const offers = [];
    for (const f of s.frameworks || []) for (const o of f.offers || []) offers.push({ o, f });
    offers.sort((x, y) => collator.compare(x.o.id, y.o.id));
    setText('offer-count', `${offers.length} outstanding offer${offers.length === 1 ? '' : 's'}`);
    replaceRows(body, offers.length ? offers.map(({ o, f }) => {
      return h('tr', { 'data-offer-id': o.id },
        h('th', { scope: 'row' }, h('code', null, o.id)),
        h('td', null, h('a', { href: `#/framework/${enc(f.id)}`, class: 'fw-name' }, f.name || f.id)),
        h('td', { class: 'role' }, (o.allocation_info || {}).role || '*'),
        h('td', { title: o.slave_id, class: 'agent' }, o.slave_hostname || o.slave_id),
        h('td', { class: 'resources' }, resourceText(o.resources)));
    }) : [emptyRow(5, 'No offers are outstanding: every offer was accepted or declined.')]);
  }

  // ---- maintenance -------------------------------------------------------------

  // nanos reads a protobuf TimeInfo or DurationInfo (nanoseconds, maybe a string).
  const nanos = (x) => Number((x || {}).nanoseconds) || 0;

  function machineName(id) {
    id = id || {};
    return [id.hostname, id.ip].filter(Boolean).join(' / ') || '(no name)';
  }

  function renderMaintenance() {
    const body = $('schedule-table').tBodies[0];
    const drains = $('drains-table').tBodies[0];
    setText('maintenance-note', model.extras.error ? `Maintenance schedule or state unknown: ${model.extras.error}` : '');
    const sched = model.extras.schedule;
    const status = model.extras.maintenance || {};
    if (!sched) {
      replaceRows(body, [emptyRow(5, model.extras.error ? 'No data.' : 'Loading…')]);
    } else {
      const down = new Set((status.down_machines || []).map(machineName));
      const answers = new Map((status.draining_machines || []).map((d) => [machineName(d.id), d.statuses || []]));
      const rows = [];
      for (const w of sched.windows || []) {
        const u = w.unavailability || {};
        for (const id of w.machine_ids || []) {
          const name = machineName(id);
          const start = nanos(u.start) / 1e9;
          const dur = nanos(u.duration) / 1e9;
          const ans = answers.get(name) || [];
          rows.push(h('tr', { 'data-machine': name },
            h('th', { scope: 'row' }, name),
            h('td', { class: 'start' }, start ? h('time', { datetime: new Date(start * 1000).toISOString() }, new Date(start * 1000).toLocaleString()) : '–'),
            h('td', { class: 'duration' }, dur ? duration(dur) : 'open-ended'),
            h('td', { class: 'state' }, down.has(name) ? badge('down', 'bad') : badge('draining', 'warn')),
            h('td', { class: 'answers' }, ans.length
              ? ans.map((a, i) => [i ? ', ' : '', `${(a.framework_id || {}).value || a.framework_id || '?'}: ${String(a.status || '').toLowerCase()}`])
              : h('span', { class: 'muted' }, 'none yet'))));
        }
      }
      replaceRows(body, rows.length ? rows : [emptyRow(5, 'No machines are scheduled for maintenance.')]);
    }
    const list = model.lists.drains;
    if (!list) return;
    const draining = (list.slaves || []).filter((a) => a.drain_info && a.drain_info.state);
    const more = (Number(list.total) || 0) - draining.length;
    replaceRows(drains, draining.length ? [...draining.map((a) => h('tr', { 'data-agent-id': a.id },
      h('th', { scope: 'row' }, a.hostname || a.id),
      h('td', null, h('code', null, agentAddress(a))),
      h('td', { class: 'drain' }, badge(String(a.drain_info.state).toLowerCase(), 'warn')),
      h('td', { class: 'num' }, String(Number(a.active_tasks) || 0)))),
    more > 0 ? emptyRow(4, `and ${more} more (filter the agents by “draining”).`) : null].filter(Boolean)
      : [emptyRow(4, 'No agents are draining.')]);
  }

  // ---- explain -------------------------------------------------------------------

  // explainBlock shows the master's explanation of why a framework or role
  // gets offers or not.
  function explainBlock(ex) {
    if (!ex) return h('p', { class: 'muted' }, model.extras.error ? `Could not ask the master: ${model.extras.error}` : 'Asking the master…');
    if (!ex.doc) return h('p', { class: 'explain-unknown' }, `The allocator knows no framework or role named “${ex.subject}”.`);
    const d = ex.doc;
    const summary = Number(d.offers) > 0
      ? `${d.kind === 'role' ? 'Role' : 'Framework'} ${d.subject} got ${num(d.offers)} offer${Number(d.offers) === 1 ? '' : 's'} in the last ${num(d.cycles)} allocation cycles.`
      : `${d.kind === 'role' ? 'Role' : 'Framework'} ${d.subject} got no offers in the last ${num(d.cycles)} allocation cycles.`;
    return h('div', { class: 'explain', 'data-kind': d.kind },
      h('p', { class: 'summary' }, h('strong', null, summary)),
      (d.reasons || []).length
        ? h('ul', { class: 'reasons' }, d.reasons.map((r) => h('li', { 'data-code': r.code },
          r.message, ' ', h('span', { class: 'code' }, `(${r.code}${r.agents ? `, ${r.agents} agent${r.agents === 1 ? '' : 's'}` : ''})`))))
        : h('p', { class: 'muted' }, 'The allocator records no reason that holds it back.'),
      h('details', null, h('summary', null, 'As the master says it'), h('pre', { class: 'explain-text' }, d.text || '')));
  }

  function renderExplain() {
    const out = $('explain-result');
    const next = h('div', null, route.subject
      ? explainBlock(model.extras.explain && model.extras.explain.subject === route.subject ? model.extras.explain : null)
      : h('p', { class: 'muted' }, 'Name a framework (its ID) or a role to see why the allocator offers it resources or not: ',
        'filters it declined, quota limits, fair share, agents it cannot use.'));
    if (next.innerHTML !== out.innerHTML) out.replaceChildren(...next.childNodes);
  }

  // ---- one framework ---------------------------------------------------------------

  function renderFramework() {
    const fieldsEl = $('framework-fields');
    const missing = $('framework-missing');
    setText('framework-title', `Framework ${route.id}`);
    if (!model.frameworks) return;
    const f = model.frameworkByID.get(route.id);
    if (!f) {
      missing.textContent = `The master does not know framework ${route.id}.`;
      missing.hidden = false;
      fieldsEl.replaceChildren();
      $('framework-ui').replaceChildren();
      return;
    }
    missing.hidden = true;
    setText('framework-title', `Framework ${f.name || f.id}`);
    const ui = f.webui_url ? safeURL(f.webui_url) : null;
    const link = h('span', null, ui
      ? h('a', { href: ui, class: 'external', id: 'framework-webui', rel: 'noopener noreferrer', target: '_blank' }, `Open ${f.name || 'the framework'}’s own web UI ↗`)
      : h('span', { class: 'muted' }, 'This framework publishes no web UI (webui_url).'));
    if (link.innerHTML !== $('framework-ui').innerHTML) $('framework-ui').replaceChildren(...link.childNodes);
    const active = Number(f.task_count) || 0;
    const items = [];
    field(items, 'Status', f.unregistered_time ? badge('completed', 'warn') : frameworkStatus(f));
    field(items, 'ID', h('code', null, f.id));
    field(items, 'Roles', (f.roles || (f.role ? [f.role] : [])).join(', ') || '*');
    field(items, 'User', f.user || '–');
    if (f.principal) field(items, 'Principal', f.principal);
    if (f.hostname) field(items, 'Host', f.hostname);
    field(items, 'Tasks', h('a', { href: `#/tasks?q=${enc(f.id)}`, class: 'fw-tasks' },
      `${active} active, ${Number(f.completed_task_count) || 0} completed`));
    field(items, 'Resources used', resourceText(f.used_resources));
    field(items, 'Outstanding offers', h('a', { href: '#/offers', class: 'fw-offers' }, String((f.offers || []).length)));
    if ((f.capabilities || []).length) field(items, 'Capabilities', f.capabilities.join(', '));
    field(items, 'Registered', when(f.registered_time));
    const next = h('dl', null, items);
    if (next.innerHTML !== fieldsEl.innerHTML) fieldsEl.replaceChildren(...next.childNodes);
    const ex = model.extras.explain && model.extras.explain.subject === f.id ? model.extras.explain : null;
    const out = $('framework-explain');
    const block = h('div', null, f.unregistered_time ? h('p', { class: 'muted' }, 'The framework has ended: it gets no offers.') : explainBlock(ex));
    if (block.innerHTML !== out.innerHTML) out.replaceChildren(...block.childNodes);
  }

  // ---- task detail and sandbox ---------------------------------------------

  function field(dl, name, ...value) {
    dl.push(h('div', null, h('dt', null, name), h('dd', null, ...value)));
  }

  function renderTask() {
    const fieldsEl = $('task-fields');
    const missing = $('task-missing');
    const statusBody = $('task-statuses').tBodies[0];
    setText('task-title', `Task ${route.taskID}`);
    const r = model.lists.task;
    if (!r || r.key !== `${route.frameworkID}/${route.taskID}`) {
      fieldsEl.replaceChildren();
      replaceRows(statusBody, [emptyRow(3, model.error ? 'No data.' : 'Loading…')]);
      return;
    }
    if (!r.task) {
      missing.textContent = `The master does not know task ${route.taskID} of framework ${route.frameworkID}. ` +
        'It may have finished long ago and been dropped from the master’s history.';
      missing.hidden = false;
      fieldsEl.replaceChildren();
      replaceRows(statusBody, []);
      return;
    }
    missing.hidden = true;
    const t = r.task;
    const a = r.agent;
    const items = [];
    field(items, 'State', stateBadge(t.state));
    field(items, 'Name', t.name || '–');
    field(items, 'Framework', h('a', { href: `#/framework/${enc(t.framework_id)}` }, t.framework_name || t.framework_id), ' ', h('code', null, t.framework_id));
    const hidden = (model.summary || {}).agents_visible === false;
    field(items, 'Agent', a ? h('a', { href: `#/tasks?q=${enc(a.id)}` }, a.hostname) : hidden ? 'not visible to you' : 'unknown agent', ' ',
      h('code', null, a ? agentAddress(a) : t.slave_id));
    if (t.executor_id) field(items, 'Executor', h('code', null, t.executor_id));
    if (t.role) field(items, 'Role', t.role);
    if (t.user) field(items, 'User', t.user);
    const rs = t.resources || {};
    field(items, 'Resources', [
      `${num(res(rs, 'cpus'))} CPUs`, `${mem(res(rs, 'mem'))} memory`,
      res(rs, 'disk') ? `${mem(res(rs, 'disk'))} disk` : null,
      res(rs, 'gpus') ? `${num(res(rs, 'gpus'))} GPUs` : null,
      rs.ports ? `ports ${rs.ports}` : null,
    ].filter(Boolean).join(' · '));
    const statuses = t.statuses || [];
    const last = statuses[statuses.length - 1];
    if (last && last.healthy != null) field(items, 'Health', last.healthy ? badge('healthy', 'ok') : badge('unhealthy', 'bad'));
    if (t.container && t.container.type) field(items, 'Container', t.container.type);
    if (Array.isArray(t.labels) && t.labels.length) {
      field(items, 'Labels', t.labels.map((l) => `${l.key}=${l.value == null ? '' : l.value}`).join(', '));
    }
    const next = h('dl', null, items);
    if (next.innerHTML !== fieldsEl.innerHTML) fieldsEl.replaceChildren(...next.childNodes);
    replaceRows(statusBody, statuses.length ? statuses.slice().reverse().map((s) => h('tr', null,
      h('td', null, stateBadge(s.state)), h('td', null, when(s.timestamp)), h('td', null, s.message || ''))) : [emptyRow(3, 'No status updates yet.')]);
    openSandbox(t, a);
  }

  // sandbox holds the sandbox view of the open task; it is loaded once per
  // task, not on every refresh, because it talks to the agent.
  let sandbox = null;

  function sandboxStatus(...parts) {
    $('sandbox-status').replaceChildren(...parts.flat());
  }

  function closeSandbox() {
    sandbox = null;
  }

  function openSandbox(t, agent) {
    const key = `${t.framework_id}/${t.id}`;
    if (sandbox && sandbox.key === key) return;
    const addr = agentAddress(agent);
    // The master relays the agent's /state and /files (same origin: agents
    // answer no other origin's page).
    sandbox = { key, task: t, addr: addr || t.slave_id, base: `/agent/${enc(t.slave_id)}`, root: '', follow: null };
    $('sandbox-files').hidden = true;
    $('file-viewer').hidden = true;
    $('sandbox-path').replaceChildren();
    // A principal that may not view agents is not told of the task's
    // agent: the relay, by ID, still decides what it may read there.
    const agentsHidden = (model.summary || {}).agents_visible === false;
    if (!agent && !agentsHidden) {
      sandboxStatus('The agent of this task is not registered, so its sandbox cannot be read.');
      return;
    }
    loadSandbox(sandbox);
  }

  function agentUnreachable(sb, e) {
    if (e.status === 401 || e.status === 403) {
      sandboxStatus(h('strong', { class: 'not-allowed' }, 'Not allowed: '),
        'the principal you are signed in as may not read this sandbox through the master ',
        '(it needs access_sandboxes on the framework’s user, and to list the agent’s executors ',
        'view_frameworks, view_tasks and view_executors on every user). ',
        h('span', { class: 'muted' }, `The master answered: ${e.message}`));
      return;
    }
    sandboxStatus(`Could not read the sandbox from agent ${sb.addr}: ${e.message}. `,
      'The master relays sandboxes from the agent, which may be down or unreachable from the master. Agent address: ',
      h('code', { class: 'agent-address' }, sb.addr),
      sb.root ? [', sandbox directory: ', h('code', null, sb.root)] : null, '.');
  }

  async function loadSandbox(sb) {
    sandboxStatus(`Looking up the sandbox on agent ${sb.addr}…`);
    let st;
    try {
      st = await getJSON(`${sb.base}/state`, 5000);
    } catch (e) {
      if (sandbox === sb) agentUnreachable(sb, e);
      return;
    }
    if (sandbox !== sb) return;
    sb.root = findSandbox(st, sb.task);
    if (!sb.root) {
      sandboxStatus(`Agent ${sb.addr} lists no sandbox for this task; it may have been garbage-collected.`);
      return;
    }
    browse(sb, sb.root);
  }

  function findSandbox(st, t) {
    const fws = [...(st.frameworks || []), ...(st.completed_frameworks || [])].filter((f) => f.id === t.framework_id);
    const executors = fws.flatMap((f) => [...(f.executors || []), ...(f.completed_executors || [])]);
    const has = (e) => [...(e.tasks || []), ...(e.queued_tasks || []), ...(e.completed_tasks || [])].some((x) => x.id === t.id);
    const e = executors.find(has) ||
      executors.find((x) => (t.executor_id && x.id === t.executor_id) || x.id === t.id);
    return e ? e.directory : '';
  }

  async function browse(sb, path) {
    let list;
    try {
      list = await getJSON(`${sb.base}/files/browse?path=${enc(path)}`, 5000);
    } catch (e) {
      if (sandbox === sb) agentUnreachable(sb, e);
      return;
    }
    if (sandbox !== sb) return;
    sandboxStatus(h('span', null, 'Sandbox on agent ', h('code', null, sb.addr), ': ', h('code', null, sb.root)));
    // Breadcrumbs from the sandbox root.
    const rel = path.slice(sb.root.length).split('/').filter(Boolean);
    const crumbs = [h('button', { type: 'button', class: 'link', onclick: () => browse(sb, sb.root) }, 'sandbox')];
    let acc = sb.root;
    for (const part of rel) {
      acc = `${acc}/${part}`;
      const target = acc;
      crumbs.push(' / ', h('button', { type: 'button', class: 'link', onclick: () => browse(sb, target) }, part));
    }
    $('sandbox-path').replaceChildren(...crumbs);
    const entries = (Array.isArray(list) ? list : []).slice().sort((x, y) => {
      const dx = String(x.mode || '').startsWith('d');
      const dy = String(y.mode || '').startsWith('d');
      return dx !== dy ? (dx ? -1 : 1) : String(x.path).localeCompare(String(y.path));
    });
    const rows = entries.map((f) => {
      const name = String(f.path).split('/').pop();
      const dir = String(f.mode || '').startsWith('d');
      const download = `${sb.base}/files/download?path=${enc(f.path)}`;
      return h('tr', { 'data-path': f.path },
        h('th', { scope: 'row' }, dir
          ? h('button', { type: 'button', class: 'link', onclick: () => browse(sb, f.path) }, `${name}/`)
          : h('button', { type: 'button', class: 'link file', onclick: () => viewFile(sb, f.path) }, name)),
        h('td', { class: 'num' }, dir ? '–' : bytes(f.size)),
        h('td', null, when(f.mtime)),
        h('td', null, h('code', null, f.mode || '')),
        h('td', null, dir ? '' : h('a', { href: download, download: name }, 'Download')));
    });
    const body = $('sandbox-files').tBodies[0];
    body.replaceChildren(...(rows.length ? rows : [emptyRow(5, 'This directory is empty.')]));
    $('sandbox-files').hidden = false;
  }

  async function viewFile(sb, path) {
    const viewer = $('file-viewer');
    const pre = $('file-body');
    const name = path.split('/').pop();
    $('file-title').replaceChildren(name, ' ',
      h('label', { class: 'follow' }, h('input', { type: 'checkbox', id: 'file-follow', checked: true,
        onchange: (e) => { if (sb.follow) sb.follow.on = e.target.checked; } }), ' follow'));
    viewer.hidden = false;
    const dl = $('file-download');
    dl.href = `${sb.base}/files/download?path=${enc(path)}`;
    dl.setAttribute('download', name);
    pre.textContent = '';
    setText('file-note', 'Loading…');
    sb.follow = null;
    try {
      const end = await getJSON(`${sb.base}/files/read?path=${enc(path)}&offset=-1`, 5000);
      const size = Number(end.offset) || 0;
      const start = Math.max(0, size - TAIL_BYTES);
      const chunk = await getJSON(`${sb.base}/files/read?path=${enc(path)}&offset=${start}&length=${TAIL_BYTES}`, 5000);
      if (sandbox !== sb) return;
      pre.textContent = chunk.data || '';
      setText('file-note', start > 0 ? `Showing the last ${bytes(size - start)} of ${bytes(size)}.` : `${bytes(size)}.`);
      sb.follow = { path, offset: start + byteLength(chunk.data || ''), on: true, busy: false };
      pre.scrollTop = pre.scrollHeight;
      followLoop(sb, sb.follow);
    } catch (e) {
      if (sandbox === sb) setText('file-note', `Could not read ${name}: ${e.message}`);
    }
  }

  // followLoop reads the open file every FOLLOW_MS while it stays open, so
  // the tail is live however rarely the state is polled.
  function followLoop(sb, fl) {
    setTimeout(async () => {
      if (sandbox !== sb || sb.follow !== fl || route.view !== 'task') return;
      if (!document.hidden) await followTick();
      followLoop(sb, fl);
    }, FOLLOW_MS);
  }

  // followTick appends what was written to the open file since the last read,
  // like tail -f. It runs every FOLLOW_MS and after each refresh.
  async function followTick() {
    const sb = sandbox;
    if (!sb || !sb.follow || !sb.follow.on || sb.follow.busy || route.view !== 'task') return;
    const fl = sb.follow;
    fl.busy = true;
    try {
      const chunk = await getJSON(`${sb.base}/files/read?path=${enc(fl.path)}&offset=${fl.offset}&length=${TAIL_BYTES}`, 5000);
      const data = chunk.data || '';
      if (data && sandbox === sb && sb.follow === fl) {
        const pre = $('file-body');
        const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        let text = pre.textContent + data;
        if (text.length > 4 * TAIL_BYTES) text = text.slice(text.length - 4 * TAIL_BYTES);
        pre.textContent = text;
        fl.offset += byteLength(data);
        setText('file-note', `${bytes(fl.offset)} read; following.`);
        if (atEnd) pre.scrollTop = pre.scrollHeight;
      }
    } catch (e) {
      // A missed tail read is retried on the next refresh.
    } finally {
      fl.busy = false;
    }
  }

  // ---- live updates ----------------------------------------------------------

  // The operator API's event stream (POST /api/v1 SUBSCRIBE, RecordIO of
  // JSON events) says when tasks, frameworks or agents change; each change
  // triggers a prompt, coalesced refresh, so the page is live without
  // polling the whole state often.
  // The delay grows with the cost of a refresh, so that a big cluster's
  // stream of events leaves the page at least two thirds of its time.
  let liveTimer = null;
  function changed() {
    if (liveTimer) return;
    liveTimer = setTimeout(() => { liveTimer = null; refresh(); }, Math.max(150, 2 * lastCost));
  }

  async function watch() {
    try {
      const resp = await fetch('/api/v1', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
        body: JSON.stringify({ type: 'SUBSCRIBE' }),
      });
      if (!resp.ok || !resp.body) throw new Error('subscribe: HTTP ' + resp.status);
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      let buf = new Uint8Array(0);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const next = new Uint8Array(buf.length + value.length);
        next.set(buf);
        next.set(value, buf.length);
        buf = next;
        // RecordIO: "<length in bytes>\n<record>", repeated.
        for (;;) {
          const nl = buf.indexOf(10);
          if (nl < 0) break;
          const len = Number(dec.decode(buf.subarray(0, nl)));
          if (!(len > 0) || buf.length < nl + 1 + len) break;
          const record = dec.decode(buf.subarray(nl + 1, nl + 1 + len));
          buf = buf.slice(nl + 1 + len);
          let type = '';
          try { type = JSON.parse(record).type; } catch (e) { /* skip */ }
          if (type && type !== 'HEARTBEAT' && type !== 'SUBSCRIBED') changed();
        }
      }
    } catch (e) {
      // Fall back to polling until the stream can be opened again.
    }
    setTimeout(watch, 2000);
  }

  // ---- start ---------------------------------------------------------------

  onRoute();
  refresh();
  watch();
})();
