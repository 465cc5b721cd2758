package dispatcher_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/frameworks/sandbox"
	"github.com/agora-cluster/agora/frameworks/state"
	"github.com/agora-cluster/agora/spark/dispatcher"
	"github.com/agora-cluster/agora/spark/sparktest"
)

// sparkEnv is a real agora cluster, the real Spark's home, the test
// applications' jar and a dispatcher that can be restarted on its work
// directory and address.
type sparkEnv struct {
	t    *testing.T
	c    *clustertest.Cluster
	home string
	jar  string
	dir  string
	addr string
	d    *dispatcher.Dispatcher
	stop func()
}

func newSparkEnv(t *testing.T) *sparkEnv {
	if testing.Short() {
		t.Skip("runs the real Spark; not in -short")
	}
	home := sparktest.Home(t)
	e := &sparkEnv{t: t, home: home, jar: sparktest.PiJar(t, home), dir: t.TempDir(),
		c: clustertest.Start(t, clustertest.Options{AgentResources: "cpus:4;mem:4096;disk:10000;ports:[31000-32000]"})}
	e.start()
	t.Cleanup(func() { e.stop() })
	return e
}

// start runs a dispatcher on the work directory (and, after the first,
// on the same address) and waits until it is subscribed.
func (e *sparkEnv) start() {
	e.t.Helper()
	addr := e.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		e.t.Fatalf("listen on %s: %v", addr, err)
	}
	e.addr = ln.Addr().String()
	d, err := dispatcher.New(dispatcher.Config{Masters: []string{e.c.MasterAddr}, Listener: ln, WorkDir: e.dir,
		SparkHome: e.home, MaxRetryWait: 2 * time.Second})
	if err != nil {
		ln.Close()
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	e.d = d
	e.stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("dispatcher: %v", err)
			}
		case <-time.After(30 * time.Second):
			e.t.Error("the dispatcher did not stop within 30s")
		}
	}
	e.poll("the dispatcher to subscribe", 60*time.Second, d.Subscribed)
}

func (e *sparkEnv) poll(what string, within time.Duration, cond func() bool) {
	e.t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %v waiting for %s; drivers: %+v", within, what, e.d.Drivers())
		}
	}
}

// submit runs the real spark-submit against the dispatcher; its output is
// stdout and stderr together (spark-submit logs the responses).
func (e *sparkEnv) submit(args ...string) (string, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(e.home, "bin/spark-submit"),
		append([]string{"--master", "mesos://" + e.addr}, args...)...)
	cmd.Env = append(os.Environ(), "SPARK_LOCAL_IP=127.0.0.1")
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		e.t.Fatalf("spark-submit %v did not end within 3 minutes:\n%s", args, out)
	}
	return string(out), err
}

var submissionID = regexp.MustCompile(`"submissionId" : "(driver-\d{14}-\d{4})"`)

// create submits an application in cluster mode and returns its
// submission ID.
func (e *sparkEnv) create(conf []string, class string, args ...string) string {
	e.t.Helper()
	a := []string{"--deploy-mode", "cluster", "--driver-memory", "512m", "--conf", "spark.ui.enabled=false"}
	for _, c := range conf {
		a = append(a, "--conf", c)
	}
	a = append(a, "--class", class, "file:"+e.jar)
	out, err := e.submit(append(a, args...)...)
	m := submissionID.FindStringSubmatch(out)
	if err != nil || m == nil || !strings.Contains(out, `"success" : true`) {
		e.t.Fatalf("spark-submit --deploy-mode cluster: %v; no submission ID:\n%s", err, out)
	}
	return m[1]
}

func (e *sparkEnv) waitState(id, want string, within time.Duration) dispatcher.Driver {
	e.t.Helper()
	var dr dispatcher.Driver
	e.poll(id+" "+want, within, func() bool {
		dr, _ = e.d.Get(id)
		return dr.State == want
	})
	return dr
}

// stdout reads the sandbox stdout of a driver's task.
func (e *sparkEnv) stdout(dr dispatcher.Driver) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sc := state.Client{}
	agent, err := sc.Agent(ctx, e.c.MasterAddr, dr.AgentID)
	if err != nil {
		e.t.Fatal(err)
	}
	dir, err := sandbox.Locate(ctx, sc, agent.Endpoint(), e.d.FrameworkID(), dr.TaskID, 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "stdout"))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// An unchanged Spark 3.5 spark-submit runs SparkPi in cluster mode: the
