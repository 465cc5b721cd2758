// agora Hadoop jobs UI: the framework's jobs with their map and reduce
// progress, a job's counters and attempts (#job=ID), and the TaskTrackers,
// from its /api/v1 API, polled (?poll=SECONDS, default 2).
'use strict';

const POLL_MS = pollMS(2);

const STATE_KIND = { SUCCEEDED: 'ok', RUNNING: 'info', COMMITTING: 'info', COMMIT_PENDING: 'info', LAUNCHING: 'info', FAILED: 'bad', LOST: 'bad', KILLED: 'warn', SHUTTING_DOWN: 'warn' };

function state(s) { return pill(s, STATE_KIND[s] || 'info'); }

// bar shows a phase's progress (0..1) and its done/total tasks.
function bar(progress, counts) {
  const pct = Math.floor((progress || 0) * 100);
  const done = (counts.succeeded || 0) + (counts.failed || 0);
  return el('span', { class: 'bar', 'data-progress': String(pct), 'data-done': String(done), 'data-total': String(counts.total || 0) },
    el('progress', { max: 100, value: pct, title: pct + ' %' }),
    pct + ' % (' + done + '/' + (counts.total || 0) + ')');
}

function when(t) { return t && !t.startsWith('0001-') ? new Date(t).toLocaleString() : '–'; }

function duration(from, to) {
  if (!from || from.startsWith('0001-')) return '–';
  const end = to && !to.startsWith('0001-') ? new Date(to) : new Date();
  let s = Math.max(0, Math.round((end - new Date(from)) / 1000));
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return (h ? h + ' h ' : '') + (h || m ? m + ' min ' : '') + s + ' s';
}

function jobRow(j) {
  return el('tr', { 'data-job': j.id, 'data-state': j.state },
    el('td', {}, el('a', { href: '#job=' + encodeURIComponent(j.id) }, el('code', {}, j.id))),
    el('td', {}, j.name || '–'),
    el('td', { class: 'user' }, j.user || '–'),
    el('td', {}, state(j.state)),
    el('td', { class: 'maps' }, bar(j.map_progress, j.maps)),
    el('td', { class: 'reduces' }, bar(j.reduce_progress, j.reduces)),
    el('td', {}, when(j.submitted)),
    el('td', { class: 'num' }, duration(j.submitted, j.finish)));
}

function trackerRow(t) {
  return el('tr', { 'data-tracker': t.id, 'data-state': t.state },
    el('td', {}, el('code', {}, t.id)),
    el('td', {}, t.host),
    el('td', {}, state(t.state)),
    el('td', { class: 'num' }, t.running_maps + '/' + t.map_slots),
    el('td', { class: 'num' }, t.running_reduces + '/' + t.reduce_slots),
    el('td', {}, when(t.launched)));
}

function summaryRows(j) {
  const row = (k, ...v) => el('tr', {}, el('th', { scope: 'row' }, k), el('td', {}, ...v));
  const rows = [
    row('State', state(j.state), j.error ? ' ' + j.error : null),
    row('User', j.user || '–'),
    row('Maps', bar(j.map_progress, j.maps)),
    row('Reduces', bar(j.reduce_progress, j.reduces)),
    row('Input', (j.input || []).join(', ')),
    row('Output', el('code', {}, j.output || '')),
    row('Mapper', el('code', {}, j.mapper || '')),
    row('Reducer', el('code', {}, j.reducer || '')),
    row('Submitted', when(j.submitted)),
    row('Duration', duration(j.submitted, j.finish)),
  ];
  if (j.combiner) rows.splice(7, 0, row('Combiner', el('code', {}, j.combiner)));
  if (j.blacklisted && j.blacklisted.length) rows.push(row('Blacklisted hosts', j.blacklisted.join(', ')));
  if (j.restarts) rows.push(row('Restarts', j.restarts));
  rows[2].className = 'maps';
  rows[3].className = 'reduces';
  return rows;
}

// counterRows lists the counters group by group, as Hadoop's job page does.
function counterRows(c) {
  const rows = [];
  for (const g of Object.keys(c || {}).sort()) {
    rows.push(el('tr', { class: 'group' }, el('td', { colSpan: 2 }, g)));
    for (const n of Object.keys(c[g]).sort()) {
      rows.push(el('tr', { 'data-group': g, 'data-counter': n },
        el('td', {}, el('code', {}, n)),
        el('td', { class: 'num' }, String(c[g][n]))));
    }
  }
  return rows;
}

function attemptRows(tasks) {
  const rows = [];
  for (const t of tasks || []) {
    for (const a of t.attempts || []) {
      const log = api('api/v1/attempts/' + encodeURIComponent(a.id) + '/log');
      rows.push(el('tr', { 'data-attempt': a.id, 'data-state': a.state },
        el('td', {}, el('code', {}, a.id), a.speculative ? ' (speculative)' : null),
        el('td', {}, state(a.state)),
        el('td', {}, a.host || '–'),
        el('td', { class: 'num' }, Math.floor((a.progress || 0) * 100) + ' %'),
        el('td', {}, when(a.start)),
        el('td', { class: 'num' }, duration(a.start, a.finish)),
        el('td', {}, el('a', { href: log, target: '_blank', rel: 'noopener' }, 'log'))));
    }
  }
  return rows;
}

function jobID() {
  const m = location.hash.match(/^#job=(.+)$/);
  return m ? decodeURIComponent(m[1]) : '';
}

async function showList() {
  const [jobs, trackers] = await Promise.all([getJSON('api/v1/jobs'), getJSON('api/v1/trackers')]);
  jobs.sort((a, b) => (b.submitted || '').localeCompare(a.submitted || ''));
  fill('jobs', jobs.map(jobRow), 'jobs-empty');
  document.getElementById('jobs-count').textContent = jobs.length ? '(' + jobs.length + ')' : '';
  fill('trackers', trackers.map(trackerRow), 'trackers-empty');
}

async function showJob(id) {
  const j = await getJSON('api/v1/jobs/' + encodeURIComponent(id) + '?tasks=true');
  const title = document.getElementById('job-title');
  title.replaceChildren(el('code', {}, j.id), ...(j.name ? [' ' + j.name] : []));
  title.dataset.job = j.id;
  fill('job-summary', summaryRows(j));
  fill('counters', counterRows(j.counters), 'counters-empty');
  const attempts = attemptRows(j.tasks);
  fill('attempts', attempts, 'attempts-empty');
  document.getElementById('attempts-count').textContent = attempts.length ? '(' + attempts.length + ')' : '';
}

followPage(jobID, 'job', (id) => (id ? showJob(id) : showList()), POLL_MS);
