package webui_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/webui"
	"github.com/agora-cluster/agora/cluster/webui/webuitest"
)

// TestCockpitPages opens the overview, offers, framework, explain and
// maintenance pages of a real cluster: framework "holder" (with a web UI
// of its own) holds the only agent's offer, framework "starved" gets none.
// Each page must show what the master's API says.
func TestCockpitPages(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{
		UI:             webui.Handler(),
		AgentResources: "cpus:2;mem:1024;disk:100",
		Master:         func(cfg *master.Config) { cfg.MetricsHistoryInterval = time.Second },
	})
	holder := c.Subscribe(`{"user":"root","name":"holder","webui_url":"http://holder.example:8080/ui/"}`)
	offer := holder.Offer() // held, never answered: outstanding
	starved := c.Subscribe(`{"user":"root","name":"starved"}`)
	bctx := webuitest.NewBrowser(t)

	t.Run("overview", func(t *testing.T) {
		run(t, bctx, "opening the overview", chromedp.Navigate(c.MasterURL+"/?refresh=1#/overview"))
		waitFor(t, bctx, "two samples and the held offer",
			`(() => { const c = document.querySelector('#chart-offers'); return c && Number(c.dataset.points) >= 2 && c.querySelector('.now').textContent === '1'; })()`)
		var hist struct {
			Metrics map[string][]float64 `json:"metrics"`
		}
		if err := json.Unmarshal([]byte(send(t, http.MethodGet, c.MasterURL+"/metrics/history", "")), &hist); err != nil {
			t.Fatal(err)
		}
		if tot := hist.Metrics["master/cpus_total"]; len(tot) < 2 || tot[len(tot)-1] != 2 {
			t.Fatalf("/metrics/history cpus_total = %v, want samples ending in 2", tot)
		}
		for sel, want := range map[string]string{"#chart-cpus .now": "0 / 2", "#chart-mem .now": "0 MB / 1 GB", "#chart-agents .now": "1"} {
			if got := text(t, bctx, sel); got != want {
				t.Errorf("%s = %q, want %q", sel, got, want)
			}
		}
		if n := len(texts(t, bctx, "#chart-cpus polyline")); n != 2 {
			t.Errorf("the CPU chart has %d lines, want used and total", n)
		}
		shot(t, bctx, "overview")
	})

	t.Run("offers", func(t *testing.T) {
		run(t, bctx, "opening the offers", chromedp.Navigate(c.MasterURL+"/?refresh=600#/offers"))
		row := `#offers-table tr[data-offer-id="` + offer.ID.Value + `"]`
		waitFor(t, bctx, "the held offer", `!!document.querySelector('`+row+`')`)
		for cell, want := range map[string]string{".fw-name": "holder", ".agent": "localhost", ".role": "*", ".resources": "2 cpus, 1 GB mem, 100 MB disk, ports [31000-32000]"} {
			if got := text(t, bctx, row+" "+cell); got != want {
				t.Errorf("offer %s = %q, want %q", cell, got, want)
			}
		}
		if got := text(t, bctx, "#offer-count"); got != "1 outstanding offer" {
			t.Errorf("offer count = %q", got)
		}
		shot(t, bctx, "offers")
	})

	t.Run("framework", func(t *testing.T) {
		run(t, bctx, "opening holder", chromedp.Navigate(c.MasterURL+"/?refresh=1#/framework/"+holder.ID))
		waitFor(t, bctx, "holder's page", `!!document.getElementById('framework-webui')`)
		href := run(t, bctx, "reading the UI link", chromedp.Evaluate[string](`document.getElementById('framework-webui').href`))
		if href != "http://holder.example:8080/ui/" {
			t.Errorf("framework UI link = %q", href)
		}
		if got := text(t, bctx, "#framework-fields .fw-offers"); got != "1" {
			t.Errorf("holder's outstanding offers = %q, want 1", got)
		}
		// It got its offer, and holds it: the allocator finds nothing more to offer.
		waitFor(t, bctx, "holder's explanation", `!!document.querySelector('#framework-explain li[data-code="all_allocated"]')`)
		shot(t, bctx, "framework")
	})

	t.Run("explain", func(t *testing.T) {
		// The allocator's own answer, once it has run a few cycles.
		var api struct {
			Offers  int `json:"offers"`
			Reasons []struct {
				Code string `json:"code"`
			} `json:"reasons"`
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			api.Reasons = nil
			if err := json.Unmarshal([]byte(send(t, http.MethodGet, c.MasterURL+"/explain?framework_id="+starved.ID, "")), &api); err != nil {
				t.Fatal(err)
			}
			if len(api.Reasons) > 0 || time.Now().After(deadline) {
				break
			}
		}
		if api.Offers != 0 || len(api.Reasons) == 0 {
			t.Fatalf("/explain of the starved framework: %d offers, reasons %v", api.Offers, api.Reasons)
		}
		run(t, bctx, "opening explain", chromedp.Navigate(c.MasterURL+"/?refresh=600#/explain"))
		run(t, bctx, "asking about the starved framework", chromedp.SendKeys("#explain-subject", starved.ID))
		run(t, bctx, "submitting", chromedp.Click("#explain-form button"))
		waitFor(t, bctx, "the explanation", `!!document.querySelector('#explain-result li[data-code]')`)
		if got := text(t, bctx, "#explain-result .summary"); !strings.Contains(got, "got no offers") {
			t.Errorf("summary = %q", got)
		}
		codes := texts(t, bctx, "#explain-result li[data-code] .code")
		for _, r := range api.Reasons {
			found := false
			for _, c := range codes {
				found = found || strings.HasPrefix(c, "("+r.Code)
			}
			if !found {
				t.Errorf("the page lacks reason %s of the API (page: %v)", r.Code, codes)
			}
		}
		shot(t, bctx, "explain")

		run(t, bctx, "asking about a role nobody has", chromedp.Navigate(c.MasterURL+"/?refresh=600#/explain?subject=nobody"))
		waitFor(t, bctx, "the unknown answer", `!!document.querySelector('#explain-result .explain-unknown')`)
	})

	t.Run("maintenance", func(t *testing.T) {
		start := time.Now().Add(time.Hour)
		send(t, http.MethodPost, c.MasterURL+"/maintenance/schedule", `{"windows":[{"machine_ids":[{"hostname":"localhost"}],`+
			`"unavailability":{"start":{"nanoseconds":`+strconv.FormatInt(start.UnixNano(), 10)+`},"duration":{"nanoseconds":7200000000000}}}]}`)
		run(t, bctx, "opening maintenance", chromedp.Navigate(c.MasterURL+"/?refresh=600#/maintenance"))
		row := `#schedule-table tr[data-machine="localhost"]`
		waitFor(t, bctx, "the scheduled machine", `!!document.querySelector('`+row+`')`)
		if got := text(t, bctx, row+" .duration"); got != "2 h 0 min" {
			t.Errorf("duration = %q", got)
		}
		if got := text(t, bctx, row+" .state"); got != "draining" {
			t.Errorf("state = %q, want draining (scheduled, not down)", got)
		}
		iso := run(t, bctx, "reading the start", chromedp.Evaluate[string](`document.querySelector('`+row+` .start time').dateTime`))
		if got, err := time.Parse(time.RFC3339, iso); err != nil || got.Unix() != start.Unix() {
			t.Errorf("start = %q, want %s", iso, start.UTC().Format(time.RFC3339))
		}
		// The holder framework is asked about the window (an inverse offer):
		// its answer, none yet, is on the page.
		if got := text(t, bctx, row+" .answers"); got != "none yet" {
			t.Errorf("answers = %q", got)
		}
		if got := texts(t, bctx, "#drains-table tbody tr[data-agent-id]"); len(got) != 0 {
			t.Errorf("draining agents before any drain: %v", got)
		}

		// The agent drained (it runs no task, so it drains at once). The
		// operator event stream has no event for a drain (nor has Mesos's):
		// the page shows it at its next poll.
		agentID := c.Agents[0].ID()
		send(t, http.MethodPost, c.MasterURL+"/api/v1", `{"type":"DRAIN_AGENT","drain_agent":{"agent_id":{"value":"`+agentID+`"}}}`)
		run(t, bctx, "polling maintenance every second", chromedp.Navigate(c.MasterURL+"/?refresh=1#/maintenance"))
		drain := `#drains-table tr[data-agent-id="` + agentID + `"] .drain`
		waitFor(t, bctx, "the drained agent", `/^drain(ing|ed)$/.test((document.querySelector('`+drain+`') || {}).textContent)`)
		var st struct {
			Slaves []struct {
				DrainInfo struct {
					State string `json:"state"`
				} `json:"drain_info"`
			} `json:"slaves"`
		}
		if err := json.Unmarshal([]byte(send(t, http.MethodGet, c.MasterURL+"/master/slaves", "")), &st); err != nil || len(st.Slaves) != 1 {
			t.Fatalf("/master/slaves: %v %+v", err, st)
		}
		waitFor(t, bctx, "the page's drain state to be the master's", `document.querySelector('`+drain+`').textContent === '`+
			strings.ToLower(st.Slaves[0].DrainInfo.State)+`' || document.querySelector('`+drain+`').textContent === 'drained'`)
		shot(t, bctx, "maintenance")
	})
}
