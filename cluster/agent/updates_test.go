package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

// nextNew returns the task's next update that is not a late duplicate of
// one already acknowledged.
func nextNew(t *testing.T, fm *fakeMaster, taskID string, acked [][]byte) *api.StatusUpdate {
	t.Helper()
	for {
		u := fm.nextUpdate(t, taskID)
		dup := false
		for _, id := range acked {
			dup = dup || bytes.Equal(id, u.Status.UUID)
		}
		if !dup {
			return u
		}
	}
}

func TestStatusUpdatesAreRetriedUntilAcknowledgedAndDeliveredInOrder(t *testing.T) {
	fm := newFakeMaster(t)
	fm.set(func(fm *fakeMaster) { fm.autoAck = false })
	cfg := testConfig(t, fm, "")
	cfg.StatusUpdateRetry = 10 * time.Millisecond
	cfg.StatusUpdateRetryMax = 40 * time.Millisecond
	ta, _ := startRegistered(t, fm, cfg)
	run(fm, shellTask("ordered", "true"))

	var acked [][]byte
	for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED} {
		head := nextNew(t, fm, "ordered", acked)
		if head.Status.GetState() != want {
			t.Fatalf("got %s before %s was delivered", head.Status.GetState(), want)
		}
		// Without an acknowledgement the same update comes again (same
		// UUID), and nothing behind it is sent; latest_state tells the
		// master how far the task really is.
		for retries := 0; retries < 3; retries++ {
			again := fm.nextUpdate(t, "ordered")
			if !bytes.Equal(again.Status.UUID, head.Status.UUID) {
				t.Fatalf("while %s was unacknowledged the agent sent %s", want, again.Status.GetState())
			}
		}
		waitFor(t, "latest_state = TASK_FINISHED", func() bool {
			u := fm.nextUpdate(t, "ordered")
			if !bytes.Equal(u.Status.UUID, head.Status.UUID) {
				t.Fatalf("while %s was unacknowledged the agent sent %s", want, u.Status.GetState())
			}
			return u.LatestState != nil && *u.LatestState == mesos.TASK_FINISHED
		})
		fm.ack(head)
		acked = append(acked, head.Status.UUID)
	}
	waitFor(t, "the finished task to be forgotten", func() bool {
		var st struct {
			Frameworks []any `json:"frameworks"`
		}
		getJSON(t, ta.Agent, "/state", &st)
		return len(st.Frameworks) == 0
	})
}

func TestUpdatesAreResentRightAfterReregistration(t *testing.T) {
	fm := newFakeMaster(t)
	fm.set(func(fm *fakeMaster) { fm.autoAck = false })
	cfg := testConfig(t, fm, "")
	cfg.StatusUpdateRetry = time.Hour // any resend below is due to re-registration
	ta, first := startRegistered(t, fm, cfg)
	run(fm, shellTask("resend", "true"))
	starting := fm.expectStates(t, "resend", mesos.TASK_STARTING)[0]
	waitFor(t, "task finished on the agent", func() bool {
		var m map[string]float64
		getJSON(t, ta.Agent, "/metrics/snapshot", &m)
		return m["slave/tasks_finished"] == 1
	})

	fm.dropStream()
	reg := fm.nextRegister(t)
	if reg.Info.GetID().GetValue() != first.agentID {
		t.Fatalf("re-registered as %q, want %q", reg.Info.GetID().GetValue(), first.agentID)
	}
	if len(reg.Tasks) != 1 {
		t.Fatalf("REGISTER reports %d tasks, want 1", len(reg.Tasks))
	}
	rt := reg.Tasks[0]
	if rt.TaskID.Value != "resend" || rt.GetState() != mesos.TASK_FINISHED ||
		rt.GetStatusUpdateState() != mesos.TASK_STARTING || !bytes.Equal(rt.StatusUpdateUUID, starting.Status.UUID) {
		t.Fatalf("reported task %s state %s, status_update_state %s", rt.TaskID.Value, rt.GetState(), rt.GetStatusUpdateState())
	}
	if len(reg.Frameworks) != 1 || reg.Frameworks[0].GetID().GetValue() != testFramework {
		t.Fatalf("REGISTER reports frameworks %v", reg.Frameworks)
	}

	again := fm.nextUpdate(t, "resend")
	if !bytes.Equal(again.Status.UUID, starting.Status.UUID) {
		t.Fatalf("after re-registration the agent sent %s, want the unacknowledged TASK_STARTING", again.Status.GetState())
	}
	fm.ack(again)
	fm.ack(fm.expectStates(t, "resend", mesos.TASK_RUNNING)[0])
	fm.ack(fm.expectStates(t, "resend", mesos.TASK_FINISHED)[0])
}

