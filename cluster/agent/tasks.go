package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/containerizer"
)

// taskKey names a task on the agent: task IDs are unique per framework.
type taskKey struct{ framework, task string }

// task is one task the agent knows: running, or ended with status updates
// not yet acknowledged. Fields after mu-guarded ones are fixed at creation.
type task struct {
	key         taskKey
	info        mesos.TaskInfo
	framework   mesos.FrameworkInfo
	containerID string
	sandbox     string // WORK_DIR/slaves/<agent>/frameworks/<fw>/executors/<task>/runs/<container>
	meta        string // WORK_DIR/meta/slaves/<agent>/.../runs/<container>
	launched    time.Time

	// Guarded by Agent.mu.
	state    mesos.TaskState
	statuses []mesos.TaskStatus
	pid      int
	ended    time.Time

	// container runs the task, for /monitor/statistics (monitor.go);
	// guarded by Agent.mu.
	container containerizer.Container
	// A task on a custom or the default executor is launching from the
	// moment it is registered until its launch's checkpoint is written and
	// the launch settles (runLaunches, executor.go); a kill of a launching
	// task on a custom executor is held in launchKilled until then.
	// Guarded by Agent.mu.
	launching, launchKilled bool

	kill chan time.Duration // grace periods of kill requests, to the runner
	done chan struct{}      // closed when the runner has ended (nil: no runner)

	exec         *executor   // custom or default executor; nil: command executor
	updMu        sync.Mutex  // orders the task's status updates (recordStatus)
	healthKilled atomic.Bool // killed for failing its health check
	// killRequested is set by the first kill request: from then on the
	// task's health checks stop (health.go), as Mesos's do, so a check
	// failing against a dying container reports nothing.
	killRequested atomic.Bool

	// ckpt is the start of t's task.json, the same in each of its
	// checkpoints (checkpoint.go); used by the goroutine that writes them.
	ckpt ckptHead
}

func (t *task) executorID() string {
	if t.exec != nil {
		return t.exec.key.executor
	}
	return t.key.task
}

// requestKill asks the task's runner to kill it; grace < 0 means the task's
// own kill policy.
func (t *task) requestKill(grace time.Duration) {
	t.killRequested.Store(true)
	select {
	case t.kill <- grace:
	default: // a kill is already pending
	}
}

func (t *task) hasCapability(c mesos.FrameworkInfo_Capability_Type) bool {
	for _, fc := range t.framework.Capabilities {
		if fc.Type == c {
			return true
		}
	}
	return false
}

// role is the role the task's resources are allocated to, if known.
func (t *task) role() string {
	for _, r := range t.info.Resources {
		if role := r.GetAllocationInfo().GetRole(); role != "" {
			return role
		}
	}
	if roles := t.framework.GetRoles(); len(roles) == 1 {
		return roles[0]
	}
	return t.framework.GetRole()
}

func isTerminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR,
		mesos.TASK_LOST, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}

// validID reports whether an ID can be used as a path component.
func validID(kind, id string) error {
	if id == "" || id == "." || id == ".." || len(id) > 255 || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("%s %q cannot name a directory", kind, id)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s %q contains a control character", kind, id)
		}
	}
	return nil
}

// runTask handles RUN_TASK.
func (a *Agent) runTask(rt *api.RunTask) {
	if rt == nil || (rt.Task == nil && rt.Group == nil) || rt.Framework == nil || rt.Framework.GetID() == nil {
		a.log.Warn("ignoring RUN_TASK without task or framework ID")
		return
	}
	if e := executorOf(rt); rt.Group != nil || (e != nil && e.GetType() != mesos.ExecutorInfo_DEFAULT) {
		a.runOnExecutor(rt) // executor.go
		return
	}
	var refuse error
	if rt.Task.Command == nil {
		refuse = errors.New("the task has no command")
	}
	a.startTask(*rt.Framework, *rt.Task, refuse)
}

