package dns

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agora-cluster/agora/cluster/webui/webuitest"
)

// web1Left is true once the page lists web.1's records no more and still
// lists web.0's: what each test's change of the records (web from two
// tasks to one) shows.
const web1Left = `document.querySelectorAll('#records tr[data-task="web.1"]').length === 0 &&
	document.querySelectorAll('#records tr[data-task="web.0"]').length > 0`

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
	webuitest.Wait(t, b, "web.1 to leave", web1Left)
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
	// The page's first reads (its own, a poll or two before the feed
	// opened, the one the feed's first event asks for) may land after the
	// pill turns: wait until they are over.
	before := webuitest.Settled(t, "/v1/enumerate", &enumerates)
	// Fifteen periods of the fallback poll: a page that polled while live
	// would have read /v1/enumerate again.
	time.Sleep(3 * time.Second)
	if n := enumerates.Load(); n != before {
		t.Fatalf("the page read /v1/enumerate %d times in 3 s with no change of the records, while its change feed was open", n-before)
	}

	r.load(t, fakeView("web", 1))
	webuitest.Wait(t, b, "web.1 to leave without a reload", web1Left)
	if n := enumerates.Load(); n <= before {
		t.Fatalf("the page shows the change but the server counted no read of /v1/enumerate (%d)", n)
	}
	if live := webuitest.Run(t, b, "reading data-live", chromedp.Evaluate[string](`document.body.dataset.live`)); live != "true" {
		t.Fatalf("data-live %q after the change, want true", live)
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
	webuitest.Wait(t, b, "web.1 to leave, polled", web1Left)
}

// TestUIRefreshesAgainAfterAChangeDuringALoad holds the page's first read
// of /v1/enumerate (answered with the records from before) while the
// records change: the change's event lands during that read, and the page
// must neither drop it nor let the held, older answer render last.
func TestUIRefreshesAgainAfterAChangeDuringALoad(t *testing.T) {
	var reads atomic.Int64
	var firstOnce sync.Once
	firstRead := make(chan struct{}) // closed once the first read is held
	release := make(chan struct{})   // closed by the test to answer it
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	hold := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path != "/v1/enumerate" {
				h.ServeHTTP(w, req)
				return
			}
			if reads.Add(1) != 1 {
				h.ServeHTTP(w, req)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req) // the records as they are now
			// The headers go at once (a browser holds a second read of
			// the same address until a first one's headers come), the
			// body when the test says.
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(rec.Code)
			w.(http.Flusher).Flush()
			firstOnce.Do(func() { close(firstRead) })
			select {
			case <-release:
			case <-req.Context().Done():
				return
			case <-time.After(2 * time.Minute):
			}
			w.Write(rec.Body.Bytes())
		})
	}
	r := serveWith(t, testConfig(deadMaster), Options{Version: "test", WrapHTTP: hold})
	r.load(t, fakeView("web", 2))
	b := webuitest.NewBrowser(t)
	webuitest.Run(t, b, "opening the UI", chromedp.Navigate(r.http+"/ui/?poll=0.2"))
	select {
	case <-firstRead:
	case <-time.After(time.Minute):
		t.Fatal("the page did not read /v1/enumerate within a minute")
	}
	waitFor(t, "the page's change feed", func() bool { return r.changes.Streams() == 1 })
	r.load(t, fakeView("web", 1))
	// Time for the change's event (sent at most a second after the
	// feed's first) to reach the page while its first read is held; a
	// slower machine only makes it likelier that it lands after.
	time.Sleep(2 * time.Second)
	unblock()
	webuitest.Wait(t, b, "web.1 to leave without a reload", web1Left)
	webuitest.Settled(t, "/v1/enumerate", &reads)
	if gone := webuitest.Run(t, b, "reading the records", chromedp.Evaluate[bool](
		`document.querySelectorAll('#records tr[data-task="web.1"]').length === 0`)); !gone {
		t.Fatal("once its reads were over the page shows web.1 again: an older answer rendered last")
	}
}

// TestUIClosesItsFeedWhileHidden: a hidden tab closes its change feed
// (it holds one of the browser's few connections to the service) and
// does not poll; shown again, it reopens the feed and shows what changed
// meanwhile.
func TestUIClosesItsFeedWhileHidden(t *testing.T) {
	var reads atomic.Int64
	count := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path == "/v1/enumerate" {
				reads.Add(1)
			}
			h.ServeHTTP(w, req)
		})
	}
	r := serveWith(t, testConfig(deadMaster), Options{Version: "test", WrapHTTP: count})
	r.load(t, fakeView("web", 2))
	b := webuitest.NewBrowser(t)
	webuitest.Run(t, b, "opening the UI", chromedp.Navigate(r.http+"/ui/?poll=0.2"))
	webuitest.Wait(t, b, "the change feed", `document.body.dataset.live === 'true'`)
	waitFor(t, "the page's change feed", func() bool { return r.changes.Streams() == 1 })

	setHidden := func(hidden bool) {
		webuitest.Run(t, b, "setting document.hidden", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
			`Object.defineProperty(document, 'hidden', { configurable: true, get: () => %t }); document.dispatchEvent(new Event('visibilitychange'))`, hidden)))
	}
	setHidden(true)
	waitFor(t, "the hidden page to close its feed", func() bool { return r.changes.Streams() == 0 })
	webuitest.Wait(t, b, "the pill to leave live", `document.body.dataset.live === 'false'`)
	before := webuitest.Settled(t, "/v1/enumerate", &reads)
	r.load(t, fakeView("web", 1))
	// Five periods of the fallback poll: a hidden page that polled
	// would have read /v1/enumerate.
	time.Sleep(time.Second)
	if n := reads.Load(); n != before {
		t.Fatalf("the hidden page read /v1/enumerate %d times", n-before)
	}

	setHidden(false)
	waitFor(t, "the shown page to reopen its feed", func() bool { return r.changes.Streams() == 1 })
	webuitest.Wait(t, b, "web.1 to leave, shown again", `document.body.dataset.live === 'true' && `+web1Left)
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