func TestRestartedAgentResendsCheckpointedUpdates(t *testing.T) {
	fm := newFakeMaster(t)
	fm.set(func(fm *fakeMaster) { fm.autoAck = false })
	workDir := t.TempDir()
	cfg := testConfig(t, fm, workDir)
	cfg.StatusUpdateRetry = time.Hour
	ta, first := startRegistered(t, fm, cfg)
	run(fm, shellTask("durable", "sleep 100"))
	starting := fm.expectStates(t, "durable", mesos.TASK_STARTING)[0]
	var meta string
	waitFor(t, "task running", func() bool {
		ta.mu.Lock()
		defer ta.mu.Unlock()
		tk := ta.tasks[taskKey{testFramework, "durable"}]
		if tk == nil || tk.state != mesos.TASK_RUNNING {
			return false
		}
		meta = tk.meta
		return true
	})
	ta.stop(t) // kills the task: TASK_KILLED is checkpointed, not sent

	startAgent(t, cfg)
	reg := fm.nextRegister(t)
	if reg.Info.GetID().GetValue() != first.agentID || len(reg.Tasks) != 1 || reg.Tasks[0].GetState() != mesos.TASK_KILLED {
		t.Fatalf("restarted agent registered as %q with tasks %v", reg.Info.GetID().GetValue(), reg.Tasks)
	}
	u := fm.nextUpdate(t, "durable")
	if !bytes.Equal(u.Status.UUID, starting.Status.UUID) {
		t.Fatalf("restarted agent sent %s first, want the unacknowledged TASK_STARTING", u.Status.GetState())
	}
	fm.ack(u)
	fm.ack(fm.expectStates(t, "durable", mesos.TASK_RUNNING)[0])
	killed := fm.expectStates(t, "durable", mesos.TASK_KILLED)[0]
	fm.ack(killed)
	waitFor(t, "checkpoint of the forgotten task removed", func() bool {
		_, err := os.Stat(meta)
		return os.IsNotExist(err)
	})
	if _, err := os.Stat(filepath.Join(workDir, "meta", "agent_id")); err != nil {
		t.Fatalf("agent ID checkpoint: %v", err)
	}
}

