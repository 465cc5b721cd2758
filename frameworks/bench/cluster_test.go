package bench

import (
	"context"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest"
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
}

func TestClusterLaunchBenchmarkCountsFailures(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Launch(ctx, LaunchConfig{Masters: []string{c.MasterAddr}, Tasks: 5, CPUs: 0.01, Mem: 32, Command: "exit 1"})
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	if res.Failed != 5 || res.FailedStates["TASK_FAILED"] != 5 || res.Finished != 0 {
		t.Errorf("result %+v, want 5 TASK_FAILED", res)
	}
}

func TestClusterLaunchBenchmarkMaxInFlight(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Agents: 2, AgentResources: "cpus:1;mem:512;disk:100;ports:[31000-31010]"})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// Each offer could hold 16 tasks; the limit keeps 3 in flight.
	res, err := Launch(ctx, LaunchConfig{Masters: []string{c.MasterAddr}, Tasks: 30, CPUs: 0.01, Mem: 32, MaxInFlight: 3})
	if err != nil {
		t.Fatalf("Launch: %v (result %+v)", err, res)
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
