package framework_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/clustertest"
	sparkpi "github.com/agora-cluster/agora/examples/spark-pi"
	wordcount "github.com/agora-cluster/agora/examples/spark-wordcount"
	"github.com/agora-cluster/agora/frameworks/sandbox"
	"github.com/agora-cluster/agora/frameworks/state"
	"github.com/agora-cluster/agora/spark/dispatcher"
	"github.com/agora-cluster/agora/spark/framework"
	"github.com/agora-cluster/agora/spark/sparktest"
)

// sparkEnv is a real agora cluster of two agents, the real Spark's home,
// the test applications' jar, the cluster manager's jar and a running
// Spark scheduler.
type sparkEnv struct {
	t    *testing.T
	c    *clustertest.Cluster
	home string
	jar  string
	cm   string
	s    *framework.Scheduler
}

func newSparkEnv(t *testing.T) *sparkEnv {
	return newSparkEnvOn(t, nil)
}

// newSparkEnvOn is newSparkEnv with agent adjusting the agents' configurations.
func newSparkEnvOn(t *testing.T, agent func(i int, c *agent.Config)) *sparkEnv {
	return newSparkEnvWith(t, agent, nil)
}

// newSparkEnvWith is newSparkEnvOn with configure, if set, adjusting the
// scheduler's configuration (its Auth, its Listener wrapped in TLS).
func newSparkEnvWith(t *testing.T, agent func(i int, c *agent.Config), configure func(c *framework.Config)) *sparkEnv {
	if testing.Short() {
		t.Skip("runs the real Spark; not in -short")
	}
	home := sparktest.Home(t)
	e := &sparkEnv{t: t, home: home, jar: sparktest.PiJar(t, home), cm: sparktest.ClusterManagerJar(t),
		c: clustertest.Start(t, clustertest.Options{Agents: 2, AgentResources: "cpus:2;mem:3072;disk:10000;ports:[31000-32000]", Agent: agent})}
	e.startScheduler(configure)
	return e
}

// withScheduler is e with another scheduler on the same cluster,
// configured by configure (nil: an open one, plain HTTP).
func (e *sparkEnv) withScheduler(configure func(c *framework.Config)) *sparkEnv {
	o := *e
	o.startScheduler(configure)
	return &o
}

// startScheduler starts e's scheduler, stopped at the test's end.
func (e *sparkEnv) startScheduler(configure func(c *framework.Config)) {
	t := e.t
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := framework.Config{Masters: []string{e.c.MasterAddr}, Listener: ln, SparkHome: e.home,
		Logger: slog.New(slog.NewTextHandler(testLog{t}, nil))}
	if configure != nil {
		configure(&cfg)
	}
	s, err := framework.New(cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	e.s = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("scheduler: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the scheduler did not stop within 30s")
		}
	})
	e.poll("the scheduler to subscribe", time.Minute, s.Subscribed)
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (e *sparkEnv) poll(what string, within time.Duration, cond func() bool) {
	e.t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %v waiting for %s; applications: %+v", within, what, e.s.Apps())
		}
	}
}

// submit runs an unchanged spark-submit in client mode against the
// scheduler: mesos://HOST:PORT, the cluster manager's jar given with
// --jars.
func (e *sparkEnv) submit(conf []string, class string, args ...string) (string, error) {
	e.t.Helper()
	return e.submitEnv(nil, conf, class, args...)
}

// agoraEnv are the variables through which the cluster manager finds a
// token, credentials or a CA: a submission has only those it is given.
var agoraEnv = []string{"AGORA_SPARK_TOKEN", "AGORA_SPARK_CA_FILE", "AGORA_PRINCIPAL", "AGORA_SECRET", "AGORA_CA_FILE"}

