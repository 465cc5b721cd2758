package chronos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agora-cluster/agora/cluster/webui/webuitest"
)

// TestUIShowsJobsNextRunsAndHistory opens /ui/ in headless Chromium: a
// job shows with its next runs; once its instant comes (the fake clock
// moves) its run shows in the recent runs, finished, and the next runs
// move on.
func TestUIShowsJobsNextRunsAndHistory(t *testing.T) {
	e := startEnv(t)
	e.must("POST", "/v1/scheduler/iso8601", e.jobJSON("nightly", `"schedule":"R/2030-01-02T00:00:00Z/P1D","scheduleTimeZone":"Europe/Berlin"`), http.StatusNoContent)

	b := webuitest.NewBrowser(t)
	uiRun(t, b, "opening the UI", chromedp.Navigate(e.url+"/ui/?poll=0.2"))
	uiWait(t, b, "the job with its next runs", `(() => { const r = document.querySelector('#jobs tr[data-job="nightly"] td:last-child');
		return r !== null && r.innerText.includes('2030-01-02T01:00:00+01:00') && r.innerText.includes('2030-01-04T01:00:00+01:00'); })()`)
	if row := uiText(t, b, `#jobs tr[data-job="nightly"]`); !strings.Contains(row, "Europe/Berlin") || !strings.Contains(row, "fresh") {
		t.Fatalf("job row %q, want its schedule with the time zone, and fresh", row)
	}

	e.clock.Set(t0.Add(24 * time.Hour))
	e.waitSuccesses("nightly", 1)
	uiWait(t, b, "the finished run", `document.querySelector('#runs tr[data-job="nightly"][data-state="TASK_FINISHED"]') !== null`)
	uiWait(t, b, "the next runs moved on", `document.querySelector('#jobs tr[data-job="nightly"] td:last-child').innerText.startsWith('2030-01-03T01:00:00+01:00')`)
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
// truthy.
func uiWait(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := chromedp.Run(wctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(55*time.Second))); err != nil {
		t.Fatalf("waiting for %s: %v; the page says:\n%s", what, err, uiText(t, ctx, "body"))
	}
}

func uiText(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	q, _ := json.Marshal(sel)
	return uiRun(t, ctx, "reading "+sel, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%s).innerText`, q)))
}
