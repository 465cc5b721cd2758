package scheduler

import mesos "github.com/mesos/mesos-go/api/v1/lib"

// IsTerminal reports whether a task in state s has ended for good; its
// resources are free and no further updates (other than duplicates) follow.
func IsTerminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR,
		mesos.TASK_LOST, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}

// Capabilities builds FrameworkInfo capabilities from their types.
func Capabilities(types ...mesos.FrameworkInfo_Capability_Type) []mesos.FrameworkInfo_Capability {
	out := make([]mesos.FrameworkInfo_Capability, 0, len(types))
	for _, t := range types {
		out = append(out, mesos.FrameworkInfo_Capability{Type: t})
	}
	return out
}
