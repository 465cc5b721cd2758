package agent

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

// A launch on a custom or the default executor writes its checkpoint
// holding no lock and off the master's event stream (runLaunches): a disk
// that hangs on it holds up that launch and nothing else, and what comes
// for the launching task meanwhile is applied once the write completes.

// launchKinds are the two kinds of executor launch, each of task "slow"
// whose command (or executor) touches marker.
var launchKinds = []struct {
	name string
	rt   func(marker string) *api.RunTask
}{
	{"custom executor", func(m string) *api.RunTask { return customTask("slow", "ex", m) }},
	{"default executor", func(m string) *api.RunTask { return groupTask("dx", m, "slow") }},
}

// holdLaunch starts an agent whose checkpoint fsync of task slow's
// task.json hangs until release, sends the launch of kind rt, and waits
// until the write is held.
func holdLaunch(t *testing.T, rt func(marker string) *api.RunTask) (fm *fakeMaster, ta *testAgent, marker string, release func()) {
	t.Helper()
	fm = newFakeMaster(t)
	cfg := testConfig(t, fm, "")
	faults, remove := InjectDiskFaults(cfg.WorkDir)
	t.Cleanup(remove)
	ta, _ = startRegistered(t, fm, cfg)
	held, release := faults.Block(DiskFsync, filepath.Join("tasks", "slow", "task.json"))
	t.Cleanup(release) // before the agent stops (cleanups run last first)
	marker = filepath.Join(t.TempDir(), "ran")
	run(fm, rt(marker))
	select {
	case <-held:
	case <-time.After(waitTimeout):
		t.Fatal("the launch's checkpoint write was never held")
	}
	return fm, ta, marker, release
}

// noUpdate fails if the master has an update of task id.
func noUpdate(t *testing.T, fm *fakeMaster, id, when string) {
	t.Helper()
	select {
	case u := <-fm.taskUpdates(id):
		t.Fatalf("%s: task %s got %s (%q)", when, id, u.Status.GetState(), u.Status.GetMessage())
	default:
	}
}

func TestHeldLaunchCheckpointHoldsNothingElse(t *testing.T) {
	for _, kind := range launchKinds {
		t.Run(kind.name, func(t *testing.T) {
			fm, ta, marker, release := holdLaunch(t, kind.rt)

			// /state answers, and shows the task being launched.
			client := &http.Client{Timeout: waitTimeout}
			resp, err := client.Get("http://" + ta.Addr() + "/state")
			if err != nil {
				t.Fatalf("/state while a launch's checkpoint is held: %v", err)
			}
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !bytes.Contains(body.Bytes(), []byte(`"slow"`)) {
				t.Fatalf("/state while a launch's checkpoint is held: %d, without the launching task:\n%s", resp.StatusCode, body.Bytes())
			}

			// Another framework's command task launches and finishes.
			other := shellTask("other", "true")
			other.Framework.ID = &mesos.FrameworkID{Value: "fw-2"}
			run(fm, other)
			fm.expectStates(t, "other", mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)

			// A kill of the launching task is taken, and held for the launch.
			kill(fm, "slow", nil)
			waitFor(t, "the kill to reach the launching task", func() bool {
				ta.mu.Lock()
				defer ta.mu.Unlock()
				st := ta.tasks[taskKey{testFramework, "slow"}]
				return st != nil && st.launching && (st.launchKilled || len(st.kill) > 0)
			})
			noUpdate(t, fm, "slow", "before its checkpoint is written")

			// Once the write completes the task ends killed, never having run.
			release()
			u := fm.expectStates(t, "slow", mesos.TASK_KILLED)[0]
			if r := u.Status.GetReason(); r != mesos.REASON_TASK_KILLED_DURING_LAUNCH {
				t.Errorf("TASK_KILLED with %s (%q), want REASON_TASK_KILLED_DURING_LAUNCH", r, u.Status.GetMessage())
			}

			ta.stop(t) // bounded by waitTimeout
			noUpdate(t, fm, "slow", "after it was killed")
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the killed launch ran (its executor, or its group)")
			}
		})
	}
}

// An agent told to stop while a launch's checkpoint is held stops once
// the write completes, without starting the launch.
func TestAgentStopsAfterHeldLaunchCheckpoint(t *testing.T) {
	for _, kind := range launchKinds {
		t.Run(kind.name, func(t *testing.T) {
			_, ta, marker, release := holdLaunch(t, kind.rt)
			ta.cancel()
			// The stop reaches the runners asynchronously (Run's ctx
			// ending cancels theirs): the write completes once it has.
			select {
			case <-ta.runnerCtx.Done():
			case <-time.After(waitTimeout):
				t.Fatal("the agent's runners were never told to stop")
			}
			release()
			ta.stop(t) // bounded by waitTimeout
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the launch ran although the agent stopped before it was checkpointed")
			}
			ta.mu.Lock()
			defer ta.mu.Unlock()
			if st := ta.tasks[taskKey{testFramework, "slow"}]; st == nil || st.state != mesos.TASK_KILLED {
				t.Fatalf("the task after the agent stopped: %+v, want TASK_KILLED", st)
			}
		})
	}
}

// Launches on one executor settle in the order they came, behind one
// whose checkpoint is held, and kills that come for them meanwhile end
// exactly the tasks they name.
func TestLaunchesBehindAHeldOneSettleInOrder(t *testing.T) {
	fm, ta, _, release := holdLaunch(t, launchKinds[0].rt) // task slow on executor ex
	ids := []string{"slow"}
	var killed []string
	for i := range 6 {
		id := fmt.Sprintf("t%d", i)
		run(fm, customTask(id, "ex", filepath.Join(t.TempDir(), "ran")))
		if i%2 == 1 {
			kill(fm, id, nil)
			killed = append(killed, id)
		} else {
			ids = append(ids, id)
		}
	}
	waitFor(t, "the kills to reach the launching tasks", func() bool {
		ta.mu.Lock()
		defer ta.mu.Unlock()
		for _, id := range killed {
			if st := ta.tasks[taskKey{testFramework, id}]; st == nil || !st.launching || !st.launchKilled {
				return false
			}
		}
		return true
	})
	for _, id := range append(append([]string(nil), ids...), killed...) {
		noUpdate(t, fm, id, "before the held checkpoint is written")
	}

	release()
	for _, id := range killed {
		if r := fm.expectStates(t, id, mesos.TASK_KILLED)[0].Status.GetReason(); r != mesos.REASON_TASK_KILLED_DURING_LAUNCH {
			t.Errorf("task %s: TASK_KILLED with %s, want REASON_TASK_KILLED_DURING_LAUNCH", id, r)
		}
	}
	var queued []string
	waitFor(t, "every launch to settle", func() bool {
		ta.mu.Lock()
		defer ta.mu.Unlock()
		e := ta.executors[execKey{testFramework, "ex"}]
		if e == nil || len(e.launches) > 0 {
			return false
		}
		queued = queued[:0]
		for _, l := range e.queued {
			queued = append(queued, l.task.TaskID.Value)
		}
		return true
	})
	if !slices.Equal(queued, ids) {
		t.Fatalf("queued for the executor: %v, want %v (the launches' order, without the killed tasks)", queued, ids)
	}
	for _, id := range ids {
		noUpdate(t, fm, id, "queued for its executor")
	}
}
