package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	executorpb "github.com/mesos/mesos-go/api/v1/lib/executor"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/containerizer"
)

// Executors other than the built-in command executor.
//
// A custom executor (ExecutorInfo type CUSTOM) is a program the framework
// brings: the agent launches it once per (framework, executor ID) in its
// own sandbox (.../executors/<executor_id>/runs/<container_id>) through the
// Containerizer, with the MESOS_* environment of a v1 executor, and talks
// to it over the executor API (/api/v1/executor, executor_api.go). Tasks
// that arrive before it subscribes are queued; later tasks for the same
// executor are delivered to it as LAUNCH events.
//
// The default executor (type DEFAULT, used by LAUNCH_GROUP) is built into
// the agent (executor_default.go): it runs each task of a group as its own
// container and gives the group Mesos's all-or-nothing semantics.

// execKey names an executor on the agent: executor IDs are unique per
// framework.
type execKey struct{ framework, executor string }

type execKind int

const (
	customExecutor execKind = iota
	defaultExecutor
)

// execState is an executor's lifecycle, as Mesos's Executor::State.
type execState int

const (
	execRegistering execState = iota // launched, waiting for SUBSCRIBE
	execRunning                      // subscribed (the stream may be down since)
	execTerminating                  // SHUTDOWN sent or container being destroyed
	execTerminated
)

func (s execState) String() string {
	return [...]string{"REGISTERING", "RUNNING", "TERMINATING", "TERMINATED"}[s]
}

// executor is one custom or default executor. Fields after the first block
// are guarded by Agent.mu.
type executor struct {
	key         execKey
	kind        execKind
	info        mesos.ExecutorInfo
	framework   mesos.FrameworkInfo
	containerID string
	sandbox     string
	meta        string // checkpoint directory of this run
	launched    time.Time
	shutdownReq chan struct{} // closed to ask for a graceful shutdown
	shutdownMu  sync.Once
	done        chan struct{} // closed once the executor has terminated

	state     execState
	recovered bool // adopted by a restarted agent; waits for its re-subscription
	// resMu orders the updates of the container's limits; the limits last
	// set are guarded by it.
	resMu               sync.Mutex
	limitCPUs, limitMem float64
	tasks               map[string]*task          // by task ID: launched here and not yet forgotten
	queued              []pendingLaunch           // custom: waiting for SUBSCRIBE
	delivered           map[string]*pendingLaunch // custom: by task ID, what was sent on some stream
	kills               map[string]*mesos.KillPolicy
	conn                *execConn // current subscription stream; nil when none
	container           containerizer.Container
	groups              int // default: task groups not yet ended, launching ones included
	ended               time.Time
	// launches are the launches registered on the executor whose
	// checkpoint is not written yet, oldest first; launcher is set while a
	// goroutine writes them (runLaunches); unrecorded is set on a new
	// executor until a launch has written its executor.json, before which
	// it does not run.
	launches   []*launchStep
	launcher   bool
	unrecorded bool
	// What happens to the tasks left when the executor terminates.
	termState   mesos.TaskState
	termReason  mesos.TaskStatus_Reason
	termMessage string
}

// launchStep is one RUN_TASK (a task, or a task group) on a custom or the
// default executor, from the moment its tasks are registered until its
// checkpoint is written and it is handed to the executor, or refused.
type launchStep struct {
	tasks []*task
	group bool
}

// pendingLaunch is a task or a task group waiting for its executor.
type pendingLaunch struct {
	task  *mesos.TaskInfo
	group *mesos.TaskGroupInfo
}

func (e *executor) requestShutdown() { e.shutdownMu.Do(func() { close(e.shutdownReq) }) }

// setTermination records why the executor ends, unless a reason is set
// already; a.mu is held.
func (e *executor) setTermination(state mesos.TaskState, reason mesos.TaskStatus_Reason, msg string) {
	if e.termMessage != "" {
		return
	}
	e.termState, e.termReason, e.termMessage = state, reason, msg
}

// termination is the state, reason and message of the tasks left when e
// terminates; a.mu is held.
func (e *executor) termination() (mesos.TaskState, mesos.TaskStatus_Reason, string) {
	msg := e.termMessage
	if msg == "" {
		msg = "Executor terminated"
	}
	return e.termState, e.termReason, msg
}

// liveTasks lists the executor's tasks that have not reached a terminal
// state; a.mu is held.
func (e *executor) liveTasks() []*task {
	var out []*task
	for _, t := range e.tasks {
		if !isTerminal(t.state) {
			out = append(out, t)
		}
	}
	sortTasks(out)
	return out
}

// launchedTasks is liveTasks without the tasks still launching (their
// launch settles them: runLaunches); a.mu is held.
func (e *executor) launchedTasks() []*task {
	var out []*task
	for _, t := range e.liveTasks() {
		if !t.launching {
			out = append(out, t)
		}
	}
	return out
}

// forgetTask drops a task the agent has forgotten (its terminal update
// was acknowledged); a.mu is held.
func (e *executor) forgetTask(id string) {
	delete(e.tasks, id)
	delete(e.delivered, id)
	delete(e.kills, id)
}

// executorOf is the ExecutorInfo a RUN_TASK names, if any.
func executorOf(rt *api.RunTask) *mesos.ExecutorInfo {
	if rt.Executor != nil {
		return rt.Executor
	}
	if rt.Task != nil {
		return rt.Task.Executor
	}
	return nil
}