// startTask registers a task and starts its runner; a task that cannot run
// (refuse) fails at once with REASON_CONTAINER_LAUNCH_FAILED.
func (a *Agent) startTask(fw mesos.FrameworkInfo, info mesos.TaskInfo, refuse error) {
	key := taskKey{fw.GetID().GetValue(), info.TaskID.Value}
	log := a.log.With("framework_id", key.framework, "task_id", key.task)
	idErr := errors.Join(validID("framework ID", key.framework), validID("task ID", key.task))
	if idErr != nil {
		// The master validates IDs; a task that slipped through cannot get
		// a sandbox or a checkpoint, so it is refused without them.
		log.Error("refusing task", "err", idErr)
		refuse = idErr
	}
	uid := a.launchUID(info.Command, &fw) // sandboxrecycle.go: the recycled sandboxes it may take
	a.mu.Lock()
	if _, dup := a.tasks[key]; dup {
		a.mu.Unlock()
		log.Warn("ignoring RUN_TASK for a task the agent already has")
		return
	}
	agentID := a.agentID
	containerID := newUUID().String()
	if refuse == nil {
		containerID = a.sandboxes.containerID(uid) // sandboxpool.go
	}
	t := &task{
		key:         key,
		info:        info,
		framework:   fw,
		containerID: containerID,
		launched:    time.Now(),
		state:       mesos.TASK_STAGING,
		kill:        make(chan time.Duration, 8),
	}
	if idErr == nil {
		t.meta = a.metaRunDir(agentID, key, t.containerID)
	}
	if refuse == nil {
		t.sandbox = a.sandboxDir(agentID, key, t.containerID)
		t.done = make(chan struct{})
		a.runners.Add(1)
	}
	a.tasks[key] = t
	a.mu.Unlock()

	if refuse != nil {
		log.Warn("task refused", "err", refuse)
		if err := a.checkpointTask(t, nil); err != nil {
			log.Error("checkpoint task", "err", err)
			a.dropRefusedCheckpoint(t)
		}
		a.count("slave/container_launch_errors", 1)
		a.update(t, mesos.TASK_FAILED, statusOpts{
			fromAgent: true, reason: mesos.REASON_CONTAINER_LAUNCH_FAILED.Enum(), message: refuse.Error(),
		})
		return
	}
	log.Info("launching task", "container_id", t.containerID, "sandbox", t.sandbox)
	go a.runCommand(a.runnerCtx, t)
}

// runCommand is the command executor: it prepares the sandbox, launches
// the command and supervises it until it ends.
func (a *Agent) runCommand(ctx context.Context, t *task) {
	defer a.runners.Done()
	defer close(t.done)
	fail := func(err error) {
		a.count("slave/container_launch_errors", 1)
		a.log.Warn("task launch failed", "framework_id", t.key.framework, "task_id", t.key.task, "err", err)
		a.update(t, mesos.TASK_FAILED, statusOpts{
			fromAgent: true, reason: mesos.REASON_CONTAINER_LAUNCH_FAILED.Enum(),
			message: "Failed to launch container: " + err.Error(),
		})
	}
	if err := a.prepareSandbox(t); err != nil {
		fail(err)
		return
	}
	// Checkpointed before anything runs, so that a restarted agent knows
	// the task: a launch whose checkpoint fails does not happen. The
	// checkpoint names the container the task will run in (its Plan), so
	// that a restarted agent finds it however far the launch went.
	if err := a.checkpointTask(t, a.plannedContainer(isDockerTask(&t.info), t.containerID, t.sandbox)); err != nil {
		a.dropRefusedCheckpoint(t)
		fail(fmt.Errorf("could not checkpoint task %s: %w", t.key.task, err))
		return
	}
	launch, err := a.launcher(t) // docker.go: the Docker or the agent's containerizer
	if err != nil {
		fail(err)
		return
	}
	if err := a.fetchURIs(ctx, t); err != nil { // fetch.go
		fail(err)
		return
	}
	if err := a.linkVolumes(t); err != nil { // volumes.go
		fail(err)
		return
	}
	select {
	case <-t.kill:
		a.update(t, mesos.TASK_KILLED, statusOpts{fromAgent: true, reason: mesos.REASON_TASK_KILLED_DURING_LAUNCH.Enum(), message: "Task killed before it was launched"})
		return
	case <-ctx.Done():
		a.update(t, mesos.TASK_KILLED, statusOpts{fromAgent: true, reason: mesos.REASON_TASK_KILLED_DURING_LAUNCH.Enum(), message: "Agent shut down before the task was launched"})
		return
	default:
	}
	a.update(t, mesos.TASK_STARTING, statusOpts{})
	crashPoint(CrashBeforeContainerStart, t.meta) // diskfaults.go
	c, err := launch(ctx)
	if err != nil && ctx.Err() != nil {
		a.update(t, mesos.TASK_KILLED, statusOpts{fromAgent: true, reason: mesos.REASON_TASK_KILLED_DURING_LAUNCH.Enum(), message: "Agent shut down before the task was launched"})
		return
	}
	if err != nil {
		fail(err)
		return
	}
	crashPoint(CrashAfterContainerStart, t.meta)
	a.mu.Lock()
	t.pid, t.container = c.Pid(), c
	a.mu.Unlock()
	st := c.State()
	if err := a.checkpointTask(t, &st); err != nil {
		// A container a restarted agent could not find again must not run:
		// kill it and fail the launch, naming the disk's error.
		if kerr := c.Signal(syscall.SIGKILL); kerr != nil && !errors.Is(kerr, containerizer.ErrExited) {
			a.log.Warn("kill a container whose checkpoint failed", "task_id", t.key.task, "err", kerr)
		}
		wctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, _ = c.Wait(wctx)
		cancel()
		fail(fmt.Errorf("cannot checkpoint the task, so a restarted agent could not recover it: %w", err))
		return
	}
	a.update(t, mesos.TASK_RUNNING, statusOpts{container: c})
	defer a.watchHealth(ctx, t, c)() // health.go
	a.supervise(ctx, t, c)
}

