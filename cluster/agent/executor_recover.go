package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/containerizer"
)

// Recovery of custom executors (Mesos's agent recovery with
// --recover=reconnect). For each checkpointed executor run the agent
// restores the executor's tasks and their unacknowledged status updates
// (which the update manager resends in order once the agent is
// registered) and adopts the executor's container. The executor is then
// REGISTERING: it has ExecutorReregistrationTimeout to SUBSCRIBE again,
// with the updates and tasks the agent has not acknowledged
// (executorSubscribe), or it is destroyed and its tasks are gone. An
// executor whose container ended while the agent was down fails its
// tasks. Executors of frameworks that do not checkpoint are destroyed, as
// their command tasks are, and so is every executor with --recover=cleanup.

// recoverExecutors recovers every checkpointed executor run of agent id.
func (a *Agent) recoverExecutors(ctx context.Context, id string) (recovered int) {
	runs, err := ckptGlob(filepath.Join(a.metaAgentDir(id), "frameworks", "*", "executors", "*", "runs", "*", executorRecordFile))
	if err != nil {
		a.log.Error("cannot list checkpointed executors", "err", err)
		return 0
	}
	sort.Strings(runs)
	for _, path := range runs {
		if err := a.recoverExecutor(ctx, filepath.Dir(path)); err != nil {
			a.count("slave/recovery_errors", 1)
			a.log.Error("cannot recover executor; its checkpoint is left in place", "checkpoint", path, "err", err)
			continue
		}
		recovered++
	}
	return recovered
}

func (a *Agent) recoverExecutor(ctx context.Context, meta string) error {
	b, err := ckptReadFile(filepath.Join(meta, executorRecordFile))
	if err != nil {
		return err
	}
	var rec executorRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return fmt.Errorf("decode %s: %w", executorRecordFile, err)
	}
	if rec.Executor == nil || rec.Framework == nil || rec.Framework.ID == nil || rec.ContainerID == "" {
		return fmt.Errorf("%s lacks the executor, its framework or its container", executorRecordFile)
	}
	if rec.Executor.GetType() == mesos.ExecutorInfo_DEFAULT {
		return a.recoverDefaultExecutor(ctx, meta, &rec) // executor_default_recover.go
	}
	e := recoveredExecutor(meta, &rec, customExecutor, execRegistering)
	key := e.key
	log := a.log.With("framework_id", key.framework, "executor_id", key.executor, "container_id", e.containerID)

	var c containerizer.Container
	var adoptErr error
	if rec.Container != nil {
		c, adoptErr = a.recoverContainerOf(ctx, isDockerExecutor(rec.Executor), *rec.Container) // docker.go
		if adoptErr != nil && !errors.Is(adoptErr, containerizer.ErrGone) {
			log.Warn("cannot adopt executor container", "err", adoptErr)
		}
	}
	if !rec.Framework.GetCheckpoint() || a.cfg.Recover == RecoverCleanup {
		if c != nil {
			_ = c.Signal(syscall.SIGKILL)
			<-c.Done()
		}
		log.Info("destroyed an executor of the previous agent", "framework_checkpoints", rec.Framework.GetCheckpoint(), "recover", a.cfg.Recover)
		return ckptRemoveAll(meta)
	}

	tasks, restored, _, err := a.recoverExecutorTasks(e)
	if err != nil {
		return err
	}
	if c == nil {
		e.state = execTerminated
		e.ended = time.Now()
	} else {
		e.container = c
	}
	a.mu.Lock()
	if err := a.adoptTasksLocked(e, tasks, c != nil); err != nil {
		a.mu.Unlock()
		return err
	}
	for _, t := range tasks {
		if !isTerminal(t.state) {
			// Whether the executor got it is unknown: it says so when it
			// re-subscribes (executorSubscribe); kills go to it.
			e.delivered[t.key.task] = &pendingLaunch{task: &t.info}
		}
	}
	if c != nil {
		a.executors[key] = e
	}
	execMeta := a.executorCheckpointToRemoveLocked(e) // executor_checkpoint.go
	a.mu.Unlock()
	a.removeCheckpointDir(execMeta)
	for _, t := range tasks {
		a.updates.restore(t.key, updatesFile(t.meta), restored[t.key])
	}

	if c == nil {
		state, opts := mesos.TASK_FAILED, statusOpts{fromAgent: true, reason: mesos.REASON_EXECUTOR_TERMINATED.Enum(),
			message: "Executor is gone: it ended while the agent was down"}
		if errors.Is(adoptErr, containerizer.ErrNeverStarted) {
			state, opts = goneState(adoptErr) // checkpoint.go
			opts.message = "Task never started: the agent stopped while launching its executor"
		}
		for _, t := range tasks {
			if !isTerminal(t.state) {
				a.update(t, state, opts)
			}
		}
		log.Info("executor ended while the agent was down", "tasks", len(tasks), "err", adoptErr)
		return nil
	}
	log.Info("adopted running executor; waiting for it to re-subscribe", "pid", c.Pid(), "tasks", len(tasks),
		"timeout", a.cfg.ExecutorReregistrationTimeout)
	a.runners.Add(1)
	go func() {
		defer a.runners.Done()
		defer close(e.done)
		a.superviseExecutor(a.runnerCtx, e, c)
	}()
	return nil
}

