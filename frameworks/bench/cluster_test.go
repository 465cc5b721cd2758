package bench

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func TestClusterLaunchBenchmark(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Agents: 2, AgentResources: "cpus:1;mem:512;disk:100;ports:[31000-31010]"})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// 40 tasks of 32 MB on two 512 MB agents: several rounds of offers.
	res, err := Launch(ctx, LaunchConfig{Masters: []string{c.MasterAddr}, Tasks: 40, CPUs: 0.01, Mem: 32})
	if err != nil {
		t.Fatalf("Launch: %v (result %+v)", err, res)
	}
	if res.Finished != 40 || res.Failed != 0 || res.Unfinished != 0 {
		t.Errorf("result %+v, want 40 finished", res)
	}
	if res.Accepts < 2 || res.Agents != 2 {
		t.Errorf("result %+v: want tasks spread over both agents and several ACCEPTs", res)
	}
	if res.AcceptToRunningP50 <= 0 || res.AcceptToFinishedP99 < res.AcceptToRunningP50 {
		t.Errorf("latencies %+v look wrong", res)
	}
	// The cluster runs in this process: its CPU is this framework's and
	// part of the machine's.
	if c := res.CPU; c == nil || c.Framework <= 0 || c.BusyPercent <= 0 || c.BusyPercent > 100 || c.CPUs < 1 {
		t.Errorf("CPU per task %+v: want this process's CPU counted and a busy share in (0, 100]", res.CPU)
	}
}

func TestClusterLaunchBenchmarkCountsFailures(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var trace bytes.Buffer
	res, err := Launch(ctx, LaunchConfig{Masters: []string{c.MasterAddr}, Tasks: 5, CPUs: 0.01, Mem: 32, Command: "exit 1",
		Trace: &trace, TraceRun: "failing"})
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	if res.Failed != 5 || res.FailedStates["TASK_FAILED"] != 5 || res.Finished != 0 {
		t.Errorf("result %+v, want 5 TASK_FAILED", res)
	}
	rows := traceRows(t, trace.String(), 5)
	for _, row := range rows {
		if row[0] != "failing" || row[3] != "TASK_FAILED" || row[9] == "" {
			t.Errorf("trace line %q: want run failing, TASK_FAILED and when it ended", row)
		}
	}
}

