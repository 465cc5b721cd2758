package master_test

import (
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
