package master_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
)

func TestMetricsEndpoints(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Agents: 2, AgentResources: "cpus:3;mem:1000;disk:10"})
	resp, err := http.Get(c.MasterURL + "/metrics/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	var snap map[string]float64
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for name, want := range map[string]float64{
		"master/cpus_total": 6, "master/mem_total": 2000, "master/slaves_active": 2,
		"master/tasks_running": 0, "master/elected": 1, "master/slave_registrations": 2,
	} {
		if got, ok := snap[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	resp, err = http.Get(c.MasterURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "agora_master_cpus_total 6") || !strings.Contains(string(b), "go_goroutines") {
		t.Fatalf("Prometheus exposition lacks agora_master_cpus_total 6:\n%.2000s", b)
	}
}

// busyCluster is a cluster with a framework in role "metrics" (which has
// a quota) running a task, so that per-framework, per-role, quota and
// timer metrics all have values. It returns the master's and the agent's
// base URLs.
func busyCluster(t *testing.T) (masterURL, agentURL string) {
	t.Helper()
	c := clustertest.Start(t, clustertest.Options{AgentResources: "cpus:2;mem:1024;disk:100"})
	call := `{"type":"UPDATE_QUOTA","update_quota":{"quota_configs":[{"role":"metrics","guarantees":{"cpus":{"value":1}}}]}}`
	if code, body := operator(t, c.MasterURL, call); code != 200 {
		t.Fatalf("UPDATE_QUOTA: %d %s", code, body)
	}
	s := clustertest.SubscribeTo(t, c.MasterURL, `{"user":"root","name":"metrics fw","role":"metrics"}`)
	offer := s.Offer()
	task := cmdTask("sleeper", offer.AgentID, "cpus:0.5;mem:32")
	task.Command.Value = strPtr("sleep 600")
	s.Launch(offer, task)
	s.Until("sleeper", mesos.TASK_RUNNING)
	st, err := c.State()
	if err != nil {
		t.Fatal(err)
	}
	return c.MasterURL, "http://" + st.Slaves[0].Endpoint()
}

func getSnapshot(t *testing.T, url string) map[string]float64 {
	t.Helper()
	code, body := httpDo(t, http.MethodGet, url+"/metrics/snapshot", "")
	var snap map[string]float64
	if err := json.Unmarshal([]byte(body), &snap); code != 200 || err != nil {
		t.Fatalf("GET %s/metrics/snapshot: %d %v %.300s", url, code, err, body)
	}
	return snap
}

// parseProm fetches url/metrics and parses it with Prometheus's own
// text parser.
func parseProm(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s/metrics does not parse as Prometheus text: %v", url, err)
	}
	return fams
}

// value is the gauge value of the family's metric with labels, failing
// the test if there is none.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Errorf("no metric family %s", name)
		return -1
	}
metrics:
	for _, m := range f.GetMetric() {
		for k, v := range labels {
			found := false
			for _, lp := range m.GetLabel() {
				found = found || (lp.GetName() == k && lp.GetValue() == v)
			}
			if !found {
				continue metrics
			}
		}
		return m.GetGauge().GetValue()
	}
	t.Errorf("no %s%v", name, labels)
	return -1
}

// The master's and the agent's /metrics parse with Prometheus's text
// parser and carry the snapshot's values, per-framework and per-role
// gauges with labels, and the allocation and launch histograms.
func TestMetricsPrometheusParses(t *testing.T) {
	masterURL, agentURL := busyCluster(t)
	fams := parseProm(t, masterURL)
	for name, want := range map[string]float64{"agora_master_cpus_total": 2, "agora_master_tasks_running": 1, "agora_master_cpus_used": 0.5} {
		if got := value(t, fams, name, nil); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	fw := map[string]string{"framework_name": "metrics fw"}
	if got := value(t, fams, "agora_master_framework_subscribed", fw); got != 1 {
		t.Errorf("agora_master_framework_subscribed = %v, want 1", got)
	}
	if got := value(t, fams, "agora_master_framework_tasks_active", map[string]string{"framework_name": "metrics fw", "state": "task_running"}); got != 1 {
		t.Errorf("agora_master_framework_tasks_active{state=task_running} = %v, want 1", got)
	}
	if got := value(t, fams, "agora_allocator_quota_guarantee", map[string]string{"role": "metrics", "resource": "cpus"}); got != 1 {
		t.Errorf("agora_allocator_quota_guarantee{role=metrics,resource=cpus} = %v, want 1", got)
	}
	if got := value(t, fams, "agora_allocator_role_dominant_share", map[string]string{"role": "metrics"}); got <= 0 {
		t.Errorf("agora_allocator_role_dominant_share{role=metrics} = %v, want > 0", got)
	}
	for _, h := range []string{"agora_allocator_allocation_run_seconds", "agora_master_task_launch_to_running_seconds"} {
		f := fams[h]
		if f == nil || f.GetType() != dto.MetricType_HISTOGRAM || len(f.GetMetric()) != 1 || f.GetMetric()[0].GetHistogram().GetSampleCount() == 0 {
			t.Errorf("%s: want a histogram with samples, got %v", h, f)
		}
	}
	if fams["go_goroutines"] == nil {
		t.Error("the master's /metrics lacks the Go runtime's metrics")
	}

	afams := parseProm(t, agentURL)
	for name, want := range map[string]float64{"agora_slave_tasks_running": 1, "agora_slave_cpus_total": 2, "agora_slave_registered": 1} {
		if got := value(t, afams, name, nil); got != want {
			t.Errorf("agent %s = %v, want %v", name, got, want)
		}
	}
	if afams["process_open_fds"] == nil {
		t.Error("the agent's /metrics lacks the process's metrics")
	}

	// Every agora metric the example Grafana dashboard queries exists.
	b, err := os.ReadFile("../../examples/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil || len(dash.Panels) == 0 {
		t.Fatalf("examples/grafana-dashboard.json: %v, %d panels", err, len(dash.Panels))
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, name := range regexp.MustCompile(`agora_[a-z0-9_]+`).FindAllString(tg.Expr, -1) {
				fam := strings.TrimSuffix(name, "_bucket")
				if fams[fam] == nil && afams[fam] == nil {
					t.Errorf("dashboard panel %q queries %s, which neither /metrics has", p.Title, name)
				}
			}
		}
	}
}

