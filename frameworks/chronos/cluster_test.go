package chronos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/containerizer/docker"
	"github.com/agora-cluster/agora/cluster/containerizer/docker/dockertest"
)

// These tests run the framework against a real in-process cluster and
// drive it through Chronos's REST API. Schedules follow a fake clock that
// the test moves, so that nothing depends on how fast the machine is; the
// jobs' tasks are real processes that append a line to a file per run.

// fakeClock is a clock the test sets.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

type env struct {
	t       *testing.T
	c       *clustertest.Cluster
	clock   *fakeClock
	workDir string
	runs    string // the file the jobs' tasks append to
	hook    func(stage, job, taskID string) bool
	fw      *Framework
	url     string
	stop    func()
}

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func startEnv(t *testing.T) *env {
	t.Helper()
	return startEnvWith(t, clustertest.Options{})
}

// startEnvWith is startEnv on a cluster started with opts.
func startEnvWith(t *testing.T, opts clustertest.Options) *env {
	t.Helper()
	c := clustertest.Start(t, opts)
	t.Cleanup(c.Stop)
	dir := t.TempDir()
	e := &env{t: t, c: c, clock: &fakeClock{now: t0}, workDir: filepath.Join(dir, "work"), runs: filepath.Join(dir, "runs")}
	if err := os.WriteFile(e.runs, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	e.startFramework()
	return e
}

// startFramework runs a framework on the env's work directory, with its
// API on a test server, until the test ends or e.stop.
func (e *env) startFramework() {
	t := e.t
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fw, err := New(Config{Masters: []string{e.c.MasterAddr}, WorkDir: e.workDir, User: "root",
		HTTPAddress: ln.Addr().String(), Now: e.clock.Now, LaunchHook: e.hook})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: fw.Handler()}}
	srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = fw.Run(ctx) }()
	stopped := false
	e.fw, e.url = fw, srv.URL
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		clustertest.AwaitStop(t, "the framework", done)
		srv.Close()
	}
	t.Cleanup(e.stop)
	e.waitFor("the framework to subscribe", fw.Subscribed)
}

func (e *env) call(method, path, body string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *env) must(method, path, body string, want int) string {
	e.t.Helper()
	code, b := e.call(method, path, body)
	if code != want {
		e.t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, want)
	}
	return b
}

// waitFor polls cond with a generous bound (functional, not timing).
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) job(name string) JobView {
	e.t.Helper()
	var js []JobView
	if err := json.Unmarshal([]byte(e.must("GET", "/v1/scheduler/jobs", "", http.StatusOK)), &js); err != nil {
		e.t.Fatal(err)
	}
	for _, j := range js {
		if j.Name == name {
			return j
		}
	}
	e.t.Fatalf("no job %q in /v1/scheduler/jobs", name)
	return JobView{}
}

func (e *env) waitSuccesses(name string, n int) {
	e.t.Helper()
	e.waitFor(fmt.Sprintf("%s to succeed %d times", name, n), func() bool { return e.job(name).SuccessCount >= n })
}

// lines are the runs recorded by the tasks, "job instant" each.
func (e *env) lines() []string {
	e.t.Helper()
	b, err := os.ReadFile(e.runs)
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(string(b), " ", "@"))
}

// jobJSON is a job whose task appends "NAME INSTANT" to the runs file.
func (e *env) jobJSON(name, sched string) string {
	cmd := fmt.Sprintf(`echo \"$CHRONOS_JOB_NAME $CHRONOS_SCHEDULED_TIME\" >> %s`, e.runs)
	return fmt.Sprintf(`{"name":%q,"command":"%s","cpus":0.1,"mem":16,"disk":0,"owner":"ops@example.com",%s}`, name, cmd, sched)
}