// supervise waits for the container to end, handling kill requests and the
// agent's shutdown, and sends the terminal update.
func (a *Agent) supervise(ctx context.Context, t *task, c containerizer.Container) {
	var (
		killing, stopping bool
		deadline          time.Time
		escalate          *time.Timer
		escalateC         <-chan time.Time
		stopC             = ctx.Done()
	)
	defer func() {
		if escalate != nil {
			escalate.Stop()
		}
	}()
	beginKill := func(grace time.Duration) {
		if grace < 0 {
			grace = a.gracePeriod(t.info.KillPolicy)
		}
		if killing && !time.Now().Add(grace).Before(deadline) {
			return // an earlier kill escalates sooner
		}
		if !killing {
			killing = true
			if t.hasCapability(mesos.FrameworkInfo_Capability_TASK_KILLING_STATE) {
				a.update(t, mesos.TASK_KILLING, statusOpts{container: c})
			}
			if err := c.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, containerizer.ErrExited) {
				a.log.Warn("SIGTERM failed", "task_id", t.key.task, "err", err)
			}
		}
		deadline = time.Now().Add(grace)
		if escalate != nil {
			escalate.Stop()
		}
		escalate = time.NewTimer(grace)
		escalateC = escalate.C
	}
	for {
		select {
		case <-c.Done():
			exit, _ := c.Wait(context.Background())
			a.markRecyclable(t, c) // sandboxrecycle.go
			a.finishTask(t, c, exit, killing, stopping)
			return
		case grace := <-t.kill:
			beginKill(grace)
		case <-stopC:
			stopC = nil
			if a.cfg.KeepTasksOnStop {
				a.log.Info("leaving task running", "task_id", t.key.task, "pid", c.Pid())
				return
			}
			stopping = true
			beginKill(-1)
		case <-escalateC:
			escalateC = nil
			if err := c.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, containerizer.ErrExited) {
				a.log.Warn("SIGKILL failed", "task_id", t.key.task, "err", err)
			}
		}
	}
}

func (a *Agent) finishTask(t *task, c containerizer.Container, exit containerizer.Exit, killing, stopping bool) {
	opts := statusOpts{container: c, message: "Command " + exit.String()}
	state := mesos.TASK_FAILED
	switch {
	case stopping:
		state, opts.message = mesos.TASK_KILLED, "Agent shut down; command "+exit.String()
	case killing:
		state = mesos.TASK_KILLED
	case exit.Limitation != nil: // isolation.go
		opts.fromAgent, opts.reason, opts.message = true, limitationReason(exit.Limitation), exit.Limitation.Message
	case exit.Unknown:
		opts.fromAgent = true
		opts.reason = mesos.REASON_EXECUTOR_TERMINATED.Enum()
		opts.message = "Command exited while its exit status could not be observed (the agent restarted while it ran)"
	case exit.Success():
		state = mesos.TASK_FINISHED
	}
	a.count("slave/executors_terminated", 1)
	a.update(t, state, opts)
}

// gracePeriod is the time between SIGTERM and SIGKILL under policy.
func (a *Agent) gracePeriod(policy *mesos.KillPolicy) time.Duration {
	if policy != nil && policy.GracePeriod != nil && policy.GracePeriod.Nanoseconds >= 0 {
		return time.Duration(policy.GracePeriod.Nanoseconds)
	}
	return a.cfg.KillGracePeriod
}

