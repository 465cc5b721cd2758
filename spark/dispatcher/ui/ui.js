// agora Spark drivers UI: the dispatcher's drivers (newest first) with
// where each runs and the executors its application got, and one driver's
// page (#driver=ID), from GET /api/v1/drivers, polled (?poll=SECONDS,
// default 2). A queued or running driver can be killed (two clicks:
// POST /api/v1/drivers/ID/kill); the outcome stays on its row.
'use strict';

const POLL_MS = pollMS(2);

const STATE_KIND = {
  RUNNING: 'info', QUEUED: 'warn', SUBMITTED: 'warn', RELAUNCHING: 'warn', FINISHED: 'ok', FAILED: 'bad', ERROR: 'bad', KILLED: 'warn',
  TASK_RUNNING: 'info', TASK_STAGING: 'warn', TASK_STARTING: 'warn', TASK_FINISHED: 'ok', TASK_FAILED: 'bad', TASK_LOST: 'bad', TASK_KILLED: 'warn',
};

function state(s) { return pill(s, STATE_KIND[s] || 'info'); }

function when(t) { return t && !t.startsWith('0001-') ? new Date(t).toLocaleString() : '–'; }

function duration(from, to) {
  if (!from || from.startsWith('0001-')) return '–';
  const end = to && !to.startsWith('0001-') ? new Date(to) : new Date();
  let s = Math.max(0, Math.round((end - new Date(from)) / 1000));
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return (h ? h + ' h ' : '') + (h || m ? m + ' min ' : '') + s + ' s';
}

// safeURL allows only http(s) links from data (a driver's Spark UI).
function safeURL(u) {
  try { const x = new URL(u); return x.protocol === 'http:' || x.protocol === 'https:' ? x.toString() : null; } catch (e) { return null; }
}

// sandbox links a task to its page in the master's UI, where its sandbox
// is browsed.
function sandbox(master, frameworkID, taskID, text) {
  if (!master || !frameworkID || !taskID) return text || '–';
  return el('a', { class: 'sandbox', href: master + '/#/task/' + encodeURIComponent(frameworkID) + '/' + encodeURIComponent(taskID), target: '_blank', rel: 'noopener' }, text || 'sandbox');
}

function sparkUI(d) {
  const u = d.application && d.state === 'RUNNING' ? safeURL(d.application.uiUrl || '') : null;
  return u ? el('a', { class: 'spark-ui', href: u, target: '_blank', rel: 'noopener' }, 'Spark UI') : '–';
}

function executors(d) { return d.application ? d.application.executors.length : 0; }