func TestReplayIgnoresATornLastLine(t *testing.T) {
	file := filepath.Join(t.TempDir(), "task.updates")
	mk := func(s mesos.TaskState) *api.StatusUpdate {
		return &api.StatusUpdate{FrameworkID: "f", Status: &mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t"}, State: s.Enum(), UUID: newUUID().bytes()}}
	}
	u1, u2 := mk(mesos.TASK_STARTING), mk(mesos.TASK_RUNNING)
	for _, rec := range []checkpointRecord{{Update: u1}, {Update: u2}, {Ack: u1.Status.UUID}} {
		if err := appendRecord(file, rec, true); err != nil {
			t.Fatal(err)
		}
	}
	f, _ := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"ack":"AAAA`) // crash mid-write
	f.Close()
	all, pending, err := replayUpdates(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || len(pending) != 1 || !bytes.Equal(pending[0].Status.UUID, u2.Status.UUID) {
		t.Fatalf("replay: %d updates, %d pending", len(all), len(pending))
	}
}

// Three crashes in a row, each tearing the record being written at a
// random byte: every replay returns exactly the records written whole
// before it, in order, however many torn tails came before. (Without the
// cut, the first append after a torn tail is glued to the fragment, and
// the next replay loses it and all that follows.)
func TestReplayCutsTornTailsAcrossRepeatedCrashes(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		rng := rand.New(rand.NewPCG(seed, 19))
		file := filepath.Join(t.TempDir(), "task.updates")
		var written []*api.StatusUpdate
		var unacked []*api.StatusUpdate
		for crash := 0; crash < 3; crash++ {
			for i := 0; i < 1+rng.IntN(5); i++ {
				rec := checkpointRecord{}
				if len(unacked) > 0 && rng.IntN(3) == 0 {
					rec.Ack = unacked[0].Status.UUID
					unacked = unacked[1:]
				} else {
					u := &api.StatusUpdate{FrameworkID: "f", Status: &mesos.TaskStatus{
						TaskID: mesos.TaskID{Value: "t"}, State: mesos.TASK_RUNNING.Enum(), UUID: newUUID().bytes()}}
					rec.Update = u
					written = append(written, u)
					unacked = append(unacked, u)
				}
				if err := appendRecord(file, rec, true); err != nil {
					t.Fatal(err)
				}
			}
			// The crash: part of one more record reaches the file.
			line, _ := json.Marshal(checkpointRecord{Update: &api.StatusUpdate{FrameworkID: "f",
				Status: &mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t"}, State: mesos.TASK_FINISHED.Enum(), UUID: newUUID().bytes()}}})
			f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(line[:1+rng.IntN(len(line)-1)])
			f.Close()

			all, pending, err := replayUpdates(file)
			if err != nil {
				t.Fatalf("seed %d, crash %d: %v", seed, crash, err)
			}
			if len(all) != len(written) || len(pending) != len(unacked) {
				t.Fatalf("seed %d, crash %d: replay found %d updates (%d pending), want %d (%d pending)",
					seed, crash, len(all), len(pending), len(written), len(unacked))
			}
			for i := range all {
				if !bytes.Equal(all[i].Status.UUID, written[i].Status.UUID) {
					t.Fatalf("seed %d, crash %d: update %d is not the one written", seed, crash, i)
				}
			}
			b, _ := os.ReadFile(file)
			if len(b) > 0 && b[len(b)-1] != '\n' {
				t.Fatalf("seed %d, crash %d: the file still ends in a torn record", seed, crash)
			}
		}
	}
}

// An unreadable record with readable ones after it is damage, not a torn
// write: replay says so and leaves the file as it was.
func TestReplayRefusesADamagedMiddle(t *testing.T) {
	file := filepath.Join(t.TempDir(), "task.updates")
	u := &api.StatusUpdate{FrameworkID: "f", Status: &mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t"}, State: mesos.TASK_RUNNING.Enum(), UUID: newUUID().bytes()}}
	if err := appendRecord(file, checkpointRecord{Update: u}, true); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("{not json}\n")
	f.Close()
	if err := appendRecord(file, checkpointRecord{Ack: u.Status.UUID}, true); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(file)
	if _, _, err := replayUpdates(file); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("replay of a damaged file: %v, want an error saying it is damaged", err)
	}
	if after, _ := os.ReadFile(file); !bytes.Equal(before, after) {
		t.Fatal("replay changed a damaged file")
	}
}

// A durable checkpoint makes its missing directories (each fsynced into its
// parent) and fails, naming the path, where a file stands in the way. (That
// the fsyncs make the directories survive a machine crash cannot be seen
// from a test; that they run and succeed can.)
func TestDurableCheckpointMakesItsDirectories(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "a", "b", "c", "task.updates")
	u := &api.StatusUpdate{FrameworkID: "f", Status: &mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t"}, State: mesos.TASK_RUNNING.Enum(), UUID: newUUID().bytes()}}
	if err := appendRecord(file, checkpointRecord{Update: u}, true); err != nil {
		t.Fatal(err)
	}
	if all, _, err := replayUpdates(file); err != nil || len(all) != 1 {
		t.Fatalf("replay: %d updates, %v", len(all), err)
	}
	if err := writeFileAtomic(filepath.Join(base, "x", "y", "info"), []byte("z"), true); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "blocked"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := appendRecord(filepath.Join(base, "blocked", "d", "task.updates"), checkpointRecord{Update: u}, true); err == nil || !strings.Contains(err.Error(), "blocked") {
		t.Fatalf("a checkpoint under a file: %v, want an error naming the path", err)
	}
}

// TestResendAskedWhileInFlight: the master asks for a task's update again
// (a framework re-subscribed) while the agent's copy is on its way — a
// copy the master may have taken before the framework was back, and so
// sent nowhere. The update is due again as soon as that send ends, not
// after the retry backoff (an hour here).
func TestResendAskedWhileInFlight(t *testing.T) {
	m := newUpdateManager(time.Hour, time.Hour, nil, slog.New(slog.DiscardHandler))
	m.setOnline(true)
	key := taskKey{"fw", "t"}
	u := &api.StatusUpdate{FrameworkID: "fw", Status: &mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t"},
		State: mesos.TASK_FINISHED.Enum(), UUID: newUUID().bytes()}}
	if err := m.add(key, "", false, true, u); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	send := func(what string) outgoing {
		t.Helper()
		out, _ := m.due(now)
		if len(out) != 1 || !bytes.Equal(out[0].u.Status.UUID, u.Status.UUID) {
			t.Fatalf("%s: due = %d updates, want the task's head", what, len(out))
		}
		return out[0]
	}

	// Not asked: the next copy waits for the backoff.
	m.sent(send("first copy"), now, nil)
	if out, next := m.due(now); len(out) != 0 || !next.Equal(now.Add(time.Hour)) {
		t.Fatalf("after a send: %d due, next at %v; want none before the backoff", len(out), next.Sub(now))
	}

	// Asked while idle: due at once.
	if !m.resendNow(key) {
		t.Fatal("resendNow: the task has no pending update")
	}
	o := send("asked while idle")
	// Asked while that copy is in flight: due again once it is sent.
	if !m.resendNow(key) {
		t.Fatal("resendNow: the task has no pending update")
	}
	if out, _ := m.due(now); len(out) != 0 {
		t.Fatal("a head in flight was handed out twice")
	}
	m.sent(o, now, nil)
	m.sent(send("asked while in flight"), now, nil)
	if out, _ := m.due(now); len(out) != 0 {
		t.Fatal("asked once, sent twice after: the request was not cleared")
	}

	// Registered again while a copy from before is in flight (it may have
	// gone to the master that is gone, or failed): everything pending is
	// due once that send ends. The master does not ask for an update
	// none of which came since the registration, counting on this.
	m.resendNow(key)
	o = send("asked again")
	m.setOnline(false)
	m.setOnline(true)
	m.sent(o, now, errors.New("connection reset"))
	m.sent(send("registered while in flight"), now, nil)
}

// TestUpdatesOfOtherTasksDoNotWaitForACallInFlight: a task's update that
// falls due while another task's is on its way to the master goes in a
// call of its own, without waiting for the first call's answer; a task's
// next update still waits for its head's acknowledgement.
func TestUpdatesOfOtherTasksDoNotWaitForACallInFlight(t *testing.T) {
	calls := make(chan []string, 16)
	release := make(chan struct{})
	var held atomic.Bool
	send := func(ctx context.Context, us []*api.StatusUpdate) error {
		var ids []string
		for _, u := range us {
			ids = append(ids, u.Status.TaskID.Value+":"+u.Status.GetState().String())
		}
		calls <- ids
		if held.CompareAndSwap(false, true) { // the first call hangs
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}
	m := newUpdateManager(time.Hour, time.Hour, send, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.run(ctx); close(done) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("the update sender did not stop within a minute of its cancel")
		}
	}()
	m.setOnline(true)
	add := func(task string, s mesos.TaskState) {
		t.Helper()
		u := &api.StatusUpdate{FrameworkID: "fw", Status: &mesos.TaskStatus{TaskID: mesos.TaskID{Value: task}, State: s.Enum(), UUID: newUUID().bytes()}}
		if err := m.add(taskKey{"fw", task}, "", false, true, u); err != nil {
			t.Fatal(err)
		}
	}
	next := func(what string) []string {
		t.Helper()
		select {
		case c := <-calls:
			return c
		case <-time.After(time.Minute):
			t.Fatalf("%s: no call within a minute", what)
			return nil
		}
	}
	add("a", mesos.TASK_STARTING)
	if c := next("a's update"); len(c) != 1 || c[0] != "a:TASK_STARTING" {
		t.Fatalf("first call %v, want a's TASK_STARTING", c)
	}
	add("a", mesos.TASK_RUNNING) // behind a's head
	add("b", mesos.TASK_STARTING)
	if c := next("b's update while a's call hangs"); len(c) != 1 || c[0] != "b:TASK_STARTING" {
		t.Fatalf("second call %v, want b's TASK_STARTING alone (a's RUNNING waits for its head)", c)
	}
	close(release)
}

// TestAnEndedStreamsLateAnswerLeavesTheNextAlone: a task's terminal
// update is acknowledged while its copy's call is still in flight, and a
// task of the same ID begins a new stream whose head goes out in another
// call; the first call's answer must not touch the new stream (which
// would send its head a second time while it is in flight).
func TestAnEndedStreamsLateAnswerLeavesTheNextAlone(t *testing.T) {
	m := newUpdateManager(time.Hour, time.Hour, nil, slog.New(slog.DiscardHandler))
	m.setOnline(true)
	key := taskKey{"fw", "t"}
	add := func(s mesos.TaskState) *api.StatusUpdate {
		t.Helper()
		u := &api.StatusUpdate{FrameworkID: "fw", Status: &mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t"}, State: s.Enum(), UUID: newUUID().bytes()}}
		if err := m.add(key, "", false, true, u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	now := time.Now()
	end := add(mesos.TASK_FINISHED)
	first, _ := m.due(now)
	if len(first) != 1 {
		t.Fatalf("due = %d updates, want the terminal one", len(first))
	}
	if matched, finished, err := m.ack(key, end.Status.UUID); !matched || !finished || err != nil {
		t.Fatalf("ack = %v %v %v, want the stream finished", matched, finished, err)
	}
	add(mesos.TASK_STARTING) // the ID again, a new stream
	second, _ := m.due(now)
	if len(second) != 1 {
		t.Fatalf("due = %d updates, want the new stream's head", len(second))
	}
	m.sent(first[0], now, nil) // the old call's answer, late
	if out, _ := m.due(now); len(out) != 0 {
		t.Fatalf("the new stream's head was handed out again while in flight: %v", out[0].u.Status.GetState())
	}
	m.sent(second[0], now, nil)
}
