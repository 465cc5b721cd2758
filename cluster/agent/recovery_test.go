package agent

import (
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func TestKeptTasksAreAdoptedByTheRestartedAgent(t *testing.T) {
	fm := newFakeMaster(t)
	cfg := testConfig(t, fm, "")
	cfg.KeepTasksOnStop = true
	ta, first := startRegistered(t, fm, cfg)
	run(fm, shellTask("kept", "sleep 100 & sleep 100"))
	pgid := runningPid(t, fm, "kept")
	waitFor(t, "shell and both sleeps", func() bool { return len(liveInGroup(t, pgid)) >= 3 })
	ta.stop(t)
	if len(liveInGroup(t, pgid)) < 3 {
		t.Fatal("the agent killed a task it was told to keep")
	}
	t.Cleanup(func() {
		for _, pid := range liveInGroup(t, pgid) {
			_ = killPid(pid)
		}
	})

	startAgent(t, cfg)
	reg := fm.nextRegister(t)
	if reg.Info.GetID().GetValue() != first.agentID || len(reg.Tasks) != 1 || reg.Tasks[0].GetState() != mesos.TASK_RUNNING {
		t.Fatalf("restarted agent registered as %q with tasks %+v", reg.Info.GetID().GetValue(), reg.Tasks)
	}
	fm.nextSession(t)
	kill(fm, "kept", nil)
	fm.expectAfterResends(t, "kept", mesos.TASK_KILLED)
	if left := liveInGroup(t, pgid); len(left) != 0 {
		t.Fatalf("adopted task survived its kill: %v", left)
	}
}

func TestTaskWhoseProcessVanishedWhileTheAgentWasDownFails(t *testing.T) {
	fm := newFakeMaster(t)
	cfg := testConfig(t, fm, "")
	cfg.KeepTasksOnStop = true
	ta, _ := startRegistered(t, fm, cfg)
	run(fm, shellTask("vanish", "sleep 100"))
	pgid := runningPid(t, fm, "vanish")
	ta.stop(t)
	for _, pid := range liveInGroup(t, pgid) {
		if err := killPid(pid); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "task process gone", func() bool { return len(liveInGroup(t, pgid)) == 0 })

	startAgent(t, cfg)
	s := fm.expectAfterResends(t, "vanish", mesos.TASK_FAILED).Status
	if s.GetReason() != mesos.REASON_EXECUTOR_TERMINATED || s.GetSource() != mesos.SOURCE_AGENT {
		t.Fatalf("reason %s source %s message %q", s.GetReason(), s.GetSource(), s.GetMessage())
	}
}

// TestNonCheckpointedTasksDoNotSurviveARestart: without checkpointing, a
// restarted agent destroys the task's container and does not report it
// (the master then reports it lost).
func TestNonCheckpointedTasksDoNotSurviveARestart(t *testing.T) {
	fm := newFakeMaster(t)
	cfg := testConfig(t, fm, "")
	cfg.KeepTasksOnStop = true
	ta, _ := startRegistered(t, fm, cfg)
	rt := shellTask("transient", "sleep 100")
	rt.Framework.Checkpoint = proto(false)
	run(fm, rt)
	pgid := runningPid(t, fm, "transient")
	ta.stop(t)
	if len(liveInGroup(t, pgid)) == 0 {
		t.Fatal("the task did not outlive the agent it was kept by")
	}
	startAgent(t, cfg)
	reg := fm.nextRegister(t)
	if len(reg.Tasks) != 0 {
		t.Fatalf("restarted agent reported tasks of a non-checkpointing framework: %+v", reg.Tasks)
	}
	waitFor(t, "the container destroyed", func() bool { return len(liveInGroup(t, pgid)) == 0 })
}