// runOnExecutor handles a RUN_TASK for a custom executor or a task group:
// it finds or launches the executor and hands it the tasks.
func (a *Agent) runOnExecutor(rt *api.RunTask) {
	fw := *rt.Framework
	var infos []mesos.TaskInfo
	if rt.Group != nil {
		infos = rt.Group.Tasks
	} else {
		infos = []mesos.TaskInfo{*rt.Task}
	}
	refuseAll := func(err error) {
		for i := range infos {
			a.startTask(fw, infos[i], err)
		}
	}
	ei := executorOf(rt)
	switch {
	case ei == nil:
		refuseAll(errors.New("a task group needs an executor (ExecutorInfo of type DEFAULT)"))
		return
	case len(infos) == 0:
		a.log.Warn("ignoring RUN_TASK with an empty task group", "framework_id", fw.GetID().GetValue())
		return
	}
	info := *ei
	info.FrameworkID = fw.ID
	key := execKey{fw.GetID().GetValue(), info.ExecutorID.Value}
	if err := errors.Join(validID("framework ID", key.framework), validID("executor ID", key.executor)); err != nil {
		refuseAll(err)
		return
	}
	kind := customExecutor
	if info.GetType() == mesos.ExecutorInfo_DEFAULT {
		kind = defaultExecutor
	}
	if kind == customExecutor && info.Command == nil {
		refuseAll(fmt.Errorf("executor %s has no command to run", key.executor))
		return
	}
	for i := range infos {
		if err := validID("task ID", infos[i].TaskID.Value); err != nil {
			refuseAll(err)
			return
		}
	}

	a.mu.Lock()
	agentID := a.agentID
	e := a.executors[key]
	if e != nil && (e.state >= execTerminating || e.kind != kind) {
		state := e.state
		a.mu.Unlock()
		why := fmt.Sprintf("executor %s is %s", key.executor, state)
		if e.kind != kind {
			why = fmt.Sprintf("executor %s already runs with a different type", key.executor)
		}
		for i := range infos {
			a.dropTask(fw, e, infos[i], why)
		}
		return
	}
	fresh := e == nil
	if fresh {
		e = a.newExecutor(agentID, key, kind, info, fw)
	}
	var tasks []*task
	for i := range infos {
		ti := infos[i]
		k := taskKey{key.framework, ti.TaskID.Value}
		if _, dup := a.tasks[k]; dup {
			a.log.Warn("ignoring RUN_TASK for a task the agent already has", "framework_id", k.framework, "task_id", k.task)
			continue
		}
		t := &task{
			key:         k,
			info:        ti,
			framework:   fw,
			containerID: e.containerID,
			sandbox:     e.sandbox,
			meta:        filepath.Join(e.meta, "tasks", k.task),
			launched:    time.Now(),
			state:       mesos.TASK_STAGING,
			kill:        make(chan time.Duration, 8),
			exec:        e,
			launching:   true,
		}
		if kind == defaultExecutor {
			t.containerID = newUUID().String()
			t.sandbox = filepath.Join(e.sandbox, "tasks", k.task)
			t.done = make(chan struct{})
		}
		a.tasks[k] = t
		e.tasks[k.task] = t
		tasks = append(tasks, t)
	}
	if len(tasks) == 0 {
		a.mu.Unlock()
		return
	}
	if fresh {
		// Registered at once, so that the next launch for this executor ID
		// joins it; it runs once a launch has written its checkpoint.
		a.executors[key] = e
	}
	if kind == defaultExecutor {
		e.groups++ // the executor is not done while a group is on its way
	}
	// The checkpoint is written by the executor's launcher, in the order
	// the launches came, while the agent goes on (runLaunches).
	e.launches = append(e.launches, &launchStep{tasks: tasks, group: rt.Group != nil})
	start := !e.launcher
	if start {
		e.launcher = true
		a.runners.Add(1)
	}
	a.mu.Unlock()
	if start {
		go a.runLaunches(e)
	}
}

// runLaunches writes the checkpoints of the launches registered on e, one
// at a time and in order, holding no lock, and settles each once its
// checkpoint is written or has failed. The executor and its tasks (and,
// on the default executor, the group) are checkpointed before a task can
// reach it or start, so that a restarted agent knows every task the
// executor may run (executor_recover.go, executor_default_recover.go); a
// launch whose checkpoint fails does not happen.
//
// Meanwhile the agent goes on, and what comes for a launching task
// waits for its launch to settle. A kill of a task on a custom executor
// marks it (killExecutorTask) and the launch ends it TASK_KILLED instead
// of queueing it; a kill on the default executor waits in the task's kill
// channel, which runGroup reads before it starts anything. An executor
// that subscribes gets the tasks once they are queued; one that
// terminates leaves its launching tasks to the launch
// (executorTerminated), which ends them as the executor's other tasks
// ended. A stopping agent waits for the launcher (a.runners), whose
// runners then see the agent stop before they start anything.
func (a *Agent) runLaunches(e *executor) {
	defer a.runners.Done()
	for {
		a.mu.Lock()
		if len(e.launches) == 0 {
			e.launcher = false
			a.mu.Unlock()
			return
		}
		l, fresh := e.launches[0], e.unrecorded
		a.mu.Unlock()
		if err := a.checkpointLaunch(e, fresh, l.tasks); err != nil {
			a.refuseLaunch(e, l, err)
			continue
		}
		a.settleLaunch(e, l, fresh)
	}
}

