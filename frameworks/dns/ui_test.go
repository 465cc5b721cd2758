package dns

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agora-cluster/agora/cluster/webui/webuitest"
)

// TestUIShowsRecords opens /ui/ in headless Chromium: the tasks' records
// show, the filter narrows them, and a task that leaves the records
// leaves the page.
func TestUIShowsRecords(t *testing.T) {
	r := serve(t, testConfig(deadMaster))
	r.load(t, fakeView("web", 2))
	b := webuitest.NewBrowser(t)
	webuitest.Run(t, b, "opening the UI", chromedp.Navigate(r.http+"/ui/?poll=0.2"))
	webuitest.Wait(t, b, "web's A record", `document.querySelector('#records tr[data-name="web.marathon.agora."][data-rtype="A"]') !== null`)
	webuitest.Wait(t, b, "web's SRV records", `document.querySelectorAll('#records tr[data-name="_web._tcp.marathon.agora."][data-rtype="SRV"]').length === 2`)
	webuitest.Run(t, b, "filtering", chromedp.Evaluate[chromedp.Void](
		`(() => { const f = document.getElementById('filter'); f.value = '10.0.0.2'; f.dispatchEvent(new Event('input')); })()`))
	webuitest.Wait(t, b, "only web.1's records", `(() => { const ts = Array.from(document.querySelectorAll('#records tbody tr'), r => r.dataset.task); return ts.length > 0 && ts.every(t => t === 'web.1'); })()`)

	r.load(t, fakeView("web", 1))
	webuitest.Run(t, b, "clearing the filter", chromedp.Evaluate[chromedp.Void](
		`(() => { const f = document.getElementById('filter'); f.value = ''; f.dispatchEvent(new Event('input')); })()`))
	webuitest.Wait(t, b, "web.1 to leave", `document.querySelectorAll('#records tr[data-task="web.1"]').length === 0 &&
		document.querySelectorAll('#records tr[data-task="web.0"]').length > 0`)
}

// TestUIFollowsTheChangeFeed opens /ui/ in headless Chromium with a
// fallback poll of 0.2 s: once the page follows the change feed it reads
// /v1/enumerate no more (counted by the server) until the records change,
// and the change shows without a reload.
func TestUIFollowsTheChangeFeed(t *testing.T) {
	var enumerates atomic.Int64
	count := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path == "/v1/enumerate" {
				enumerates.Add(1)
			}
			h.ServeHTTP(w, req)
		})
	}
	r := serveWith(t, testConfig(deadMaster), Options{Version: "test", WrapHTTP: count})
	r.load(t, fakeView("web", 2))
	b := webuitest.NewBrowser(t)
	webuitest.Run(t, b, "opening the UI", chromedp.Navigate(r.http+"/ui/?poll=0.2"))
	webuitest.Wait(t, b, "web.1's records", `document.querySelector('#records tr[data-task="web.1"]') !== null`)
	webuitest.Wait(t, b, "the change feed", `document.body.dataset.live === 'true' && document.getElementById('live').textContent === 'live'`)
	// The page's first read, and the one the feed's first event asks for.
	waitFor(t, "the page's two first reads", func() bool { return enumerates.Load() >= 2 })
	before := enumerates.Load()
	// Fifteen periods of the fallback poll: a page that polled while live
	// would have read /v1/enumerate again.
	time.Sleep(3 * time.Second)
	if n := enumerates.Load(); n != before {
		t.Fatalf("the page read /v1/enumerate %d times in 3 s with no change of the records, while its change feed was open", n-before)
	}

	r.load(t, fakeView("web", 1))
	webuitest.Wait(t, b, "web.1 to leave without a reload", `document.querySelectorAll('#records tr[data-task="web.1"]').length === 0 &&
		document.querySelectorAll('#records tr[data-task="web.0"]').length > 0`)
	if n := enumerates.Load(); n <= before {
		t.Fatalf("the page shows the change but the server counted no read of /v1/enumerate (%d)", n)
	}
	if live := webuitest.Run(t, b, "reading data-live", chromedp.Evaluate[string](`document.body.dataset.live`)); live != "true" {
		t.Fatalf("data-live %q after the change, want true", live)
	}
}

// waitFor waits (a minute at most) for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after a minute", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUIPollsWhileTheFeedIsRefused: with its change feed refused, the
// page says it polls, and does: a change of the records shows.
func TestUIPollsWhileTheFeedIsRefused(t *testing.T) {
	refuse := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path == "/ui/changes" {
				http.Error(w, "no feed in this test", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, req)
		})
	}
	r := serveWith(t, testConfig(deadMaster), Options{Version: "test", WrapHTTP: refuse})
	r.load(t, fakeView("web", 2))
	b := webuitest.NewBrowser(t)
	webuitest.Run(t, b, "opening the UI", chromedp.Navigate(r.http+"/ui/?poll=0.2"))
	webuitest.Wait(t, b, "web.1's records", `document.querySelector('#records tr[data-task="web.1"]') !== null`)
	webuitest.Wait(t, b, "the page saying it polls", `document.body.dataset.live === 'false' && document.getElementById('live').textContent === 'polling every 0.2 s'`)
	r.load(t, fakeView("web", 1))
	webuitest.Wait(t, b, "web.1 to leave, polled", `document.querySelectorAll('#records tr[data-task="web.1"]').length === 0 &&
		document.querySelectorAll('#records tr[data-task="web.0"]').length > 0`)
}