// killTask handles KILL_TASK.
func (a *Agent) killTask(kt *api.KillTask) {
	if kt == nil {
		return
	}
	a.mu.Lock()
	t := a.tasks[taskKey{kt.FrameworkID, kt.TaskID}]
	a.mu.Unlock()
	if t != nil && t.exec != nil {
		a.killExecutorTask(t, kt.KillPolicy) // executor.go
		return
	}
	if t == nil || t.done == nil {
		a.log.Info("ignoring KILL_TASK for a task the agent does not run", "framework_id", kt.FrameworkID, "task_id", kt.TaskID)
		return
	}
	grace := time.Duration(-1)
	if kt.KillPolicy != nil && kt.KillPolicy.GracePeriod != nil {
		grace = a.gracePeriod(kt.KillPolicy)
	}
	t.requestKill(grace)
}

// frameworkTasks lists the tasks of framework fw that have a runner.
func (a *Agent) frameworkTasks(fw string) []*task {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*task
	for k, t := range a.tasks {
		if (fw == "" || k.framework == fw) && t.done != nil {
			out = append(out, t)
		}
	}
	return out
}

// killAndWait kills the tasks of framework fw ("" for every framework)
// and shuts its executors down (their tasks TASK_KILLED with reason and
// msg), then waits for the tasks the agent runs to end. It returns how
// many tasks it killed, and false if ctx ended first.
func (a *Agent) killAndWait(ctx context.Context, fw string, reason mesos.TaskStatus_Reason, msg string) (killed int, ok bool) {
	tasks := a.frameworkTasks(fw)
	for _, t := range tasks {
		t.requestKill(-1)
	}
	a.shutdownExecutors(ctx, fw, mesos.TASK_KILLED, reason, msg) // executor.go
	for _, t := range tasks {
		select {
		case <-t.done:
		case <-ctx.Done():
			return len(tasks), false
		}
	}
	return len(tasks), true
}

// shutdownFramework kills all of a framework's tasks (TASK_KILLED), then
// forgets them: their updates are sent once more but not retried, since
// the framework is gone and nobody will acknowledge them.
func (a *Agent) shutdownFramework(ctx context.Context, fw string) {
	if _, ok := a.killAndWait(ctx, fw, mesos.REASON_FRAMEWORK_REMOVED, "Framework shut down"); !ok {
		return
	}
	a.mu.Lock()
	var gone []*task
	for k, t := range a.tasks {
		if k.framework == fw && isTerminal(t.state) {
			gone = append(gone, t)
		}
	}
	a.mu.Unlock()
	for _, t := range gone {
		a.updates.abandon(t.key)
		a.forget(t)
	}
}

// forget removes a task whose terminal update was acknowledged (or whose
// framework is gone); its sandbox stays, its checkpoint goes.
func (a *Agent) forget(t *task) {
	// The acknowledgement of a terminal update can arrive while the
	// update's recordStatus is still settling: it makes the update
	// durable and sent, and only then sets t.state. Forgetting the task
	// waits for that, or the completed task would keep its previous
	// state (updMu before mu: the lock order).
	t.updMu.Lock()
	defer t.updMu.Unlock()
	a.mu.Lock()
	if a.tasks[t.key] != t {
		a.mu.Unlock()
		return
	}
	a.retire(t)
	var execMeta string
	if t.exec != nil {
		execMeta = a.executorCheckpointToRemoveLocked(t.exec) // executor_checkpoint.go
	}
	a.mu.Unlock()
	if t.meta != "" {
		if err := ckptRemoveAll(t.meta); err != nil {
			a.log.Warn("remove task checkpoint", "task_id", t.key.task, "err", err)
		}
	}
	a.removeCheckpointDir(execMeta)
	a.log.Debug("task forgotten", "framework_id", t.key.framework, "task_id", t.key.task, "state", t.state.String())
}

// retire moves a task to the completed list; a.mu is held.
func (a *Agent) retire(t *task) {
	delete(a.tasks, t.key)
	if t.exec != nil {
		t.exec.forgetTask(t.key.task) // executor.go
	}
	t.ended = time.Now()
	a.completed = append(a.completed, t)
	if len(a.completed) >= 2*maxCompletedTasks {
		// Trimmed in steps of maxCompletedTasks, not at every retirement:
		// a copy of the whole list per task was most of what it cost.
		a.completed = append([]*task(nil), a.recentCompleted()...)
	}
}

