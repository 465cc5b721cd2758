package agent

import (
	"path/filepath"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/containerizer"
)

// orphanCleaner is implemented by containerizers that can find the
// containers an earlier agent process left behind (containerizer.Native:
// the cgroups in its root).
type orphanCleaner interface {
	CleanupOrphans(keep func(containerID string) bool) ([]string, error)
}

// cleanupOrphanContainers destroys the containers of this agent that
// recovery did not adopt: those of tasks and executors it has no
// checkpoint for (launched just before a crash, or whose checkpoint was
// lost or removed). A container is this agent's if its sandbox is in the
// agent's work directory, so agents that share a cgroup root leave each
// other's containers alone. It runs once recovery is done, before new
// tasks start.
func (a *Agent) cleanupOrphanContainers() {
	oc, ok := a.cfg.Containerizer.(orphanCleaner)
	if !ok {
		return
	}
	mine := map[string]bool{}
	runs, err := filepath.Glob(filepath.Join(a.workDir, "slaves", "*", "frameworks", "*", "executors", "*", "runs", "*"))
	if err != nil {
		a.log.Error("cannot list sandboxes to find containers left by an earlier agent", "err", err)
		return
	}
	for _, run := range runs {
		mine[filepath.Base(run)] = true
	}
	a.mu.Lock()
	known := map[string]bool{}
	for _, t := range a.tasks {
		known[t.containerID] = true
	}
	a.mu.Unlock()
	for _, id := range a.executorContainerIDs() {
		known[id] = true
	}
	gone, err := oc.CleanupOrphans(func(id string) bool { return known[id] || !mine[id] })
	if len(gone) > 0 {
		a.log.Warn("destroyed containers left by an earlier agent that it does not recover", "containers", gone)
	}
	if err != nil {
		a.log.Error("cannot clean up containers left by an earlier agent", "err", err)
	}
}

// executorContainerIDs lists the containers of the agent's executors.
func (a *Agent) executorContainerIDs() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ids []string
	for _, e := range a.executors {
		ids = append(ids, e.containerID)
	}
	return ids
}

// limitationReason is the TaskStatus reason for a container killed for
// exceeding a resource limit.
func limitationReason(l *containerizer.Limitation) *mesos.TaskStatus_Reason {
	switch l.Resource {
	case "mem":
		return mesos.REASON_CONTAINER_LIMITATION_MEMORY.Enum()
	case "disk":
		return mesos.REASON_CONTAINER_LIMITATION_DISK.Enum()
	}
	return mesos.REASON_CONTAINER_LIMITATION.Enum()
}
