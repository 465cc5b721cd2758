package agent

import (
	"bytes"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

// Checkpoint faults injected with DiskFaults at each point a launch is
// checkpointed, and at each status update and acknowledgement: what the
// disk refuses changes nothing, on disk or in the agent, and is refused
// (a launch) or retried (an update, an acknowledgement).

// metaFiles lists the files of the agent's checkpoint, relative to its
// meta directory: those on disk other than the journal, and those in the
// journal (once everything queued is committed).
func metaFiles(t *testing.T, workDir string) []string {
	t.Helper()
	meta := filepath.Join(workDir, "meta")
	var out []string
	err := filepath.WalkDir(meta, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && path != journalPath(workDir) {
			rel, _ := filepath.Rel(meta, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", meta, err)
	}
	if j := journalFor(journalRoot(workDir)); j != nil && !j.isClosed() {
		if err := j.barrier(); err != nil {
			t.Fatal(err)
		}
	}
	files, err := ReadCheckpoint(workDir)
	if err != nil {
		t.Fatal(err)
	}
	for p := range files {
		rel, _ := filepath.Rel(meta, p)
		out = append(out, rel)
	}
	slices.Sort(out)
	return out
}

// customTask is a RUN_TASK for a custom executor whose command touches
// marker.
func customTask(id, executorID, marker string) *api.RunTask {
	rt := shellTask(id, "true")
	rt.Task.Command = nil
	rt.Task.Executor = &mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: executorID},
		Command: &mesos.CommandInfo{Value: proto("touch " + marker + "; exec sleep 600")}}
	return rt
}

// groupTask is a LAUNCH_GROUP of tasks ids on the default executor, each
// touching marker.
func groupTask(executorID, marker string, ids ...string) *api.RunTask {
	rt := shellTask("ignored", "true")
	rt.Task = nil
	rt.Executor = &mesos.ExecutorInfo{Type: mesos.ExecutorInfo_DEFAULT, ExecutorID: mesos.ExecutorID{Value: executorID}}
	rt.Group = &mesos.TaskGroupInfo{}
	for _, id := range ids {
		rt.Group.Tasks = append(rt.Group.Tasks, *shellTask(id, "touch "+marker).Task)
	}
	return rt
}

func TestLaunchRefusedWhenItsCheckpointFails(t *testing.T) {
	for _, tc := range []struct {
		name  string
		op    DiskOp
		match string
		rt    func(marker string) *api.RunTask
		tasks []string
	}{
		{"command task.json write", DiskWrite, "task.json", func(m string) *api.RunTask { return shellTask("c", "touch "+m) }, []string{"c"}},
		{"command task.json fsync", DiskFsync, "task.json", func(m string) *api.RunTask { return shellTask("c", "touch "+m) }, []string{"c"}},
		{"command task.json rename", DiskRename, "task.json", func(m string) *api.RunTask { return shellTask("c", "touch "+m) }, []string{"c"}},
		{"command run directory", DiskMkdir, "/runs/", func(m string) *api.RunTask { return shellTask("c", "touch "+m) }, []string{"c"}},
		{"executor.json write", DiskWrite, executorRecordFile, func(m string) *api.RunTask { return customTask("x", "ex", m) }, []string{"x"}},
		{"executor.json fsync", DiskFsync, executorRecordFile, func(m string) *api.RunTask { return customTask("x", "ex", m) }, []string{"x"}},
		{"executor task.json rename", DiskRename, "task.json", func(m string) *api.RunTask { return customTask("x", "ex", m) }, []string{"x"}},
		{"group file write", DiskWrite, "/groups/", func(m string) *api.RunTask { return groupTask("dx", m, "g1", "g2") }, []string{"g1", "g2"}},
		{"group task.json fsync", DiskFsync, "g2/task.json", func(m string) *api.RunTask { return groupTask("dx", m, "g1", "g2") }, []string{"g1", "g2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fm := newFakeMaster(t)
			cfg := testConfig(t, fm, "")
			faults, remove := InjectDiskFaults(cfg.WorkDir)
			defer remove()
			ta, _ := startRegistered(t, fm, cfg)
			before := metaFiles(t, cfg.WorkDir)
			marker := filepath.Join(t.TempDir(), "ran")

			faults.Fail(tc.op, tc.match, -1)
			run(fm, tc.rt(marker))
			for _, id := range tc.tasks {
				s := fm.expectStates(t, id, mesos.TASK_FAILED)[0].Status
				if s.GetReason() != mesos.REASON_CONTAINER_LAUNCH_FAILED || !strings.Contains(s.GetMessage(), "could not checkpoint") ||
					!strings.Contains(s.GetMessage(), ErrInjected.Error()) {
					t.Errorf("task %s: TASK_FAILED %s %q; want REASON_CONTAINER_LAUNCH_FAILED naming the checkpoint and the disk's error", id, s.GetReason(), s.GetMessage())
				}
			}
			if faults.Refused() == 0 {
				t.Fatal("no checkpoint step was refused")
			}
			waitFor(t, "the refused tasks to be forgotten", func() bool {
				ta.mu.Lock()
				defer ta.mu.Unlock()
				return len(ta.tasks) == 0 && len(ta.executors) == 0
			})
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("a task or executor of the refused launch ran")
			}
			if after := metaFiles(t, cfg.WorkDir); !slices.Equal(after, before) {
				t.Fatalf("checkpoint after the refused launch:\n%s\nbefore:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
			}

			// A restarted agent recovers nothing of it, and launches again
			// once the disk takes the writes.
			faults.Heal()
			ta.stop(t)
			ta2, _ := startRegistered(t, fm, cfg)
			ta2.mu.Lock()
			n := len(ta2.tasks)
			ta2.mu.Unlock()
			if n != 0 {
				t.Fatalf("the restarted agent recovered %d tasks of a refused launch", n)
			}
			run(fm, shellTask("after", "true"))
			fm.expectStates(t, "after", mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
		})
	}
}

// taskUpdatesFile finds the task.updates checkpoint of a command task.
func taskUpdatesFile(t *testing.T, workDir, taskID string) string {
	t.Helper()
	var file string
	waitFor(t, "the checkpoint of task "+taskID, func() bool {
		m, _ := ckptGlob(filepath.Join(workDir, "meta", "slaves", "*", "frameworks", "*", "executors", taskID, "runs", "*", "task.updates"))
		if len(m) == 1 {
			file = m[0]
		}
		return file != ""
	})
	return file
}

// The agent's own update for a checkpointing framework is not sent while
// its checkpoint fails, and is not lost: it is held, the checkpoint
// retried, and it is sent once on disk. Meanwhile the master hears only
// the recorded state, also when the agent registers again.
func TestAgentUpdateHeldUntilCheckpointed(t *testing.T) {
	fm := newFakeMaster(t)
	cfg := testConfig(t, fm, "")
	faults, remove := InjectDiskFaults(cfg.WorkDir)
	defer remove()
	ta, _ := startRegistered(t, fm, cfg)
	run(fm, shellTask("held", "exec sleep 600"))
	fm.expectStates(t, "held", mesos.TASK_STARTING, mesos.TASK_RUNNING)
	file := taskUpdatesFile(t, cfg.WorkDir, "held")
	waitFor(t, "TASK_RUNNING acknowledged on disk", func() bool {
		_, pending, err := replayUpdates(file)
		return err == nil && len(pending) == 0
	})
	onDisk, _ := ckptReadFile(file)

	faults.Fail(DiskFsync, "task.updates", -1)
	kill(fm, "held", proto(time.Duration(0)))
	waitFor(t, "the task killed, its update held and its checkpoint retried", func() bool {
		ta.mu.Lock()
		state := ta.tasks[taskKey{testFramework, "held"}].state
		ta.mu.Unlock()
		return state == mesos.TASK_KILLED && faults.Refused() >= 2
	})
	select {
	case u := <-fm.taskUpdates("held"):
		t.Fatalf("the master got %s, which is not on disk", u.Status.GetState())
	default:
	}
	if b, _ := ckptReadFile(file); !bytes.Equal(b, onDisk) {
		t.Fatalf("a refused append changed the checkpoint:\n%s\nwas:\n%s", b, onDisk)
	}
	// Registering again, the agent reports the task as last recorded.
	fm.dropStream()
	reg := fm.nextRegister(t)
	fm.nextSession(t)
	for _, mt := range reg.Tasks {
		if mt.TaskID.Value == "held" && mt.GetState() != mesos.TASK_RUNNING {
			t.Fatalf("re-registration reports task held as %s; its checkpoint says TASK_RUNNING", mt.GetState())
		}
	}

	faults.Heal()
	u := fm.nextUpdate(t, "held")
	if u.Status.GetState() != mesos.TASK_KILLED {
		t.Fatalf("after the disk healed the master got %s, want TASK_KILLED", u.Status.GetState())
	}
	waitFor(t, "the killed task to be forgotten", func() bool {
		ta.mu.Lock()
		defer ta.mu.Unlock()
		return ta.tasks[taskKey{testFramework, "held"}] == nil
	})
}

// An acknowledgement that cannot be checkpointed does not take effect:
// the update stays pending, is sent again, and the next acknowledgement
// (with the disk healed) moves the stream on.
func TestAcknowledgementNotOnDiskIsNotApplied(t *testing.T) {
	fm := newFakeMaster(t)
	fm.set(func(fm *fakeMaster) { fm.autoAck = false })
	cfg := testConfig(t, fm, "")
	cfg.StatusUpdateRetry = 20 * time.Millisecond
	cfg.StatusUpdateRetryMax = 50 * time.Millisecond
	faults, remove := InjectDiskFaults(cfg.WorkDir)
	defer remove()
	startRegistered(t, fm, cfg)
	run(fm, shellTask("acked", "exec sleep 600"))
	starting := fm.nextUpdate(t, "acked")
	file := taskUpdatesFile(t, cfg.WorkDir, "acked")
	// The executor's TASK_RUNNING is checkpointed (pending behind
	// STARTING) before the fault is set, so the one write it refuses is
	// the acknowledgement's, not that update's.
	waitFor(t, "TASK_RUNNING checkpointed", func() bool {
		b, _ := ckptReadFile(file)
		return bytes.Contains(b, []byte("TASK_RUNNING"))
	})
	onDisk, _ := ckptReadFile(file)

	faults.Fail(DiskWrite, "task.updates", 1) // half a record, then the error
	fm.ack(starting)
	waitFor(t, "the acknowledgement refused", func() bool { return faults.Refused() == 1 })
	again := fm.nextUpdate(t, "acked")
	if !bytes.Equal(again.Status.UUID, starting.Status.UUID) {
		t.Fatalf("after a refused acknowledgement the agent sent %s, want TASK_STARTING again", again.Status.GetState())
	}
	// No ack, whole or half, may have been appended.
	if b, _ := ckptReadFile(file); !bytes.HasPrefix(b, onDisk) || bytes.Contains(b, []byte(`"ack"`)) || !bytes.HasSuffix(b, []byte("\n")) {
		t.Fatalf("the refused acknowledgement is in the checkpoint:\n%q\nwas:\n%q", b, onDisk)
	}
	if _, pending, err := replayUpdates(file); err != nil || len(pending) == 0 || !bytes.Equal(pending[0].Status.UUID, starting.Status.UUID) {
		t.Fatalf("after the refused acknowledgement the checkpoint has %d pending, %v; want TASK_STARTING first", len(pending), err)
	}
	fm.ack(starting)
	running := nextNew(t, fm, "acked", [][]byte{starting.Status.UUID})
	if running.Status.GetState() != mesos.TASK_RUNNING {
		t.Fatalf("after the acknowledgement went through: %s, want TASK_RUNNING", running.Status.GetState())
	}
	_, pending, err := replayUpdates(file)
	if err != nil || len(pending) != 1 || !bytes.Equal(pending[0].Status.UUID, running.Status.UUID) {
		t.Fatalf("checkpoint: pending %d, %v; want TASK_RUNNING alone", len(pending), err)
	}
}

// The update manager on its own: an executor's update (required) whose
// checkpoint fails at any step is refused and leaves the file and the
// queue as they were; the agent's own update is held, not sent, retried,
// and sent in order once written.
func TestUpdateManagerCheckpointFaults(t *testing.T) {
	dir := t.TempDir()
	faults, remove := InjectDiskFaults(dir)
	defer remove()
	m := newUpdateManager(time.Second, time.Second, nil, slog.New(slog.DiscardHandler))
	m.setOnline(true)
	key := taskKey{"fw", "t"}
	file := filepath.Join(dir, "t", "task.updates")
	upd := func(s mesos.TaskState) *api.StatusUpdate {
		return &api.StatusUpdate{FrameworkID: "fw", Status: &mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t"}, State: s.Enum(), UUID: newUUID().bytes()}}
	}
	first := upd(mesos.TASK_STARTING)
	if err := m.add(key, file, true, true, first); err != nil {
		t.Fatal(err)
	}
	onDisk, _ := os.ReadFile(file)
	for _, op := range []DiskOp{DiskWrite, DiskFsync} {
		faults.Fail(op, "task.updates", 1)
		if err := m.add(key, file, true, true, upd(mesos.TASK_RUNNING)); err == nil || !strings.Contains(err.Error(), ErrInjected.Error()) {
			t.Fatalf("%s refused: add = %v, want the injected error", op, err)
		}
		if b, _ := os.ReadFile(file); !bytes.Equal(b, onDisk) {
			t.Fatalf("%s refused: the checkpoint changed:\n%q\nwas:\n%q", op, b, onDisk)
		}
		if h, held := m.head(key); !bytes.Equal(h.UUID, first.Status.UUID) || held != 0 || len(m.streams[key].pending) != 1 {
			t.Fatalf("%s refused: the queue changed", op)
		}
	}

	// The agent's own update: held, and nothing behind it overtakes it.
	faults.Fail(DiskWrite, "task.updates", -1)
	failed := upd(mesos.TASK_FAILED)
	if err := m.add(key, file, true, false, failed); err == nil {
		t.Fatal("the agent's own update: add reported no checkpoint error")
	}
	if _, held := m.head(key); held != 1 {
		t.Fatalf("held = %d, want 1", held)
	}
	if _, pending, _ := replayUpdates(file); len(pending) != 1 {
		t.Fatalf("checkpoint holds %d pending updates, want TASK_STARTING alone", len(pending))
	}
	out, _ := m.due(time.Now())
	if len(out) != 1 || out[0].u.Status.GetState() != mesos.TASK_STARTING || out[0].u.LatestState.String() != "TASK_STARTING" {
		t.Fatalf("due = %+v; want TASK_STARTING with latest state TASK_STARTING (the held update unannounced)", out)
	}
	m.sent(out[0], time.Now(), nil)
	if matched, _, err := m.ack(key, first.Status.UUID); matched || err == nil {
		// The ack's append fails too (same file): refused, nothing changes.
		t.Fatalf("ack with the disk failing: matched %v err %v; want refused", matched, err)
	}
	faults.Heal()
	if next := m.recordHeld(time.Now().Add(time.Minute)); !next.IsZero() {
		t.Fatalf("after the retry something is still held (next retry %v)", next)
	}
	if matched, _, err := m.ack(key, first.Status.UUID); !matched || err != nil {
		t.Fatalf("ack: matched %v err %v", matched, err)
	}
	out, _ = m.due(time.Now())
	if len(out) != 1 || !bytes.Equal(out[0].u.Status.UUID, failed.Status.UUID) {
		t.Fatalf("due after the retry = %+v, want the held TASK_FAILED", out)
	}
	all, pending, err := replayUpdates(file)
	if err != nil || len(all) != 2 || len(pending) != 1 || !bytes.Equal(pending[0].Status.UUID, failed.Status.UUID) {
		t.Fatalf("checkpoint: %d updates, %d pending, %v; want STARTING (acknowledged) and FAILED", len(all), len(pending), err)
	}
}