// submitEnv is submit with env (NAME=VALUE) added to spark-submit's
// environment.
func (e *sparkEnv) submitEnv(env, conf []string, class string, args ...string) (string, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a := []string{"--master", "mesos://" + e.s.Addr(), "--deploy-mode", "client", "--jars", e.cm,
		"--driver-memory", "512m", "--conf", "spark.ui.enabled=false"}
	for _, c := range conf {
		a = append(a, "--conf", c)
	}
	a = append(append(a, "--class", class, e.jar), args...)
	cmd := exec.CommandContext(ctx, filepath.Join(e.home, "bin/spark-submit"), a...)
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); !slices.Contains(agoraEnv, name) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, "SPARK_LOCAL_IP=127.0.0.1"), env...)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		e.t.Fatalf("spark-submit %v did not end within 3 minutes:\n%s", a, out)
	}
	return string(out), err
}

type masterTask struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	FrameworkID string `json:"framework_id"`
	State       string `json:"state"`
	Resources   struct {
		CPUs float64 `json:"cpus"`
		Mem  float64 `json:"mem"`
	} `json:"resources"`
}

// executorTasks are the master's tasks (/master/tasks) of an application.
func (e *sparkEnv) executorTasks(appID string) []masterTask {
	e.t.Helper()
	resp, err := http.Get(e.c.MasterURL + "/master/tasks")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Tasks []masterTask `json:"tasks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		e.t.Fatal(err)
	}
	var out []masterTask
	for _, tk := range doc.Tasks {
		if strings.HasPrefix(tk.ID, appID+"-") {
			out = append(out, tk)
		}
	}
	return out
}

var appIDRe = regexp.MustCompile(`registered (\S+) with agora's Spark scheduler`)

// An unchanged spark-submit in client mode runs SparkPi with executors
// launched by the scheduler: two executors of one core and 512 MB + 384 MB
// overhead (spark.cores.max 2 on agents of 2 cpus each), agora tasks seen
// in the master's /master/tasks, the right result, and the executors'
// tasks end when the application does.
func TestSparkPiWithAgoraExecutors(t *testing.T) {
	e := newSparkEnv(t)
	out, err := e.submit([]string{"spark.executor.cores=1", "spark.executor.memory=512m", "spark.cores.max=2"},
		sparktest.PiClass, "20")
	if err != nil || !regexp.MustCompile(`Pi is roughly 3\.1\d*`).MatchString(out) {
		t.Fatalf("spark-submit: %v; want Pi is roughly 3.1...:\n%s", err, out)
	}
	m := appIDRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the driver did not register with the scheduler:\n%s", out)
	}
	app := m[1]
	st, ok := e.s.App(app)
	if !ok || st.State != framework.AppEnded {
		t.Fatalf("application %s = %+v; want ENDED", app, st)
	}
	if len(st.Executors) != 2 {
		t.Errorf("%d executors launched; want 2 (spark.cores.max 2, 1 core each): %+v", len(st.Executors), st.Executors)
	}
	var tasks []masterTask
	e.poll("the executors' tasks to end", time.Minute, func() bool {
		tasks = e.executorTasks(app)
		for _, tk := range tasks {
			if tk.State == "TASK_STAGING" || tk.State == "TASK_STARTING" || tk.State == "TASK_RUNNING" || tk.State == "TASK_KILLING" {
				return false
			}
		}
		return len(tasks) == len(st.Executors)
	})
	for _, tk := range tasks {
		if tk.Resources.CPUs != 1 || tk.Resources.Mem != 512+384 || !strings.HasPrefix(tk.Name, "Spark executor ") {
			t.Errorf("executor task %+v; want 1 cpu, 896 MB", tk)
		}
	}
	// The executors ran the job: Spark saw them register.
	if !strings.Contains(out, "Registered executor") && !strings.Contains(out, "executor 0") {
		t.Logf("driver output does not mention executors:\n%s", out)
	}
}