// driver is an agora task with spark.driver.cores and spark.driver.memory
// plus overhead, it finishes with π on its stdout, and --status reports
// FINISHED; an unknown submission is NOT_FOUND.
func TestSparkPiInClusterMode(t *testing.T) {
	e := newSparkEnv(t)
	id := e.create([]string{"spark.driver.cores=2"}, sparktest.PiClass, "10")
	dr := e.waitState(id, dispatcher.StateFinished, 3*time.Minute)
	if out := e.stdout(dr); !regexp.MustCompile(`Pi is roughly 3\.1\d*`).MatchString(out) {
		t.Errorf("the driver's stdout = %q; want Pi is roughly 3.1...", out)
	}
	s := e.c.WaitFor("the driver's task", func(s *clustertest.State) bool {
		for _, f := range append(s.Frameworks, s.CompletedFrameworks...) {
			for _, tk := range f.CompletedTasks {
				if tk.ID == id {
					return true
				}
			}
		}
		return false
	})
	for _, f := range append(s.Frameworks, s.CompletedFrameworks...) {
		for _, tk := range f.CompletedTasks {
			if tk.ID != id {
				continue
			}
			if tk.Name != "Driver for "+sparktest.PiClass || tk.State != "TASK_FINISHED" ||
				tk.Resources.CPUs != 2 || tk.Resources.Mem != 512+384 {
				t.Errorf("the driver's task = %+v; want %q, TASK_FINISHED, 2 cpus, 896 MB", tk, "Driver for "+sparktest.PiClass)
			}
		}
	}
	out, err := e.submit("--status", id)
	if err != nil || !strings.Contains(out, `"driverState" : "FINISHED"`) {
		t.Errorf("spark-submit --status %s: %v\n%s", id, err, out)
	}
	// success=false, as Spark's dispatcher answers: spark-submit's client
	// calls that unexpected.
	out, _ = e.submit("--status", "driver-20000101000000-0042")
	if !strings.Contains(out, "unexpected type SubmissionStatusResponse") {
		t.Errorf("spark-submit --status of an unknown submission:\n%s", out)
	}
}

// spark-submit --kill kills a running driver (KILLED, its task killed)
// and a queued one; a second kill is refused with Spark's message. A
// dispatcher restarted on its work directory keeps its queue (a driver no
// agent can hold stays QUEUED) and takes its running driver back.
func TestKillAndRestart(t *testing.T) {
	e := newSparkEnv(t)
	running := e.create(nil, sparktest.SleepClass, "600")
	queued := e.create([]string{"spark.driver.cores=16"}, sparktest.PiClass)
	dr := e.waitState(running, dispatcher.StateRunning, time.Minute)
	e.poll("the sleeping driver's task to run", 2*time.Minute, func() bool {
		dr, _ = e.d.Get(running)
		return dr.TaskState == "TASK_RUNNING"
	})
	if dr, _ := e.d.Get(queued); dr.State != dispatcher.StateQueued {
		t.Fatalf("a driver asking for 16 cpus is %s; want QUEUED", dr.State)
	}

	before := dr
	e.stop()
	e.start()
	if dr, ok := e.d.Get(queued); !ok || dr.State != dispatcher.StateQueued {
		t.Errorf("after a restart the queued driver is %+v; want QUEUED", dr)
	}
	out, err := e.submit("--status", queued)
	if err != nil || !strings.Contains(out, `"driverState" : "QUEUED"`) {
		t.Errorf("spark-submit --status %s after a restart: %v\n%s", queued, err, out)
	}
	e.poll("the running driver reconciled", time.Minute, func() bool {
		dr, _ = e.d.Get(running)
		return dr.State == dispatcher.StateRunning && dr.TaskState == "TASK_RUNNING"
	})
	// Reconciled, not launched again: the same task, launched once.
	if dr.TaskID != before.TaskID || dr.Retries != 0 || !dr.Launched.Equal(before.Launched) || dr.AgentID != before.AgentID {
		t.Errorf("after a restart the running driver is %+v; want its task %s on %s, launched at %v, not relaunched",
			dr, before.TaskID, before.AgentID, before.Launched)
	}

	out, err = e.submit("--kill", running)
	if err != nil || !strings.Contains(out, "Killing running driver") {
		t.Errorf("spark-submit --kill %s: %v\n%s", running, err, out)
	}
	dr = e.waitState(running, dispatcher.StateKilled, time.Minute)
	if dr.TaskState != "TASK_KILLED" {
		t.Errorf("the killed driver's task ended %s; want TASK_KILLED", dr.TaskState)
	}
	if out := e.stdout(dr); !strings.Contains(out, "started 3") || strings.Contains(out, "woke") {
		t.Errorf("the killed driver's stdout = %q; want it started and not woken", out)
	}
	out, _ = e.submit("--kill", running)
	if !strings.Contains(out, "Driver already terminated") || !strings.Contains(out, `"success" : false`) {
		t.Errorf("a second --kill:\n%s", out)
	}
	out, err = e.submit("--kill", queued)
	if err != nil || !strings.Contains(out, "Removed driver while it's still pending") {
		t.Errorf("spark-submit --kill of a queued driver: %v\n%s", err, out)
	}
	e.waitState(queued, dispatcher.StateKilled, 10*time.Second)
	e.c.WaitFor("no driver task left running", func(s *clustertest.State) bool {
		for _, f := range s.Frameworks {
			if len(f.Tasks) > 0 {
				return false
			}
		}
		return true
	})
}

