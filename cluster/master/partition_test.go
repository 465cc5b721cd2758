package master_test

import (
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
)

func sleepTask(id string, agentID mesos.AgentID) mesos.TaskInfo {
	t := cmdTask(id, agentID, "cpus:0.1;mem:16")
	t.Command = &mesos.CommandInfo{Value: strPtr("sleep 100")}
	return t
}

// runTask launches a sleep task on the scheduler's next offer and waits
// until it runs.
func runTask(t *testing.T, s *clustertest.Scheduler, id string) mesos.AgentID {
	t.Helper()
	offer := s.Next(scheduler.Event_OFFERS).Offers.Offers[0]
	if code := s.Call(launch([]mesos.OfferID{offer.ID}, sleepTask(id, offer.AgentID))); code != 202 {
		t.Fatalf("ACCEPT: %d", code)
	}
	for {
		st := s.Update(id)
		if st.GetState() == mesos.TASK_RUNNING {
			return offer.AgentID
		}
		if st.GetState() != mesos.TASK_STARTING {
			t.Fatalf("task %s: %v %s", id, st.GetState(), st.GetMessage())
		}
	}
}

// TestUnreachableAgent stops an agent without telling anyone (its tasks
// keep running, it just stops answering pings), then brings it back.
func TestUnreachableAgent(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{
		Master: func(cfg *master.Config) {
			cfg.AgentPingTimeout = 50 * time.Millisecond
			cfg.MaxAgentPingTimeouts = 3
		},
		Agent: func(_ int, cfg *agent.Config) { cfg.KeepTasksOnStop = true },
	})
	// Both checkpoint, so their tasks survive the agent's restart below
	// (which stands in for a network partition).
	pa := clustertest.SubscribeTo(t, c.MasterURL, `{"user":"root","name":"pa","checkpoint":true,"capabilities":[{"type":"PARTITION_AWARE"}]}`)
	legacy := clustertest.SubscribeTo(t, c.MasterURL, `{"user":"root","name":"legacy","checkpoint":true}`)
	runTask(t, pa, "pa-task")
	runTask(t, legacy, "legacy-task")

	c.Agents[0].Stop()
	if st := pa.Update("pa-task"); st.GetState() != mesos.TASK_UNREACHABLE || st.GetReason() != mesos.REASON_AGENT_REMOVED {
		t.Fatalf("partition-aware framework got %v %v, want TASK_UNREACHABLE", st.GetState(), st.GetReason())
	}
	if st := legacy.Update("legacy-task"); st.GetState() != mesos.TASK_LOST {
		t.Fatalf("legacy framework got %v, want TASK_LOST", st.GetState())
	}
	c.WaitFor("agent unreachable", func(s *clustertest.State) bool { return s.UnreachableSlaves == 1 })

	// The agent comes back: the partition-aware task is running again, the
	// legacy framework's task (already reported lost) is killed.
	c.Agents[0].Config.KeepTasksOnStop = false
	c.StartAgent(0, "")
	// Updates are delivered at least once: a RUNNING the agent had not seen
	// acknowledged before it stopped may come again first.
	for {
		st := pa.Update("pa-task")
		if st.GetState() != mesos.TASK_RUNNING {
			t.Fatalf("after re-registration: %v %v, want TASK_RUNNING", st.GetState(), st.GetReason())
		}
		if st.GetReason() == mesos.REASON_AGENT_REREGISTERED {
			break
		}
	}
	if st := finalState(t, legacy, "legacy-task"); st.GetState() != mesos.TASK_KILLED {
		t.Fatalf("legacy task after re-registration: %v, want TASK_KILLED", st.GetState())
	}
}

// TestFrameworkFailover: a framework with a failover_timeout keeps its
// tasks across a re-subscription, and loses them when it stays away.
func TestFrameworkFailover(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	s := clustertest.SubscribeTo(t, c.MasterURL, `{"user":"root","name":"fo","failover_timeout":1.5}`)
	runTask(t, s, "survivor")
	id := s.ID
	s.Close()
	c.WaitFor("the master to notice the stream is gone", func(st *clustertest.State) bool {
		for _, f := range st.Frameworks {
			if f.ID == id {
				return !f.Active
			}
		}
		return false
	})

	again := clustertest.SubscribeTo(t, c.MasterURL, `{"user":"root","name":"fo","failover_timeout":1.5,"id":{"value":"`+id+`"}}`)
	if again.ID != id {
		t.Fatalf("re-subscribed as %s, want %s", again.ID, id)
	}
	again.Call(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{}})
	if st := again.Update("survivor"); st.GetState() != mesos.TASK_RUNNING || st.GetReason() != mesos.REASON_RECONCILIATION {
		t.Fatalf("after failover: %v %v, want TASK_RUNNING from reconciliation", st.GetState(), st.GetReason())
	}
	again.Close()
	s2 := c.WaitFor("framework removed after its failover timeout", func(s *clustertest.State) bool {
		return len(s.Frameworks) == 0 && len(s.CompletedFrameworks) == 1
	})
	done := s2.CompletedFrameworks[0].CompletedTasks
	if len(done) != 1 || done[0].State != "TASK_KILLED" {
		t.Fatalf("completed tasks of the removed framework: %+v", done)
	}
	// A removed framework cannot come back under its old ID.
	resp, body := post(t, c.MasterURL, "application/json", []byte(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"fo","id":{"value":"`+id+`"}}}}`), nil)
	if resp.StatusCode != 403 {
		t.Fatalf("re-subscribing a removed framework: %d %s", resp.StatusCode, body)
	}
}
