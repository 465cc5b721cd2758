package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// TestHealthChecksStopWhenAKillBegins: a task that takes its time to die
// after SIGTERM, and whose COMMAND check starts failing the moment it is
// told to stop, ends with TASK_KILLED and no unhealthy TASK_RUNNING before
// it: once a kill is requested the checks stop (as Mesos's do), so a check
// run against a dying container reports nothing.
func TestHealthChecksStopWhenAKillBegins(t *testing.T) {
	fm := newFakeMaster(t)
	startRegistered(t, fm, testConfig(t, fm, ""))
	dir := t.TempDir()
	marker, probed := filepath.Join(dir, "up"), filepath.Join(dir, "probed")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// On SIGTERM the task removes the marker, so every later check fails,
	// and stays until a check has seen the marker gone (the "probed" file)
	// or five seconds have passed: without the fix a check runs, fails and
	// reports, whatever the machine's load; with it, none runs.
	env := &mesos.Environment{Variables: []mesos.Environment_Variable{{Name: "MARKER", Value: &marker}, {Name: "PROBED", Value: &probed}}}
	rt := shellTask("dying", `trap 'rm -f "$MARKER"; i=0; while [ ! -f "$PROBED" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; exit 0' TERM; while :; do sleep 0.05; done`)
	rt.Task.Command.Environment = env
	zero, interval, timeout, failures := 0.0, 0.05, 5.0, uint32(100)
	rt.Task.HealthCheck = &mesos.HealthCheck{Type: mesos.HealthCheck_COMMAND,
		Command:      &mesos.CommandInfo{Value: proto(`test -f "$MARKER" || { touch "$PROBED"; exit 1; }`), Environment: env},
		DelaySeconds: &zero, IntervalSeconds: &interval, TimeoutSeconds: &timeout,
		ConsecutiveFailures: &failures, GracePeriodSeconds: &zero}
	run(fm, rt)
	fm.expectStates(t, "dying", mesos.TASK_STARTING, mesos.TASK_RUNNING)
	s := fm.nextUpdate(t, "dying").Status
	if s.GetState() != mesos.TASK_RUNNING || s.Healthy == nil || !*s.Healthy {
		t.Fatalf("got %s healthy %v (%q), want TASK_RUNNING marked healthy", s.GetState(), s.Healthy, s.GetMessage())
	}
	grace := 30 * time.Second
	kill(fm, "dying", &grace)
	ups := fm.expectStates(t, "dying", mesos.TASK_KILLED)
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("the task's TERM trap did not run (marker: %v): the test proves nothing", err)
	}
	if h := ups[0].Status.Healthy; h != nil && !*h {
		t.Errorf("TASK_KILLED marked unhealthy: a check ran against the dying task")
	}
}
