package agent

import (
	"context"
	"errors"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/containerizer"
	"github.com/agora-cluster/agora/cluster/containerizer/docker"
)

// Labels the agent puts on its Docker containers besides the
// containerizer's own.
const (
	labelAgentID     = "agora.agent_id"
	labelFrameworkID = "agora.framework_id"
	labelTaskID      = "agora.task_id"
)

var errNoDocker = errors.New("the task's container is of type DOCKER but this agent runs no Docker containerizer (start it with --containerizers=mesos,docker)")

// isDockerContainer reports whether a task's or an executor's
// ContainerInfo c asks for the Docker containerizer. (GetType alone would
// not do: DOCKER is the enum's default, so it is what a task without a
// ContainerInfo reports.)
func isDockerContainer(c *mesos.ContainerInfo) bool {
	return c != nil && c.Type != nil && *c.Type == mesos.ContainerInfo_DOCKER
}

// isDockerTask reports whether info asks for the Docker containerizer.
func isDockerTask(info *mesos.TaskInfo) bool { return isDockerContainer(info.GetContainer()) }

// launcher checks t's container against the containerizer it needs (the
// Docker one for DOCKER containers, the agent's otherwise) and returns the
// call that starts it. A task that cannot run fails here, before anything
// is fetched.
func (a *Agent) launcher(t *task) (func(context.Context) (containerizer.Container, error), error) {
	if !isDockerTask(&t.info) {
		spec, err := a.commandSpec(t)
		if err != nil {
			return nil, err
		}
		return a.nativeLauncher(spec), nil
	}
	if a.cfg.Docker == nil {
		return nil, errNoDocker
	}
	dt, err := a.dockerTask(t)
	if err != nil {
		return nil, err
	}
	return a.dockerLauncher(dt)
}

// nativeLauncher is the call that starts spec in the agent's containerizer.
func (a *Agent) nativeLauncher(spec containerizer.Spec) func(context.Context) (containerizer.Container, error) {
	return func(ctx context.Context) (containerizer.Container, error) {
		return a.cfg.Containerizer.Launch(ctx, spec)
	}
}

// dockerLauncher checks dt against the Docker containerizer (which the
// caller has made sure there is) and returns the call that starts it.
func (a *Agent) dockerLauncher(dt docker.Task) (func(context.Context) (containerizer.Container, error), error) {
	if err := a.cfg.Docker.Validate(dt); err != nil {
		return nil, err
	}
	return func(ctx context.Context) (containerizer.Container, error) {
		return a.cfg.Docker.Launch(ctx, dt)
	}, nil
}

// dockerTask describes t to the Docker containerizer. The container sees
// the MESOS_* variables a command executor's task sees, with its sandbox
// at the mount point, and the task's environment; not the agent's own.
func (a *Agent) dockerTask(t *task) (docker.Task, error) {
	agentID := a.ID()
	env := []string{
		"MESOS_SANDBOX=" + docker.SandboxMount,
		"MESOS_CONTAINER_NAME=" + docker.Name(t.containerID),
		"MESOS_TASK_ID=" + t.key.task,
		"MESOS_FRAMEWORK_ID=" + t.key.framework,
		"MESOS_EXECUTOR_ID=" + t.executorID(),
		"MESOS_AGENT_ID=" + agentID,
		"MESOS_SLAVE_ID=" + agentID,
	}
	if role := t.role(); role != "" {
		env = append(env, "MESOS_ALLOCATION_ROLE="+role)
	}
	cmd := t.info.GetCommand()
	env, err := appendCommandEnv(env, cmd) // tasks.go
	if err != nil {
		return docker.Task{}, err
	}
	dt := docker.Task{
		ContainerID: t.containerID,
		Sandbox:     t.sandbox,
		Container:   *t.info.Container,
		Resources:   t.info.Resources,
		Env:         dedupEnv(env),
		Labels: map[string]string{
			labelAgentID:     agentID,
			labelFrameworkID: t.key.framework,
			labelTaskID:      t.key.task,
		},
		Owner: a.workDir,
	}
	if cmd != nil {
		dt.Command = *cmd
	}
	return dt, nil
}

// plannedContainer is what the agent checkpoints about container id, to
// run in sandbox, before it starts (the containerizer's Plan): from it a
// restarted agent finds the container whatever point of the launch the
// agent was killed at. It is nil for a Docker container on an agent
// without Docker, whose launch fails.
func (a *Agent) plannedContainer(isDocker bool, id, sandbox string) *containerizer.State {
	var st containerizer.State
	switch {
	case !isDocker:
		st = a.cfg.Containerizer.Plan(containerizer.Spec{ID: id, Dir: sandbox})
	case a.cfg.Docker != nil:
		st = a.cfg.Docker.Plan(docker.Task{ContainerID: id, Sandbox: sandbox})
	default:
		return nil
	}
	return &st
}

// recoverContainer adopts a checkpointed container through the
// containerizer that launched it.
func (a *Agent) recoverContainer(ctx context.Context, info *mesos.TaskInfo, st containerizer.State) (containerizer.Container, error) {
	return a.recoverContainerOf(ctx, isDockerTask(info), st)
}

// recoverContainerOf adopts a checkpointed container, through the Docker
// containerizer if it was launched there (or isDocker says it would be).
func (a *Agent) recoverContainerOf(ctx context.Context, isDocker bool, st containerizer.State) (containerizer.Container, error) {
	if st.Docker == "" && !isDocker {
		return a.cfg.Containerizer.Recover(ctx, st)
	}
	if a.cfg.Docker == nil {
		return nil, errNoDocker
	}
	return a.cfg.Docker.Recover(ctx, st)
}

// cleanupDockerOrphans removes the agent's Docker containers (those
// labelled with its work directory) that recovery did not adopt, as Mesos
// does with --docker_kill_orphans. It runs once recovery is done.
func (a *Agent) cleanupDockerOrphans(ctx context.Context) {
	if a.cfg.Docker == nil {
		return
	}
	a.mu.Lock()
	known := map[string]bool{}
	for _, t := range a.tasks {
		known[t.containerID] = true
	}
	for _, e := range a.executors {
		known[e.containerID] = true
	}
	a.mu.Unlock()
	gone, err := a.cfg.Docker.RemoveOrphans(ctx, a.workDir, func(id string) bool { return known[id] })
	if len(gone) > 0 {
		a.log.Warn("removed Docker containers left by an earlier agent that it does not recover", "containers", gone)
	}
	if err != nil {
		a.log.Error("cannot remove Docker containers left by an earlier agent", "err", err)
	}
}
