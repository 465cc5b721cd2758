// agora lambda pipeline UI: the ingest rate and dead letters, the speed
// layer's progress past the batch view, the batch generations, the views
// with a query form, from the query API's /v1/pipeline and /v1/status,
// following its change feed (polled every ?poll=SECONDS, default 2,
// while the feed is down); queries go to /v1/query.
'use strict';

const POLL_MS = pollMS(2);

function when(t) { return t && !t.startsWith('0001-') ? new Date(t).toLocaleString() : '–'; }

function ago(t) {
  if (!t || t.startsWith('0001-')) return 'not since the server started';
  const s = Math.max(0, Math.round((Date.now() - new Date(t)) / 1000));
  return (s < 60 ? s + ' s' : Math.floor(s / 60) + ' min ' + (s % 60) + ' s') + ' ago';
}

function took(from, to) {
  const ms = new Date(to) - new Date(from);
  return ms < 1000 ? ms + ' ms' : (ms / 1000).toFixed(1) + ' s';
}

function offsets(m) {
  const ps = Object.keys(m || {}).sort((a, b) => a - b);
  return ps.length ? ps.map((p) => 'p' + p + ': ' + m[p]).join(', ') : '–';
}

let views = [];

function viewRow(v) {
  return el('tr', { 'data-view': v.name },
    el('th', { scope: 'row' }, el('code', {}, v.name)),
    el('td', {}, v.type),
    el('td', {}, v.key.length ? v.key.join(', ') : el('span', { class: 'muted' }, 'none (one total)')),
    el('td', {}, v.of || '–'),
    el('td', {}, v.bucket),
    el('td', {}, el('button', { type: 'button', class: 'link', onclick: () => chooseView(v.name, true) }, 'query')));
}

function generationRow(g) {
  return el('tr', { 'data-generation': String(g.number), 'data-events': String(g.events), 'data-failed': String(!!g.error) },
    el('td', {}, '#' + g.number, g.error ? ' ' : null, g.error ? pill('failed', 'bad') : null),
    el('td', { class: 'watermark' }, el('code', {}, offsets(g.watermark)), g.error ? el('span', { class: 'sub' }, g.error) : null),
    el('td', { class: 'num events' }, String(g.events)),
    el('td', {}, when(g.started)),
    el('td', {}, when(g.completed)),
    el('td', { class: 'num' }, took(g.started, g.completed)));
}

function partitionRows(wm, next) {
  const ps = new Set([...Object.keys(wm || {}), ...Object.keys(next || {})]);
  return [...ps].sort((a, b) => a - b).map((p) => {
    const w = (wm || {})[p] || 0, n = (next || {})[p] || 0;
    return el('tr', { 'data-partition': p },
      el('td', {}, p), el('td', { class: 'num' }, String(w)), el('td', { class: 'num' }, String(n)), el('td', { class: 'num' }, String(Math.max(n - w, 0))));
  });
}

// chooseView puts the view's key fields in the form.
function chooseView(name, focus) {
  const v = views.find((x) => x.name === name);
  if (!v) return;
  document.getElementById('query-view').value = name;
  document.getElementById('query-keys').replaceChildren(...v.key.map((k) =>
    el('label', {}, k, el('input', { name: 'key', required: true, 'data-key': k }))));
  const first = document.querySelector('#query-keys input');
  if (focus) (first || document.getElementById('query-view')).focus();
}

function setViews(vs) {
  if (JSON.stringify(vs) === JSON.stringify(views)) return;
  views = vs;
  fill('views', vs.map(viewRow));
  const sel = document.getElementById('query-view');
  const chosen = sel.value;
  sel.replaceChildren(...vs.map((v) => el('option', { value: v.name }, v.name)));
  chooseView(vs.some((v) => v.name === chosen) ? chosen : (vs[0] || {}).name, false);
}

