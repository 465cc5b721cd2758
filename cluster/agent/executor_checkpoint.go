package agent

import (
	"encoding/json"
	"os"
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

// removeExecutorCheckpoint drops the checkpoint of an executor that has
// terminated and whose tasks are all forgotten; a.mu is held (the removal
// itself does not need it, the decision does).
func (a *Agent) removeExecutorCheckpointLocked(e *executor) {
	if e.kind != customExecutor || e.state != execTerminated || len(e.tasks) > 0 || e.meta == "" {
		return
	}
	if err := os.RemoveAll(e.meta); err != nil {
		a.log.Warn("remove executor checkpoint", "executor_id", e.key.executor, "err", err)
	}
}