// postJSON posts to the service's API with the header its CSRF guard
// asks of a change (a page of another site cannot send it); a failure's
// error is the service's own message.
async function postJSON(path) {
  const r = await fetch(api(path), { method: 'POST', headers: { Accept: 'application/json', 'X-Requested-By': 'agora' } });
  if (!r.ok) {
    let msg = r.status + ' ' + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return r.json();
}

const ENDED = new Set(['FINISHED', 'FAILED', 'KILLED', 'ERROR']);

// armed are the kills clicked once (until when a second click confirms
// them), results what each kill from this page answered: both outlive
// the rows, which are rebuilt on every poll.
const armed = new Map();
const results = new Map();

function killButton(d) {
  const isArmed = (armed.get(d.submissionId) || 0) > Date.now();
  const b = el('button', { type: 'button', class: 'kill' + (isArmed ? ' confirm' : ''), title: 'Kill ' + d.submissionId }, isArmed ? 'Confirm kill' : 'Kill');
  b.dataset.driver = d.submissionId;
  b.addEventListener('click', async () => {
    if ((armed.get(d.submissionId) || 0) <= Date.now()) {
      armed.set(d.submissionId, Date.now() + 5000);
      b.classList.add('confirm');
      b.textContent = 'Confirm kill';
      return;
    }
    armed.delete(d.submissionId);
    b.disabled = true;
    try {
      const r = await postJSON('api/v1/drivers/' + encodeURIComponent(d.submissionId) + '/kill');
      results.set(d.submissionId, { ok: true, text: r.message || 'Killed' });
    } catch (err) {
      results.set(d.submissionId, { ok: false, text: 'Not killed: ' + err.message });
    }
    refresh();
  });
  return b;
}

// killCell is a driver's kill: what a kill from this page answered, a
// kill under way, or the button while the driver runs or waits.
function killCell(d) {
  const r = results.get(d.submissionId);
  const parts = [];
  if (r) parts.push(el('span', { class: 'kill-result ' + (r.ok ? 'ok' : 'bad'), 'data-ok': String(r.ok) }, r.text));
  if (!ENDED.has(d.state) && !(r && r.ok)) {
    if (d.killRequested) parts.push(el('span', { class: 'muted' }, 'killing…'));
    else parts.push(r ? ' ' : null, killButton(d));
  }
  return parts;
}

function driverRow(d, master) {
  return el('tr', { 'data-driver': d.submissionId, 'data-state': d.state },
    el('td', {}, el('a', { href: '#driver=' + encodeURIComponent(d.submissionId) }, el('code', {}, d.submissionId))),
    el('td', {}, d.name || '–', el('br'), el('code', { class: 'muted' }, d.mainClass || '')),
    el('td', {}, state(d.state), d.retries ? ' (retry ' + d.retries + ')' : null),
    el('td', { class: 'agent' }, d.hostname ? sandbox(master, d.frameworkId, d.taskId, d.hostname) : '–'),
    el('td', { class: 'num executors' }, String(executors(d))),
    el('td', {}, when(d.submitted)),
    el('td', { class: 'num' }, duration(d.launched, d.finished)),
    el('td', {}, sparkUI(d)),
    el('td', { class: 'kill' }, ...killCell(d)));
}

function summaryRows(d, master) {
  const row = (k, ...v) => el('tr', {}, el('th', { scope: 'row' }, k), el('td', {}, ...v));
  const a = d.application;
  const rows = [
    row('State', state(d.state), d.message ? ' ' + d.message : null),
    row('Application', d.name || '–'),
    row('Main class', el('code', {}, d.mainClass || '')),
    row('Resource', el('code', {}, d.appResource || '')),
    row('Driver', d.cpus + ' cpus, ' + Math.round(d.mem) + ' MB', d.supervise ? ' (supervised)' : null),
    row('Agent', d.hostname || '–'),
    row('Task', d.taskId ? el('code', {}, d.taskId) : '–', d.taskState ? ' ' : null, d.taskState ? state(d.taskState) : null),
    row('Sandbox', sandbox(master, d.frameworkId, d.taskId)),
    row('Submitted', when(d.submitted)),
    row('Launched', when(d.launched)),
    row('Finished', when(d.finished)),
    row('Spark application', a ? el('code', { class: 'app-id' }, a.appId) : '–', a ? ' ' : null, a ? state(a.state) : null),
    row('Spark UI', sparkUI(d)),
  ];
  if (d.retries) rows.push(row('Retries', d.retries));
  const kill = killCell(d);
  if (kill.length) rows.push(row('Kill', ...kill));
  return rows;
}

function executorRows(d, master) {
  const a = d.application;
  if (!a) return [];
  return a.executors.map((e) => el('tr', { 'data-executor': e.id, 'data-state': e.state },
    el('td', {}, el('code', {}, e.id)),
    el('td', {}, state(e.state)),
    el('td', {}, e.hostname || '–'),
    el('td', { class: 'num' }, String(e.cpus)),
    el('td', { class: 'num' }, Math.round(e.memMB) + ' MB'),
    el('td', {}, when(e.launched)),
    el('td', {}, sandbox(master, a.frameworkId, e.taskId))));
}

function driverID() {
  const m = location.hash.match(/^#driver=(.+)$/);
  return m ? decodeURIComponent(m[1]) : '';
}

function showList(all) {
  fill('drivers', all.drivers.map((d) => driverRow(d, all.master)), 'drivers-empty');
  document.getElementById('drivers-count').textContent = all.drivers.length ? '(' + all.drivers.length + ')' : '';
  document.getElementById('local-mode').hidden = all.executors;
}

function showDriver(all, id) {
  const d = all.drivers.find((x) => x.submissionId === id);
  if (!d) throw new Error('the dispatcher has no driver ' + id);
  const title = document.getElementById('driver-title');
  // replaceChildren would write null as text: el skips it.
  title.replaceChildren(el('span', {}, el('code', {}, d.submissionId), d.name ? ' ' + d.name : null));
  title.dataset.driver = d.submissionId;
  fill('driver-summary', summaryRows(d, all.master));
  const rows = executorRows(d, all.master);
  fill('executors', rows, 'executors-empty');
  document.getElementById('executors-count').textContent = rows.length ? '(' + rows.length + ')' : '';
}

const refresh = followPage(driverID, 'driver', async (id) => {
  const all = await getJSON('api/v1/drivers');
  if (id) showDriver(all, id); else showList(all);
}, POLL_MS);
