package oneshot

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/frameworks/sandbox"
	"github.com/agora-cluster/agora/frameworks/state"
)

// These tests run the framework against a real in-process agora cluster.

func runJob(t *testing.T, c *clustertest.Cluster, spec Spec) (*Job, *Result) {
	t.Helper()
	j, err := New(Config{Masters: []string{c.MasterAddr}, MaxConnectFailures: 3, Task: spec})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := j.Run(ctx)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return j, res
}

func TestClusterExitCodes(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	for _, tc := range []struct {
		spec Spec
		code int
	}{
		{Spec{Command: []string{"true"}, CPUs: 0.1, Mem: 32}, 0},
		{Spec{Command: []string{"sh", "-c", "exit 3"}, CPUs: 0.1, Mem: 32}, 3},
		{Spec{Command: []string{"exit 4"}, Shell: true, CPUs: 0.1, Mem: 32}, 4},
		{Spec{Command: []string{`test "$GREETING" = hi`}, Shell: true, Env: map[string]string{"GREETING": "hi"}, CPUs: 0.1, Mem: 32}, 0},
	} {
		_, res := runJob(t, c, tc.spec)
		code, ok := ExitCode(res.Status)
		if !ok || code != tc.code {
			t.Errorf("%q: ended %s %q → exit %d (ok %v), want %d", tc.spec.Command, res.Status.GetState(), res.Status.GetMessage(), code, ok, tc.code)
		}
	}
	c.WaitFor("every one-shot framework gone", func(s *clustertest.State) bool { return len(s.Frameworks) == 0 })
}

func TestClusterSandboxOutput(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	j, res := runJob(t, c, Spec{Command: []string{"sh", "-c", "echo to-out; echo to-err >&2"}, CPUs: 0.1, Mem: 32})
	if res.Status.GetState() != mesos.TASK_FINISHED {
		t.Fatalf("task ended %s: %s", res.Status.GetState(), res.Status.GetMessage())
	}
	ctx := context.Background()
	sc := state.Client{}
	agent, err := sc.Agent(ctx, c.MasterAddr, res.AgentID)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := sandbox.Locate(ctx, sc, agent.Endpoint(), j.FrameworkID(), j.TaskID(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{"stdout": "to-out\n", "stderr": "to-err\n"} {
		var buf bytes.Buffer
		f := &sandbox.Follower{Agent: agent.Endpoint(), Path: dir + "/" + file, W: &buf}
		if _, err := f.Poll(ctx); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if !strings.Contains(buf.String(), want) {
			t.Errorf("%s = %q, want it to contain %q", file, buf.String(), want)
		}
		if n, _ := f.Poll(ctx); n != 0 {
			t.Errorf("%s: second poll copied %d more bytes of a finished task", file, n)
		}
	}
	f := &sandbox.Follower{Agent: agent.Endpoint(), Path: dir + "/no-such-file", W: &bytes.Buffer{}}
	if _, err := f.Poll(ctx); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("missing file: %v, want ErrNotFound", err)
	}
}

func TestClusterKill(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	running := make(chan struct{}, 1)
	j, err := New(Config{Masters: []string{c.MasterAddr}, Task: Spec{Command: []string{"sleep", "60"}, CPUs: 0.1, Mem: 32},
		OnStatus: func(s mesos.TaskStatus) {
			if s.GetState() == mesos.TASK_RUNNING {
				select { // OnStatus runs on the framework's loop: never block it
				case running <- struct{}{}:
				default: // a signal is already pending; one says it ran
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		select {
		case <-running:
			if err := j.Kill(ctx); err != nil {
				t.Errorf("Kill: %v", err)
			}
		case <-ctx.Done():
		}
	}()
	res, err := j.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status.GetState() != mesos.TASK_KILLED {
		t.Errorf("killed task ended %s, want TASK_KILLED", res.Status.GetState())
	}
}

func TestClusterNothingFitsWaits(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	j, err := New(Config{Masters: []string{c.MasterAddr}, Task: Spec{Command: []string{"true"}, CPUs: 64, Mem: 32}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := j.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run with a task no agent fits = %v, want to wait until the deadline", err)
	}
}
