package agent

import (
	"encoding/json"
	"path/filepath"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/containerizer"
)

// A custom executor's checkpoint (after Mesos's), in the meta directory of
// its run:
//
//	slaves/<agent>/frameworks/<fw>/executors/<executor>/runs/<container>/
//	    executor.json                executorRecord
//	    tasks/<task>/task.json       taskRecord of each task sent to it
//	    tasks/<task>/task.updates    the task's status updates and acks
//
// A restarted agent reconnects with the executor from it (executor_recover.go).
//
// The built-in default executor has the same checkpoint, with each task's
// own container in its task.json, and one file per task group:
//
//	    groups/<first task>.json     the IDs of the group's tasks
//
// from which a restarted agent supervises the group's containers again
// (executor_default_recover.go).

// executorRecord is an executor's executor.json.
type executorRecord struct {
	Framework   *mesos.FrameworkInfo `json:"framework"`
	Executor    *mesos.ExecutorInfo  `json:"executor"`
	ContainerID string               `json:"container_id"`
	Sandbox     string               `json:"sandbox"`
	Launched    float64              `json:"launched"`
	// Container is set once the executor runs, for Recover.
	Container *containerizer.State `json:"container,omitempty"`
}

const executorRecordFile = "executor.json"

// checkpointExecutor writes e's executor.json; st is its container once it
// runs.
func (a *Agent) checkpointExecutor(e *executor, st *containerizer.State) error {
	rec := executorRecord{
		Framework: &e.framework, Executor: &e.info, ContainerID: e.containerID, Sandbox: e.sandbox,
		Launched: float64(e.launched.UnixNano()) / 1e9, Container: st,
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(e.meta, executorRecordFile), b, e.framework.GetCheckpoint())
}

// executorCheckpointToRemoveLocked decides whether the checkpoint of an
// executor goes: once it has terminated and its tasks are all forgotten.
// It returns the directory to remove ("" for none); a.mu is held. The
// caller removes it with removeCheckpointDir after releasing a.mu (no disk
// I/O under a.mu), before it acknowledges anything that depends on it.
func (a *Agent) executorCheckpointToRemoveLocked(e *executor) string {
	if e.state != execTerminated || len(e.tasks) > 0 || e.meta == "" {
		return ""
	}
	return e.meta
}

// removeCheckpointDir removes a checkpoint directory chosen under a.mu
// ("": nothing); a.mu is not held.
func (a *Agent) removeCheckpointDir(dir string) {
	if dir == "" {
		return
	}
	if err := ckptRemoveAll(dir); err != nil {
		a.log.Warn("remove checkpoint", "dir", dir, "err", err)
	}
}

// groupsDir holds the task groups of a default executor's run.
func groupsDir(e *executor) string { return filepath.Join(e.meta, "groups") }

// checkpointGroup records which tasks form one group of the default
// executor e.
func (a *Agent) checkpointGroup(e *executor, tasks []*task) error {
	ids := make([]string, len(tasks))
	for i, t := range tasks {
		ids[i] = t.key.task
	}
	b, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	return writeFileAtomic(groupFile(e, tasks), b, e.framework.GetCheckpoint())
}

// groupFile is the checkpoint of the task group tasks of executor e.
func groupFile(e *executor, tasks []*task) string {
	return filepath.Join(groupsDir(e), tasks[0].key.task+".json")
}

// runsParent is the directory that the checkpoints of all runs of one
// executor (or command task) are in, .../executors: removing a refused
// run's checkpoint may remove the run's empty parents up to it, which no
// other launch writes into meanwhile.
func runsParent(runMeta string) string { return filepath.Dir(filepath.Dir(filepath.Dir(runMeta))) }