// An executor larger than any agent: the driver fails with the
// scheduler's message, the scheduler's API shows the application refused
// and no task was launched; an unknown application is a 404.
func TestExecutorLargerThanAnyAgent(t *testing.T) {
	e := newSparkEnv(t)
	out, err := e.submit([]string{"spark.executor.memory=64g"}, sparktest.PiClass, "2")
	if err == nil || !strings.Contains(out, "more than any agent has") {
		t.Fatalf("spark-submit with 64g executors: %v; want it to fail naming the agents' memory:\n%s", err, out)
	}
	apps := e.s.Apps()
	if len(apps) != 1 || apps[0].State != framework.AppRefused || !strings.Contains(apps[0].Message, "spark.executor.memory 65536 MB") {
		t.Fatalf("applications = %+v; want one REFUSED naming spark.executor.memory", apps)
	}
	resp, err := http.Get("http://" + e.s.Addr() + "/v1/applications/" + apps[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var got framework.AppStatus
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || got.State != framework.AppRefused || got.Message != apps[0].Message {
		t.Errorf("GET the application: %v %+v; want REFUSED with %q", err, got, apps[0].Message)
	}
	if tasks := e.executorTasks(apps[0].ID); len(tasks) != 0 {
		t.Errorf("tasks launched for a refused application: %+v", tasks)
	}
	for _, path := range []string{"/v1/applications/app-nope", "/v1/applications/app-nope/executors"} {
		method := http.MethodGet
		if strings.HasSuffix(path, "/executors") {
			method = http.MethodPost
		}
		req, _ := http.NewRequest(method, "http://"+e.s.Addr()+path, strings.NewReader(`{"total": 1}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Message string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body.Message, "no application app-nope") {
			t.Errorf("%s %s = %d %q; want 404 naming the application", method, path, resp.StatusCode, body.Message)
		}
	}
}

// Cluster mode with executors: an unchanged spark-submit --deploy-mode
// cluster of the Java SparkPi example (examples/spark-pi, built with Maven)
// to a dispatcher that serves the scheduler's API on its own port (one
// mesos://HOST:PORT); the driver is an agora task whose application gets
// its two executors as agora tasks of the scheduler, and π is right to the
// precision of its million darts.
func TestSparkPiClusterModeWithExecutors(t *testing.T) {
	e := newSparkEnv(t)
	example := sparktest.PiExampleJar(t)
	d, addr := e.dispatcher()

	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer scancel()
	cmd := exec.CommandContext(sctx, filepath.Join(e.home, "bin/spark-submit"), "--master", "mesos://"+addr,
		"--deploy-mode", "cluster", "--driver-memory", "512m", "--conf", "spark.ui.port=0",
		"--conf", "spark.executor.cores=1", "--conf", "spark.executor.memory=512m", "--conf", "spark.cores.max=2",
		"--class", sparkpi.Class, "file:"+example, "10")
	cmd.Env = append(os.Environ(), "SPARK_LOCAL_IP=127.0.0.1")
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	m := regexp.MustCompile(`"submissionId" : "(driver-\d{14}-\d{4})"`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("spark-submit --deploy-mode cluster: %v\n%s", err, out)
	}
	id := string(m[1])
	var dr dispatcher.Driver
	e.poll("the driver to end", 3*time.Minute, func() bool {
		dr, _ = d.Get(id)
		return dispatcher.Terminal(dr.State)
	})
	if dr.State != dispatcher.StateFinished {
		t.Fatalf("driver %s ended %s: %s", id, dr.State, dr.Message)
	}
	apps := e.s.Apps()
	if len(apps) != 1 || apps[0].State != framework.AppEnded || len(apps[0].Executors) != 2 {
		t.Fatalf("applications %+v; want one ENDED with 2 executors", apps)
	}
	e.poll("the executors' tasks to end", time.Minute, func() bool {
		tasks := e.executorTasks(apps[0].ID)
		for _, tk := range tasks {
			if tk.State == "TASK_STAGING" || tk.State == "TASK_STARTING" || tk.State == "TASK_RUNNING" || tk.State == "TASK_KILLING" {
				return false
			}
			if tk.Resources.CPUs != 1 || tk.Resources.Mem != 896 {
				t.Fatalf("executor task %+v; want 1 cpu, 896 MB", tk)
			}
		}
		return len(tasks) == 2
	})
	stdout := e.driverStdout(sctx, d, dr)
	pi, ok := sparkpi.Parse(stdout)
	if tol := sparkpi.Tolerance(10); !ok || math.Abs(pi-math.Pi) > tol {
		t.Errorf("the driver's stdout = %q; want Pi is roughly π ± %.4f", stdout, tol)
	}

	// The dispatcher's page shows the application with its driver: tied
	// by the frameworkId the dispatcher gave the driver, with the Spark UI
	// the driver registered and its two executors.
	rec := httptest.NewRecorder()
	d.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/drivers", nil))
	var page struct {
		Drivers []struct {
			ID          string                  `json:"submissionId"`
			Application *dispatcher.Application `json:"application"`
		} `json:"drivers"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || len(page.Drivers) != 1 || page.Drivers[0].ID != id {
		t.Fatalf("GET /api/v1/drivers: %d %s", rec.Code, rec.Body)
	}
	if a := page.Drivers[0].Application; a == nil || a.ID != apps[0].ID || len(a.Executors) != 2 || !strings.HasPrefix(a.UIURL, "http://") {
		t.Errorf("the page's application of driver %s: %+v; want %s with 2 executors and its Spark UI", id, a, apps[0].ID)
	}
}

// dispatcher starts a cluster-mode dispatcher that serves the scheduler's
// API on its own port (one mesos://HOST:PORT), stopped at the test's end.
func (e *sparkEnv) dispatcher() (*dispatcher.Dispatcher, string) {
	t := e.t
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	d, err := dispatcher.New(dispatcher.Config{Masters: []string{e.c.MasterAddr}, Listener: ln, WorkDir: t.TempDir(),
		SparkHome: e.home, ExecutorMaster: "mesos://" + addr, ClusterManagerJar: e.cm, Extra: e.s.Handler(),
		Applications: e.s.DispatcherApps, Logger: slog.New(slog.NewTextHandler(testLog{t}, nil))})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the dispatcher did not stop within 30s")
		}
	})
	e.poll("the dispatcher to subscribe", time.Minute, d.Subscribed)
	return d, addr
}

// driverStdout is a cluster-mode driver's stdout from its sandbox.
func (e *sparkEnv) driverStdout(ctx context.Context, d *dispatcher.Dispatcher, dr dispatcher.Driver) string {
	e.t.Helper()
	sc := state.Client{}
	agent, err := sc.Agent(ctx, e.c.MasterAddr, dr.AgentID)
	if err != nil {
		e.t.Fatal(err)
	}
	dir, err := sandbox.Locate(ctx, sc, agent.Endpoint(), d.FrameworkID(), dr.TaskID, 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "stdout"))
	return string(b)
}

// kill -9 of an executor in the middle of a job: Spark runs its tasks
// again elsewhere, the scheduler launches a replacement (the agent is not
// blocklisted after one failure), and the job's result is unchanged.
func TestExecutorKilledMidJob(t *testing.T) {
	e := newSparkEnv(t)
	outPath := filepath.Join(t.TempDir(), "driver.log")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(e.home, "bin/spark-submit"), "--master", "mesos://"+e.s.Addr(),
		"--jars", e.cm, "--driver-memory", "512m", "--conf", "spark.ui.enabled=false",
		"--conf", "spark.executor.cores=1", "--conf", "spark.executor.memory=512m", "--conf", "spark.cores.max=2",
		"--class", sparktest.SlowSumClass, e.jar, "24", "1500")
	cmd.Env = append(os.Environ(), "SPARK_LOCAL_IP=127.0.0.1")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	log := func() string { b, _ := os.ReadFile(outPath); return string(b) }

	// Executor 0 is running a task: kill its JVM.
	var app string
	started := regexp.MustCompile(`Starting task \S+ in stage \S+ \(TID \d+\) \(\S+, executor 0,`)
	e.poll("a task on executor 0", 2*time.Minute, func() bool {
		if m := appIDRe.FindStringSubmatch(log()); m != nil {
			app = m[1]
		}
		return app != "" && started.MatchString(log())
	})
	pid := executorPID(t, app, "0")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
	select {
	case err := <-done:
		if err != nil || !strings.Contains(log(), "sum is 300") {
			t.Fatalf("spark-submit: %v; want sum is 300:\n%s", err, log())
		}
	case <-ctx.Done():
		t.Fatalf("the job did not end:\n%s", log())
	}
	st, _ := e.s.App(app)
	if len(st.Executors) < 3 || st.Executors[0].State != "TASK_FAILED" {
		t.Errorf("executors %+v; want executor 0 TASK_FAILED and a replacement", st.Executors)
	}
	if len(st.Blocklisted) != 0 {
		t.Errorf("blocklisted %v after one failure", st.Blocklisted)
	}
	if !regexp.MustCompile(`Lost executor 0|ExecutorLostFailure|executor 0.*lost`).MatchString(log()) {
		t.Errorf("the driver did not see executor 0 lost:\n%s", log())
	}
}