// docRow is a row of docs/metrics.md's tables: | `name` | yes | or
// | `name` | no: why |.
var docRow = regexp.MustCompile("^\\| `([^`]+)` \\| (yes|no: .+) \\|$")

// ownMetric is an entry of docs/metrics.md's list of agora's own
// metrics: - `name`, perhaps followed by a note.
var ownMetric = regexp.MustCompile("^- `([^`]+)`")

// Every Mesos metric docs/metrics.md says agora has is in the master's
// (Master table) or an agent's (Agent table) /metrics/snapshot, and so is
// every metric of its own it lists, so the document cannot drift from the
// code; names with <...> match any value there.
func TestMetricsDocMatchesSnapshot(t *testing.T) {
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	masterURL, agentURL := busyCluster(t)
	snaps := map[string]map[string]float64{"Master": getSnapshot(t, masterURL), "Agent": getSnapshot(t, agentURL)}
	section, rows, own := "", 0, 0
	for _, line := range strings.Split(string(doc), "\n") {
		if h, ok := strings.CutPrefix(line, "### "); ok {
			section = h
			continue
		}
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section = h
			continue
		}
		if section == "agora's own metrics" {
			if m := ownMetric.FindStringSubmatch(line); m != nil {
				own++
				_, inMaster := snaps["Master"][m[1]]
				_, inAgent := snaps["Agent"][m[1]]
				if !inMaster && !inAgent {
					t.Errorf("docs/metrics.md lists %q among agora's own metrics, but neither the master's nor an agent's /metrics/snapshot has it", m[1])
				}
			}
			continue
		}
		m := docRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		rows++
		snap := snaps[section]
		if snap == nil {
			t.Fatalf("docs/metrics.md: row %q is under %q, not a Master or Agent table", line, section)
		}
		if m[2] != "yes" {
			continue
		}
		if !strings.Contains(m[1], "<") {
			if _, ok := snap[m[1]]; !ok {
				t.Errorf("docs/metrics.md says %s has %s, but its /metrics/snapshot does not", section, m[1])
			}
			continue
		}
		pattern := regexp.MustCompile("^" + regexp.MustCompile(`<[^>]+>`).ReplaceAllString(regexp.QuoteMeta(m[1]), "[^/]+") + "$")
		found := false
		for name := range snap {
			found = found || pattern.MatchString(name)
		}
		if !found {
			t.Errorf("docs/metrics.md says %s has %s, but nothing in its /metrics/snapshot matches", section, m[1])
		}
	}
	if rows < 200 || own < 20 {
		t.Errorf("docs/metrics.md: %d metric rows and %d of agora's own metrics read; the format changed?", rows, own)
	}
}

// Per-principal rate-limit counters of principals whose names flatten to
// one Prometheus name ("a-b", "a_b") are each exported, labelled by
// principal, and the scrape does not fail.
func TestMetricsRatePrincipalsDistinct(t *testing.T) {
	limits, err := auth.ParseRateLimits([]byte(`{"limits": [{"principal": "a-b", "qps": 10}, {"principal": "a_b", "qps": 10}]}`))
	if err != nil {
		t.Fatal(err)
	}
	c := clustertest.Start(t, clustertest.Options{Master: func(c *master.Config) { c.RateLimits = limits }})
	resp, err := http.Get(c.MasterURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
	}
	fams := parseProm(t, c.MasterURL)
	for _, p := range []string{"a-b", "a_b"} {
		for _, name := range []string{"agora_framework_messages_received", "agora_framework_messages_processed"} {
			if got := value(t, fams, name, map[string]string{"principal": p}); got != 0 {
				t.Errorf("%s{principal=%q} = %v, want 0", name, p, got)
			}
		}
	}
}
