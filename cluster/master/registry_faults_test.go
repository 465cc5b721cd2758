package master_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/registry"
)

// agentRecord is the registry's record of the cluster's only agent.
func agentRecord(t *testing.T, reg registry.Registry) registry.AgentRecord {
	t.Helper()
	recs, err := reg.Agents()
	if err != nil || len(recs) != 1 {
		t.Fatalf("registry agents: %v, %v", recs, err)
	}
	return recs[0]
}

// waitRefused waits until the registry has refused n more writes than
// before: the master has tried the change and been told no.
func waitRefused(t *testing.T, reg *registry.Faulty, before int64, n int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for reg.Refused() < before+n {
		if time.Now().After(deadline) {
			t.Fatalf("the master made no further registry write in 60 s (%d refused)", reg.Refused())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An agent's move to unreachable, and back, takes effect only once the
// registry has it: while writes fail, the master keeps the agent as it
// was (and keeps trying); once they succeed, the change happens.
func TestAgentTransitionsWaitForTheRegistry(t *testing.T) {
	reg := registry.NewFaulty(nil)
	c := clustertest.Start(t, clustertest.Options{
		Registry: reg,
		Master: func(cfg *master.Config) {
			cfg.AgentPingTimeout = 50 * time.Millisecond
			cfg.MaxAgentPingTimeouts = 3
		},
		Agent: func(_ int, cfg *agent.Config) { cfg.KeepTasksOnStop = true },
	})

	reg.FailWrites(true)
	before := reg.Refused()
	c.Agents[0].Stop()
	waitRefused(t, reg, before, 3) // three ping rounds found it missing
	s, err := c.State()
	if err != nil {
		t.Fatal(err)
	}
	if s.UnreachableSlaves != 0 || len(s.Slaves) != 1 {
		t.Fatalf("with the registry refusing: %d unreachable, %d agents; want the agent kept as it was", s.UnreachableSlaves, len(s.Slaves))
	}
	if rec := agentRecord(t, reg); rec.State != registry.AgentAdmitted {
		t.Fatalf("registry record %s while its writes fail", rec.State)
	}
	reg.FailWrites(false)
	c.WaitFor("the agent unreachable once the registry has it", func(s *clustertest.State) bool { return s.UnreachableSlaves == 1 })
	if rec := agentRecord(t, reg); rec.State != registry.AgentUnreachable {
		t.Fatalf("registry record %s, want unreachable", rec.State)
	}

	// Back again: refused (the agent retries) while the registry fails.
	reg.FailWrites(true)
	before = reg.Refused()
	c.StartAgent(0, "")
	waitRefused(t, reg, before, 2)
	if s, err := c.State(); err != nil || s.UnreachableSlaves != 1 {
		t.Fatalf("re-registration with the registry refusing: %+v, %v; want the agent still unreachable", s, err)
	}
	reg.FailWrites(false)
	c.WaitFor("the agent back once the registry has it", func(s *clustertest.State) bool {
		return s.UnreachableSlaves == 0 && len(s.Slaves) == 1 && s.Slaves[0].Active
	})
	if rec := agentRecord(t, reg); rec.State != registry.AgentAdmitted {
		t.Fatalf("registry record %s, want admitted", rec.State)
	}
}

// UPDATE_QUOTA with several configs is all or nothing: a bad config after
// a good one, or a registry that refuses the write, changes no quota;
// once the registry takes it, every config applies.
func TestUpdateQuotaIsAllOrNothing(t *testing.T) {
	reg := registry.NewFaulty(nil)
	c := clustertest.Start(t, clustertest.Options{Registry: reg})
	quotas := func() string {
		_, body := httpDo(t, http.MethodGet, c.MasterURL+"/quota", "")
		return body
	}
	two := `{"type":"UPDATE_QUOTA","update_quota":{"quota_configs":[` +
		`{"role":"alpha","guarantees":{"cpus":{"value":1}}},` +
		`{"role":"beta","limits":{"cpus":{"value":2}}}]}}`
	badSecond := `{"type":"UPDATE_QUOTA","update_quota":{"quota_configs":[` +
		`{"role":"alpha","guarantees":{"cpus":{"value":1}}},` +
		`{"role":"beta","guarantees":{"cpus":{"value":5}},"limits":{"cpus":{"value":3}}}]}}`
	empty := quotas()
	if code, body := operator(t, c.MasterURL, badSecond); code != 400 || !strings.Contains(body, "role beta") {
		t.Fatalf("a bad second config: %d %s", code, body)
	}
	if got := quotas(); got != empty {
		t.Fatalf("a refused UPDATE_QUOTA changed the quotas: %s", got)
	}
	reg.FailWrites(true)
	if code, body := operator(t, c.MasterURL, two); code != 503 {
		t.Fatalf("UPDATE_QUOTA with the registry refusing: %d %s, want 503", code, body)
	}
	if got := quotas(); got != empty {
		t.Fatalf("an UPDATE_QUOTA the registry refused changed the quotas: %s", got)
	}
	if p, err := reg.Policy(); err != nil || len(p.Quotas) != 0 {
		t.Fatalf("registry policy %+v, %v", p, err)
	}
	reg.FailWrites(false)
	if code, body := operator(t, c.MasterURL, two); code != 200 {
		t.Fatalf("UPDATE_QUOTA: %d %s", code, body)
	}
	if got := quotas(); !strings.Contains(got, `"alpha"`) || !strings.Contains(got, `"beta"`) {
		t.Fatalf("quotas after UPDATE_QUOTA: %s", got)
	}
	if p, err := reg.Policy(); err != nil || len(p.Quotas) != 2 {
		t.Fatalf("registry policy %+v, %v; want both quotas", p, err)
	}
}

// A reservation the registry cannot record is refused and undone: the
// agent's resources are as before, and the next try, with a working
// registry, reserves them.
func TestReservationWaitsForTheRegistry(t *testing.T) {
	reg := registry.NewFaulty(nil)
	c := clustertest.Start(t, clustertest.Options{Registry: reg, AgentResources: "cpus:4;mem:1024;disk:100"})
	st, err := c.State()
	if err != nil || len(st.Slaves) != 1 {
		t.Fatalf("state: %v", err)
	}
	id := st.Slaves[0].ID
	slaves := func() string {
		_, body := httpDo(t, http.MethodGet, c.MasterURL+"/master/slaves", "")
		return body
	}
	before := slaves()
	res := `[{"name":"cpus","type":"SCALAR","scalar":{"value":1},"reservations":[{"type":"DYNAMIC","role":"eng","principal":"ops"}]}]`
	call := `{"type":"RESERVE_RESOURCES","reserve_resources":{"agent_id":{"value":"` + id + `"},"resources":` + res + `}}`
	reg.FailWrites(true)
	if code, body := operator(t, c.MasterURL, call); code != 503 || !strings.Contains(body, "registry") {
		t.Fatalf("RESERVE_RESOURCES with the registry refusing: %d %s, want 503", code, body)
	}
	if after := slaves(); after != before {
		t.Fatalf("a refused reservation changed the agent:\n%s\nwas\n%s", after, before)
	}
	if rec := agentRecord(t, reg); reservedFor(rec, "eng") {
		t.Fatalf("the registry holds the refused reservation: %v", rec.Info)
	}
	reg.FailWrites(false)
	if code, body := operator(t, c.MasterURL, call); code != 200 {
		t.Fatalf("RESERVE_RESOURCES: %d %s", code, body)
	}
	if rec := agentRecord(t, reg); !reservedFor(rec, "eng") {
		t.Fatalf("the registry lacks the reservation: %v", rec.Info)
	}
}

// reservedFor reports whether the record's agent has resources reserved
// for role.
func reservedFor(rec registry.AgentRecord, role string) bool {
	for _, r := range rec.Info.GetResources() {
		for _, rv := range r.GetReservations() {
			if rv.GetRole() == role {
				return true
			}
		}
	}
	return false
}