// executorPID finds the JVM of an application's executor by its command
// line (spark-class execs java with CoarseGrainedExecutorBackend's
// arguments).
func executorPID(t *testing.T, app, id string) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if slices.Contains(args, "org.apache.spark.executor.CoarseGrainedExecutorBackend") &&
			argAfter(args, "--app-id") == app && argAfter(args, "--executor-id") == id {
			return pid
		}
	}
	t.Fatalf("no process of executor %s of %s", id, app)
	return 0
}

func argAfter(args []string, flag string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return args[i+1]
		}
	}
	return ""
}

// Dynamic allocation with the external shuffle service: a job whose two
// stages share a shuffle and are apart by an idle phase. Its executors
// are released while it idles (finished agora tasks in /master/tasks), new
// ones are launched for the second stage, and that stage reads the first's
// shuffle files from the agents' shuffle services: the counts are right
// and no map task ran twice. The shuffle services, agora tasks too, end
// with the application.
func TestDynamicAllocationWithShuffleService(t *testing.T) {
	e := newSparkEnv(t)
	out, err := e.submit([]string{"spark.executor.cores=1", "spark.executor.memory=512m",
		"spark.dynamicAllocation.enabled=true", "spark.shuffle.service.enabled=true",
		"spark.dynamicAllocation.minExecutors=0", "spark.dynamicAllocation.initialExecutors=2",
		"spark.dynamicAllocation.maxExecutors=2", "spark.dynamicAllocation.executorIdleTimeout=3s",
		"spark.dynamicAllocation.schedulerBacklogTimeout=1s"},
		sparktest.IdleShuffleClass, "2000", "120")
	if err != nil {
		t.Fatalf("spark-submit: %v\n%s", err, out)
	}
	m := appIDRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the driver did not register with the scheduler:\n%s", out)
	}
	app := m[1]
	if !strings.Contains(out, "released\n") {
		t.Errorf("the executors were not released in the idle phase:\n%s", out)
	}
	want := "counts 0=200,1=200,2=200,3=200,4=200,5=200,6=200,7=200,8=200,9=200"
	if !strings.Contains(out, want) {
		t.Errorf("want %q:\n%s", want, out)
	}
	if !strings.Contains(out, "map tasks 4\n") || strings.Contains(out, "FetchFailed") {
		t.Errorf("the second stage did not read the first's shuffle files (map tasks run again or fetches failed):\n%s", out)
	}
	st, _ := e.s.App(app)
	if len(st.Executors) < 2 {
		t.Fatalf("executors %+v; want some", st.Executors)
	}
	// Released ones were killed on Spark's request while the application
	// ran; later ones were launched after them.
	var killed, later int
	for _, x := range st.Executors {
		if x.Killed {
			killed++
		}
	}
	idle := regexp.MustCompile(`(?m)Requesting to kill executor\(s\) (\S+)`).FindAllStringSubmatch(out, -1)
	if len(idle) == 0 {
		t.Errorf("the driver asked to kill no idle executor:\n%s", out)
	}
	later = len(st.Executors) - len(firstRound(st.Executors))
	if later == 0 {
		t.Errorf("no executor launched for the second stage: %+v", st.Executors)
	}
	var tasks []masterTask
	e.poll("the executors' tasks to end", time.Minute, func() bool {
		tasks = e.executorTasks(app)
		return len(tasks) == len(st.Executors) && allEnded(tasks)
	})
	finished := 0
	for _, tk := range tasks {
		if tk.State == "TASK_KILLED" || tk.State == "TASK_FINISHED" {
			finished++
		}
	}
	if finished != len(tasks) {
		t.Errorf("executor tasks %+v; want all killed or finished", tasks)
	}
	var ss []masterTask
	e.poll("the shuffle services to end", time.Minute, func() bool {
		ss = e.executorTasks("spark-shuffle-service")
		return len(ss) > 0 && allEnded(ss)
	})
	for _, tk := range ss {
		if tk.State != "TASK_KILLED" || tk.Resources.CPUs != 0.1 || tk.Resources.Mem != 384 {
			t.Errorf("shuffle service task %+v; want 0.1 cpus, 384 MB, killed when the application ended", tk)
		}
	}
	t.Logf("executors %d (%d killed on request); shuffle services %+v", len(st.Executors), killed, ss)
}