// A driver whose application fails ends FAILED with the task's status
// (an unknown main class: spark-submit's own refusal in its stderr); with
// --supervise it is launched again, as ID-retry-N, until it is killed.
func TestFailingAndSupervisedDrivers(t *testing.T) {
	e := newSparkEnv(t)
	bad := e.create(nil, "agora.examples.NoSuchPi")
	dr := e.waitState(bad, dispatcher.StateFailed, 2*time.Minute)
	if dr.TaskState != "TASK_FAILED" || dr.Retries != 0 {
		t.Errorf("an unknown main class: task %s, %d retries; want TASK_FAILED, none", dr.TaskState, dr.Retries)
	}

	// An application the dispatcher cannot fetch: Spark's ErrorResponse,
	// which spark-submit prints, and nothing queued.
	out, _ := e.submit("--deploy-mode", "cluster", "--class", sparktest.PiClass, "s3a://bucket/spark-app.jar")
	if !strings.Contains(out, "Server responded with error") || !strings.Contains(out, "the s3a: scheme is not supported") {
		t.Errorf("spark-submit of an s3a: jar:\n%s", out)
	}
	if n := len(e.d.Drivers()); n != 1 {
		t.Errorf("%d drivers after a refused submission; want 1", n)
	}

	// A missing application jar: the fetch fails, and the status says so.
	out, err := e.submit("--deploy-mode", "cluster", "--class", sparktest.PiClass, "file:/nonexistent/spark-app.jar")
	m := submissionID.FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("spark-submit of a missing jar: %v\n%s", err, out)
	}
	dr = e.waitState(m[1], dispatcher.StateFailed, time.Minute)
	if !strings.Contains(dr.Message, "spark-app.jar") {
		t.Errorf("a missing jar: the driver's message %q does not name it", dr.Message)
	}

	out, err = e.submit("--deploy-mode", "cluster", "--supervise", "--driver-memory", "512m",
		"--class", sparktest.PiClass, "file:"+e.jar, "not-a-number")
	m = submissionID.FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("spark-submit --supervise: %v\n%s", err, out)
	}
	sup := m[1]
	e.poll("the supervised driver's second relaunch", 3*time.Minute, func() bool {
		dr, _ = e.d.Get(sup)
		return dr.Retries >= 2
	})
	if dr.TaskID != sup+"-retry-"+strconv.Itoa(dr.Retries) || dr.Supervise != true {
		t.Errorf("the relaunched driver: %+v", dr)
	}
	out, err = e.submit("--kill", sup)
	if err != nil || !regexp.MustCompile(`Killing running driver|Removed driver while it's being retried`).MatchString(out) {
		t.Errorf("spark-submit --kill of a supervised driver: %v\n%s", err, out)
	}
	dr = e.waitState(sup, dispatcher.StateKilled, time.Minute)
	retries := dr.Retries
	e.c.WaitFor("no driver task left running", func(s *clustertest.State) bool {
		for _, f := range s.Frameworks {
			if len(f.Tasks) > 0 {
				return false
			}
		}
		return true
	})
	if dr, _ := e.d.Get(sup); dr.Retries != retries || dr.State != dispatcher.StateKilled {
		t.Errorf("the killed supervised driver went on: %+v", dr)
	}
}