// traceRows checks a launch trace has n lines of TraceHeader's columns,
// each task's times in the order the updates came, and returns them.
func traceRows(t *testing.T, trace string, n int) [][]string {
	t.Helper()
	cols := len(strings.Split(strings.TrimSuffix(TraceHeader, "\n"), "\t"))
	lines := strings.Split(strings.TrimSuffix(trace, "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("trace has %d lines, want %d:\n%s", len(lines), n, trace)
	}
	var rows [][]string
	prevAccepted := -1.0
	for _, l := range lines {
		row := strings.Split(l, "\t")
		if len(row) != cols || !strings.HasPrefix(row[1], "bench-") || row[2] == "" {
			t.Fatalf("trace line %q: want %d columns, a task and an agent", l, cols)
		}
		// accepted, framework STARTING, framework RUNNING, ended: each
		// no earlier than the one before (those that came).
		last := -1.0
		for i, c := range []int{4, 6, 8, 9} {
			if row[c] == "" {
				if i == 0 {
					t.Fatalf("trace line %q: no accept time", l)
				}
				continue
			}
			v, err := strconv.ParseFloat(row[c], 64)
			if err != nil || v < last || v < 0 {
				t.Fatalf("trace line %q: column %d is %q after %v", l, c+1, row[c], last)
			}
			last = v
			if i == 0 {
				if v < prevAccepted {
					t.Fatalf("trace line %q: accepted before the line above (%v)", l, prevAccepted)
				}
				prevAccepted = v
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func TestClusterLaunchBenchmarkMaxInFlight(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Agents: 2, AgentResources: "cpus:1;mem:512;disk:100;ports:[31000-31010]"})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// Each offer could hold 16 tasks; the limit keeps 3 in flight.
	var trace bytes.Buffer
	res, err := Launch(ctx, LaunchConfig{Masters: []string{c.MasterAddr}, Tasks: 30, CPUs: 0.01, Mem: 32, MaxInFlight: 3, Trace: &trace})
	if err != nil {
		t.Fatalf("Launch: %v (result %+v)", err, res)
	}
	for _, row := range traceRows(t, trace.String(), 30) {
		if row[0] != "max_in_flight=3" || row[3] != "TASK_FINISHED" || row[5] == "" || row[7] == "" || row[8] == "" {
			t.Errorf("trace line %q: want run max_in_flight=3, TASK_FINISHED and the agent's STARTING and RUNNING stamps", row)
		}
	}
	if res.Finished != 30 || res.Failed != 0 || res.Unfinished != 0 {
		t.Errorf("result %+v, want 30 finished", res)
	}
	if res.MaxInFlight != 3 || res.PeakInFlight < 1 || res.PeakInFlight > 3 {
		t.Errorf("max_in_flight %d, peak %d: want the limit 3 reported and never exceeded", res.MaxInFlight, res.PeakInFlight)
	}
	if res.Accepts < 10 {
		t.Errorf("%d ACCEPTs for 30 tasks at most 3 at a time, want at least 10", res.Accepts)
	}
	p := res.Phases
	if p == nil {
		t.Fatalf("no phases in %+v", res)
	}
	if p.AcceptToStarting.P50 <= 0 || p.StartingToRunning.P50 <= 0 || p.AcceptToStarting.P99 < p.AcceptToStarting.P50 {
		t.Errorf("phases %+v look wrong", *p)
	}
}

func TestLaunchRejectsNegativeMaxInFlight(t *testing.T) {
	if _, err := Launch(context.Background(), LaunchConfig{Masters: []string{"127.0.0.1:1"}, CPUs: 0.1, MaxInFlight: -1}); err == nil {
		t.Error("Launch with MaxInFlight -1: no error")
	}
}

// The crash workload, with no crash: every task is launched and ends as
// its command implies, and no more than MaxInFlight are in flight at once.
func TestClusterCrashWorkloadWithoutCrashes(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Agents: 2, AgentResources: "cpus:1;mem:512;disk:100;ports:[31000-31010]"})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var w *CrashWorkload
	var mu sync.Mutex
	peak := 0
	w, err := NewCrashWorkload(CrashConfig{
		Masters: []string{c.MasterAddr}, Tasks: 12, MaxInFlight: 3, CPUs: 0.01, Mem: 32,
		Task: func(i int) (string, mesos.TaskState) {
			if i%3 == 0 {
				return "exit 1", mesos.TASK_FAILED
			}
			return "true", mesos.TASK_FINISHED
		},
		// Called on the event goroutine: w is set before any event comes.
		Progress: func(int) {
			_, _, inFlight := w.Progress()
			mu.Lock()
			peak = max(peak, inFlight)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- w.Run(ctx) }()
	defer func() {
		cancel()
		<-runDone
	}()
	select {
	case <-w.Done():
	case err := <-runDone:
		t.Fatalf("the workload stopped before its tasks ended: %v", err)
	case <-ctx.Done():
		reported, ended, inFlight := w.Progress()
		t.Fatalf("tasks still running after 120s: %d updates, %d ended, %d in flight", reported, ended, inFlight)
	}
	tasks := w.Tasks()
	if v := CheckCrashTasks(tasks, nil); v.Exact != 12 || len(v.Violations) > 0 {
		t.Errorf("verdict %+v, want all 12 exact", v)
	}
	for _, task := range tasks {
		if out, _ := task.Outcome(); out.State != task.Want || !task.Launched {
			t.Errorf("%s: %s, want %s", task.ID, task.History(), task.Want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if peak < 1 || peak > 3 {
		t.Errorf("at most %d tasks were in flight at an update, want 1 to 3", peak)
	}
	tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer tcancel()
	if err := w.Teardown(tctx); err != nil {
		t.Errorf("teardown: %v", err)
	}
}