// Locality: a job whose partitions prefer one agent's host gets its
// executors there, though both agents offer room (Spark names the host
// with its requested total, the scheduler passes over the other's offers
// for spark.locality.wait); its executors released, a job preferring the
// other host gets executors on that one. The agents are told apart by
// their host names ("localhost" and "127.0.0.1", both this machine).
func TestExecutorsWhereTheInputIs(t *testing.T) {
	e := newSparkEnvOn(t, func(i int, c *agent.Config) {
		if i == 1 {
			c.Hostname = "127.0.0.1"
		}
	})
	out, err := e.submit([]string{"spark.executor.cores=1", "spark.executor.memory=512m",
		"spark.dynamicAllocation.enabled=true", "spark.dynamicAllocation.shuffleTracking.enabled=true",
		"spark.dynamicAllocation.minExecutors=0", "spark.dynamicAllocation.initialExecutors=0",
		"spark.dynamicAllocation.maxExecutors=2", "spark.dynamicAllocation.executorIdleTimeout=2s",
		"spark.dynamicAllocation.schedulerBacklogTimeout=1s", "spark.locality.wait=60s"},
		sparktest.PreferredClass, "127.0.0.1", "localhost")
	if err != nil {
		t.Fatalf("spark-submit: %v\n%s", err, out)
	}
	m := appIDRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the driver did not register with the scheduler:\n%s", out)
	}
	for _, want := range []string{"job 1 on 127.0.0.1 ran on [127.0.0.1]\n", "job 2 on localhost ran on [localhost]\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q:\n%s", want, out)
		}
	}
	if n := len(regexp.MustCompile(`(?m)^released$`).FindAllString(out, -1)); n != 2 {
		t.Errorf("the executors were released after %d of the 2 jobs:\n%s", n, out)
	}
	// The executors in launch order: those of job 1 on 127.0.0.1, then
	// those of job 2 on localhost.
	st, _ := e.s.App(m[1])
	var seq []string
	for _, x := range st.Executors {
		if len(seq) == 0 || seq[len(seq)-1] != x.Hostname {
			seq = append(seq, x.Hostname)
		}
	}
	if !slices.Equal(seq, []string{"127.0.0.1", "localhost"}) {
		t.Errorf("executors %+v; want the first ones on 127.0.0.1, the later ones on localhost", st.Executors)
	}
	hosts := map[string]int{}
	for _, x := range st.Executors {
		hosts[x.Hostname]++
	}
	e.poll("the executors' tasks to end", time.Minute, func() bool {
		tasks := e.executorTasks(m[1])
		return len(tasks) == len(st.Executors) && allEnded(tasks)
	})
	t.Logf("executors by host %v", hosts)
}

