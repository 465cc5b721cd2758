package oneshot

import (
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func TestExitCode(t *testing.T) {
	status := func(s mesos.TaskState, msg string) mesos.TaskStatus {
		return mesos.TaskStatus{State: s.Enum(), Message: &msg}
	}
	for _, c := range []struct {
		status mesos.TaskStatus
		code   int
		ok     bool
	}{
		{status(mesos.TASK_FINISHED, "Command exited with status 0"), 0, true},
		{status(mesos.TASK_FAILED, "Command exited with status 3"), 3, true},
		{status(mesos.TASK_FAILED, "Command exited with status 255"), 255, true},
		{status(mesos.TASK_FAILED, "Command terminated with signal Killed"), 137, true},
		{status(mesos.TASK_FAILED, "Command terminated with signal terminated"), 143, true},
		{status(mesos.TASK_FAILED, "Failed to launch container"), 1, true},
		{status(mesos.TASK_KILLED, "Command terminated with signal Terminated"), 1, false},
		{status(mesos.TASK_LOST, "Agent removed"), 1, false},
		{status(mesos.TASK_ERROR, "Task uses invalid resources"), 1, false},
	} {
		code, ok := ExitCode(c.status)
		if code != c.code || ok != c.ok {
			t.Errorf("ExitCode(%s %q) = %d, %v; want %d, %v", c.status.GetState(), c.status.GetMessage(), code, ok, c.code, c.ok)
		}
	}
}
