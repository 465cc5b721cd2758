// agora scheduled jobs UI: the jobs of the Chronos-compatible framework,
// their next runs and their recent runs, from its /v1/scheduler API,
// following its change feed (polled every ?poll=SECONDS, default 2, while
// the feed is down).
'use strict';

const POLL_MS = pollMS(2);
const NEXT = 3;
const RECENT = 30;

function schedule(j) {
  const tz = j.scheduleTimeZone ? ' (' + j.scheduleTimeZone + ')' : '';
  if (j.parents && j.parents.length) return 'after ' + j.parents.join(', ');
  if (j.cron) return 'cron ' + j.cron + tz;
  return j.schedule + tz;
}

function state(j) {
  if (j.disabled) return pill('disabled', 'warn');
  if (j.currentRun) return pill(j.currentRun.state, 'info');
  if (j.lastError && j.lastError > (j.lastSuccess || '')) return pill('failed', 'bad');
  return pill(j.lastSuccess ? 'idle' : 'fresh', 'ok');
}

function jobRow(j, next) {
  return el('tr', { 'data-job': j.name },
    el('td', {}, el('code', {}, j.name)),
    el('td', {}, schedule(j)),
    el('td', {}, state(j)),
    el('td', { class: 'num' }, j.successCount),
    el('td', { class: 'num' }, j.errorCount),
    el('td', { class: 'num' }, j.missedCount),
    el('td', {}, next.length ? el('ul', { class: 'plain' }, ...next.map((t) => el('li', {}, t))) : '–'));
}

const RESULT_KIND = { TASK_FINISHED: 'ok', missed: 'warn' };

function runRow(r) {
  return el('tr', { 'data-job': r.job, 'data-instant': r.instant, 'data-state': r.taskState },
    el('td', {}, el('code', {}, r.job)),
    el('td', {}, r.instant + (r.manual ? ' (manual)' : '')),
    el('td', {}, pill(r.taskState, RESULT_KIND[r.taskState] || 'bad')),
    el('td', { class: 'num' }, r.attempts || '–'),
    el('td', {}, r.host || '–'),
    el('td', {}, r.endTime ? new Date(r.endTime).toLocaleString() : '–'),
    el('td', {}, r.message || ''));
}

async function refresh() {
  try {
    const jobs = await getJSON('v1/scheduler/jobs');
    const details = await Promise.all(jobs.map(async (j) => {
      const enc = encodeURIComponent(j.name);
      const [next, stat] = await Promise.all([getJSON('v1/scheduler/job/next/' + enc + '?n=' + NEXT),
        getJSON('v1/scheduler/job/stat/' + enc)]);
      return { next: next.nextRuns || [], runs: (stat.taskStatHistory || []).map((r) => Object.assign({ job: j.name }, r)) };
    }));
    fill('jobs', jobs.map((j, i) => jobRow(j, details[i].next)), 'jobs-empty');
    document.getElementById('jobs-count').textContent = jobs.length ? '(' + jobs.length + ')' : '';
    const runs = details.flatMap((d) => d.runs).sort((a, b) => (b.endTime || '').localeCompare(a.endTime || '')).slice(0, RECENT);
    fill('runs', runs.map(runRow), 'runs-empty');
    document.getElementById('error-banner').hidden = true;
    document.getElementById('status').textContent = 'Updated ' + new Date().toLocaleTimeString();
    document.body.dataset.loaded = 'true';
  } catch (err) {
    const b = document.getElementById('error-banner');
    b.textContent = 'Cannot read the API: ' + err.message;
    b.hidden = false;
  }
}

// follow refreshes now and on each change, one refresh at a time.
follow(refresh, POLL_MS);