// firstRound are the executors launched before the first was released.
func firstRound(xs []framework.Executor) []framework.Executor {
	var out []framework.Executor
	for _, x := range xs {
		if x.ID == "0" || x.ID == "1" {
			out = append(out, x)
		}
	}
	return out
}

func allEnded(tasks []masterTask) bool {
	for _, tk := range tasks {
		switch tk.State {
		case "TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING":
			return false
		}
	}
	return true
}

// The PySpark word count (examples/spark-wordcount) run by an unchanged
// spark-submit in client mode and in cluster mode through the dispatcher,
// on one cluster: its executors are agora tasks, their Python workers run
// the script's functions, and the counts are exactly those counted here.
// Then bad input on the same cluster: an unknown main class and missing
// application files, in both modes, are clear errors through spark-submit,
// and nothing is left running.
func TestPySparkWordCount(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real Spark; not in -short")
	}
	home := sparktest.PySparkHome(t)
	e := newSparkEnv(t)
	e.home = home
	dir := t.TempDir()
	script := filepath.Join(dir, "wordcount.py")
	input := filepath.Join(dir, "input.txt")
	text := string(wordcount.Input) + manyWords(20000)
	if err := os.WriteFile(script, wordcount.Script, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(input, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	want := wordcount.Count(text)
	check := func(t *testing.T, out string) {
		t.Helper()
		got, totalOK := wordcount.Parse(out)
		if !totalOK || !maps.Equal(got, want) {
			t.Fatalf("counts differ (total line right: %v): got %d words, want %d\n%s", totalOK, len(got), len(want), out)
		}
	}
	conf := []string{"--conf", "spark.ui.enabled=false", "--conf", "spark.executor.cores=1",
		"--conf", "spark.executor.memory=512m", "--conf", "spark.cores.max=2"}

	t.Run("client", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		args := append([]string{"--master", "mesos://" + e.s.Addr(), "--deploy-mode", "client", "--jars", e.cm,
			"--driver-memory", "512m"}, conf...)
		cmd := exec.CommandContext(ctx, filepath.Join(home, "bin/spark-submit"), append(args, script, input, "--partitions", "4")...)
		cmd.Env = append(os.Environ(), "SPARK_LOCAL_IP=127.0.0.1")
		cmd.WaitDelay = 10 * time.Second
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("spark-submit %s: %v\n%s", script, err, stderr.String())
		}
		check(t, stdout.String())
		m := appIDRe.FindStringSubmatch(stderr.String())
		if m == nil {
			t.Fatalf("the driver did not register with the scheduler:\n%s", stderr.String())
		}
		if st, _ := e.s.App(m[1]); len(st.Executors) == 0 {
			t.Errorf("no executor launched for %s", m[1])
		}
	})

	d, addr := e.dispatcher()
	t.Run("cluster", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		args := append([]string{"--master", "mesos://" + addr, "--deploy-mode", "cluster", "--driver-memory", "512m",
			"--conf", "spark.mesos.executor.home=" + home}, conf...)
		cmd := exec.CommandContext(ctx, filepath.Join(home, "bin/spark-submit"), append(args, "file:"+script, input)...)
		cmd.Env = append(os.Environ(), "SPARK_LOCAL_IP=127.0.0.1")
		cmd.WaitDelay = 10 * time.Second
		out, err := cmd.CombinedOutput()
		m := regexp.MustCompile(`"submissionId" : "(driver-\d{14}-\d{4})"`).FindSubmatch(out)
		if err != nil || m == nil {
			t.Fatalf("spark-submit --deploy-mode cluster: %v\n%s", err, out)
		}
		var dr dispatcher.Driver
		e.poll("the driver to end", 3*time.Minute, func() bool {
			dr, _ = d.Get(string(m[1]))
			return dispatcher.Terminal(dr.State)
		})
		if dr.State != dispatcher.StateFinished {
			t.Fatalf("driver %s ended %s: %s", dr.ID, dr.State, dr.Message)
		}
		check(t, e.driverStdout(ctx, d, dr))
	})

	t.Run("bad input", func(t *testing.T) {
		before := len(e.s.Apps())
		submit := func(args ...string) (string, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(home, "bin/spark-submit"), args...)
			cmd.Env = append(os.Environ(), "SPARK_LOCAL_IP=127.0.0.1")
			cmd.WaitDelay = 10 * time.Second
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		// Client mode: spark-submit itself fails, naming what is wrong.
		client := append([]string{"--master", "mesos://" + e.s.Addr(), "--deploy-mode", "client", "--jars", e.cm,
			"--driver-memory", "512m"}, conf...)
		out, err := submit(append(client, "--class", "agora.examples.NoSuchMain", e.jar)...)
		if err == nil || !strings.Contains(out, "agora.examples.NoSuchMain") {
			t.Errorf("client mode, unknown main class: %v; want a failure naming the class:\n%s", err, out)
		}
		out, err = submit(append(client, filepath.Join(dir, "no-such-app.py"), input)...)
		if err == nil || !strings.Contains(out, "no-such-app.py") {
			t.Errorf("client mode, missing script: %v; want a failure naming it:\n%s", err, out)
		}
		// Cluster mode: the driver fails, and --status says why.
		cluster := append([]string{"--master", "mesos://" + addr, "--deploy-mode", "cluster", "--driver-memory", "512m"}, conf...)
		for _, tc := range []struct {
			name, want string
			args       []string
		}{
			{"unknown main class", "main class agora.examples.NoSuchMain not found", []string{"--class", "agora.examples.NoSuchMain", "file:" + e.jar}},
			{"missing script", "no-such-app.py", []string{"file:" + filepath.Join(dir, "no-such-app.py"), input}},
			{"missing jar", "no-such-app.jar", []string{"--class", sparktest.PiClass, "file:" + filepath.Join(dir, "no-such-app.jar")}},
		} {
			out, err := submit(append(cluster, tc.args...)...)
			m := regexp.MustCompile(`"submissionId" : "(driver-\d{14}-\d{4})"`).FindStringSubmatch(out)
			if err != nil || m == nil {
				t.Fatalf("%s: spark-submit --deploy-mode cluster: %v\n%s", tc.name, err, out)
			}
			var dr dispatcher.Driver
			e.poll("the driver to end", 3*time.Minute, func() bool {
				dr, _ = d.Get(m[1])
				return dispatcher.Terminal(dr.State)
			})
			status, _ := submit("--master", "mesos://"+addr, "--status", m[1])
			if dr.State != dispatcher.StateFailed || !strings.Contains(dr.Message, tc.want) ||
				!strings.Contains(status, `"driverState" : "FAILED"`) || !strings.Contains(status, tc.want) {
				t.Errorf("%s: driver %s %s %q; want FAILED naming %q; --status:\n%s", tc.name, dr.ID, dr.State, dr.Message, tc.want, status)
			}
		}
		// None of them got executors, and nothing is left running.
		if apps := e.s.Apps(); len(apps) != before {
			t.Errorf("applications registered by failed submissions: %+v", apps[before:])
		}
		e.c.WaitFor("no task left running", func(s *clustertest.State) bool {
			for _, f := range s.Frameworks {
				if len(f.Tasks) > 0 {
					return false
				}
			}
			return true
		})
	})
}

// manyWords is n lines of words drawn (deterministically) from a small
// vocabulary, so that every word is counted many times across partitions.
func manyWords(n int) string {
	vocab := strings.Fields("agent master offer task executor driver stage shuffle spark agora frame work it's 42 zeta")
	var b strings.Builder
	x := uint32(7)
	for i := 0; i < n; i++ {
		for j := 0; j < 1+i%5; j++ {
			x = x*1664525 + 1013904223
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(vocab[int(x>>16)%len(vocab)])
		}
		b.WriteByte('\n')
	}
	return b.String()
}