// recentCompleted is the last maxCompletedTasks tasks retired, oldest
// first; a.mu is held.
func (a *Agent) recentCompleted() []*task {
	return a.completed[max(0, len(a.completed)-maxCompletedTasks):]
}

func (a *Agent) sandboxDir(agentID string, k taskKey, containerID string) string {
	return filepath.Join(a.workDir, "slaves", agentID, "frameworks", k.framework, "executors", k.task, "runs", containerID)
}

// prepareSandbox makes t's sandbox, given to its task's user
// (closeTaskSandbox), from the pool or in place.
func (a *Agent) prepareSandbox(t *task) error {
	owner, err := a.taskSandboxOwner(t)
	if err != nil {
		a.sandboxes.drop(t.containerID) // sandboxpool.go
		return fmt.Errorf("sandbox %s: %w", t.sandbox, err)
	}
	// From the pool: one rename, the sandbox closed to other users before
	// it makes it reachable.
	if a.sandboxes.place(t.containerID, t.sandbox, owner) { // sandboxpool.go
		return nil
	}
	if err := os.MkdirAll(t.sandbox, 0o755); err != nil {
		return fmt.Errorf("create sandbox: %w", err)
	}
	if err := owner.close(t.sandbox); err != nil { // sandbox_owner.go
		return err
	}
	// runs/latest points at the newest run, as in Mesos. The first run
	// of a task (the common case) makes it with one call.
	latest := filepath.Join(filepath.Dir(t.sandbox), "latest")
	err = os.Symlink(t.containerID, latest)
	if errors.Is(err, os.ErrExist) {
		_ = os.Remove(latest)
		err = os.Symlink(t.containerID, latest)
	}
	if err != nil {
		a.log.Warn("create runs/latest link", "err", err)
	}
	return nil
}

// closeTaskSandbox closes the sandbox of a task the agent's containerizer
// runs to all but the task's user (sandbox_owner.go). A Docker task's
// sandbox keeps its modes: the image's own user must reach it.
func (a *Agent) closeTaskSandbox(t *task) error {
	owner, err := a.taskSandboxOwner(t)
	if err != nil {
		return fmt.Errorf("sandbox %s: %w", t.sandbox, err)
	}
	return owner.close(t.sandbox)
}

// taskSandboxOwner is the user t's sandbox goes to (closeTaskSandbox):
// nil when it keeps the modes it is made with.
func (a *Agent) taskSandboxOwner(t *task) (*sandboxOwner, error) {
	if isDockerTask(&t.info) {
		return nil, nil
	}
	return sandboxOwnerOf(a.taskUser(t))
}

// dropRefusedCheckpoint removes what was written of the checkpoint of a
// command task whose launch is refused for want of it: nothing of the
// task is left for a restarted agent to recover, and its updates live in
// memory only (statusupdates.go).
func (a *Agent) dropRefusedCheckpoint(t *task) {
	if t.meta == "" {
		return
	}
	if err := removeCheckpoint(t.meta, runsParent(t.meta)); err != nil {
		a.log.Error("cannot remove the checkpoint of a refused launch; a restarted agent fails the task", "task_id", t.key.task, "err", err)
	}
	t.updMu.Lock()
	a.mu.Lock()
	t.meta = ""
	a.mu.Unlock()
	t.updMu.Unlock()
}

// commandSpec turns the task's CommandInfo into a container spec. A
// MESOS container with an image is refused: Mesos would provision the
// image, this agent provisions none, and running the command on the host
// instead would run it without the filesystem it asked for.
func (a *Agent) commandSpec(t *task) (containerizer.Spec, error) {
	if img := t.info.GetContainer().GetMesos().GetImage(); img != nil {
		return containerizer.Spec{}, fmt.Errorf("the task's MESOS container asks for image %s, but this agent provisions no images; run the image in a container of type DOCKER", imageName(img))
	}
	env := os.Environ()
	set := func(name, value string) { env = append(env, name+"="+value) }
	set("MESOS_SANDBOX", t.sandbox)
	set("MESOS_DIRECTORY", t.sandbox)
	set("MESOS_TASK_ID", t.key.task)
	set("MESOS_FRAMEWORK_ID", t.key.framework)
	set("MESOS_EXECUTOR_ID", t.executorID())
	set("MESOS_AGENT_ID", a.ID())
	set("MESOS_SLAVE_ID", a.ID())
	if role := t.role(); role != "" {
		set("MESOS_ALLOCATION_ROLE", role)
	}
	spec, err := sandboxSpec(t.containerID, t.sandbox, a.taskUser(t), t.info.Command, "", env)
	if err != nil {
		return spec, err
	}
	spec.CPUs, spec.MemMB = api.ScalarSum(t.info.Resources, "cpus"), api.ScalarSum(t.info.Resources, "mem")
	spec.Volumes = a.volumeDirs(t)
	// A restarted agent destroys the tasks of a framework that does not
	// checkpoint: no exit status need outlive this agent process.
	spec.NoExitFile = !t.framework.GetCheckpoint()
	return spec, nil
}