async function query(ev) {
  ev.preventDefault();
  const q = new URLSearchParams({ view: document.getElementById('query-view').value });
  for (const i of document.querySelectorAll('#query-keys input')) q.append('key', i.value);
  for (const k of ['from', 'to']) {
    const v = document.getElementById('query-' + k).value.trim();
    if (v) q.set(k, v);
  }
  const err = document.getElementById('query-error');
  try {
    const a = await getJSON('v1/query?' + q.toString());
    err.hidden = true;
    document.getElementById('query-type').textContent = a.type;
    fill('query-result', a.points.map((p) => el('tr', { 'data-bucket': p.bucket },
      el('td', {}, new Date(p.bucket).toISOString().replace('.000Z', 'Z')), el('td', { class: 'num value' }, String(p.value)))), 'query-empty');
    const about = document.getElementById('query-about');
    about.textContent = 'View ' + a.view + (a.key.length ? ' for ' + a.key.join(', ') : '') + ': batch view below offsets ' + offsets(a.batch_watermark)
      + ', realtime view up to ' + offsets(a.speed_next) + '.';
    about.hidden = false;
    document.getElementById('query-result').dataset.answered = q.toString();
  } catch (e) {
    err.textContent = e.message;
    err.hidden = false;
    document.getElementById('query-result').hidden = true;
    document.getElementById('query-empty').hidden = true;
  }
}

// lastAdvanced is when the speed layer last advanced, as last read: the
// page counts its age itself, since the feed moves only when what the
// server says changes.
let lastAdvanced = null;

function showAges() {
  if (lastAdvanced !== null) document.getElementById('speed-fresh').textContent = ago(lastAdvanced);
}

async function refresh() {
  try {
    const [o, st] = await Promise.all([getJSON('v1/pipeline'), getJSON('v1/status')]);
    document.getElementById('pipeline-name').textContent = o.pipeline;
    document.title = 'agora lambda pipeline ' + o.pipeline;
    setViews(o.views);
    document.getElementById('ingest-rate').textContent = o.ingest.rate_per_second.toFixed(1);
    document.getElementById('ingest-appended').textContent = String(o.ingest.appended);
    const dead = document.getElementById('ingest-dead');
    dead.replaceChildren(o.ingest.dead_letter ? pill(String(o.ingest.dead_letter), 'bad') : '0');
    dead.dataset.count = String(o.ingest.dead_letter);
    document.getElementById('ingest-dead-topic').textContent = 'on topic ' + o.ingest.dead_letter_topic;
    document.getElementById('speed-since').textContent = String(o.speed.events_since_batch);
    lastAdvanced = o.speed.last_advanced;
    showAges();
    const g = o.generations[0];
    document.getElementById('batch-events').textContent = g ? String(g.events) : '–';
    document.getElementById('batch-last').textContent = (g ? 'last run completed ' + when(g.completed) + '; ' : '')
      + 'runs every ' + st.batch_period_seconds + ' s';
    const be = document.getElementById('batch-error');
    be.textContent = st.last_batch_error ? 'last run failed: ' + st.last_batch_error : '';
    be.hidden = !st.last_batch_error;
    fill('generations', o.generations.map(generationRow), 'generations-empty');
    document.getElementById('generations-note').textContent = o.generations.length ? '(the last ' + o.generations.length + ' this server saw)' : '';
    fill('partitions', partitionRows(st.batch_watermark, o.speed.next));
    document.getElementById('error-banner').hidden = true;
    document.getElementById('status').textContent = 'Topic ' + st.topic + ' on ' + (st.brokers || []).join(', ')
      + (st.embedded_broker ? ' (embedded broker)' : '') + ' · updated ' + new Date().toLocaleTimeString();
    document.body.dataset.loaded = 'pipeline';
  } catch (err) {
    const b = document.getElementById('error-banner');
    b.textContent = 'Cannot read the API: ' + err.message;
    b.hidden = false;
  }
}

document.getElementById('query-form').addEventListener('submit', query);
document.getElementById('query-view').addEventListener('change', (e) => chooseView(e.target.value, true));
// follow refreshes now and on each change, one refresh at a time.
follow(refresh, POLL_MS);
setInterval(showAges, 1000);