// recoveredExecutor is the executor that checkpoint rec (in meta)
// describes, as a restarted agent takes it back in state.
func recoveredExecutor(meta string, rec *executorRecord, kind execKind, state execState) *executor {
	key := execKey{rec.Framework.ID.Value, rec.Executor.ExecutorID.Value}
	e := baseExecutor(key, kind, *rec.Executor, *rec.Framework, rec.ContainerID, time.Unix(0, int64(rec.Launched*1e9))) // executor.go
	e.sandbox = rec.Sandbox
	e.meta = meta
	e.state = state
	e.recovered = true
	return e
}

// adoptTasksLocked makes the recovered tasks of executor e the agent's
// and e's. An executor that will run (live) must not be registered
// already, and no task may be: a checkpoint recovered twice is refused
// and nothing is changed. a.mu is held.
func (a *Agent) adoptTasksLocked(e *executor, tasks []*task, live bool) error {
	if old := a.executors[e.key]; old != nil && live {
		return fmt.Errorf("executor %s of framework %s is checkpointed twice", e.key.executor, e.key.framework)
	}
	for _, t := range tasks {
		if _, dup := a.tasks[t.key]; dup {
			return fmt.Errorf("task %s of framework %s is checkpointed twice", t.key.task, t.key.framework)
		}
	}
	for _, t := range tasks {
		a.tasks[t.key] = t
		e.tasks[t.key.task] = t
	}
	return nil
}

// recoverExecutorTasks reads the checkpointed tasks of executor e: each
// task with its statuses, its unacknowledged updates and (for the default
// executor, whose tasks have containers of their own) its container.
// Tasks whose terminal update was acknowledged are dropped with their
// checkpoint.
func (a *Agent) recoverExecutorTasks(e *executor) ([]*task, map[taskKey][]*api.StatusUpdate, map[taskKey]*containerizer.State, error) {
	paths, err := ckptGlob(filepath.Join(e.meta, "tasks", "*", "task.json"))
	if err != nil {
		return nil, nil, nil, err
	}
	sort.Strings(paths)
	var tasks []*task
	pending := map[taskKey][]*api.StatusUpdate{}
	containers := map[taskKey]*containerizer.State{}
	for _, path := range paths {
		meta := filepath.Dir(path)
		b, err := ckptReadFile(path)
		if err != nil {
			return nil, nil, nil, err
		}
		var rec taskRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, nil, nil, fmt.Errorf("decode %s: %w", path, err)
		}
		if rec.Task == nil {
			return nil, nil, nil, fmt.Errorf("%s lacks the task", path)
		}
		all, unacked, err := replayUpdates(updatesFile(meta))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("replay %s: %w", updatesFile(meta), err)
		}
		t := &task{
			key: taskKey{e.key.framework, rec.Task.TaskID.Value}, info: *rec.Task, framework: e.framework,
			containerID: e.containerID, sandbox: e.sandbox, meta: meta, state: mesos.TASK_STAGING,
			launched: time.Unix(0, int64(rec.Launched*1e9)), kill: make(chan time.Duration, 8), exec: e,
		}
		if e.kind == defaultExecutor {
			if rec.ContainerID == "" || rec.Sandbox == "" {
				return nil, nil, nil, fmt.Errorf("%s lacks the task's container ID or sandbox", path)
			}
			t.containerID, t.sandbox = rec.ContainerID, rec.Sandbox
		}
		for _, u := range all {
			t.statuses = append(t.statuses, *u.Status)
			t.state = u.Status.GetState()
		}
		if isTerminal(t.state) && len(unacked) == 0 {
			if err := ckptRemoveAll(meta); err != nil {
				return nil, nil, nil, err
			}
			continue
		}
		tasks = append(tasks, t)
		pending[t.key] = unacked
		containers[t.key] = rec.Container
	}
	return tasks, pending, containers, nil
}
