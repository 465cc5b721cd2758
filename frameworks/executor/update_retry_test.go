package executor_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	executorpb "github.com/mesos/mesos-go/api/v1/lib/executor"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/frameworks/executor"
)

// An agent that cannot checkpoint an update answers 503; the driver's
// Update asks again until the agent can (here: until the disk faults
// injected on the task's updates are healed), and the scheduler then gets
// the update once.
func TestUpdateIsRetriedWhileTheAgentCannotRecordIt(t *testing.T) {
	c, d, ev, task, ctx := launchStandIn(t, "update-retry", "disk")
	launched := clustertest.NewQueue[mesos.TaskInfo](t)
	x, err := executor.New(executor.Config{
		FrameworkID: d.FrameworkID(), ExecutorID: "disk", AgentEndpoint: c.Agents[0].Addr(), Codec: api.JSON,
		Checkpoint: true, RecoveryTimeout: wait, SubscriptionBackoffMax: 100 * time.Millisecond,
	}, executor.Funcs{OnLaunch: func(_ context.Context, t mesos.TaskInfo) { launched.Put(t) }, OnSubscribed: func(context.Context, *executorpb.Event_Subscribed) {}})
	if err != nil {
		t.Fatal(err)
	}
	xctx, xcancel := context.WithCancel(context.Background())
	xdone := make(chan error, 1)
	go func() { xdone <- x.Run(xctx) }()
	t.Cleanup(func() { xcancel(); clustertest.AwaitStop(t, "the executor driver", xdone) })
	recv(t, launched.C(), "LAUNCH")

	// The agent's disk refuses the task's updates until healed.
	faults, remove := agent.InjectDiskFaults(c.Agents[0].Config.WorkDir)
	defer remove()
	faults.Fail(agent.DiskWrite, filepath.Join("tasks", "a", "task.updates"), -1)
	sent := make(chan error, 1)
	go func() { sent <- x.SendStatus(ctx, task.TaskID, mesos.TASK_RUNNING, "after a disk fault") }()
	// Wait until the agent has refused it at least once.
	deadline := time.Now().Add(wait)
	for invalidUpdates(t, c.Agents[0].Addr()) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the agent never refused the update")
		}
		time.Sleep(20 * time.Millisecond)
	}
	faults.Heal()
	if err := recv(t, sent, "Update to return"); err != nil {
		t.Fatalf("Update after the disk came back: %v", err)
	}
	for {
		st := recv(t, ev.updates, "the update")
		if st.TaskID.Value == "a" && st.GetState() == mesos.TASK_RUNNING {
			break
		}
	}
}

// invalidUpdates is the agent's slave/invalid_status_updates.
func invalidUpdates(t *testing.T, addr string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics/snapshot")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var m map[string]float64
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return 0
	}
	return m["slave/invalid_status_updates"]
}