// settleLaunch hands launch l, whose checkpoint is written, to executor
// e: it queues or delivers its tasks (a custom executor) or starts the
// group (the default executor), and starts the executor when l recorded
// it (fresh). Tasks killed meanwhile, or left by an executor that
// terminated meanwhile, end instead.
func (a *Agent) settleLaunch(e *executor, l *launchStep, fresh bool) {
	a.mu.Lock()
	e.launches = e.launches[1:]
	if fresh {
		e.unrecorded = false
	}
	killed := false
	for _, t := range l.tasks {
		t.launching = false
		killed = killed || t.launchKilled
	}
	var (
		ended       bool // the tasks end (state, reason, msg) instead of running
		state       mesos.TaskState
		reason      mesos.TaskStatus_Reason
		msg         string
		startRunner = fresh && e.kind == customExecutor
	)
	switch {
	case e.kind == defaultExecutor:
		a.runners.Add(1 + len(l.tasks)) // runGroup, and each task's runner
	case e.state == execTerminated:
		ended = true
		state, reason, msg = e.termination()
	case killed:
		// A task of the launch (of a group: the group) was killed before
		// its executor got it (as Mesos).
		ended = true
		state, reason, msg = mesos.TASK_KILLED, mesos.REASON_TASK_KILLED_DURING_LAUNCH, "Task killed before it was delivered to its executor"
	default:
		launch := pendingLaunch{task: &l.tasks[0].info}
		if l.group {
			g := mesos.TaskGroupInfo{}
			for _, t := range l.tasks {
				g.Tasks = append(g.Tasks, t.info)
			}
			launch = pendingLaunch{group: &g}
		}
		if e.conn != nil {
			a.deliver(e, launch)
		} else {
			e.queued = append(e.queued, launch)
		}
	}
	// An executor with nothing left to run is not kept waiting for a
	// registration (as killExecutorTask), and one that has not started is
	// not started.
	idle := killed && e.kind == customExecutor && e.state == execRegistering && len(e.queued) == 0 && len(e.launches) == 0
	unstarted := idle && startRunner
	if unstarted {
		idle, startRunner = false, false
		a.retireUnstartedLocked(e)
	}
	if startRunner {
		a.runners.Add(1)
	}
	a.mu.Unlock()

	log := a.log.With("framework_id", e.key.framework, "executor_id", e.key.executor)
	switch {
	case ended:
		for _, t := range l.tasks {
			a.update(t, state, statusOpts{fromAgent: true, reason: reason.Enum(), message: msg})
		}
	case e.kind == defaultExecutor:
		log.Info("launching task group on the default executor", "tasks", len(l.tasks), "sandbox", e.sandbox)
		go a.runGroup(a.runnerCtx, e, l.tasks)
	default:
		for _, t := range l.tasks {
			log.Info("task queued for executor", "task_id", t.key.task)
		}
	}
	switch {
	case startRunner:
		log.Info("launching executor", "container_id", e.containerID, "sandbox", e.sandbox)
		go a.runExecutor(a.runnerCtx, e)
	case e.kind == customExecutor && !ended:
		a.updateExecutorLimits(e)
	}
	if idle {
		e.requestShutdown()
	}
	if unstarted {
		a.endUnstarted(e)
	}
}

// retireUnstartedLocked unregisters custom executor e, which has not
// started and is left with nothing to run nor launch; the caller ends it
// with endUnstarted once a.mu is released. a.mu is held.
func (a *Agent) retireUnstartedLocked(e *executor) {
	e.state = execTerminated
	if a.executors[e.key] == e {
		delete(a.executors, e.key)
	}
}

// endUnstarted ends an executor retireUnstartedLocked unregistered: the
// master hears it exited, and whoever waits for it (shutdownExecutors)
// goes on.
func (a *Agent) endUnstarted(e *executor) {
	a.executorTerminated(e, nil, -1)
	close(e.done)
}

// refuseLaunch ends launch l on e, whose checkpoint could not be written
// (why; checkpointLaunch removed what it had written): its tasks fail,
// naming the disk's error, and never run. An executor the refusal leaves
// with nothing to run and nothing on the way ends: a custom executor that
// was never recorded (it never ran), or the default executor with no
// group left.
func (a *Agent) refuseLaunch(e *executor, l *launchStep, why error) {
	a.mu.Lock()
	e.launches = e.launches[1:]
	refused := make([]*task, 0, len(l.tasks))
	for _, t := range l.tasks {
		// Replaced by a task with no checkpoint (unrunTaskLocked).
		t.launching = false
		delete(a.tasks, t.key)
		delete(e.tasks, t.key.task)
		if t.done != nil {
			close(t.done) // no runner will; killAndWait may wait for it
		}
		refused = append(refused, a.unrunTaskLocked(t.framework, t.info, e))
	}
	gone := e.kind == customExecutor && e.unrecorded && len(e.launches) == 0
	if gone {
		a.retireUnstartedLocked(e)
	}
	a.mu.Unlock()
	for _, t := range refused {
		a.refuseUnrecorded(t, why)
	}
	switch {
	case e.kind == defaultExecutor:
		a.groupGone(e)
	case gone:
		a.endUnstarted(e)
	}
}

