package agent_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/clustertest"
)

// An executor's status update that the agent cannot checkpoint is not
// acknowledged (503, no ACKNOWLEDGED) and does not reach the scheduler;
// the executor's retry, once the disk takes it, is. Here the disk refuses
// the writes of the task's updates (a real full disk:
// TestFullDiskRefusesLaunchesAndUpdatesUntilFreed).
func TestUpdateNotOnDiskIsNotAcknowledged(t *testing.T) {
	c := startCluster(t, clustertest.Options{Agent: quickShutdown})
	faults, remove := agent.InjectDiskFaults(c.Agents[0].Config.WorkDir)
	defer remove()
	s := subscribe(t, c.MasterURL, `{"user":"tester","name":"checkpoint-faults","checkpoint":true}`)
	offer := s.offer()
	s.launch(offer, execTask(t, "t1", offer.AgentID, standIn(t, "raw", "sleep 600"), "cpus:0.1;mem:16"))
	url := executorURL(c.Agents[0])
	awaitExecutor(t, url, s.id, "raw")
	x := subscribeRaw(t, url, s.id, "raw")
	x.next(executor.Event_SUBSCRIBED)
	x.next(executor.Event_LAUNCH)

	updates := func() string {
		return checkpointFile(t, c.Agents[0].Config.WorkDir, filepath.Join(c.Agents[0].Config.WorkDir, "meta", "*", "*", "frameworks", s.id, "executors", "raw", "runs", "*", "tasks", "t1", "task.updates"))
	}
	faults.Fail(agent.DiskWrite, filepath.Join("tasks", "t1", "task.updates"), -1)
	running := uuid16(9)
	code, body := x.call(update("t1", mesos.TASK_RUNNING, running, mesos.SOURCE_EXECUTOR))
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "not recorded") {
		t.Fatalf("UPDATE with its checkpoint failing: %d %q, want 503 saying it was not recorded", code, body)
	}
	for _, st := range s.statuses("t1") {
		if st.GetState() == mesos.TASK_RUNNING {
			t.Fatalf("the scheduler got an update the agent never checkpointed: %+v", st)
		}
	}
	if b := updates(); strings.Contains(b, "TASK_RUNNING") {
		t.Fatalf("the refused update is in the checkpoint: %q", b)
	}

	faults.Heal()
	if code, body := x.call(update("t1", mesos.TASK_RUNNING, running, mesos.SOURCE_EXECUTOR)); code != http.StatusAccepted {
		t.Fatalf("the retried UPDATE: %d %q", code, body)
	}
	if ack := x.next(executor.Event_ACKNOWLEDGED).Acknowledged; !bytes.Equal(ack.UUID, running) {
		t.Fatalf("ACKNOWLEDGED %x, want %x", ack.UUID, running)
	}
	s.waitState("t1", mesos.TASK_RUNNING)
	if b := updates(); !strings.Contains(b, "TASK_RUNNING") {
		t.Fatalf("the checkpoint after the retry: %q", b)
	}
}

// A command task whose sandbox directory cannot be made fails its launch
// with the reason, and never runs. (The directory is blocked by a file.
// Its checkpoint is a record in the agent's journal, whose refusal
// TestLaunchRefusedWhenItsCheckpointFails and
// TestFullDiskRefusesLaunchesAndUpdatesUntilFreed cover.)
func TestLaunchWithoutItsSandboxDirectoryFails(t *testing.T) {
	c := startCluster(t, clustertest.Options{})
	s := subscribe(t, c.MasterURL, `{"user":"tester","name":"launch-sandbox","checkpoint":true}`)
	offer := s.offer()
	block := filepath.Join(c.Agents[0].Config.WorkDir, "slaves", offer.AgentID.Value, "frameworks", s.id, "executors", "blocked")
	if err := os.MkdirAll(filepath.Dir(block), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(block, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf("%d.%03d", 6000+os.Getpid()%1000, time.Now().Nanosecond()%1000)
	cmd := "exec sleep " + marker
	task := mesos.TaskInfo{Name: "blocked", TaskID: mesos.TaskID{Value: "blocked"}, AgentID: offer.AgentID,
		Command: &mesos.CommandInfo{Value: &cmd}, Resources: resources(t, "cpus:0.1;mem:16")}
	s.launch(offer, task)
	st := s.waitUpdate("blocked", "TASK_FAILED", func(st mesos.TaskStatus) bool { return st.GetState() == mesos.TASK_FAILED })
	if st.GetReason() != mesos.REASON_CONTAINER_LAUNCH_FAILED || !strings.Contains(st.GetMessage(), block) {
		t.Fatalf("TASK_FAILED %v %q; want REASON_CONTAINER_LAUNCH_FAILED naming %s", st.GetReason(), st.GetMessage(), block)
	}
	for _, s := range s.statuses("blocked") {
		if s.GetState() == mesos.TASK_RUNNING {
			t.Fatalf("the task was reported running without its checkpoint: %v", describe([]mesos.TaskStatus{s}))
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && string(b) == "sleep\x00"+marker+"\x00" {
			t.Fatalf("the task's process %s still runs", e.Name())
		}
	}
}
