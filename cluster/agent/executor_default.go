package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/containerizer"
)

// The default executor, built into the agent. Mesos's
// mesos-default-executor is an HTTP executor that runs each task of a
// LAUNCH_GROUP as a nested container; agora produces the same behaviour
// natively:
//
//   - the tasks of a group start together: each gets TASK_STARTING, all
//     containers are launched, then each gets TASK_RUNNING (if one cannot be
//     launched, none runs and all fail);
//   - each task is its own container with its own sandbox
//     (<executor sandbox>/tasks/<task_id>), supervised like a command task
//     (kill policies, health checks);
//   - when a task ends TASK_FAILED or TASK_KILLED, the others of its group
//     are killed;
//   - several groups can arrive over time; when the last task of the last
//     group has ended the executor is done, and the master hears it exited.

// runGroup launches one task group on the default executor e. The caller
// has added 1+len(tasks) to a.runners: one for this launcher, one for each
// task's runner.
func (a *Agent) runGroup(ctx context.Context, e *executor, tasks []*task) {
	defer a.runners.Done()
	log := a.log.With("framework_id", e.key.framework, "executor_id", e.key.executor)
	left := atomic.Int32{}
	left.Store(int32(len(tasks)))
	taskDone := func(t *task) {
		close(t.done)
		a.runners.Done()
		if left.Add(-1) == 0 {
			a.groupEnded(ctx, e)
		}
	}
	endAll := func(state mesos.TaskState, reason mesos.TaskStatus_Reason, msg string) {
		for _, t := range tasks {
			a.update(t, state, statusOpts{fromAgent: true, reason: reason.Enum(), message: msg})
		}
		for _, t := range tasks {
			taskDone(t)
		}
	}

	launchers, err := a.groupLaunchers(ctx, e, tasks)
	if err != nil {
		a.count("slave/container_launch_errors", 1)
		log.Warn("task group launch failed", "err", err)
		endAll(mesos.TASK_FAILED, mesos.REASON_CONTAINER_LAUNCH_FAILED, "Failed to launch task group: "+err.Error())
		return
	}
	if why := a.groupKilledBeforeLaunch(ctx, e, tasks); why != "" {
		endAll(mesos.TASK_KILLED, mesos.REASON_TASK_KILLED_DURING_LAUNCH, why)
		return
	}
	for _, t := range tasks {
		a.update(t, mesos.TASK_STARTING, statusOpts{})
	}
	crashPoint(CrashBeforeContainerStart, tasks[0].meta) // diskfaults.go
	containers := make([]containerizer.Container, 0, len(tasks))
	for i := range tasks {
		c, err := launchers[i](ctx)
		if err == nil {
			containers = append(containers, c)
			continue
		}
		// One task cannot start: the group does not run.
		for _, c := range containers {
			_ = c.Signal(syscall.SIGKILL)
		}
		for _, c := range containers {
			<-c.Done()
		}
		if ctx.Err() != nil {
			endAll(mesos.TASK_KILLED, mesos.REASON_TASK_KILLED_DURING_LAUNCH, "Agent shut down before the task group was launched")
			return
		}
		a.count("slave/container_launch_errors", 1)
		log.Warn("task group launch failed", "task_id", tasks[i].key.task, "err", err)
		endAll(mesos.TASK_FAILED, mesos.REASON_CONTAINER_LAUNCH_FAILED,
			fmt.Sprintf("Failed to launch task group: task %s: %v", tasks[i].key.task, err))
		return
	}
	crashPoint(CrashAfterContainerStart, tasks[0].meta)
	// Every container is checkpointed before any task is reported
	// running: a container a restarted agent could not find again must
	// not run, and then, the group being all or nothing, none runs.
	for i, t := range tasks {
		a.mu.Lock()
		t.pid, t.container = containers[i].Pid(), containers[i]
		a.mu.Unlock()
		st := containers[i].State()
		if err := a.checkpointTask(t, &st); err != nil {
			for _, c := range containers {
				_ = c.Signal(syscall.SIGKILL)
			}
			for _, c := range containers {
				<-c.Done()
			}
			a.count("slave/container_launch_errors", 1)
			log.Error("task group destroyed: a container could not be checkpointed", "task_id", t.key.task, "err", err)
			endAll(mesos.TASK_FAILED, mesos.REASON_CONTAINER_LAUNCH_FAILED,
				fmt.Sprintf("Failed to launch task group: could not checkpoint the container of task %s: %v", t.key.task, err))
			return
		}
	}
	for i, t := range tasks {
		a.update(t, mesos.TASK_RUNNING, statusOpts{container: containers[i]})
	}
	for i, t := range tasks {
		go a.superviseGroupTask(ctx, t, containers[i], tasks, taskDone)
	}
}

