// agora services UI: the apps and deployments of the Marathon-compatible
// framework, from its own /v2 API. The page follows /v2/events (server-
// sent events) and reloads what an event may have changed; a slow poll
// covers a stream that drops (it runs only while the stream is down),
// and a quick one follows a deployment in progress (its readiness
// results come with no event).
'use strict';

// Events that change what the page shows.
const EVENTS = ['status_update_event', 'health_status_changed_event', 'deployment_info', 'deployment_success',
  'deployment_failed', 'deployment_step_success', 'deployment_step_failure', 'api_post_event', 'app_terminated_event'];

// POLL_MS is the slow poll's period: ?poll=SECONDS changes it.
const POLL_MS = pollMS(10);

// DEPLOYING_POLL_MS is the poll's period while a deployment is in progress.
const DEPLOYING_POLL_MS = 1000;

// AGORA_FIELDS asks the API for agora's fields beside Marathon's own (a
// task's goal and agent, a deployment's progress and deadline).
const AGORA_FIELDS = { 'X-Agora-Fields': 'true' };

function when(s) {
  if (!s) return '–';
  const d = new Date(s);
  return isNaN(d) ? s : d.toLocaleString();
}

// The page asks for agora's fields, such as a deployment's deadline,
// besides Marathon's (X-Agora-Fields).

function appStatus(a) {
  if (a.deployments && a.deployments.length) return pill('Deploying', 'info');
  if (a.instances === 0) return pill('Suspended', 'warn');
  if (a.tasksUnhealthy > 0) return pill('Unhealthy', 'bad');
  if (a.tasksRunning < a.instances) return pill('Waiting', 'warn');
  return pill('Running', 'ok');
}

function appRow(a) {
  const checked = (a.healthChecks || []).length > 0;
  return el('tr', { 'data-app-id': a.id, 'data-running': a.tasksRunning, 'data-instances': a.instances },
    el('td', {}, el('code', {}, a.id)),
    el('td', { class: 'num' }, a.tasksRunning + ' / ' + a.instances),
    el('td', { class: 'num' }, checked ? a.tasksHealthy + (a.tasksUnhealthy ? ' (' + a.tasksUnhealthy + ' unhealthy)' : '') : '–'),
    el('td', { class: 'num' }, a.cpus),
    el('td', { class: 'num' }, a.mem + ' MB'),
    el('td', {}, appStatus(a)),
    el('td', {}, when(a.versionInfo ? a.versionInfo.lastConfigChangeAt : a.version)));
}

function progressText(actions) {
  return actions.map((act) => {
    const p = act.progress;
    if (!p) return act.action + ' ' + act.app;
    let s = act.action + ' ' + act.app + ': ' + p.healthy + '/' + p.instances + ' healthy';
    if (p.oldActive) s += ', ' + p.oldActive + ' old';
    if (p.waitingFor && p.waitingFor.length) s += ', waiting for ' + p.waitingFor.join(', ');
    return s;
  });
}

function readinessList(actions) {
  const items = [];
  for (const act of actions) {
    for (const r of act.readinessCheckResults || []) {
      const status = r.lastResponse ? ' (HTTP ' + r.lastResponse.status + ')' : '';
      items.push(el('li', { 'data-task-id': r.taskId }, r.ready ? pill('ready', 'ok') : pill('not ready', 'warn'), ' ',
        el('code', {}, r.taskId), status));
    }
  }
  return items.length ? el('ul', { class: 'plain' }, ...items) : '–';
}

function deploymentRow(d) {
  const actions = d.currentActions || [];
  return el('tr', { 'data-deployment-id': d.id },
    el('td', {}, el('code', {}, d.id)),
    el('td', {}, (d.affectedApps || []).join(', ')),
    el('td', { class: 'num' }, d.currentStep + ' / ' + d.totalSteps),
    el('td', {}, el('ul', { class: 'plain' }, ...progressText(actions).map((s) => el('li', {}, s)))),
    el('td', {}, readinessList(actions)),
    el('td', {}, when(d.progressDeadline)));
}

const STATUS_KIND = { success: 'ok', failed: 'bad', canceled: 'warn', running: 'info' };

function historyRow(h) {
  return el('tr', { 'data-deployment-id': h.id, 'data-status': h.status },
    el('td', {}, el('code', {}, h.id)),
    el('td', {}, (h.affectedApps || []).join(', ')),
    el('td', {}, pill(h.status, STATUS_KIND[h.status] || 'info')),
    el('td', {}, when(h.startedAt)),
    el('td', {}, when(h.finishedAt)),
    el('td', {}, h.reason || ''));
}

let loading = null;
let again = false;

// refresh reloads everything; calls during a load fold into one more.
async function refresh() {
  if (loading) { again = true; return loading; }
  loading = (async () => {
    try {
      const [apps, deployments, history] = await Promise.all([
        getJSON('v2/apps', AGORA_FIELDS), getJSON('v2/deployments', AGORA_FIELDS), getJSON('v2/deployments?embed=history', AGORA_FIELDS)]);
      fill('apps', apps.apps.map(appRow), 'apps-empty');
      document.getElementById('apps-count').textContent = apps.apps.length ? '(' + apps.apps.length + ')' : '';
      fill('deployments', deployments.map(deploymentRow), 'deployments-empty');
      const ended = history.filter((h) => h.status !== 'running').slice(0, 20); // newest first
      fill('history', ended.map(historyRow), 'history-empty');
      document.getElementById('error-banner').hidden = true;
      document.getElementById('status').textContent = 'Updated ' + new Date().toLocaleTimeString();
      // Readiness results come with no event: follow a deployment closely.
      if (deployments.length) setTimeout(soon, DEPLOYING_POLL_MS);
    } catch (err) {
      const b = document.getElementById('error-banner');
      b.textContent = 'Cannot read the API: ' + err.message;
      b.hidden = false;
    } finally {
      loading = null;
      if (again) { again = false; refresh(); }
    }
  })();
  return loading;
}

let pending = null;

// soon batches the reloads a burst of events asks for.
function soon() {
  if (pending) return;
  pending = setTimeout(() => { pending = null; refresh(); }, 150);
}

function follow() {
  const es = new EventSource(api('v2/events'));
  for (const t of EVENTS) es.addEventListener(t, soon);
  es.addEventListener('event_stream_attached', () => { document.body.dataset.live = 'true'; soon(); });
  es.onerror = () => { document.body.dataset.live = 'false'; };
}

refresh();
follow();
// The slow poll only while the stream is down.
setInterval(() => { if (document.body.dataset.live !== 'true') refresh(); }, POLL_MS);
