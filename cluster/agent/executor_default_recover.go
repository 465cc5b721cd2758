package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync/atomic"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/containerizer"
)

// Recovery of the built-in default executor (task groups). The executor
// is the agent itself, so there is nothing to re-subscribe: for a
// checkpointing framework the restarted agent restores the executor's
// tasks and their unacknowledged updates, adopts each running task's
// container (through the containerizer that launched it) and supervises it
// again, with the group semantics intact (a task that fails or is killed
// takes the rest of its group with it). A task whose container ended while
// the agent was down gets its terminal update from the exit status the
// containerizer kept (the native init and Docker keep it); a task whose
// container is gone fails. Other frameworks' groups, and every group with
// --recover=cleanup, are destroyed, as their command tasks are.

func (a *Agent) recoverDefaultExecutor(ctx context.Context, meta string, rec *executorRecord) error {
	e := recoveredExecutor(meta, rec, defaultExecutor, execRunning) // executor_recover.go
	key := e.key
	log := a.log.With("framework_id", key.framework, "executor_id", key.executor)
	tasks, restored, states, err := a.recoverExecutorTasks(e) // executor_recover.go
	if err != nil {
		return err
	}
	containers := map[taskKey]containerizer.Container{}
	adoptErrs := map[taskKey]error{}
	for _, t := range tasks {
		st := states[t.key]
		if isTerminal(t.state) || st == nil {
			continue
		}
		c, err := a.recoverContainerOf(ctx, isDockerTask(&t.info), *st) // docker.go
		if err != nil {
			adoptErrs[t.key] = err
			if !errors.Is(err, containerizer.ErrGone) {
				log.Warn("cannot adopt task container", "task_id", t.key.task, "err", err)
			}
			continue
		}
		containers[t.key] = c
	}
	if !rec.Framework.GetCheckpoint() || a.cfg.Recover == RecoverCleanup {
		for _, c := range containers {
			_ = c.Signal(syscall.SIGKILL)
		}
		for _, c := range containers {
			<-c.Done()
		}
		log.Info("destroyed a task group executor of the previous agent", "framework_checkpoints", rec.Framework.GetCheckpoint(),
			"recover", a.cfg.Recover, "containers", len(containers))
		return ckptRemoveAll(meta)
	}
	groups, err := readGroups(e, tasks)
	if err != nil {
		return err
	}

	// Every live task gets a runner; a group whose tasks have all ended
	// waits for acknowledgements only.
	type groupRun struct {
		tasks []*task // the whole group, as recovered
		live  []*task
	}
	var runs []groupRun
	live := 0
	for _, g := range groups {
		r := groupRun{tasks: g}
		for _, t := range g {
			if !isTerminal(t.state) {
				t.done = make(chan struct{})
				if c := containers[t.key]; c != nil {
					t.pid, t.container = c.Pid(), c
				}
				r.live = append(r.live, t)
			}
		}
		if len(r.live) > 0 {
			runs = append(runs, r)
			live += len(r.live)
		}
	}
	a.mu.Lock()
	if err := a.adoptTasksLocked(e, tasks, len(runs) > 0); err != nil { // executor_recover.go
		a.mu.Unlock()
		return err
	}
	e.groups = len(runs)
	var execMeta string
	if len(runs) > 0 {
		a.executors[key] = e
		a.runners.Add(live) // one per live task, below
	} else {
		e.state = execTerminated
		e.ended = time.Now()
		execMeta = a.executorCheckpointToRemoveLocked(e) // executor_checkpoint.go
	}
	a.mu.Unlock()
	a.removeCheckpointDir(execMeta)
	for _, t := range tasks {
		a.updates.restore(t.key, updatesFile(t.meta), restored[t.key])
	}
	if len(runs) == 0 {
		e.requestShutdown()
		close(e.done)
		log.Info("task group executor ended while the agent was down", "tasks", len(tasks))
		return nil
	}
	for _, r := range runs {
		left := atomic.Int32{}
		left.Store(int32(len(r.live)))
		taskDone := func(t *task) {
			close(t.done)
			a.runners.Done()
			if left.Add(-1) == 0 {
				a.groupEnded(a.runnerCtx, e) // executor_default.go
			}
		}
		for _, t := range r.tasks {
			if s := t.state; s == mesos.TASK_FAILED || s == mesos.TASK_KILLED {
				// The agent stopped before it could take the rest of
				// the group down with this task: it does so now.
				for _, other := range r.live {
					other.requestKill(-1)
				}
				break
			}
		}
		for _, t := range r.live {
			c := containers[t.key]
			if c == nil {
				go func(t *task, group []*task) {
					defer taskDone(t)
					state, opts := goneState(adoptErrs[t.key]) // checkpoint.go
					a.update(t, state, opts)
					a.groupTaskEnded(t, group)
				}(t, r.tasks)
				continue
			}
			log.Info("adopted task container of a task group", "task_id", t.key.task, "pid", c.Pid())
			go func(t *task, c containerizer.Container, group []*task) {
				a.reportAdoptedRunning(t, c)                             // checkpoint.go
				a.superviseGroupTask(a.runnerCtx, t, c, group, taskDone) // executor_default.go
			}(t, c, r.tasks)
		}
	}
	return nil
}

// readGroups sorts the recovered tasks of default executor e into their
// task groups; a task no group names is a group of its own.
func readGroups(e *executor, tasks []*task) ([][]*task, error) {
	paths, err := ckptGlob(filepath.Join(groupsDir(e), "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	byID := map[string]*task{}
	for _, t := range tasks {
		byID[t.key.task] = t
	}
	placed := map[string]bool{}
	var groups [][]*task
	for _, path := range paths {
		b, err := ckptReadFile(path)
		if err != nil {
			return nil, err
		}
		var ids []string
		if err := json.Unmarshal(b, &ids); err != nil {
			return nil, fmt.Errorf("decode %s: %w", path, err)
		}
		var g []*task
		for _, id := range ids {
			if t := byID[id]; t != nil && !placed[id] {
				g = append(g, t)
				placed[id] = true
			}
		}
		if len(g) > 0 {
			groups = append(groups, g)
		}
	}
	for _, t := range tasks {
		if !placed[t.key.task] {
			groups = append(groups, []*task{t})
		}
	}
	return groups, nil
}
