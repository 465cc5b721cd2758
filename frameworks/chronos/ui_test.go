package chronos

import (
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
	webuitest.Run(t, b, "opening the UI", chromedp.Navigate(e.url+"/ui/?poll=0.2"))
	webuitest.Wait(t, b, "the job with its next runs", `(() => { const r = document.querySelector('#jobs tr[data-job="nightly"] td:last-child');
		return r !== null && r.innerText.includes('2030-01-02T01:00:00+01:00') && r.innerText.includes('2030-01-04T01:00:00+01:00'); })()`)
	if row := webuitest.Text(t, b, `#jobs tr[data-job="nightly"]`); !strings.Contains(row, "Europe/Berlin") || !strings.Contains(row, "fresh") {
		t.Fatalf("job row %q, want its schedule with the time zone, and fresh", row)
	}

	e.clock.Set(t0.Add(24 * time.Hour))
	e.waitSuccesses("nightly", 1)
	webuitest.Wait(t, b, "the finished run", `document.querySelector('#runs tr[data-job="nightly"][data-state="TASK_FINISHED"]') !== null`)
	webuitest.Wait(t, b, "the next runs moved on", `document.querySelector('#jobs tr[data-job="nightly"] td:last-child').innerText.startsWith('2030-01-03T01:00:00+01:00')`)
}
