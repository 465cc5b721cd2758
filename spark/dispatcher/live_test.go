package dispatcher

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/webui/webuitest"
)

// TestUIFollowsTheChangeFeed opens /ui/ in headless Chromium with a
// fallback poll of 0.2 s: while the page follows the change feed it does
// not read /api/v1/drivers (counted by the server) until a driver
// changes, and a driver submitted then shows, running, without a reload.
func TestUIFollowsTheChangeFeed(t *testing.T) {
	var reads atomic.Int64
	d, _ := standInWith(t, clustertest.Options{}, auth.Credential{}, standInDriver, nil, func(cfg *Config) {
		cfg.WrapPage = func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/api/v1/drivers" {
					reads.Add(1)
				}
				h.ServeHTTP(w, r)
			})
		}
	})
	waitSubscribed(t, d)
	first := submitArgs(t, d, "quick")
	waitDriver(t, d, first, func(dr Driver) bool { return dr.State == StateFinished })

	b := webuitest.NewBrowser(t)
	webuitest.Run(t, b, "opening the UI", chromedp.Navigate("http://"+d.Addr()+"/ui/?poll=0.2"))
	webuitest.Wait(t, b, "the ended driver listed", fmt.Sprintf(`document.querySelector('#drivers tr[data-driver=%q][data-state="FINISHED"]') !== null`, first))
	webuitest.Wait(t, b, "the change feed", `document.body.dataset.live === 'true' && document.getElementById('live').textContent === 'live'`)
	webuitest.Run(t, b, "marking the page", chromedp.Evaluate[bool](`window.notReloaded = true`))
	// The page's first reads (its own, a poll or two before the feed
	// opened, the one the feed's first event asks for) may land after the
	// pill turns: wait until they are over.
	before := webuitest.Settled(t, "/api/v1/drivers", &reads)
	if before < 1 {
		t.Fatal("the server counted no read of /api/v1/drivers, though the page shows the drivers")
	}
	// Fifteen periods of the fallback poll: a page that polled while live
	// would have read the drivers again.
	time.Sleep(3 * time.Second)
	if n := reads.Load(); n != before {
		t.Fatalf("the page read /api/v1/drivers %d times in 3 s with no driver changing, while its change feed was open", n-before)
	}

	second := submitArgs(t, d, "hold")
	waitDriver(t, d, second, func(dr Driver) bool { return dr.TaskState == "TASK_RUNNING" })
	webuitest.Wait(t, b, "the second driver listed and running, without a reload", fmt.Sprintf(`window.notReloaded === true
		&& document.querySelector('#drivers tr[data-driver=%q]')?.dataset.state === 'RUNNING'`, second))
	if n := reads.Load(); n <= before {
		t.Fatalf("the page shows the new driver but the server counted no read of /api/v1/drivers (%d)", n)
	}
}
