package master_test

import (
	"fmt"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/registry"
)

// Agents the registry admitted that do not re-register within
// --agent_reregister_timeout of a (re)started master are marked
// unreachable, no faster than --agent_removal_rate_limit (spaced evenly,
// as Mesos does); an agent that registers is left alone.
func TestRecoveredAgentsThatDoNotComeBackAreUnreachable(t *testing.T) {
	reg := registry.NewMemory()
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("old-S%d", i)
		if err := reg.PutAgent(registry.AgentRecord{ID: id, State: registry.AgentAdmitted, Info: &mesos.AgentInfo{Hostname: id}, Since: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	c := clustertest.Start(t, clustertest.Options{Registry: reg, Master: func(mc *master.Config) {
		mc.AgentReregisterTimeout = 300 * time.Millisecond
		mc.AgentRemovalRate = master.RemovalRate{N: 2, Per: time.Hour}
	}})
	deadline := time.Now().Add(time.Minute)
	for metric(t, c.MasterURL, "master/recovery_agent_removals") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the recovered agents were not marked unreachable after the re-registration timeout")
		}
		time.Sleep(50 * time.Millisecond)
	}
	recs, err := reg.Agents()
	if err != nil {
		t.Fatal(err)
	}
	states := map[registry.AgentState]int{}
	for _, r := range recs {
		if r.ID == c.Agents[0].Agent.ID() {
			if r.State != registry.AgentAdmitted {
				t.Fatalf("the agent that registered is %s", r.State)
			}
			continue
		}
		states[r.State]++
	}
	if states[registry.AgentUnreachable] != 1 || states[registry.AgentAdmitted] != 2 {
		t.Fatalf("recovered agents: %v; want 1 unreachable and 2 still admitted (2 per hour, spaced 30 minutes apart)", states)
	}
	if _, err := master.ParseRemovalRate("1/20mins"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"x/1mins", "0/1mins", "1/", "1/abc", "5"} {
		if _, err := master.ParseRemovalRate(bad); err == nil {
			t.Errorf("ParseRemovalRate(%q) accepted", bad)
		}
	}
}

// The registry forgets unreachable and gone agents older than
// --registry_max_agent_age, and the oldest beyond
// --registry_max_agent_count; admitted agents are never collected.
func TestRegistryForgetsOldUnreachableAndGoneAgents(t *testing.T) {
	reg := registry.NewMemory()
	now := time.Now()
	put := func(id string, st registry.AgentState, age time.Duration) {
		if err := reg.PutAgent(registry.AgentRecord{ID: id, State: st, Info: &mesos.AgentInfo{Hostname: id}, Since: now.Add(-age)}); err != nil {
			t.Fatal(err)
		}
	}
	put("ancient-gone", registry.AgentGone, 30*24*time.Hour)
	put("ancient-unreachable", registry.AgentUnreachable, 20*24*time.Hour)
	put("old-unreachable", registry.AgentUnreachable, 3*time.Hour)
	put("newer-unreachable", registry.AgentUnreachable, 2*time.Hour)
	put("new-gone", registry.AgentGone, time.Hour)
	put("ancient-admitted", registry.AgentAdmitted, 30*24*time.Hour)
	c := clustertest.Start(t, clustertest.Options{Registry: reg, Master: func(mc *master.Config) {
		mc.RegistryMaxAgentAge = 14 * 24 * time.Hour
		mc.RegistryMaxAgentCount = 2
		mc.RegistryGCInterval = 100 * time.Millisecond
	}})
	deadline := time.Now().Add(time.Minute)
	for metric(t, c.MasterURL, "master/registry_agents_collected") < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the registry kept agents past its bounds")
		}
		time.Sleep(50 * time.Millisecond)
	}
	recs, err := reg.Agents()
	if err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	for _, r := range recs {
		left[r.ID] = true
	}
	for _, id := range []string{"newer-unreachable", "new-gone", "ancient-admitted", c.Agents[0].Agent.ID()} {
		if !left[id] {
			t.Errorf("%s was collected; the registry now holds %v", id, left)
		}
	}
	for _, id := range []string{"ancient-gone", "ancient-unreachable", "old-unreachable"} {
		if left[id] {
			t.Errorf("%s is still in the registry (past the age or the count)", id)
		}
	}
}
