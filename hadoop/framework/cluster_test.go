package framework_test

// Cluster tests: a real master and two real agents (clustertest), the
// framework in-process talking to them over HTTP, and the TaskTrackers as
// real executor processes (the agora binary, built in TestMain).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/hadoop/hadooptest"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/framework"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
)

var agoraBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agora-hadoop-test")
	if err != nil {
		panic(err)
	}
	agoraBin = filepath.Join(dir, "agora")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	args := []string{"build", "-o", agoraBin}
	if os.Getenv("AGORA_TEST_RACE_EXECUTOR") != "" { // the TaskTrackers under the race detector
		args = append(args, "-race")
	}
	out, err := exec.Command(goTool, append(args, "github.com/agora-cluster/agora/cmd/agora")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build agora: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// wait bounds every wait; it is never what a test asserts.
const wait = 3 * time.Minute

// env is a cluster with the Hadoop framework on it.
type env struct {
	t        *testing.T
	c        *clustertest.Cluster
	stateDir string
	fw       *framework.Framework
	cl       *client.Client
	stop     func()
}

// agentHosts are the agents' hostnames: different, so that attempts show
// where they ran, and both this machine.
var agentHosts = []string{"127.0.0.1", "127.0.0.2"}

func startEnv(t *testing.T) *env {
	t.Helper()
	base, _ := clustertest.PortRange(1000)
	c := clustertest.Start(t, clustertest.Options{
		Agents: 2,
		Agent: func(i int, cfg *agent.Config) {
			cfg.Hostname = agentHosts[i]
			cfg.Resources = fmt.Sprintf("cpus:2;mem:4096;disk:10000;ports:[%d-%d]", base+i*500, base+i*500+499)
		},
	})
	t.Cleanup(c.Stop) // before the agents' directories go
	e := &env{t: t, c: c, stateDir: t.TempDir()}
	e.startFramework()
	return e
}

func (e *env) startFramework() {
	t := e.t
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	props := conf.New()
	props.Set(framework.KeyIdleInterval, "1")
	fw, err := framework.New(framework.Config{
		Masters: []string{e.c.MasterAddr}, Listener: ln, StateDir: e.stateDir, Conf: props,
		ExecutorBinary: agoraBin,
		ExecutorEnv:    map[string]string{"AGORA_HADOOP_REPORT_INTERVAL": "200ms"},
		Logger:         testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()
	stopped := false
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("framework: %v", err)
			}
		case <-time.After(time.Minute):
			t.Errorf("the framework did not stop within a minute of its context ending")
		}
	}
	t.Cleanup(e.stop)
	e.fw, e.cl = fw, client.New(fw.URL())
	waitFor(t, "the framework to subscribe", func() bool {
		i, err := e.cl.Info(context.Background())
		return err == nil && i.Subscribed
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// run submits a Streaming command line and waits for the job to end.
func (e *env) run(dir string, args ...string) client.JobInfo {
	e.t.Helper()
	info, err := e.cl.Submit(context.Background(), client.SubmitRequest{Args: args, Cwd: dir})
	if err != nil {
		e.t.Fatalf("submit: %v", err)
	}
	return e.wait(info.ID)
}

func (e *env) wait(id string) client.JobInfo {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	j, err := e.cl.Wait(ctx, id, 100*time.Millisecond, nil)
	if err != nil {
		e.t.Fatalf("wait for %s: %v", id, err)
	}
	return j
}

func examples(t *testing.T) string { return hadooptest.Examples(t) }

func needPython(t *testing.T) { hadooptest.NeedPython(t) }

func writeCorpus(t *testing.T, path string, size int, seed uint64) {
	hadooptest.WriteCorpus(t, path, size, seed)
}

func unixCounts(t *testing.T, dir string) map[string]string { return hadooptest.UnixCounts(t, dir) }

func readOutput(t *testing.T, out string) map[string]string { return hadooptest.ReadOutput(t, out) }

func compareCounts(t *testing.T, got, want map[string]string) {
	hadooptest.CompareCounts(t, got, want)
}

// wordcount is the example job's command line.
func wordcount(ex, in, out string, extra ...string) []string {
	args := []string{
		"-D", "mapreduce.input.fileinputformat.split.maxsize=524288",
		"-files", filepath.Join(ex, "mapper.py") + "," + filepath.Join(ex, "reducer.py"),
		"-input", in, "-output", out,
		"-mapper", "mapper.py", "-reducer", "reducer.py", "-combiner", "reducer.py",
		"-numReduceTasks", "2",
	}
	return append(args, extra...)
}

// TestWordCountOnTwoAgents runs the example scripts as a Streaming job on
// two agents and checks the counts against tr | sort | uniq -c.
func TestWordCountOnTwoAgents(t *testing.T) {
	needPython(t)
	e := startEnv(t)
	dir := t.TempDir()
	writeCorpus(t, filepath.Join(dir, "in", "a.txt"), 2<<20, 1)
	writeCorpus(t, filepath.Join(dir, "in", "b.txt"), 1<<20, 2)
	j := e.run(dir, wordcount(examples(t), "in", "out")...)
	if j.State != jobtracker.JobSucceeded {
		t.Fatalf("job %s: %s", j.State, j.Error)
	}
	if j.Maps.Total < 6 || j.Reduces.Total != 2 {
		t.Errorf("%d maps, %d reduces; want at least 6 and 2", j.Maps.Total, j.Reduces.Total)
	}
	compareCounts(t, readOutput(t, filepath.Join(dir, "out")), unixCounts(t, filepath.Join(dir, "in")))
	if _, err := os.Stat(filepath.Join(dir, "out", "_SUCCESS")); err != nil {
		t.Error("no _SUCCESS marker:", err)
	}
	d, err := e.cl.Job(context.Background(), j.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]bool{}
	for _, task := range d.Tasks {
		for _, a := range task.Attempts {
			hosts[a.Host] = true
		}
	}
	if len(hosts) != 2 {
		t.Errorf("attempts ran on %v, want both agents", hosts)
	}
	if c := j.Counters; c.Get("org.apache.hadoop.mapreduce.TaskCounter", "MAP_INPUT_RECORDS") == 0 {
		t.Errorf("no map input records counted: %v", c)
	}
	// The history keeps the finished job, and the logs of its attempts.
	jobs, err := e.cl.Jobs(context.Background())
	if err != nil || len(jobs) != 1 || jobs[0].ID != j.ID {
		t.Errorf("jobs = %v, %v", jobs, err)
	}
	if _, err := e.cl.Log(context.Background(), d.Tasks[0].Attempts[0].ID.String()); err != nil {
		t.Errorf("log of %s: %v", d.Tasks[0].Attempts[0].ID, err)
	}
}

// TestExecutorKilledMidJob kills -9 a TaskTracker process while its maps
// run and its finished map outputs are still needed: its attempts run
// again elsewhere, the job succeeds, and the output is byte for byte that
// of an undisturbed run.
func TestExecutorKilledMidJob(t *testing.T) {
	needPython(t)
	e := startEnv(t)
	dir := t.TempDir()
	ex := examples(t)
	for i := 0; i < 4; i++ {
		writeCorpus(t, filepath.Join(dir, "in", fmt.Sprintf("%d.txt", i)), 400<<10, uint64(10+i))
	}
	slow := filepath.Join(dir, "slow_mapper.sh")
	os.WriteFile(slow, []byte("#!/bin/sh\nsleep 1\nexec ./mapper.py\n"), 0o755)
	args := func(out string) []string {
		return wordcount(ex, "in", out, "-file", slow, "-mapper", "slow_mapper.sh",
			"-D", "mapreduce.input.fileinputformat.split.maxsize=131072")
	}
	calm := e.run(dir, args("calm")...)
	if calm.State != jobtracker.JobSucceeded {
		t.Fatalf("undisturbed run: %s: %s", calm.State, calm.Error)
	}

	info, err := e.cl.Submit(context.Background(), client.SubmitRequest{Args: args("disturbed"), Cwd: dir})
	if err != nil {
		t.Fatal(err)
	}
	var victim client.TrackerInfo
	waitFor(t, "a tracker holding map output and running maps", func() bool {
		d, err := e.cl.Job(context.Background(), info.ID, true)
		if err != nil || d.Done() {
			t.Fatalf("job: %v %s", err, d.State)
		}
		done := map[string]bool{}
		for _, task := range d.Tasks {
			for _, a := range task.Attempts {
				if a.ID.Task.Kind == 'm' && a.State == jobtracker.AttemptSucceeded {
					done[a.Host] = true
				}
			}
		}
		ts, err := e.cl.Trackers(context.Background())
		if err != nil {
			return false
		}
		for _, tr := range ts {
			if tr.State == "RUNNING" && done[tr.Host] && tr.RunningMaps > 0 && tr.PID > 0 {
				victim = tr
				return true
			}
		}
		return false
	})
	t.Logf("killing tracker %s (pid %d) on %s", victim.ID, victim.PID, victim.Host)
	if err := syscallKill(victim.PID); err != nil {
		t.Fatal(err)
	}
	j := e.wait(info.ID)
	if j.State != jobtracker.JobSucceeded {
		t.Fatalf("job %s: %s", j.State, j.Error)
	}
	d, err := e.cl.Job(context.Background(), j.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, task := range d.Tasks {
		for _, a := range task.Attempts {
			if a.State == jobtracker.AttemptKilled && strings.Contains(a.Diagnostics, victim.ID) {
				lost++
			}
		}
	}
	if lost == 0 {
		t.Errorf("no attempt was lost with tracker %s", victim.ID)
	}
	for _, part := range []string{"part-00000", "part-00001"} {
		a, err1 := os.ReadFile(filepath.Join(dir, "calm", part))
		b, err2 := os.ReadFile(filepath.Join(dir, "disturbed", part))
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		if string(a) != string(b) {
			t.Errorf("%s differs from the undisturbed run's", part)
		}
	}
	compareCounts(t, readOutput(t, filepath.Join(dir, "disturbed")), unixCounts(t, filepath.Join(dir, "in")))
}

// TestFailingMapperFailsJob: a mapper that dies on one input line fails
// its task 4 times; the job fails, and `agora hadoop streaming` exits
// non-zero naming the task and showing the end of its stderr.
func TestFailingMapperFailsJob(t *testing.T) {
	e := startEnv(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "in"), 0o755)
	os.WriteFile(filepath.Join(dir, "in", "good.txt"), []byte(strings.Repeat("a b c\n", 1000)), 0o644)
	os.WriteFile(filepath.Join(dir, "in", "bad.txt"), []byte("x y\nz POISON z\nw\n"), 0o644)
	mapper := filepath.Join(dir, "picky.sh")
	os.WriteFile(mapper, []byte(`#!/bin/sh
while read -r line; do
  case "$line" in
    *POISON*) echo "picky: cannot parse record: $line" >&2; exit 3 ;;
  esac
  for w in $line; do printf '%s\t1\n' "$w"; done
done
`), 0o755)
	cmd := exec.Command(agoraBin, "hadoop", "streaming", "--hadoop", strings.TrimPrefix(e.fw.URL(), "http://"),
		"-input", "in", "-output", "out", "-mapper", "./picky.sh", "-reducer", "cat")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("agora hadoop streaming: %v, want exit status 1\n%s", err, out)
	}
	jobs, err := e.cl.Jobs(context.Background())
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs %v %v", jobs, err)
	}
	j := jobs[0]
	d, err := e.cl.Job(context.Background(), j.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	var bad jobtracker.Task
	for _, task := range d.Tasks {
		if task.State == jobtracker.TaskFailed {
			bad = task
		}
	}
	if j.State != jobtracker.JobFailed || len(bad.Attempts) != 4 {
		t.Fatalf("job %s, failed task %s with %d attempts; want FAILED after 4 attempts\n%s", j.State, bad.ID, len(bad.Attempts), out)
	}
	for _, a := range bad.Attempts {
		if a.State != jobtracker.AttemptFailed {
			t.Errorf("%s: %s", a.ID, a.State)
		}
	}
	for _, want := range []string{bad.ID.String() + " failed 4 times", "picky: cannot parse record: z POISON z", "subprocess failed with code 3"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
		if !strings.Contains(j.Error, want) {
			t.Errorf("job error lacks %q: %s", want, j.Error)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "_SUCCESS")); err == nil {
		t.Error("a failed job left _SUCCESS")
	}
	log, err := e.cl.Log(context.Background(), bad.Attempts[3].ID.String())
	if err != nil || !strings.Contains(log, "POISON") {
		t.Errorf("log of %s = %q, %v", bad.Attempts[3].ID, log, err)
	}
}

// TestBadSubmissionsAreRefused: each bad submission is refused with a
// message saying why, and nothing runs.
func TestBadSubmissionsAreRefused(t *testing.T) {
	e := startEnv(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "in"), 0o755)
	os.WriteFile(filepath.Join(dir, "in", "a.txt"), []byte("a b\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "exists"), 0o755)
	os.WriteFile(filepath.Join(dir, "noexec.sh"), []byte("#!/bin/sh\ncat\n"), 0o644)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing input", []string{"-input", "nope", "-output", "out", "-mapper", "cat"}, "nope"},
		{"existing output", []string{"-input", "in", "-output", "exists", "-mapper", "cat"}, "already exists"},
		{"unknown option", []string{"-input", "in", "-output", "out", "-mapper", "cat", "-frobnicate", "1"}, "unknown option -frobnicate"},
		{"mapper not found", []string{"-input", "in", "-output", "out", "-mapper", "no-such-mapper-program"}, "not found"},
		{"mapper not executable", []string{"-input", "in", "-output", "out", "-mapper", filepath.Join(dir, "noexec.sh")}, "not executable"},
	}
	for _, tc := range cases {
		_, err := e.cl.Submit(context.Background(), client.SubmitRequest{Args: tc.args, Cwd: dir})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to say %q", tc.name, err, tc.want)
		}
		// The command line refuses too, before anything runs.
		cmd := exec.Command(agoraBin, append([]string{"hadoop", "streaming", "--hadoop", strings.TrimPrefix(e.fw.URL(), "http://")}, tc.args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s: agora hadoop streaming: %v\n%s", tc.name, err, out)
		}
	}
	if jobs, err := e.cl.Jobs(context.Background()); err != nil || len(jobs) != 0 {
		t.Errorf("jobs after refusals: %v %v", jobs, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("a refused job created its output directory")
	}
	st, err := e.c.State()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range st.Frameworks {
		if len(f.Tasks)+len(f.CompletedTasks) > 0 {
			t.Errorf("framework %s ran tasks", f.Name)
		}
	}
}

func testLogger(t *testing.T) *slogLogger {
	if os.Getenv("AGORA_TEST_LOG") == "" {
		return nil
	}
	return newTestLogger(t)
}