// checkpointLaunch checkpoints a launch on executor e: the executor when
// it is new (fresh), the task group on the default executor, and each
// task. When a write fails it removes what it wrote, so that nothing of
// the launch is left for a restarted agent to recover, and returns the
// error, which names what could not be checkpointed and why. It runs on
// the executor's launcher (runLaunches), with no lock held.
func (a *Agent) checkpointLaunch(e *executor, fresh bool, tasks []*task) error {
	var err error
	if fresh {
		// A custom executor's with the container it will run in (see
		// plannedContainer); the default executor has none of its own.
		var planned *containerizer.State
		if e.kind == customExecutor {
			planned = a.plannedContainer(isDockerExecutor(&e.info), e.containerID, e.sandbox)
		}
		if err = a.checkpointExecutor(e, planned); err != nil {
			err = fmt.Errorf("could not checkpoint executor %s: %w", e.key.executor, err)
		}
	}
	if err == nil && e.kind == defaultExecutor {
		if err = a.checkpointGroup(e, tasks); err != nil {
			err = fmt.Errorf("could not checkpoint the task group of executor %s: %w", e.key.executor, err)
		}
	}
	for _, t := range tasks {
		if err != nil {
			break
		}
		var planned *containerizer.State // a custom executor's tasks run in its container
		if e.kind == defaultExecutor {
			planned = a.plannedContainer(isDockerTask(&t.info), t.containerID, t.sandbox)
		}
		if err = a.checkpointTask(t, planned); err != nil {
			err = fmt.Errorf("could not checkpoint task %s: %w", t.key.task, err)
		}
	}
	if err == nil {
		return nil
	}
	var undo []error
	for _, t := range tasks {
		undo = append(undo, ckptRemoveAll(t.meta))
	}
	if e.kind == defaultExecutor {
		if rerr := ckptRemove(groupFile(e, tasks)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			undo = append(undo, rerr)
		}
	}
	if fresh {
		undo = append(undo, removeCheckpoint(e.meta, runsParent(e.meta)))
	}
	if uerr := errors.Join(undo...); uerr != nil {
		a.log.Error("cannot remove the checkpoint of a refused launch; a restarted agent fails its tasks",
			"executor_id", e.key.executor, "err", uerr)
	}
	return err
}

// unrunTaskLocked registers a task the agent will not run and has not
// checkpointed, for the one update that ends it, which lives in memory
// only (statusupdates.go): a restarted agent knows nothing of the task,
// and the master, which does, settles it when the agent registers again.
// e is the task's executor (nil: the command executor). It returns nil
// when the agent has a task of that ID already; a.mu is held.
func (a *Agent) unrunTaskLocked(fw mesos.FrameworkInfo, info mesos.TaskInfo, e *executor) *task {
	k := taskKey{fw.GetID().GetValue(), info.TaskID.Value}
	if _, dup := a.tasks[k]; dup {
		return nil
	}
	t := &task{key: k, info: info, framework: fw, launched: time.Now(), state: mesos.TASK_STAGING, kill: make(chan time.Duration, 1), exec: e}
	a.tasks[k] = t
	return t
}

// refuseUnrecorded fails t (unrunTaskLocked), whose launch was refused
// because its checkpoint could not be written (why): TASK_FAILED with
// REASON_CONTAINER_LAUNCH_FAILED, the message naming the disk's error.
func (a *Agent) refuseUnrecorded(t *task, why error) {
	a.count("slave/container_launch_errors", 1)
	a.log.Error("launch refused: its checkpoint could not be written", "framework_id", t.key.framework, "task_id", t.key.task, "err", why)
	a.update(t, mesos.TASK_FAILED, statusOpts{fromAgent: true, reason: mesos.REASON_CONTAINER_LAUNCH_FAILED.Enum(), message: why.Error()})
}

// newExecutor creates (but does not register or start) an executor.
func (a *Agent) newExecutor(agentID string, key execKey, kind execKind, info mesos.ExecutorInfo, fw mesos.FrameworkInfo) *executor {
	e := baseExecutor(key, kind, info, fw, newUUID().String(), time.Now())
	e.sandbox = a.sandboxDir(agentID, taskKey{key.framework, key.executor}, e.containerID)
	e.meta = a.metaRunDir(agentID, taskKey{key.framework, key.executor}, e.containerID)
	e.unrecorded = true
	return e
}

// baseExecutor is an executor with its identity and empty bookkeeping,
// for newExecutor and for recovery (recoveredExecutor) to complete.
func baseExecutor(key execKey, kind execKind, info mesos.ExecutorInfo, fw mesos.FrameworkInfo, containerID string, launched time.Time) *executor {
	return &executor{
		key:         key,
		kind:        kind,
		info:        info,
		framework:   fw,
		containerID: containerID,
		launched:    launched,
		shutdownReq: make(chan struct{}),
		done:        make(chan struct{}),
		tasks:       map[string]*task{},
		delivered:   map[string]*pendingLaunch{},
		kills:       map[string]*mesos.KillPolicy{},
		termState:   mesos.TASK_FAILED,
		termReason:  mesos.REASON_EXECUTOR_TERMINATED,
	}
}

// dropTask answers a task that cannot go to its executor with TASK_DROPPED
// (TASK_LOST for frameworks that are not partition-aware, which the master
// translates).
func (a *Agent) dropTask(fw mesos.FrameworkInfo, e *executor, info mesos.TaskInfo, why string) {
	a.mu.Lock()
	t := a.unrunTaskLocked(fw, info, e)
	a.mu.Unlock()
	if t == nil {
		return
	}
	a.log.Warn("task dropped", "framework_id", t.key.framework, "task_id", t.key.task, "why", why)
	a.update(t, mesos.TASK_DROPPED, statusOpts{fromAgent: true, reason: mesos.REASON_EXECUTOR_TERMINATED.Enum(), message: "Task dropped: " + why})
}

// deliver sends a task or task group to the subscribed executor; a.mu is
// held.
func (a *Agent) deliver(e *executor, l pendingLaunch) {
	if l.task != nil {
		e.delivered[l.task.TaskID.Value] = &l
		e.conn.send(&executorpb.Event{Type: executorpb.Event_LAUNCH, Launch: &executorpb.Event_Launch{Task: *l.task}})
		return
	}
	for _, t := range l.group.Tasks {
		e.delivered[t.TaskID.Value] = &l
	}
	e.conn.send(&executorpb.Event{Type: executorpb.Event_LAUNCH_GROUP, LaunchGroup: &executorpb.Event_LaunchGroup{TaskGroup: *l.group}})
}

