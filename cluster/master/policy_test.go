package master_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/registry"
)

func httpDo(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", api.MediaJSON)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// operator sends a JSON operator API call and returns status and body.
func operator(t *testing.T, url, call string) (int, string) {
	t.Helper()
	return httpDo(t, http.MethodPost, url+"/api/v1", call)
}

// TestPolicySurvivesMasterRestart sets weights and quota, restarts the
// master on the same registry file, and finds them again.
func TestPolicySurvivesMasterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	run := func(f func(url string)) {
		reg, err := registry.OpenBolt(path)
		if err != nil {
			t.Fatal(err)
		}
		defer reg.Close()
		m, err := master.New(master.Config{Hostname: "localhost", Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go m.Run(ctx)
		srv := httptest.NewServer(m.Handler(nil))
		defer srv.Close()
		f(srv.URL)
	}
	run(func(url string) {
		if code, body := httpDo(t, http.MethodPut, url+"/weights", `[{"role":"eng","weight":2.5}]`); code != 200 {
			t.Fatalf("PUT /weights: %d %s", code, body)
		}
		if code, body := httpDo(t, http.MethodPut, url+"/weights", `[{"role":"eng","weight":-1}]`); code != 400 || !strings.Contains(body, "positive") {
			t.Fatalf("negative weight: %d %s", code, body)
		}
		call := `{"type":"UPDATE_QUOTA","update_quota":{"quota_configs":[{"role":"analytics","guarantees":{"cpus":{"value":2}},"limits":{"cpus":{"value":3},"mem":{"value":1024}}}]}}`
		if code, body := operator(t, url, call); code != 200 {
			t.Fatalf("UPDATE_QUOTA: %d %s", code, body)
		}
		bad := `{"type":"UPDATE_QUOTA","update_quota":{"quota_configs":[{"role":"x","guarantees":{"cpus":{"value":5}},"limits":{"cpus":{"value":3}}}]}}`
		if code, body := operator(t, url, bad); code != 400 || !strings.Contains(body, "exceeds its limit") {
			t.Fatalf("guarantee above limit: %d %s", code, body)
		}
	})
	run(func(url string) {
		_, body := httpDo(t, http.MethodGet, url+"/weights", "")
		if !strings.Contains(body, `"role":"eng"`) || !strings.Contains(body, `"weight":2.5`) {
			t.Fatalf("weights after restart: %s", body)
		}
		_, body = httpDo(t, http.MethodGet, url+"/quota", "")
		var st struct {
			Configs []struct {
				Role   string                             `json:"role"`
				Limits map[string]struct{ Value float64 } `json:"limits"`
			} `json:"configs"`
		}
		if err := json.Unmarshal([]byte(body), &st); err != nil || len(st.Configs) != 1 || st.Configs[0].Role != "analytics" || st.Configs[0].Limits["cpus"].Value != 3 {
			t.Fatalf("quota after restart: %s (%v)", body, err)
		}
		if code, body := httpDo(t, http.MethodDelete, url+"/quota/analytics", ""); code != 200 {
			t.Fatalf("DELETE /quota/analytics: %d %s", code, body)
		}
		if code, _ := httpDo(t, http.MethodDelete, url+"/quota/analytics", ""); code != 400 {
			t.Fatalf("deleting a missing quota: %d", code)
		}
	})
}

// TestQuotaLimitAndExplain caps a role's cpus and asks why its framework
// gets no more.
func TestQuotaLimitAndExplain(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{AgentResources: "cpus:4;mem:4096;disk:100"})
	call := `{"type":"UPDATE_QUOTA","update_quota":{"quota_configs":[{"role":"capped","limits":{"cpus":{"value":1},"mem":{"value":64}}}]}}`
	if code, body := operator(t, c.MasterURL, call); code != 200 {
		t.Fatalf("UPDATE_QUOTA: %d %s", code, body)
	}
	s := clustertest.SubscribeTo(t, c.MasterURL, `{"user":"root","name":"capped","role":"capped"}`)
	offer := s.Next(scheduler.Event_OFFERS).Offers.Offers[0]
	if cpus := api.ScalarSum(mesos.Resources(offer.Resources), "cpus"); cpus > 1 {
		t.Fatalf("offer of %v cpus exceeds the role's limit of 1", cpus)
	}
	// Use all of it, so the role is at its limit; nothing more is offered.
	hold := sleepTask("hold", offer.AgentID)
	hold.Resources, _ = api.ParseResources("cpus:1;mem:64")
	acc := launch([]mesos.OfferID{offer.ID}, hold)
	zero := 0.0
	acc.Accept.Filters = &mesos.Filters{RefuseSeconds: &zero}
	s.Call(acc)
	waitExplain(t, c.MasterURL, s.ID, `"code":"quota_limit"`)
	s.Call(&scheduler.Call{Type: scheduler.Call_SUPPRESS, Suppress: &scheduler.Call_Suppress{}})
	waitExplain(t, c.MasterURL, s.ID, `"code":"suppressed"`)
	if code, _ := httpDo(t, http.MethodGet, c.MasterURL+"/explain?framework_id=nobody", ""); code != 404 {
		t.Fatalf("explaining an unknown subject: %d", code)
	}
}

// TestMaintenanceAndDrain walks an agent through a maintenance window
// (offers carry the unavailability, running frameworks get inverse
// offers), DRAIN_AGENT (tasks killed, no offers) and REACTIVATE_AGENT.
func TestMaintenanceAndDrain(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	s := clustertest.SubscribeTo(t, c.MasterURL, `{"user":"root","name":"maint","capabilities":[{"type":"PARTITION_AWARE"}]}`)
	agentID := runTask(t, s, "long")

	start := time.Now().Add(time.Hour).UnixNano()
	sched := `{"windows":[{"machine_ids":[{"hostname":"localhost"}],"unavailability":{"start":{"nanoseconds":` + itoa(start) + `}}}]}`
	if code, body := httpDo(t, http.MethodPost, c.MasterURL+"/maintenance/schedule", sched); code != 200 {
		t.Fatalf("POST /maintenance/schedule: %d %s", code, body)
	}
	io := s.Next(scheduler.Event_INVERSE_OFFERS).InverseOffers.InverseOffers[0]
	if io.AgentID.Value != agentID.Value || io.Unavailability.Start.Nanoseconds != start {
		t.Fatalf("inverse offer %+v", io)
	}
	s.Call(&scheduler.Call{Type: scheduler.Call_ACCEPT_INVERSE_OFFERS, AcceptInverseOffers: &scheduler.Call_AcceptInverseOffers{InverseOfferIDs: []mesos.OfferID{io.OfferID}}})
	s.Call(&scheduler.Call{Type: scheduler.Call_REVIVE, Revive: &scheduler.Call_Revive{}})
	if o := s.Next(scheduler.Event_OFFERS).Offers.Offers[0]; o.Unavailability == nil || o.Unavailability.Start.Nanoseconds != start {
		t.Fatalf("offer from a draining machine lacks its unavailability: %+v", o.Unavailability)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := httpDo(t, http.MethodGet, c.MasterURL+"/maintenance/status", "")
		if strings.Contains(body, `"ACCEPT"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("maintenance status lacks the accepted inverse offer: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Drain the agent: its task is killed with REASON_AGENT_DRAINING.
	if code, body := operator(t, c.MasterURL, `{"type":"DRAIN_AGENT","drain_agent":{"agent_id":{"value":"`+agentID.Value+`"}}}`); code != 200 {
		t.Fatalf("DRAIN_AGENT: %d %s", code, body)
	}
	for {
		st := s.Update("long")
		if st.GetState() == mesos.TASK_KILLED {
			if st.GetReason() != mesos.REASON_AGENT_DRAINING {
				t.Fatalf("drained task: reason %v", st.GetReason())
			}
			break
		}
	}
	c.WaitFor("agent drained", func(st *clustertest.State) bool { return len(st.Slaves) == 1 })
	_, body := httpDo(t, http.MethodGet, c.MasterURL+"/master/state", "")
	if !strings.Contains(body, `"DRAINED"`) {
		t.Fatalf("state lacks drain_info DRAINED: %.600s", body)
	}
	// A drained agent gets no offers until it is reactivated.
	s.Call(&scheduler.Call{Type: scheduler.Call_REVIVE, Revive: &scheduler.Call_Revive{}})
	waitExplain(t, c.MasterURL, s.ID, "agent_deactivated")
	if code, body := operator(t, c.MasterURL, `{"type":"REACTIVATE_AGENT","reactivate_agent":{"agent_id":{"value":"`+agentID.Value+`"}}}`); code != 200 {
		t.Fatalf("REACTIVATE_AGENT: %d %s", code, body)
	}
	s.Next(scheduler.Event_OFFERS)

	// Down: the machine's agent is removed and may not register while down.
	if code, body := httpDo(t, http.MethodPost, c.MasterURL+"/machine/down", `[{"hostname":"localhost"}]`); code != 200 {
		t.Fatalf("/machine/down: %d %s", code, body)
	}
	c.WaitFor("agent removed", func(st *clustertest.State) bool { return len(st.Slaves) == 0 })
	if code, _ := httpDo(t, http.MethodPost, c.MasterURL+"/machine/down", `[{"hostname":"elsewhere"}]`); code != 400 {
		t.Fatalf("taking down an unscheduled machine: %d", code)
	}
	if code, body := httpDo(t, http.MethodPost, c.MasterURL+"/machine/up", `[{"hostname":"localhost"}]`); code != 200 {
		t.Fatalf("/machine/up: %d %s", code, body)
	}
	c.WaitFor("agent back after /machine/up", func(st *clustertest.State) bool { return len(st.Slaves) == 1 })
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestOperatorReservations reserves and unreserves through the operator
// API and sees the agent's reserved resources change in /master/state.
func TestOperatorReservations(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{AgentResources: "cpus:4;mem:1024;disk:100"})
	st, err := c.State() // the master's view: the agent may not know its ID yet
	if err != nil || len(st.Slaves) != 1 {
		t.Fatalf("state: %v", err)
	}
	id := st.Slaves[0].ID
	res := `[{"name":"cpus","type":"SCALAR","scalar":{"value":1},"reservations":[{"type":"DYNAMIC","role":"eng","principal":"ops"}]}]`
	if code, body := operator(t, c.MasterURL, `{"type":"RESERVE_RESOURCES","reserve_resources":{"agent_id":{"value":"`+id+`"},"resources":`+res+`}}`); code != 200 {
		t.Fatalf("RESERVE_RESOURCES: %d %s", code, body)
	}
	reserved := func() string {
		_, body := httpDo(t, http.MethodGet, c.MasterURL+"/master/slaves", "")
		var st struct {
			Slaves []struct {
				Reserved map[string]map[string]any `json:"reserved_resources"`
			} `json:"slaves"`
		}
		if err := json.Unmarshal([]byte(body), &st); err != nil || len(st.Slaves) != 1 {
			t.Fatalf("/master/slaves: %v %s", err, body)
		}
		b, _ := json.Marshal(st.Slaves[0].Reserved)
		return string(b)
	}
	if got := reserved(); !strings.Contains(got, `"eng":{`) || !strings.Contains(got, `"cpus":1`) {
		t.Fatalf("reserved resources after RESERVE: %s", got)
	}
	if code, body := operator(t, c.MasterURL, `{"type":"RESERVE_RESOURCES","reserve_resources":{"agent_id":{"value":"nope"},"resources":`+res+`}}`); code != 400 || !strings.Contains(body, "nope") {
		t.Fatalf("reserving on an unknown agent: %d %s", code, body)
	}
	if code, body := operator(t, c.MasterURL, `{"type":"UNRESERVE_RESOURCES","unreserve_resources":{"agent_id":{"value":"`+id+`"},"resources":`+res+`}}`); code != 200 {
		t.Fatalf("UNRESERVE_RESOURCES: %d %s", code, body)
	}
	if got := reserved(); strings.Contains(got, "eng") {
		t.Fatalf("reserved resources after UNRESERVE: %s", got)
	}
}

// waitExplain polls /explain for a framework until it says want (the
// allocator's next cycles bring it; how soon depends on the machine's load).
func waitExplain(t *testing.T, url, frameworkID, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := httpDo(t, http.MethodGet, url+"/explain?framework_id="+frameworkID, "")
		if code == 200 && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("explain never said %s in 60 s: %d %s", want, code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
