package dns

import (
	"context"
	"encoding/json"
	"fmt"
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
	uiRun(t, b, "opening the UI", chromedp.Navigate(r.http+"/ui/?poll=0.2"))
	uiWait(t, b, "web's A record", `document.querySelector('#records tr[data-name="web.marathon.agora."][data-rtype="A"]') !== null`)
	uiWait(t, b, "web's SRV records", `document.querySelectorAll('#records tr[data-name="_web._tcp.marathon.agora."][data-rtype="SRV"]').length === 2`)
	uiRun(t, b, "filtering", chromedp.Evaluate[chromedp.Void](
		`(() => { const f = document.getElementById('filter'); f.value = '10.0.0.2'; f.dispatchEvent(new Event('input')); })()`))
	uiWait(t, b, "only web.1's records", `(() => { const ts = Array.from(document.querySelectorAll('#records tbody tr'), r => r.dataset.task); return ts.length > 0 && ts.every(t => t === 'web.1'); })()`)

	r.load(t, fakeView("web", 1))
	uiRun(t, b, "clearing the filter", chromedp.Evaluate[chromedp.Void](
		`(() => { const f = document.getElementById('filter'); f.value = ''; f.dispatchEvent(new Event('input')); })()`))
	uiWait(t, b, "web.1 to leave", `document.querySelectorAll('#records tr[data-task="web.1"]').length === 0 &&
		document.querySelectorAll('#records tr[data-task="web.0"]').length > 0`)
}

func uiRun[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// uiWait waits, at most a minute, until the JavaScript expression is
// truthy, and prints the page's text when it never is.
func uiWait(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := chromedp.Run(wctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(55*time.Second))); err != nil {
		q, _ := json.Marshal("body")
		body := uiRun(t, ctx, "reading the page", chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%s).innerText`, q)))
		t.Fatalf("waiting for %s: %v; the page says:\n%s", what, err, body)
	}
}