// runExecutor launches a custom executor and supervises it until it
// terminates: the registration timeout, graceful shutdown and the agent's
// own shutdown.
func (a *Agent) runExecutor(ctx context.Context, e *executor) {
	defer a.runners.Done()
	defer close(e.done)
	log := a.log.With("framework_id", e.key.framework, "executor_id", e.key.executor, "container_id", e.containerID)

	c, err := a.launchExecutorContainer(ctx, e)
	if err != nil {
		log.Warn("executor launch failed", "err", err)
		a.count("slave/container_launch_errors", 1)
		a.mu.Lock()
		if ctx.Err() != nil {
			e.setTermination(mesos.TASK_KILLED, mesos.REASON_TASK_KILLED_DURING_LAUNCH, "Agent shut down before the executor was launched")
		}
		e.setTermination(mesos.TASK_FAILED, mesos.REASON_CONTAINER_LAUNCH_FAILED, "Failed to launch executor: "+err.Error())
		a.mu.Unlock()
		a.executorTerminated(e, nil, -1)
		return
	}
	crashPoint(CrashAfterContainerStart, e.meta) // diskfaults.go
	log.Info("executor launched", "pid", c.Pid())
	st := c.State()
	if err := a.checkpointExecutor(e, &st); err != nil {
		// A restarted agent could not find this container again: it must
		// not run. Its tasks fail, naming the disk's error.
		log.Error("executor destroyed: its container could not be checkpointed", "err", err)
		a.count("slave/container_launch_errors", 1)
		a.mu.Lock()
		e.state = execTerminating
		e.setTermination(mesos.TASK_FAILED, mesos.REASON_CONTAINER_LAUNCH_FAILED,
			fmt.Sprintf("could not checkpoint the container of executor %s: %v", e.key.executor, err))
		a.mu.Unlock()
		if kerr := c.Signal(syscall.SIGKILL); kerr != nil && !errors.Is(kerr, containerizer.ErrExited) {
			log.Warn("kill an executor whose checkpoint failed", "err", kerr)
		}
		<-c.Done()
		a.executorTerminated(e, c, -1)
		return
	}
	a.updateExecutorLimits(e) // tasks may have come or gone during the launch
	a.superviseExecutor(ctx, e, c)
}

// superviseExecutor watches a launched or adopted custom executor until it
// terminates: its (re-)registration timeout, graceful shutdown and the
// agent's own shutdown.
func (a *Agent) superviseExecutor(ctx context.Context, e *executor, c containerizer.Container) {
	log := a.log.With("framework_id", e.key.framework, "executor_id", e.key.executor, "container_id", e.containerID)
	a.mu.Lock()
	recovered := e.recovered
	a.mu.Unlock()
	regTimeout := a.cfg.ExecutorRegistrationTimeout
	if recovered {
		regTimeout = a.cfg.ExecutorReregistrationTimeout
	}
	// The timeout runs from the end of the agent's recovery (at once for
	// an executor it launched).
	var (
		regTimer  *time.Timer
		regC      <-chan time.Time
		recoveryC = a.recoveredC
	)
	defer func() {
		if regTimer != nil {
			regTimer.Stop()
		}
	}()
	startRegTimer := func() {
		recoveryC = nil
		regTimer = time.NewTimer(regTimeout)
		regC = regTimer.C
	}
	if !recovered {
		startRegTimer()
	}
	var (
		graceC     <-chan time.Time
		graceTimer *time.Timer
		stopC      = ctx.Done()
		shutdownC  = (<-chan struct{})(e.shutdownReq)
	)
	defer func() {
		if graceTimer != nil {
			graceTimer.Stop()
		}
	}()
	destroy := func() {
		if err := c.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, containerizer.ErrExited) {
			log.Warn("destroying executor container failed", "err", err)
		}
	}
	// shutdown sends SHUTDOWN and destroys the container after the grace
	// period (at once if the executor never subscribed).
	shutdown := func() {
		shutdownC = nil
		a.mu.Lock()
		subscribed := e.state == execRunning && e.conn != nil
		e.state = execTerminating
		if subscribed {
			e.conn.send(&executorpb.Event{Type: executorpb.Event_SHUTDOWN})
		}
		a.mu.Unlock()
		if !subscribed {
			destroy()
			return
		}
		grace := a.executorGracePeriod(e)
		log.Info("shutting executor down", "grace_period", grace)
		graceTimer = time.NewTimer(grace)
		graceC = graceTimer.C
	}
	for {
		select {
		case <-c.Done():
			exit, _ := c.Wait(context.Background())
			log.Info("executor terminated", "exit", exit.String())
			if l := exit.Limitation; l != nil { // isolation.go
				a.mu.Lock()
				e.setTermination(mesos.TASK_FAILED, *limitationReason(l), l.Message)
				a.mu.Unlock()
			}
			a.executorTerminated(e, c, waitStatus(exit))
			return
		case <-recoveryC:
			startRegTimer()
		case <-regC:
			a.mu.Lock()
			registering := e.state == execRegistering
			if registering {
				e.state = execTerminating
				if recovered {
					// As Mesos: the tasks of an executor that did not come
					// back are gone (TASK_LOST for frameworks that are not
					// partition-aware, which the master translates).
					e.setTermination(mesos.TASK_GONE, mesos.REASON_EXECUTOR_REREGISTRATION_TIMEOUT,
						"Executor did not reregister within "+api.FormatDuration(regTimeout))
				} else {
					e.setTermination(mesos.TASK_FAILED, mesos.REASON_EXECUTOR_REGISTRATION_TIMEOUT,
						"Executor did not register within "+api.FormatDuration(regTimeout))
				}
			}
			a.mu.Unlock()
			if registering {
				log.Warn("executor did not subscribe in time; destroying it", "timeout", regTimeout, "after_agent_restart", recovered)
				destroy()
			}
		case <-shutdownC:
			shutdown()
		case <-graceC:
			graceC = nil
			log.Warn("executor did not exit within its shutdown grace period; destroying it")
			destroy()
		case <-stopC:
			stopC = nil
			if a.cfg.KeepTasksOnStop {
				a.mu.Lock()
				conn := e.conn
				e.conn = nil
				a.mu.Unlock()
				if conn != nil {
					conn.close()
				}
				log.Info("leaving executor running", "pid", c.Pid())
				return
			}
			a.mu.Lock()
			e.setTermination(mesos.TASK_KILLED, mesos.REASON_EXECUTOR_TERMINATED, "Agent shut down")
			a.mu.Unlock()
			if shutdownC != nil {
				shutdown()
			}
		}
	}
}

