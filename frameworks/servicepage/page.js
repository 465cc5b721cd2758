// Helpers every built-in service's page shares, served at /ui/page.js by
// package servicepage; a page loads it before its own ui.js.
'use strict';

// api resolves a path of the service's API against the page's address, so
// that a page served behind a prefix (a proxy, the master's framework
// links) still reaches its own service.
const api = (path) => new URL(path, location.href.replace(/\/ui\/.*$/, '/')).toString();

// el makes an element: attrs sets properties ("class" the class name,
// "data-*" attributes), children are nodes or text (null is skipped).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) {
    if (c == null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function pill(text, kind) { return el('span', { class: 'pill ' + kind }, text); }

// fill puts rows in the body of the table with ID table, and hides the
// table when there are none (showing the element emptyId instead, if any).
function fill(table, rows, emptyId) {
  document.querySelector('#' + table + ' tbody').replaceChildren(...rows);
  document.getElementById(table).hidden = rows.length === 0;
  if (emptyId) document.getElementById(emptyId).hidden = rows.length !== 0;
}

// getJSON fetches path from the service's API; a failure's error names
// the path and the service's own message when it sent one.
async function getJSON(path, headers) {
  const r = await fetch(api(path), { headers: Object.assign({ Accept: 'application/json' }, headers) });
  if (!r.ok) {
    let msg = r.status + ' ' + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(path + ': ' + msg);
  }
  return r.json();
}

// pollMS is a page's refresh period in ms: ?poll=SECONDS, else def seconds.
function pollMS(def) { return (Number(new URLSearchParams(location.search).get('poll')) || def) * 1000; }

// follow calls refresh now and whenever the service changes: it follows
// the service's change feed (ui/changes, server-sent events) and calls
// refresh, once for a burst of events, on each; while the feed is down
// (or the service has none) it polls instead, every period ms.
// body[data-live] and the pill #live say which: "true" while the feed is
// open. It returns the function that refreshes through the same queue,
// one refresh at a time, for a page that has just changed something:
// call that, never refresh itself.
//
// A browser opens at most about six HTTP/1.1 connections to one
// host:port, and an open feed holds one: while the tab is hidden the
// page closes its feed (and stops polling), and it reopens it, which
// refreshes, when the tab is shown again.
function follow(refresh, period) {
  const DEBOUNCE_MS = 100;
  let live = false;
  let pending = null;
  let retry = null;
  let es = null;
  const pillEl = el('span', { id: 'live', class: 'pill warn', title: '' });
  const status = document.getElementById('status');
  if (status) status.after(pillEl);
  function show(on) {
    live = on;
    document.body.dataset.live = String(on);
    pillEl.className = 'pill ' + (on ? 'ok' : 'warn');
    pillEl.textContent = on ? 'live' : 'polling every ' + Number((period / 1000).toFixed(1)) + ' s';
    pillEl.title = on ? 'The page follows the service\'s changes as they happen.'
      : 'The change feed is down: the page polls the service until it is back.';
  }
  // run refreshes one at a time: a change that lands during a refresh
  // refreshes again after it (the one under way may have read the API
  // before the change).
  let running = false;
  let again = false;
  async function run() {
    if (running) { again = true; return; }
    running = true;
    try { await refresh(); } catch (e) { /* refresh shows its own errors */ } finally {
      running = false;
      if (again) { again = false; run(); }
    }
  }
  function soon() {
    if (pending) return;
    pending = setTimeout(() => { pending = null; run(); }, DEBOUNCE_MS);
  }
  function open() {
    retry = null;
    if (document.hidden) return;
    const feed = new EventSource(api('ui/changes'));
    es = feed;
    // The first event after (re)opening catches up on what the page
    // missed while the feed was down.
    feed.addEventListener('change', () => { if (!live) show(true); soon(); });
    feed.onerror = () => {
      if (feed !== es) return;
      show(false);
      // A refused feed (404, 401, 503) is not retried by the browser.
      if (feed.readyState === EventSource.CLOSED && !retry) retry = setTimeout(open, Math.max(period, 10000));
    };
  }
  function close() {
    if (es) { es.close(); es = null; }
    if (retry) { clearTimeout(retry); retry = null; }
    show(false);
  }
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) { close(); return; }
    // Shown again: the reopened feed's first event refreshes (should
    // the feed be refused, the poll does).
    if (!es) open();
  });
  show(false);
  run();
  open();
  setInterval(() => { if (!live && !document.hidden) run(); }, period);
  return run;
}

// followPage keeps a page of a list and one item's view fresh. itemID()
// is the item the address names ('' for the list), show(id) renders it
// (the list for ''), and the element with ID detail holds the item's view
// (the list's is 'list'). It refreshes when the service changes (follow,
// polling every period ms while the change feed is down) and when the
// address changes, one refresh at a time (a change of view during one
// refreshes again after it), says when the API cannot be read, and sets
// body[data-loaded] to the view shown. It returns the refresh to call
// for a page that has just changed something.
function followPage(itemID, detail, show, period) {
  async function refresh() {
    const id = itemID();
    try {
      document.getElementById('list').hidden = id !== '';
      document.getElementById(detail).hidden = id === '';
      await show(id);
      document.getElementById('error-banner').hidden = true;
      document.getElementById('status').textContent = 'Updated ' + new Date().toLocaleTimeString();
      document.body.dataset.loaded = id ? detail : 'list';
    } catch (err) {
      const b = document.getElementById('error-banner');
      b.textContent = 'Cannot read the API: ' + err.message;
      b.hidden = false;
    }
  }
  const run = follow(refresh, period);
  window.addEventListener('hashchange', () => { delete document.body.dataset.loaded; run(); });
  return run;
}
