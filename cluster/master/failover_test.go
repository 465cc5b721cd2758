package master_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	agentpb "github.com/mesos/mesos-go/api/v1/lib/agent"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/clustertest"
)

// agentTasks is an agent's GET_TASKS: terminated_tasks are ended and not
// yet acknowledged, completed_tasks forgotten.
func agentTasks(t *testing.T, ra *clustertest.RunningAgent) *agentpb.Response_GetTasks {
	t.Helper()
	resp, err := http.Post("http://"+ra.Addr()+"/api/v1", "application/json", strings.NewReader(`{"type":"GET_TASKS"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r agentpb.Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.GetTasks == nil {
		t.Fatalf("agent GET_TASKS: %d %v", resp.StatusCode, err)
	}
	return r.GetTasks
}

// waitAgentTask polls the agent until task id is in the list picked.
func waitAgentTask(t *testing.T, ra *clustertest.RunningAgent, what, id string, pick func(*agentpb.Response_GetTasks) []mesos.Task) mesos.Task {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, task := range pick(agentTasks(t, ra)) {
			if task.TaskID.Value == id {
				return task
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the agent: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// masterTask finds task id of framework fid in the master's state, among
// its tasks or completed tasks.
func masterTask(s *clustertest.State, fid, id string, completed bool) (string, bool) {
	for _, f := range s.Frameworks {
		if f.ID != fid {
			continue
		}
		list := f.Tasks
		if completed {
			list = f.CompletedTasks
		}
		for _, task := range list {
			if task.ID == id {
				return task.State, true
			}
		}
	}
	return "", false
}

// TestTaskEndingWhileMasterIsDown: a task that finishes while no master is
// up reaches its framework once the master is back and the framework has
// re-subscribed — with the agent's own update, exactly once — and, once
// acknowledged, is completed on the master and forgotten by the agent.
func TestTaskEndingWhileMasterIsDown(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{
		// The agent would send the update again on its own only after
		// this long: the framework must get it without that.
		Agent: func(_ int, cfg *agent.Config) { cfg.StatusUpdateRetry = 10 * time.Minute },
	})
	// Not under /tmp: a task may get its own.
	dir, err := os.MkdirTemp("/var/tmp", "agora-failover-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	marker := filepath.Join(dir, "go")

	const fi = `{"user":"root","name":"failover","checkpoint":true,"failover_timeout":3600,"capabilities":[{"type":"PARTITION_AWARE"}]`
	s := clustertest.SubscribeTo(t, c.MasterURL, fi+`}`)
	offer := s.Offer()
	task := cmdTask("ends-unseen", offer.AgentID, "cpus:0.1;mem:16")
	task.Command = &mesos.CommandInfo{Value: strPtr("while [ ! -e " + marker + " ]; do sleep 0.05; done")}
	s.Launch(offer, task)
	s.Until("ends-unseen", mesos.TASK_RUNNING)

	c.StopMaster()
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ra := c.Agents[0]
	waitAgentTask(t, ra, "the task ends while the master is down", "ends-unseen",
		func(r *agentpb.Response_GetTasks) []mesos.Task { return r.TerminatedTasks })

	c.StartMaster()
	// The agent re-registers with the ended task, which the new master
	// keeps until the framework has acknowledged how it ended.
	c.WaitFor("the re-registered agent's ended task", func(st *clustertest.State) bool {
		state, ok := masterTask(st, s.ID, "ends-unseen", false)
		return ok && state == "TASK_FINISHED"
	})

	again := clustertest.SubscribeTo(t, c.MasterURL, fi+`,"id":{"value":"`+s.ID+`"}}`)
	for {
		st := again.Update("ends-unseen") // acknowledged
		if st.GetSource() == mesos.SOURCE_MASTER || len(st.UUID) == 0 {
			t.Fatalf("after failover: %v from the master (%v %q), want the agent's update", st.GetState(), st.GetReason(), st.GetMessage())
		}
		if st.GetState() == mesos.TASK_FINISHED {
			break
		}
		if st.GetState() != mesos.TASK_RUNNING {
			t.Fatalf("after failover: %v, want TASK_FINISHED (or first a RUNNING not acknowledged before)", st.GetState())
		}
	}

	// Acknowledged: the agent forgets the task, the master completes it.
	waitAgentTask(t, ra, "the task is forgotten once acknowledged", "ends-unseen",
		func(r *agentpb.Response_GetTasks) []mesos.Task { return r.CompletedTasks })
	c.WaitFor("the task completed on the master", func(st *clustertest.State) bool {
		state, ok := masterTask(st, s.ID, "ends-unseen", true)
		_, active := masterTask(st, s.ID, "ends-unseen", false)
		return ok && state == "TASK_FINISHED" && !active
	})

	// Exactly once: events come in order, so any second delivery of the
	// agent's update would come before the answer to this reconciliation.
	again.MustCall(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{
		Tasks: []scheduler.Call_Reconcile_Task{{TaskID: mesos.TaskID{Value: "ends-unseen"}, AgentID: &offer.AgentID}}}})
	st := again.Update("ends-unseen")
	if st.GetReason() != mesos.REASON_RECONCILIATION {
		t.Fatalf("the task's update came again: %v %v, want only the reconciliation answer", st.GetState(), st.GetSource())
	}
	if st.GetState() != mesos.TASK_FINISHED {
		t.Fatalf("reconciliation after the acknowledgement: %v, want TASK_FINISHED", st.GetState())
	}
}

// TestReconcileUnknownTasks: the master answers for a task it does not
// know by what it knows of the task's agent. On an agent recovered from
// the registry that has not re-registered yet, or with no agent named
// while such an agent is left, there is no answer (the task may be
// there); on a registered agent or one nobody knows the answer is
// TASK_UNKNOWN (TASK_LOST for a framework that is not partition-aware).
func TestReconcileUnknownTasks(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	id := mesos.AgentID{Value: c.Agents[0].ID()}
	nobody := mesos.AgentID{Value: "no-such-agent"}
	reconcile := func(s *clustertest.Scheduler, task string, agent mesos.AgentID) {
		t.Helper()
		s.MustCall(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{
			Tasks: []scheduler.Call_Reconcile_Task{{TaskID: mesos.TaskID{Value: task}, AgentID: &agent}}}})
	}
	answer := func(s *clustertest.Scheduler, task string, want mesos.TaskState) {
		t.Helper()
		st := s.Update(task)
		if st.GetState() != want || st.GetReason() != mesos.REASON_RECONCILIATION {
			t.Fatalf("reconciling %s: %v %v %q, want %v", task, st.GetState(), st.GetReason(), st.GetMessage(), want)
		}
	}

	// The agent is away while the master restarts: recovered from the
	// registry, not re-registered.
	c.Agents[0].Stop()
	c.StopMaster()
	c.StartMaster()
	pa := c.Subscribe(`{"user":"root","name":"pa","capabilities":[{"type":"PARTITION_AWARE"}]}`)
	legacy := c.Subscribe(`{"user":"root","name":"legacy"}`)
	for _, s := range []*clustertest.Scheduler{pa, legacy} {
		reconcile(s, "on-recovered", id)
		reconcile(s, "unnamed-agent", mesos.AgentID{})
		// Answered in order: this answer coming first means none came for
		// the two above.
		reconcile(s, "on-nobody", nobody)
	}
	answer(pa, "on-nobody", mesos.TASK_UNKNOWN)
	answer(legacy, "on-nobody", mesos.TASK_LOST)
	for _, s := range []*clustertest.Scheduler{pa, legacy} {
		for _, task := range []string{"on-recovered", "unnamed-agent"} {
			if q := s.Pending(task); len(q) > 0 {
				t.Fatalf("reconciling %s before its agent re-registered: answered %v, want no answer", task, q[0].GetState())
			}
		}
	}

	c.StartAgent(0, "")
	c.WaitFor("the agent re-registered", func(st *clustertest.State) bool { return len(st.Slaves) == 1 })
	reconcile(pa, "on-recovered", id)
	answer(pa, "on-recovered", mesos.TASK_UNKNOWN)
	reconcile(legacy, "on-recovered", id)
	answer(legacy, "on-recovered", mesos.TASK_LOST)
	reconcile(pa, "unnamed-agent", mesos.AgentID{})
	answer(pa, "unnamed-agent", mesos.TASK_UNKNOWN)
}
