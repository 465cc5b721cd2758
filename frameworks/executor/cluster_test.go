package executor_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
	sched "github.com/agora-cluster/agora/frameworks/scheduler"
)

// wait bounds every wait; it is never what a test asserts.
const wait = 60 * time.Second

// buildExampleExecutor compiles examples/executor, the executor built on
// this SDK, into a temporary directory.
func buildExampleExecutor(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(t.TempDir(), "example-executor")
	cmd := exec.Command(goTool, "build", "-o", out, "github.com/agora-cluster/agora/examples/executor")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build examples/executor: %v\n%s", err, b)
	}
	return out
}

// events collects what a scheduler receives. Its handlers run on the
// driver's event loop, so they put into unbounded queues and never block:
// a test that stops reading (waiting for something else, or failing) must
// not stop the loop, or Run cannot return at cleanup.
type events struct {
	sched.Funcs
	offers   <-chan mesos.Offer
	updates  <-chan mesos.TaskStatus
	messages <-chan *scheduler.Event_Message
	failures <-chan *scheduler.Event_Failure
}

func newEvents(t *testing.T) *events {
	offers, updates := clustertest.NewQueue[mesos.Offer](t), clustertest.NewQueue[mesos.TaskStatus](t)
	messages, failures := clustertest.NewQueue[*scheduler.Event_Message](t), clustertest.NewQueue[*scheduler.Event_Failure](t)
	e := &events{offers: offers.C(), updates: updates.C(), messages: messages.C(), failures: failures.C()}
	e.OnOffers = func(_ context.Context, os []mesos.Offer) {
		for _, o := range os {
			offers.Put(o)
		}
	}
	e.OnUpdate = func(_ context.Context, s mesos.TaskStatus) { updates.Put(s) }
	e.OnMessage = func(_ context.Context, m *scheduler.Event_Message) { messages.Put(m) }
	e.OnFailure = func(_ context.Context, f *scheduler.Event_Failure) { failures.Put(f) }
	return e
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func res(t *testing.T, text string) []mesos.Resource {
	t.Helper()
	rs, err := api.ParseResources(text)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestExampleExecutorRuns100Tasks runs examples/executor (this SDK) as a
// custom executor, fetched over HTTP into its sandbox: one executor
// process takes 100 tasks, half at its
// launch and half later through offers that list it, and runs them all to
// TASK_FINISHED; it echoes messages, kills a task on request and exits on
// SHUTDOWN.
func TestExampleExecutorRuns100Tasks(t *testing.T) {
	binary := buildExampleExecutor(t)
	c := clustertest.Start(t, clustertest.Options{})
	t.Cleanup(c.Stop) // before the agents' temporary directories go
	ev := newEvents(t)
	d, err := sched.New(sched.Config{Masters: []string{c.MasterAddr},
		Framework: mesos.FrameworkInfo{User: "tester", Name: "sdk-executor", Checkpoint: new(bool)}}, ev)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); clustertest.AwaitStop(t, "the scheduler driver", done) })

	// As mesos-go's example-scheduler does: the executor binary is served
	// over HTTP and the agent fetches it into the sandbox.
	files := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(binary))))
	t.Cleanup(files.Close)
	executable, run := true, "./example-executor"
	executor := &mesos.ExecutorInfo{Type: mesos.ExecutorInfo_CUSTOM, ExecutorID: mesos.ExecutorID{Value: "sdk"},
		Command:   &mesos.CommandInfo{Value: &run, URIs: []mesos.CommandInfo_URI{{Value: files.URL + "/example-executor", Executable: &executable}}},
		Resources: res(t, "cpus:0.1;mem:64")}
	// The example executor runs a task's data as a shell command.
	task := func(id, cmd string, agent mesos.AgentID) mesos.TaskInfo {
		return mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: agent, Executor: executor,
			Data: []byte(cmd), Resources: res(t, "cpus:0.01;mem:8")}
	}
	// A task's command checks it got its own ID in its environment.
	launch := func(from, to int) mesos.Offer {
		t.Helper()
		o := recv(t, ev.offers, "an offer")
		var tasks []mesos.TaskInfo
		for i := from; i < to; i++ {
			id := fmt.Sprintf("task-%03d", i)
			tasks = append(tasks, task(id, `test "$MESOS_TASK_ID" = `+id, o.AgentID))
		}
		if err := d.Launch(ctx, []mesos.OfferID{o.ID}, tasks, sched.RefuseFor(0)); err != nil {
			t.Fatal(err)
		}
		return o
	}
	first := launch(0, 50)
	second := launch(50, 100)
	if len(second.ExecutorIDs) != 1 || second.ExecutorIDs[0].Value != "sdk" {
		t.Errorf("second offer lists executors %v, want [sdk]", second.ExecutorIDs)
	}

	finished := map[string]bool{}
	pids, containers := map[uint32]bool{}, map[string]bool{}
	for len(finished) < 100 {
		st := recv(t, ev.updates, "status updates")
		switch st.GetState() {
		case mesos.TASK_RUNNING:
		case mesos.TASK_FINISHED:
			finished[st.TaskID.Value] = true
			pids[st.GetContainerStatus().GetExecutorPID()] = true
			containers[st.GetContainerStatus().GetContainerID().GetValue()] = true
			if st.GetExecutorID().GetValue() != "sdk" || st.GetSource() != mesos.SOURCE_EXECUTOR {
				t.Errorf("%s: executor %q source %v", st.TaskID.Value, st.GetExecutorID().GetValue(), st.GetSource())
			}
		default:
			t.Fatalf("task %s: %v (%s)", st.TaskID.Value, st.GetState(), st.GetMessage())
		}
	}
	if len(pids) != 1 || len(containers) != 1 {
		t.Errorf("tasks ran in executor processes %v, containers %v; want one of each", pids, containers)
	}

	if err := d.Message(ctx, first.AgentID.Value, "sdk", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, ev.messages, "the executor's echo"); string(m.Data) != "echo: hello" || m.ExecutorID.Value != "sdk" {
		t.Errorf("message %q from %s", m.Data, m.ExecutorID.Value)
	}

	o := recv(t, ev.offers, "an offer")
	if err := d.Launch(ctx, []mesos.OfferID{o.ID}, []mesos.TaskInfo{task("sleeper", "exec sleep 600", o.AgentID)}, sched.RefuseFor(0)); err != nil {
		t.Fatal(err)
	}
	for st := recv(t, ev.updates, "sleeper running"); st.GetState() != mesos.TASK_RUNNING; st = recv(t, ev.updates, "sleeper running") {
		if st.TaskID.Value == "sleeper" && st.GetState() != mesos.TASK_STARTING {
			t.Fatalf("sleeper: %v (%s)", st.GetState(), st.GetMessage())
		}
	}
	if err := d.Kill(ctx, "sleeper", o.AgentID.Value); err != nil {
		t.Fatal(err)
	}
	if st := recv(t, ev.updates, "sleeper killed"); st.TaskID.Value != "sleeper" || st.GetState() != mesos.TASK_KILLED {
		t.Errorf("after KILL: %s %v (%s)", st.TaskID.Value, st.GetState(), st.GetMessage())
	}

	if err := d.Shutdown(ctx, "sdk", first.AgentID.Value); err != nil {
		t.Fatal(err)
	}
	if f := recv(t, ev.failures, "the executor's exit"); f.GetExecutorID().GetValue() != "sdk" || f.GetStatus() != 0 {
		t.Errorf("FAILURE %+v, want executor sdk exiting cleanly", f)
	}
	runs, _ := filepath.Glob(filepath.Join(c.Agents[0].WorkDir(), "slaves", first.AgentID.Value, "frameworks", d.FrameworkID(), "executors", "sdk", "runs", "*-*"))
	if len(runs) != 1 {
		t.Fatalf("executor runs %v, want exactly one", runs)
	}
	for _, f := range []string{"stderr", "example-executor"} {
		if _, err := os.Stat(filepath.Join(runs[0], f)); err != nil {
			t.Errorf("executor's sandbox: %v", err)
		}
	}
}
