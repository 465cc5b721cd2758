// agora DNS UI: every record the resolver serves for the tasks, from its
// Mesos-DNS /v1/enumerate, following its change feed (polled every
// ?poll=SECONDS, default 2, while the feed is down).
'use strict';

const POLL_MS = pollMS(2);

let rows = [];

function render() {
  const q = document.getElementById('filter').value.trim().toLowerCase();
  const shown = rows.filter((r) => !q || [r.framework, r.task, r.name, r.host].some((s) => s.toLowerCase().includes(q)));
  const trs = shown.map((r) => el('tr', { 'data-name': r.name, 'data-rtype': r.rtype, 'data-task': r.task },
    el('td', {}, r.framework), el('td', {}, el('code', {}, r.task)), el('td', {}, el('code', {}, r.name)),
    el('td', {}, r.rtype), el('td', {}, el('code', {}, r.host))));
  document.querySelector('#records tbody').replaceChildren(...trs);
  document.getElementById('records').hidden = trs.length === 0;
  document.getElementById('records-empty').hidden = trs.length !== 0;
  document.getElementById('records-count').textContent = '(' + shown.length + (shown.length !== rows.length ? ' of ' + rows.length : '') + ')';
}

async function refresh() {
  try {
    const r = await fetch(api('v1/enumerate'), { headers: { Accept: 'application/json' } });
    if (!r.ok) throw new Error('/v1/enumerate: ' + r.status + ' ' + r.statusText);
    const e = await r.json();
    rows = [];
    for (const f of e.frameworks) {
      for (const t of f.tasks) {
        for (const rec of t.records) rows.push({ framework: f.name, task: t.id, name: rec.name, rtype: rec.rtype, host: rec.host });
      }
    }
    render();
    document.getElementById('error-banner').hidden = true;
    document.getElementById('status').textContent = 'Updated ' + new Date().toLocaleTimeString();
  } catch (err) {
    const b = document.getElementById('error-banner');
    b.textContent = 'Cannot read the records: ' + err.message;
    b.hidden = false;
  }
}

document.getElementById('filter').addEventListener('input', render);
// follow refreshes now and on each change, one refresh at a time.
follow(refresh, POLL_MS);
