package agent_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/clustertest"
)

func f64(v float64) *float64 { return &v }
func u32(v uint32) *uint32   { return &v }

// healthUpdates lists a task's health check updates (healthy set, reason
// REASON_TASK_HEALTH_CHECK_STATUS_UPDATED) as true/false.
func healthUpdates(s *sched, id string) []bool {
	var out []bool
	for _, st := range s.statuses(id) {
		if st.GetReason() == mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED {
			if st.GetState() != mesos.TASK_RUNNING || st.Healthy == nil {
				panic("health update that is not TASK_RUNNING with healthy set: " + describe([]mesos.TaskStatus{st}))
			}
			out = append(out, *st.Healthy)
		}
	}
	return out
}

func healthy(want bool) func(mesos.TaskStatus) bool {
	return func(st mesos.TaskStatus) bool {
		return st.GetReason() == mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED && st.Healthy != nil && *st.Healthy == want
	}
}

// TestCommandHealthCheck: a COMMAND check that passes while a file exists.
// The task turns healthy once (no repeated healthy updates), then, with
// the file gone, unhealthy at every failed check until consecutive_failures
// is reached and the task is killed; its terminal update says unhealthy.
func TestCommandHealthCheck(t *testing.T) {
	c := startCluster(t, clustertest.Options{})
	s := subscribe(t, c.MasterURL, `{"user":"tester","name":"command-health"}`)
	offer := s.offer()
	marker := filepath.Join(t.TempDir(), "healthy")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	task := shellTask(t, "svc", offer.AgentID, "exec sleep 600", "cpus:0.1;mem:16")
	task.HealthCheck = &mesos.HealthCheck{Type: mesos.HealthCheck_COMMAND,
		Command:      &mesos.CommandInfo{Value: strp(`test -f "$MARKER"`), Environment: &mesos.Environment{Variables: []mesos.Environment_Variable{{Name: "MARKER", Value: &marker}}}},
		DelaySeconds: f64(0), IntervalSeconds: f64(0.1), TimeoutSeconds: f64(5), ConsecutiveFailures: u32(3), GracePeriodSeconds: f64(0)}
	s.launch(offer, task)
	s.waitUpdate("svc", "healthy", healthy(true))
	// Passing checks go on without further updates.
	time.Sleep(500 * time.Millisecond)
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	st := s.waitTerminal("svc")
	if st.GetState() != mesos.TASK_KILLED || st.Healthy == nil || *st.Healthy {
		t.Errorf("terminal update %s, want TASK_KILLED marked unhealthy", describe([]mesos.TaskStatus{st}))
	}
	if got := healthUpdates(s, "svc"); len(got) != 4 || !got[0] || got[1] || got[2] || got[3] {
		t.Errorf("health updates %v, want [true false false false]; all: %s", got, describe(s.statuses("svc")))
	}
}

