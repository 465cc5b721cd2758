package standalone_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
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
	"github.com/agora-cluster/agora/spark/sparktest"
	"github.com/agora-cluster/agora/spark/standalone"
)

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type masterTask struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	State     string `json:"state"`
	Resources struct {
		CPUs float64 `json:"cpus"`
		Mem  float64 `json:"mem"`
	} `json:"resources"`
}

// tasks are the agora master's tasks (/master/tasks) whose IDs start
// with prefix.
func tasks(t *testing.T, c *clustertest.Cluster, prefix string) []masterTask {
	t.Helper()
	resp, err := http.Get(c.MasterURL + "/master/tasks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Tasks []masterTask `json:"tasks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	var out []masterTask
	for _, tk := range doc.Tasks {
		if strings.HasPrefix(tk.ID, prefix) {
			out = append(out, tk)
		}
	}
	return out
}

func running(tk masterTask) bool {
	switch tk.State {
	case "TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING":
		return true
	}
	return false
}

func poll(t *testing.T, s *standalone.Scheduler, what string, within time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; scheduler: %+v", within, what, s.Status())
		}
	}
}

// Spark's standalone cluster manager on agora: the Master comes up as an
// agora task; applications of an unchanged spark-submit --master
// spark://HOST:PORT wait for cores, which adds workers (agora tasks of the
// sized cores and memory); kill -9 of the worker a slow job runs on gets
// a replacement worker; SparkPi prints π and the slow job's sum is right;
// idle workers are then released, their tasks killed.
func TestStandaloneMasterAndWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real Spark; not in -short")
	}
	home := sparktest.Home(t)
	jar := sparktest.PiJar(t, home)
	var ranges [][2]int
	for range 2 {
		first, last := clustertest.PortRange(20)
		ranges = append(ranges, [2]int{first, last})
	}
	c := clustertest.Start(t, clustertest.Options{Agents: 2, Agent: func(i int, cfg *agent.Config) {
		// Both agents are on this host: their ports must differ.
		cfg.Resources = fmt.Sprintf("cpus:2;mem:3072;disk:10000;ports:[%d-%d]", ranges[i][0], ranges[i][1])
	}})
	s, err := standalone.New(standalone.Config{Masters: []string{c.MasterAddr}, SparkHome: home,
		WorkersMax: 2, WorkerCores: 1, WorkerMemMB: 1024, IdleTimeout: 6 * time.Second,
		PollInterval: 500 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(testLog{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
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
		// The framework was torn down: no daemon outlives the test.
		c.WaitFor("no task left running", func(st *clustertest.State) bool {
			for _, f := range st.Frameworks {
				if len(f.Tasks) > 0 {
					return false
				}
			}
			return true
		})
	})
	poll(t, s, "the standalone Master", 2*time.Minute, func() bool { return s.MasterURL() != "" })
	url := s.MasterURL()
	if n := len(s.Status().Workers); n != 0 {
		t.Errorf("%d workers before any application (--workers-min 0)", n)
	}

	submit := func(out *os.File, class string, args ...string) *exec.Cmd {
		a := append([]string{"--master", url, "--driver-memory", "512m", "--executor-memory", "512m",
			"--executor-cores", "1", "--total-executor-cores", "1", "--conf", "spark.ui.enabled=false",
			"--class", class, jar}, args...)
		cmd := exec.Command(filepath.Join(home, "bin/spark-submit"), a...)
		cmd.Env = append(os.Environ(), "SPARK_LOCAL_IP=127.0.0.1")
		cmd.Stdout, cmd.Stderr = out, out
		cmd.WaitDelay = 10 * time.Second
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		return cmd
	}
	wait := func(cmd *exec.Cmd, log func() string) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("spark-submit: %v\n%s", err, log())
			}
		case <-time.After(5 * time.Minute):
			t.Fatalf("spark-submit did not end within 5 minutes:\n%s", log())
		}
	}
	logFile := func(name string) (*os.File, func() string) {
		p := filepath.Join(t.TempDir(), name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f, func() string { b, _ := os.ReadFile(p); return string(b) }
	}

	// Two applications of one core each wait for cores: workers of 1 core
	// are added for them, agora tasks of the sized cores and memory.
	piOut, piLog := logFile("pi.log")
	sumOut, sumLog := logFile("sum.log")
	pi := submit(piOut, sparktest.PiClass, "10")
	sum := submit(sumOut, sparktest.SlowSumClass, "40", "1000")

	// kill -9 of the worker the slow job runs on (the driver says where
	// its executor was added): a new worker replaces it.
	executorAdded := regexp.MustCompile(`Executor added: \S+ on worker-\S+ \(\S+:(\d+)\)`)
	var victimPort string
	poll(t, s, "the slow job running on a worker", 4*time.Minute, func() bool {
		added := executorAdded.FindAllStringSubmatch(sumLog(), -1)
		if len(added) == 0 || !strings.Contains(sumLog(), "Starting task") {
			return false
		}
		victimPort = added[len(added)-1][1]
		return true
	})
	workers := tasks(t, c, "spark-worker-")
	if len(workers) == 0 || len(workers) > 2 {
		t.Fatalf("worker tasks %+v; want 1 or 2 (--workers-max 2)", workers)
	}
	for _, tk := range workers {
		if tk.Resources.CPUs != 1 || tk.Resources.Mem != 1024+384 || !strings.Contains(tk.Name, "(1 cores, 1024 MB)") {
			t.Errorf("worker task %+v; want 1 cpu and 1408 MB (SPARK_WORKER_MEMORY 1024m + the daemon's 384)", tk)
		}
	}
	if m := tasks(t, c, "spark-master-"); len(m) != 1 || !running(m[0]) || m[0].Resources.CPUs != 0.5 || m[0].Resources.Mem != 640 {
		t.Errorf("master tasks %+v; want one running, 0.5 cpus and 640 MB", m)
	}
	var victim standalone.Daemon
	before := map[string]bool{}
	for _, w := range s.Status().Workers {
		before[w.TaskID] = true
		if strconv.FormatUint(w.Port, 10) == victimPort {
			victim = w
		}
	}
	if victim.TaskID == "" {
		t.Fatalf("no worker of the scheduler on port %s: %+v", victimPort, s.Status().Workers)
	}
	if err := syscall.Kill(workerPID(t, victim.Port), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	poll(t, s, "a replacement worker", 4*time.Minute, func() bool {
		for _, w := range s.Status().Workers {
			if !before[w.TaskID] && w.Ready {
				return true
			}
		}
		return false
	})

	// SparkPi prints π; the slow job's sum is right.
	wait(pi, piLog)
	if !regexp.MustCompile(`Pi is roughly 3\.1\d*`).MatchString(piLog()) {
		t.Fatalf("want Pi is roughly 3.1...:\n%s", piLog())
	}
	wait(sum, sumLog)
	if !strings.Contains(sumLog(), "sum is 820") {
		t.Fatalf("want sum is 820:\n%s", sumLog())
	}
	var killed masterTask
	for _, tk := range tasks(t, c, victim.TaskID) {
		killed = tk
	}
	if killed.State != "TASK_FAILED" {
		t.Errorf("the killed worker's task %+v; want TASK_FAILED", killed)
	}

	// With nothing to run, the workers are released.
	poll(t, s, "the idle workers released", time.Minute, func() bool {
		for _, tk := range tasks(t, c, "spark-worker-") {
			if running(tk) {
				return false
			}
		}
		return s.Status().Target == 0
	})
	for _, tk := range tasks(t, c, "spark-worker-") {
		if tk.ID != victim.TaskID && tk.State != "TASK_KILLED" {
			t.Errorf("worker task %+v; want TASK_KILLED (released)", tk)
		}
	}
}

// workerPID finds the JVM of the standalone Worker listening on port.
func workerPID(t *testing.T, port uint64) int {
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
		if i := slices.Index(args, "--port"); slices.Contains(args, "org.apache.spark.deploy.worker.Worker") &&
			i >= 0 && i+1 < len(args) && args[i+1] == strconv.FormatUint(port, 10) {
			return pid
		}
	}
	t.Fatalf("no Worker process on port %d", port)
	return 0
}