// TestDependentChainRunsInOrder: a, b after a, c after b run in that
// order, once each, on every period.
func TestDependentChainRunsInOrder(t *testing.T) {
	e := startEnv(t)
	e.must("POST", "/v1/scheduler/iso8601", e.jobJSON("a", `"schedule":"R/2030-01-01T00:00:00Z/PT1H"`), http.StatusNoContent)
	e.must("POST", "/v1/scheduler/dependency", e.jobJSON("b", `"parents":["a"]`), http.StatusNoContent)
	e.must("POST", "/v1/scheduler/dependency", e.jobJSON("c", `"parents":["b"]`), http.StatusNoContent)
	var want []string
	for p := 0; p < 3; p++ {
		at := t0.Add(time.Duration(p) * time.Hour)
		e.clock.Set(at)
		e.waitSuccesses("c", p+1)
		for _, n := range []string{"a", "b", "c"} {
			want = append(want, n+"@"+at.Format(time.RFC3339))
		}
	}
	if got := e.lines(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("runs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, n := range []string{"a", "b", "c"} {
		if j := e.job(n); j.SuccessCount != 3 || j.ErrorCount != 0 {
			t.Fatalf("%s: %d successes, %d errors; want 3 and 0", n, j.SuccessCount, j.ErrorCount)
		}
	}
	if csv := e.must("GET", "/v1/scheduler/graph/csv", "", http.StatusOK); !strings.Contains(csv, "link,a,b\n") ||
		!strings.Contains(csv, "link,b,c\n") || !strings.Contains(csv, "node,c,success,idle\n") {
		t.Fatalf("graph/csv:\n%s", csv)
	}
}

// TestKilledAtLaunchRunsOnce stops the framework dead at the moment a
// run starts, before and after the master took the task, and restarts it
// on the same work directory: the instant runs exactly once.
func TestKilledAtLaunchRunsOnce(t *testing.T) {
	for _, stage := range []string{"recorded", "sent"} {
		t.Run(stage, func(t *testing.T) {
			e := startEnv(t)
			hit := make(chan string, 1)
			e.hook = func(s, job, task string) bool {
				if s != stage {
					return true
				}
				select {
				case hit <- task:
				default:
				}
				return false
			}
			e.stop()
			e.startFramework() // with the hook
			e.must("POST", "/v1/scheduler/iso8601", e.jobJSON("once", `"schedule":"R/2030-01-01T00:00:00Z/PT1H"`), http.StatusNoContent)
			var task string
			select {
			case task = <-hit:
			case <-time.After(90 * time.Second):
				t.Fatal("the run did not start")
			}
			e.waitFor("the framework to stop dead", e.fw.Dead)
			e.stop()
			if stage == "sent" {
				// The task runs while the framework is away.
				e.waitFor("the task to run", func() bool { return len(e.lines()) == 1 })
			}
			e.hook = nil
			e.startFramework()
			e.waitSuccesses("once", 1)
			want := "once@" + t0.Format(time.RFC3339)
			if got := e.lines(); len(got) != 1 || got[0] != want {
				t.Fatalf("runs %v, want just %s", got, want)
			}
			var h []RunResult
			if err := json.Unmarshal([]byte(e.must("GET", "/v1/scheduler/job/stat/once", "", http.StatusOK)), &struct {
				History *[]RunResult `json:"taskStatHistory"`
			}{&h}); err != nil {
				t.Fatal(err)
			}
			if len(h) != 1 || h[0].State != "TASK_FINISHED" || !h[0].Instant.Equal(t0) {
				t.Fatalf("history %+v, want one finished run for %s", h, t0)
			}
			if stage == "sent" && h[0].TaskID != task {
				t.Fatalf("the run's task is %s, want the one launched before the stop, %s", h[0].TaskID, task)
			}
		})
	}
}

// TestRetriesMissedAndManual: a failed run is retried up to retries and
// its children wait for a success; an instant passed by more than
// epsilon is recorded as missed, not run late; a manual run runs now.
func TestRetriesMissedAndManual(t *testing.T) {
	e := startEnv(t)
	flaky := fmt.Sprintf(`{"name":"flaky","command":"[ \"$CHRONOS_ATTEMPT\" != 0 ] && echo flaky >> %s","retries":2,"mem":16,"schedule":"R/2030-01-01T00:00:00Z/PT1H"}`, e.runs)
	e.must("POST", "/v1/scheduler/iso8601", flaky, http.StatusNoContent)
	e.must("POST", "/v1/scheduler/iso8601", `{"name":"broken","command":"exit 3","retries":1,"mem":16,"schedule":"R/2030-01-01T00:00:00Z/PT1H"}`, http.StatusNoContent)
	e.must("POST", "/v1/scheduler/dependency", e.jobJSON("after", `"parents":["broken"]`), http.StatusNoContent)
	e.waitSuccesses("flaky", 1)
	e.waitFor("broken to fail", func() bool { return e.job("broken").ErrorCount == 1 })
	if h, _ := e.fw.History("flaky"); len(h) != 2 || h[0].State != "TASK_FAILED" || h[1].State != "TASK_FINISHED" || h[1].Attempts != 2 {
		t.Fatalf("flaky history %+v, want a failure then a success on the second attempt", h)
	}
	if h, _ := e.fw.History("broken"); len(h) != 2 || h[1].State != "TASK_FAILED" || h[1].Attempts != 2 {
		t.Fatalf("broken history %+v, want two failed attempts (retries 1)", h)
	}

	// Three instants pass, the last two minutes ago: epsilon is a minute.
	e.clock.Set(t0.Add(3*time.Hour + 2*time.Minute))
	e.waitFor("flaky's missed instants", func() bool { return e.job("flaky").MissedCount == 3 })
	j := e.job("flaky")
	if j.Run != nil || j.NextRun != "2030-01-01T04:00:00.000Z" {
		t.Fatalf("after missing: run %+v, next %s; want none and 04:00", j.Run, j.NextRun)
	}

	e.must("PUT", "/v1/scheduler/job/flaky", "", http.StatusNoContent)
	e.waitSuccesses("flaky", 2)
	if got := e.lines(); len(got) != 2 {
		t.Fatalf("runs %v: want flaky's scheduled and manual runs only (after never runs: its parent never succeeded)", got)
	}
	if j := e.job("after"); j.SuccessCount+j.ErrorCount != 0 || j.Run != nil {
		t.Fatalf("after ran although broken never succeeded: %+v", j)
	}
}

// TestJobRunsInItsContainer: a job with a DOCKER container runs its
// command in the image, with its volume; its task ID (ct:...:...) puts a
// ':' in the sandbox path, which the Docker containerizer mounts as is.
func TestJobRunsInItsContainer(t *testing.T) {
	client := dockertest.Engine(t) // the docker tier
	image := dockertest.BusyboxImage(t, client)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := docker.New(ctx, docker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	e := startEnvWith(t, clustertest.Options{Agent: func(_ int, cfg *agent.Config) {
		cfg.Docker = d
		dockertest.RemoveContainers(t, client, cfg.WorkDir)
	}})
	job := fmt.Sprintf(`{"name":"boxed","command":"echo \"$CHRONOS_JOB_NAME $MESOS_SANDBOX\" >> /runs/%s","mem":32,
		"schedule":"R/2030-01-01T00:00:00Z/PT1H","container":{"type":"DOCKER","image":%q,
		"volumes":[{"containerPath":"/runs","hostPath":%q,"mode":"RW"}]}}`, filepath.Base(e.runs), image, filepath.Dir(e.runs))
	e.must("POST", "/v1/scheduler/iso8601", job, http.StatusNoContent)
	e.waitSuccesses("boxed", 1)
	if got := e.lines(); len(got) != 1 || got[0] != "boxed@"+docker.SandboxMount {
		t.Fatalf("runs %v, want the job's line from inside its container", got)
	}
	h, _ := e.fw.History("boxed")
	if len(h) != 1 || !strings.Contains(h[0].TaskID, ":") {
		t.Fatalf("history %+v, want one run whose task ID has ':'", h)
	}
}
