package agent

import (
	"context"
	"log/slog"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

// recordStatus checkpoints status and queues it in the status update
// manager, then records it as t's newest state. Every task state change
// goes through here: the agent's own updates, the ones executors send and
// health check results. t.updMu keeps a task's updates in one order in
// its record and its queue even when they come from several goroutines.
// Nothing follows a terminal update, and a health update only applies to a
// running task; such updates are dropped and recordStatus reports false.
// With requireDisk (an executor's update, which its executor sends again)
// an update whose checkpoint fails changes nothing: the error says so, and
// it must not be acknowledged. Without it (the agent's own update) the
// update is recorded all the same, and the error is returned for the log:
// the update manager holds it until its checkpoint is written, and sends
// it only then (statusupdates.go says why).
func (a *Agent) recordStatus(t *task, status mesos.TaskStatus, requireDisk bool) (bool, error) {
	t.updMu.Lock()
	defer t.updMu.Unlock()
	state := status.GetState()
	a.mu.Lock()
	cur := t.state
	if isTerminal(cur) || (status.GetReason() == mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED && cur != mesos.TASK_RUNNING) {
		a.mu.Unlock()
		a.log.Info("dropping status update: the task has moved on", "framework_id", t.key.framework, "task_id", t.key.task,
			"state", state.String(), "task_state", cur.String())
		return false, nil
	}
	status.AgentID = &mesos.AgentID{Value: a.agentID}
	a.mu.Unlock()
	u := &api.StatusUpdate{FrameworkID: t.key.framework, Status: &status}
	ckptErr := a.updates.add(t.key, updatesFile(t.meta), t.framework.GetCheckpoint(), requireDisk, u)
	if ckptErr != nil && requireDisk {
		a.mu.Lock()
		a.counters["slave/invalid_status_updates"]++
		a.mu.Unlock()
		return false, ckptErr
	}
	a.mu.Lock()
	t.state = state
	t.statuses = append(t.statuses, status)
	a.counters["slave/valid_status_updates"]++
	if isTerminal(state) {
		a.counters[taskMetric(state)]++
	}
	a.mu.Unlock()
	// A task's plain progress (STARTING, RUNNING) is logged at debug
	// level: at hundreds of launches a second those lines were a few per
	// cent of the agent's CPU. Its end, and any update that says something
	// (a message, its health), stays at info.
	level := slog.LevelDebug
	if isTerminal(state) || status.Message != nil || status.Healthy != nil {
		level = slog.LevelInfo
	}
	if ctx := context.Background(); a.log.Enabled(ctx, level) {
		args := []any{"framework_id", t.key.framework, "task_id", t.key.task, "state", state.String(), "source", status.GetSource().String()}
		if status.Message != nil {
			args = append(args, "message", *status.Message)
		}
		if status.Healthy != nil {
			args = append(args, "healthy", *status.Healthy)
		}
		a.log.Log(ctx, level, "task status", args...)
	}
	if isTerminal(state) && t.exec != nil {
		a.updateExecutorLimits(t.exec) // executor.go: the task's resources are freed
	}
	return true, ckptErr
}