// superviseGroupTask supervises one running task of a group like a
// command task, then applies the group's semantics and calls done.
func (a *Agent) superviseGroupTask(ctx context.Context, t *task, c containerizer.Container, group []*task, done func(*task)) {
	defer done(t)
	stopHealth := a.watchHealth(ctx, t, c) // health.go
	a.supervise(ctx, t, c)
	stopHealth()
	a.groupTaskEnded(t, group)
}

// groupLaunchers creates the tasks' sandboxes, fetches their URIs and
// returns the calls that start their containers.
func (a *Agent) groupLaunchers(ctx context.Context, e *executor, tasks []*task) ([]func(context.Context) (containerizer.Container, error), error) {
	if err := os.MkdirAll(e.sandbox, 0o755); err != nil {
		return nil, fmt.Errorf("create executor sandbox: %w", err)
	}
	latest := filepath.Join(filepath.Dir(e.sandbox), "latest")
	if target, err := os.Readlink(latest); err != nil || target != e.containerID {
		_ = os.Remove(latest)
		if err := os.Symlink(e.containerID, latest); err != nil {
			a.log.Warn("create runs/latest link", "err", err)
		}
	}
	launchers := make([]func(context.Context) (containerizer.Container, error), len(tasks))
	for i, t := range tasks {
		if t.info.Command == nil {
			return nil, fmt.Errorf("task %s has no command", t.key.task)
		}
		if err := os.MkdirAll(t.sandbox, 0o755); err != nil {
			return nil, fmt.Errorf("create sandbox of task %s: %w", t.key.task, err)
		}
		if err := a.closeTaskSandbox(t); err != nil { // tasks.go
			return nil, fmt.Errorf("task %s: %w", t.key.task, err)
		}
		launch, err := a.launcher(t) // docker.go: Docker or the agent's containerizer
		if err != nil {
			return nil, fmt.Errorf("task %s: %w", t.key.task, err)
		}
		if uris := t.info.Command.GetURIs(); len(uris) > 0 {
			if err := a.fetchInto(ctx, t.sandbox, a.taskUser(t), uris); err != nil { // fetch.go
				return nil, fmt.Errorf("task %s: fetch: %w", t.key.task, err)
			}
		}
		launchers[i] = launch
	}
	return launchers, nil
}

// groupKilledBeforeLaunch says why the group must not start, if a kill
// came first: the agent stops, the executor shuts down, or one of its
// tasks was killed (which kills the group).
func (a *Agent) groupKilledBeforeLaunch(ctx context.Context, e *executor, tasks []*task) string {
	if ctx.Err() != nil {
		return "Agent shut down before the task group was launched"
	}
	a.mu.Lock()
	terminating := e.state >= execTerminating
	a.mu.Unlock()
	if terminating {
		return "Executor shut down before the task group was launched"
	}
	for _, t := range tasks {
		select {
		case <-t.kill:
			return "Task " + t.key.task + " of the group was killed before the group was launched"
		default:
		}
	}
	return ""
}

// groupTaskEnded applies the group's semantics once one of its tasks has
// ended: a failed or killed task takes the rest of its group with it, and
// so does one that never started (the agent stopped while launching the
// group), the group being all or nothing.
func (a *Agent) groupTaskEnded(t *task, group []*task) {
	a.mu.Lock()
	state := t.state
	a.mu.Unlock()
	if state != mesos.TASK_FAILED && state != mesos.TASK_KILLED && state != mesos.TASK_DROPPED {
		return
	}
	for _, other := range group {
		if other != t {
			other.requestKill(-1)
		}
	}
}

// groupEnded is called when every task of a group has ended; the
// executor is done when no group is left.
func (a *Agent) groupEnded(ctx context.Context, e *executor) {
	if ctx.Err() != nil && a.cfg.KeepTasksOnStop {
		return // the agent stops and leaves the tasks running
	}
	a.groupGone(e)
}

// groupGone counts one group of e as gone, ended or refused
// (refuseLaunch); the executor is done when no group is left, launching
// ones included.
func (a *Agent) groupGone(e *executor) {
	a.mu.Lock()
	e.groups--
	done := e.groups == 0
	if done {
		// From now on new groups for this executor ID start a new one.
		e.state = execTerminated
		if a.executors[e.key] == e {
			delete(a.executors, e.key)
		}
	}
	a.mu.Unlock()
	if !done {
		return
	}
	a.log.Info("default executor done: no tasks left", "framework_id", e.key.framework, "executor_id", e.key.executor)
	a.executorTerminated(e, nil, 0)
	e.shutdownMu.Do(func() { close(e.shutdownReq) })
	close(e.done)
}