// executorGracePeriod is how long an executor has between SHUTDOWN and the
// destruction of its container.
func (a *Agent) executorGracePeriod(e *executor) time.Duration {
	if g := e.info.ShutdownGracePeriod; g != nil && g.Nanoseconds >= 0 {
		return time.Duration(g.Nanoseconds)
	}
	return a.cfg.ExecutorShutdownGracePeriod
}

// waitStatus encodes an exit the way waitpid(2) does, which is what Mesos
// reports in an executor's FAILURE event; -1 when it is unknown.
func waitStatus(e containerizer.Exit) int32 {
	switch {
	case e.Unknown:
		return -1
	case e.Signal != 0:
		return int32(e.Signal)
	}
	return int32(e.Code&0xff) << 8
}

// launchExecutorContainer prepares the sandbox and starts the executor.
func (a *Agent) launchExecutorContainer(ctx context.Context, e *executor) (containerizer.Container, error) {
	if err := os.MkdirAll(e.sandbox, 0o755); err != nil {
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	if !isDockerExecutor(&e.info) {
		if err := closeSandbox(e.sandbox, a.executorUser(e)); err != nil { // sandbox_owner.go
			return nil, err
		}
	}
	latest := filepath.Join(filepath.Dir(e.sandbox), "latest")
	err := os.Symlink(e.containerID, latest)
	if errors.Is(err, os.ErrExist) { // an earlier run's
		_ = os.Remove(latest)
		err = os.Symlink(e.containerID, latest)
	}
	if err != nil {
		a.log.Warn("create runs/latest link", "err", err)
	}
	var launch func(context.Context) (containerizer.Container, error)
	if isDockerExecutor(&e.info) {
		l, err := a.dockerExecutorLauncher(e) // executor_docker.go
		if err != nil {
			return nil, err
		}
		launch = l
	} else {
		spec, err := a.executorSpec(e)
		if err != nil {
			return nil, err
		}
		launch = a.nativeLauncher(spec) // docker.go
	}
	if uris := e.info.Command.GetURIs(); len(uris) > 0 {
		if err := a.fetchInto(ctx, e.sandbox, a.executorUser(e), uris); err != nil { // fetch.go
			return nil, fmt.Errorf("fetch: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	crashPoint(CrashBeforeContainerStart, e.meta) // diskfaults.go
	c, err := launch(ctx)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	e.container = c
	a.mu.Unlock()
	return c, nil
}

// executorUser is the user a custom executor runs (and its URIs are
// fetched) as: with --switch_user its command's or its framework's user.
func (a *Agent) executorUser(e *executor) string {
	return a.commandUser(e.info.Command, &e.framework) // tasks.go
}

// executorSpec is the container spec of a custom executor that runs
// natively: its command in its sandbox with the environment a v1
// executor needs. (Executors in Docker containers: executor_docker.go.)
func (a *Agent) executorSpec(e *executor) (containerizer.Spec, error) {
	spec, err := sandboxSpec(e.containerID, e.sandbox, a.executorUser(e), e.info.Command, "executor's ",
		append(os.Environ(), a.executorEnv(e)...)) // tasks.go
	if err != nil {
		return spec, err
	}
	_, spec.CPUs, spec.MemMB = a.startingLimits(e)
	return spec, nil
}

// startingLimits is what a custom executor's container starts with: the
// resources of the executor and its live tasks (allocatedLocked), and
// their cpus and memory, which it records as the container's limits
// (updateExecutorLimits changes them from there).
func (a *Agent) startingLimits(e *executor) (resources []mesos.Resource, cpus, memMB float64) {
	a.mu.Lock()
	resources = e.allocatedLocked()
	cpus, memMB = e.limitsLocked()
	a.mu.Unlock()
	e.resMu.Lock()
	e.limitCPUs, e.limitMem = cpus, memMB
	e.resMu.Unlock()
	return resources, cpus, memMB
}

// limitsLocked is what a custom executor's container is given: the
// executor's own resources and those of its tasks that have not ended
// (Mesos's Executor::allocatedResources); a.mu is held.
func (e *executor) limitsLocked() (cpus, memMB float64) {
	rs := e.allocatedLocked()
	return api.ScalarSum(rs, "cpus"), api.ScalarSum(rs, "mem")
}

// allocatedLocked lists the resources of the executor and of its tasks
// that have not ended; a.mu is held.
func (e *executor) allocatedLocked() []mesos.Resource {
	rs := append([]mesos.Resource(nil), e.info.Resources...)
	for _, t := range e.liveTasks() {
		rs = append(rs, t.info.Resources...)
	}
	return rs
}

// containerUpdater is a container whose cpu and memory limits can change
// while it runs (containerizer.Native's containers).
type containerUpdater interface {
	Update(cpus, memMB float64) error
}

// updateExecutorLimits gives a custom executor's container the resources
// of the executor and its live tasks, as tasks start and end (Mesos's
// containerizer update). Containers that cannot be updated, and
// executors that are not running, are left alone.
func (a *Agent) updateExecutorLimits(e *executor) {
	if e.kind != customExecutor {
		return
	}
	e.resMu.Lock()
	defer e.resMu.Unlock()
	a.mu.Lock()
	c, state := e.container, e.state
	cpus, mem := e.limitsLocked()
	a.mu.Unlock()
	u, ok := c.(containerUpdater)
	if !ok || state >= execTerminated || (cpus == e.limitCPUs && mem == e.limitMem) {
		return
	}
	if err := u.Update(cpus, mem); err != nil {
		a.log.Warn("cannot update the executor container's limits", "framework_id", e.key.framework,
			"executor_id", e.key.executor, "cpus", cpus, "mem", mem, "err", err)
		return
	}
	e.limitCPUs, e.limitMem = cpus, mem
	a.log.Debug("updated the executor container's limits", "executor_id", e.key.executor, "cpus", cpus, "mem", mem)
}

// executorEnv is the MESOS_* environment of a v1 executor (Mesos's
// slave.cpp executorEnvironment).
func (a *Agent) executorEnv(e *executor) []string {
	return append(a.executorEnvAt(e, a.executorEndpoint(), e.sandbox), a.executorTLSEnv()...) // executor_auth.go
}

// executorEnvAt is executorEnv for an executor that reaches the agent at
// endpoint and sees its sandbox at sandbox (MESOS_SANDBOX; MESOS_DIRECTORY
// is the sandbox on the agent's host).
func (a *Agent) executorEnvAt(e *executor, endpoint, sandbox string) []string {
	id := a.ID()
	checkpoint := e.framework.GetCheckpoint()
	env := []string{
		"MESOS_FRAMEWORK_ID=" + e.key.framework,
		"MESOS_EXECUTOR_ID=" + e.key.executor,
		"MESOS_DIRECTORY=" + e.sandbox,
		"MESOS_SANDBOX=" + sandbox,
		"MESOS_AGENT_ENDPOINT=" + endpoint,
		"MESOS_SLAVE_ID=" + id,
		"MESOS_AGENT_ID=" + id,
		"MESOS_SLAVE_PID=slave(1)@" + endpoint,
		"MESOS_CHECKPOINT=" + map[bool]string{true: "1", false: "0"}[checkpoint],
		"MESOS_HTTP_COMMAND_EXECUTOR=0",
		"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=" + api.FormatDuration(a.executorGracePeriod(e)),
	}
	env = append(env, a.executorTokenEnv(e)...) // executor_auth.go
	if checkpoint {
		env = append(env,
			"MESOS_RECOVERY_TIMEOUT="+api.FormatDuration(a.cfg.RecoveryTimeout),
			"MESOS_SUBSCRIPTION_BACKOFF_MAX="+api.FormatDuration(a.cfg.ExecutorReregistrationTimeout))
	}
	return env
}

// executorEndpoint is the ip:port executors reach the agent's HTTP server
// on: the listener's address, or loopback when it listens on every
// interface (executors run on this machine).
func (a *Agent) executorEndpoint() string {
	tcp, ok := a.ln.Addr().(*net.TCPAddr)
	if !ok {
		return a.ln.Addr().String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(tcp.Port))
}

// executorTerminated ends an executor: its stream closes, its tasks that
// are not terminal get the executor's termination state, and the master is
// told (EXECUTOR_EXITED, which the scheduler sees as a FAILURE event).
func (a *Agent) executorTerminated(e *executor, c containerizer.Container, status int32) {
	a.mu.Lock()
	e.state = execTerminated
	e.ended = time.Now()
	conn := e.conn
	e.conn = nil
	e.queued = nil
	live := e.launchedTasks() // a launching task ends when its launch settles
	state, reason, msg := e.termination()
	if a.executors[e.key] == e {
		delete(a.executors, e.key)
	}
	execMeta := a.executorCheckpointToRemoveLocked(e) // executor_checkpoint.go
	a.mu.Unlock()
	a.removeCheckpointDir(execMeta)
	if conn != nil {
		conn.close()
	}
	for _, t := range live {
		a.update(t, state, statusOpts{fromAgent: true, reason: reason.Enum(), message: msg, container: c})
	}
	a.count("slave/executors_terminated", 1)
	go func() {
		// Best effort: a master that misses it (the agent stops, or is
		// disconnected) learns the agent's executors when it registers.
		ctx, cancel := context.WithTimeout(a.runnerCtx, callTimeout)
		defer cancel()
		err := a.call(ctx, &api.AgentCall{Type: api.AgentExecutorExited, AgentID: a.ID(), ExecutorExited: &api.ExecutorExited{
			FrameworkID: e.key.framework, ExecutorID: e.key.executor, Status: status}})
		if err != nil {
			a.log.Warn("EXECUTOR_EXITED not delivered", "executor_id", e.key.executor, "err", err)
		}
	}()
}

// killExecutorTask handles KILL_TASK for a task that runs on a custom or
// the default executor.
func (a *Agent) killExecutorTask(t *task, policy *mesos.KillPolicy) {
	e := t.exec
	if e.kind == defaultExecutor {
		grace := time.Duration(-1)
		if policy != nil && policy.GracePeriod != nil {
			grace = a.gracePeriod(policy)
		}
		t.requestKill(grace)
		return
	}
	a.mu.Lock()
	if isTerminal(t.state) {
		a.mu.Unlock()
		return
	}
	if t.launching {
		// Its checkpoint is being written: its launch ends it as killed
		// when it settles (settleLaunch).
		t.launchKilled = true
		a.mu.Unlock()
		return
	}
	if e.delivered[t.key.task] == nil {
		// Not delivered yet: take it (and the rest of its group) out of
		// the queue and kill it here.
		var removed []*task
		for _, id := range e.unqueue(t.key.task) {
			if rt := e.tasks[id]; rt != nil {
				removed = append(removed, rt)
			}
		}
		idle := e.state == execRegistering && len(e.queued) == 0 && len(e.launches) == 0
		a.mu.Unlock()
		for _, rt := range removed {
			a.update(rt, mesos.TASK_KILLED, statusOpts{fromAgent: true, reason: mesos.REASON_TASK_KILLED_DURING_LAUNCH.Enum(),
				message: "Task killed before it was delivered to its executor"})
		}
		if idle {
			// An executor with nothing left to run is not kept waiting
			// for a registration (as Mesos).
			e.requestShutdown()
		}
		return
	}
	e.kills[t.key.task] = policy
	if e.conn != nil {
		e.conn.send(killEvent(t.key.task, policy))
	}
	a.mu.Unlock()
}

func killEvent(taskID string, policy *mesos.KillPolicy) *executorpb.Event {
	return &executorpb.Event{Type: executorpb.Event_KILL, Kill: &executorpb.Event_Kill{TaskID: mesos.TaskID{Value: taskID}, KillPolicy: policy}}
}

// unqueue removes a task, or the task group holding it, from the launch
// queue and returns the IDs of the tasks removed; a.mu is held.
func (e *executor) unqueue(taskID string) []string {
	for i, l := range e.queued {
		var ids []string
		if l.task != nil {
			ids = []string{l.task.TaskID.Value}
		} else {
			for _, gt := range l.group.Tasks {
				ids = append(ids, gt.TaskID.Value)
			}
		}
		for _, id := range ids {
			if id == taskID {
				e.queued = append(e.queued[:i:i], e.queued[i+1:]...)
				return ids
			}
		}
	}
	return nil
}

// shutdownExecutor handles SHUTDOWN_EXECUTOR. A command executor's ID is
// its task's ID, so an ID that names no executor kills that task.
func (a *Agent) shutdownExecutor(frameworkID, executorID string) {
	a.mu.Lock()
	e := a.executors[execKey{frameworkID, executorID}]
	a.mu.Unlock()
	if e == nil {
		a.killTask(&api.KillTask{FrameworkID: frameworkID, TaskID: executorID})
		return
	}
	a.log.Info("shutting executor down", "framework_id", frameworkID, "executor_id", executorID)
	a.stopExecutor(e)
}

// stopExecutor asks an executor to shut down gracefully.
func (a *Agent) stopExecutor(e *executor) {
	if e.kind == defaultExecutor {
		a.mu.Lock()
		live := e.liveTasks()
		e.state = execTerminating
		a.mu.Unlock()
		for _, t := range live {
			t.requestKill(-1)
		}
	}
	e.requestShutdown()
}

// shutdownExecutors shuts down the executors of framework fw (all when fw
// is "") and waits until they have terminated or ctx ends.
func (a *Agent) shutdownExecutors(ctx context.Context, fw string, state mesos.TaskState, reason mesos.TaskStatus_Reason, msg string) {
	a.mu.Lock()
	var es []*executor
	for k, e := range a.executors {
		if fw == "" || k.framework == fw {
			e.setTermination(state, reason, msg)
			es = append(es, e)
		}
	}
	a.mu.Unlock()
	for _, e := range es {
		a.stopExecutor(e)
	}
	for _, e := range es {
		if e.kind == defaultExecutor {
			continue // its tasks are waited for like command tasks
		}
		select {
		case <-e.done:
		case <-ctx.Done():
			return
		}
	}
}

// frameworkMessage handles FRAMEWORK_MESSAGE: data for a custom executor.
func (a *Agent) frameworkMessage(fm *api.FrameworkMessage) {
	if fm == nil {
		return
	}
	a.mu.Lock()
	e := a.executors[execKey{fm.FrameworkID, fm.ExecutorID}]
	var conn *execConn
	if e != nil && e.kind == customExecutor {
		conn = e.conn
	}
	if conn != nil {
		data := fm.Data
		if data == nil {
			data = []byte{}
		}
		conn.send(&executorpb.Event{Type: executorpb.Event_MESSAGE, Message: &executorpb.Event_Message{Data: data}})
	}
	a.mu.Unlock()
	if conn == nil {
		// Messages carry no delivery guarantee (as in Mesos).
		a.log.Info("dropping framework message: no subscribed executor", "framework_id", fm.FrameworkID, "executor_id", fm.ExecutorID)
	}
}

// executorInfos lists the executors the agent runs, for REGISTER.
func (a *Agent) executorInfos() []*mesos.ExecutorInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*mesos.ExecutorInfo
	for _, e := range a.executors {
		if e.state == execTerminated || e.unrecorded {
			continue // an executor that is not recorded yet has not run
		}
		info := e.info
		out = append(out, &info)
	}
	return out
}