// imageName names img by its name and type.
func imageName(img *mesos.Image) string {
	name := img.GetDocker().GetName()
	if img.GetType() == mesos.Image_APPC {
		name = img.GetAppc().GetName()
	}
	if name == "" {
		name = "(unnamed)"
	}
	return fmt.Sprintf("%q (%s)", name, img.GetType())
}

// sandboxSpec is the spec of a container that runs cmd natively in
// sandbox (its working directory, with its stdout and stderr files) as
// user, with env followed by cmd's own environment; the caller sets the
// limits. It serves command tasks (commandSpec) and custom executors
// (executorSpec); what ("" or "executor's ") starts the errors about an
// empty command.
func sandboxSpec(id, sandbox, user string, cmd *mesos.CommandInfo, what string, env []string) (containerizer.Spec, error) {
	spec := containerizer.Spec{
		ID:     id,
		Dir:    sandbox,
		Stdout: filepath.Join(sandbox, "stdout"),
		Stderr: filepath.Join(sandbox, "stderr"),
		User:   user,
	}
	var err error
	spec.Path, spec.Args, err = commandArgv(cmd, what+"shell command is empty", what+"command value (the program to run) is empty")
	if err != nil {
		return spec, err
	}
	if env, err = appendCommandEnv(env, cmd); err != nil {
		return spec, err
	}
	spec.Env = dedupEnv(env)
	return spec, nil
}

// commandArgv is the program and argv that run cmd: a shell command
// through /bin/sh -c, otherwise cmd's value with its arguments (the value
// alone when there are none). An empty command fails with emptyShell or
// emptyValue.
func commandArgv(cmd *mesos.CommandInfo, emptyShell, emptyValue string) (path string, args []string, err error) {
	if cmd.GetShell() {
		if cmd.GetValue() == "" {
			return "", nil, errors.New(emptyShell)
		}
		return "/bin/sh", []string{"sh", "-c", cmd.GetValue()}, nil
	}
	if cmd.GetValue() == "" {
		return "", nil, errors.New(emptyValue)
	}
	path, args = cmd.GetValue(), cmd.Arguments
	if len(args) == 0 {
		args = []string{path}
	}
	return path, args, nil
}

// appendCommandEnv appends cmd's environment variables to env; a secret
// is refused, as the agent has no secret resolver.
func appendCommandEnv(env []string, cmd *mesos.CommandInfo) ([]string, error) {
	for _, v := range cmd.GetEnvironment().GetVariables() {
		if v.GetType() == mesos.Environment_Variable_SECRET {
			return env, fmt.Errorf("environment variable %s: secrets are not supported", v.Name)
		}
		env = append(env, v.Name+"="+v.GetValue())
	}
	return env, nil
}

// commandUser is the user cmd runs (and its URIs are fetched) as: with
// --switch_user cmd's user or else its framework's; otherwise the agent's
// own ("").
func (a *Agent) commandUser(cmd *mesos.CommandInfo, fw *mesos.FrameworkInfo) string {
	if !a.cfg.SwitchUser {
		return ""
	}
	if u := cmd.GetUser(); u != "" {
		return u
	}
	return fw.User
}

// taskUser is the user t's command runs (and its URIs are fetched) as.
func (a *Agent) taskUser(t *task) string {
	return a.commandUser(t.info.Command, &t.framework)
}

// dedupEnv keeps the last value of each variable, in first-seen order.
func dedupEnv(env []string) []string {
	last := make(map[string]int, len(env))
	for i, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		last[name] = i
	}
	out := make([]string, 0, len(last))
	for i, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if last[name] == i {
			out = append(out, kv)
		}
	}
	return out
}