// TestHTTPAndTCPHealthChecks: tasks serving HTTP on a port from the offer
// turn healthy under an HTTP and a TCP check, and unhealthy when their
// server stops (the process keeps running); they are then killed.
func TestHTTPAndTCPHealthChecks(t *testing.T) {
	c := startCluster(t, clustertest.Options{})
	s := subscribe(t, c.MasterURL, `{"user":"tester","name":"http-health"}`)
	offer := s.offer()
	var ports []uint64
	for _, r := range offer.Resources {
		if r.Name == "ports" {
			for _, rg := range r.GetRanges().GetRange() {
				for p := rg.Begin; p <= rg.End && len(ports) < 2; p++ {
					ports = append(ports, p)
				}
			}
		}
	}
	if len(ports) < 2 {
		t.Fatalf("offer has ports %v", ports)
	}
	self := testBinary(t)
	dir := t.TempDir()
	server := func(id string, port uint64, check *mesos.HealthCheck) mesos.TaskInfo {
		p := strconv.FormatUint(port, 10)
		task := mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: offer.AgentID,
			Command: &mesos.CommandInfo{Value: &self, Shell: new(bool), Arguments: []string{self, "-test.run=^$"},
				Environment: &mesos.Environment{Variables: []mesos.Environment_Variable{
					{Name: "AGORA_TEST_ROLE", Value: strp("http-server")},
					{Name: "HTTP_PORT", Value: &p},
					{Name: "STOP_FILE", Value: strp(filepath.Join(dir, id))},
				}}},
			Resources: resources(t, "cpus:0.1;mem:16;ports:["+p+"-"+p+"]"), HealthCheck: check}
		check.DelaySeconds, check.IntervalSeconds, check.TimeoutSeconds = f64(0), f64(0.1), f64(2)
		check.ConsecutiveFailures, check.GracePeriodSeconds = u32(2), f64(30)
		return task
	}
	s.launch(offer,
		server("web", ports[0], &mesos.HealthCheck{Type: mesos.HealthCheck_HTTP,
			HTTP: &mesos.HealthCheck_HTTPCheckInfo{Port: uint32(ports[0]), Path: strp("/health")}}),
		server("tcp", ports[1], &mesos.HealthCheck{Type: mesos.HealthCheck_TCP,
			TCP: &mesos.HealthCheck_TCPCheckInfo{Port: uint32(ports[1])}}))
	for _, id := range []string{"web", "tcp"} {
		s.waitUpdate(id, "healthy", healthy(true))
		if err := os.WriteFile(filepath.Join(dir, id), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		s.waitUpdate(id, "unhealthy", healthy(false))
		st := s.waitTerminal(id)
		if st.GetState() != mesos.TASK_KILLED || st.Healthy == nil || *st.Healthy {
			t.Errorf("%s: terminal update %s, want TASK_KILLED marked unhealthy", id, describe([]mesos.TaskStatus{st}))
		}
		if got := healthUpdates(s, id); len(got) != 3 || !got[0] || got[1] || got[2] {
			t.Errorf("%s: health updates %v, want [true false false]", id, got)
		}
	}
}

// TestHealthGracePeriod: failures during the grace period are not
// reported; a task that never becomes healthy is reported unhealthy once
// the grace period is over.
func TestHealthGracePeriod(t *testing.T) {
	c := startCluster(t, clustertest.Options{})
	s := subscribe(t, c.MasterURL, `{"user":"tester","name":"health-grace"}`)
	offer := s.offer()
	task := shellTask(t, "slow", offer.AgentID, "exec sleep 600", "cpus:0.1;mem:16")
	task.HealthCheck = &mesos.HealthCheck{Type: mesos.HealthCheck_COMMAND, Command: &mesos.CommandInfo{Value: strp("false")},
		DelaySeconds: f64(0), IntervalSeconds: f64(0.1), TimeoutSeconds: f64(5), ConsecutiveFailures: u32(1000), GracePeriodSeconds: f64(1)}
	start := time.Now()
	s.launch(offer, task)
	st := s.waitUpdate("slow", "unhealthy", healthy(false))
	if time.Since(start) < time.Second {
		t.Errorf("unhealthy reported within the grace period: %s", describe([]mesos.TaskStatus{st}))
	}
	s.mustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: task.TaskID, AgentID: &offer.AgentID}})
	s.waitState("slow", mesos.TASK_KILLED)
}

// TestKillPolicyOverride: KILL's kill_policy overrides the task's: a task
// that ignores SIGTERM with a 10-minute grace period of its own is
// SIGKILLed after the KILL's 100ms.
func TestKillPolicyOverride(t *testing.T) {
	c := startCluster(t, clustertest.Options{})
	s := subscribe(t, c.MasterURL, `{"user":"tester","name":"kill-policy"}`)
	offer := s.offer()
	ready := filepath.Join(t.TempDir(), "ready")
	task := shellTask(t, "stubborn", offer.AgentID, `trap "" TERM; touch "`+ready+`"; while true; do sleep 0.05; done`, "cpus:0.1;mem:16")
	task.KillPolicy = &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(10 * time.Minute)}}
	s.launch(offer, task)
	s.waitState("stubborn", mesos.TASK_RUNNING)
	waitFor(t, "the task to ignore SIGTERM", func() bool { _, err := os.Stat(ready); return err == nil })
	s.mustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: task.TaskID, AgentID: &offer.AgentID,
		KillPolicy: &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(100 * time.Millisecond)}}}})
	st := s.waitTerminal("stubborn")
	if st.GetState() != mesos.TASK_KILLED {
		t.Errorf("terminal update %s, want TASK_KILLED", describe([]mesos.TaskStatus{st}))
	}
}
