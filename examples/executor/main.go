// Command executor is a small custom executor built on agora's executor
// SDK (frameworks/executor). A framework names it in an ExecutorInfo of
// type CUSTOM; the agent starts it once and hands it tasks. A task for a
// custom executor carries no CommandInfo (Mesos allows a command or an
// executor, not both), so this executor takes the shell command to run
// from the task's data. It runs it through /bin/sh -c in the sandbox,
// reports TASK_RUNNING and then TASK_FINISHED or TASK_FAILED, kills tasks
// on request (SIGTERM, then SIGKILL after the kill policy's grace period),
// echoes scheduler messages back, and exits on SHUTDOWN.
//
// Build it and point an ExecutorInfo at the binary:
//
//	go build -o /opt/agora/example-executor ./examples/executor
//
//	"executor": {"type": "CUSTOM", "executor_id": {"value": "example"},
//	             "command": {"value": "/opt/agora/example-executor", "shell": false},
//	             "resources": [...]}
//	"data": "<base64 of the shell command>"   (in each TaskInfo)
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/frameworks/executor"
)

// defaultGrace is the SIGTERM→SIGKILL delay when no kill policy says.
const defaultGrace = 3 * time.Second

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := executor.FromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	cfg.Logger = log
	x := &runner{log: log, sandbox: cfg.Sandbox, tasks: map[string]*running{}}
	x.driver, err = executor.New(cfg, x)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := x.driver.Run(context.Background()); err != nil {
		log.Error("executor stopped", "err", err)
		os.Exit(1)
	}
	log.Info("executor shut down")
}

// runner runs tasks as child processes.
type runner struct {
	executor.Funcs // events it does not handle are ignored
	driver         *executor.Driver
	log            *slog.Logger
	sandbox        string

	mu    sync.Mutex
	tasks map[string]*running
}

// running is one task's process.
type running struct {
	info   mesos.TaskInfo
	cmd    *exec.Cmd
	killed bool
	done   chan struct{}
}

// Launch starts the task's command and reports its states.
func (x *runner) Launch(ctx context.Context, t mesos.TaskInfo) {
	fail := func(msg string) {
		x.status(t.TaskID, mesos.TASK_FAILED, msg)
	}
	cmd, err := command(t, x.sandbox)
	if err != nil {
		fail(err.Error())
		return
	}
	r := &running{info: t, cmd: cmd, done: make(chan struct{})}
	x.mu.Lock()
	if _, dup := x.tasks[t.TaskID.Value]; dup {
		x.mu.Unlock()
		return // a launch sent again after a reconnection
	}
	x.tasks[t.TaskID.Value] = r
	x.mu.Unlock()
	if err := cmd.Start(); err != nil {
		x.forget(t.TaskID.Value)
		close(r.done)
		fail("Failed to start the command: " + err.Error())
		return
	}
	x.status(t.TaskID, mesos.TASK_RUNNING, "")
	go x.wait(r)
}

// LaunchGroup runs each task of the group like a single task.
func (x *runner) LaunchGroup(ctx context.Context, g mesos.TaskGroupInfo) {
	for _, t := range g.Tasks {
		x.Launch(ctx, t)
	}
}

func (x *runner) wait(r *running) {
	err := r.cmd.Wait()
	close(r.done)
	x.mu.Lock()
	killed := r.killed
	x.mu.Unlock()
	x.forget(r.info.TaskID.Value)
	var exit *exec.ExitError
	switch {
	case killed:
		x.status(r.info.TaskID, mesos.TASK_KILLED, "Command killed")
	case err == nil:
		x.status(r.info.TaskID, mesos.TASK_FINISHED, "Command exited with status 0")
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		x.status(r.info.TaskID, mesos.TASK_FAILED, fmt.Sprintf("Command exited with status %d", exit.ExitCode()))
	case errors.As(err, &exit):
		x.status(r.info.TaskID, mesos.TASK_FAILED, "Command "+exit.ProcessState.String())
	default:
		x.status(r.info.TaskID, mesos.TASK_FAILED, "Command failed: "+err.Error())
	}
}

// Kill stops a task: SIGTERM to its process group, SIGKILL after the grace
// period.
func (x *runner) Kill(ctx context.Context, id mesos.TaskID, policy *mesos.KillPolicy) {
	x.mu.Lock()
	r := x.tasks[id.Value]
	if r != nil {
		r.killed = true
	}
	x.mu.Unlock()
	if r == nil {
		// Unknown or already ended: say so, so the scheduler is not left waiting.
		x.status(id, mesos.TASK_KILLED, "Task is not running on this executor")
		return
	}
	grace := defaultGrace
	if policy == nil {
		policy = r.info.KillPolicy
	}
	if policy != nil && policy.GracePeriod != nil {
		grace = time.Duration(policy.GracePeriod.Nanoseconds)
	}
	go stop(r, grace)
}

func stop(r *running, grace time.Duration) {
	pid := r.cmd.Process.Pid
	select {
	case <-r.done: // reaped: its pid may be another process's group now
		return
	default:
	}
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// Message echoes the scheduler's data back to it.
func (x *runner) Message(ctx context.Context, data []byte) {
	if err := x.driver.Message(ctx, append([]byte("echo: "), data...)); err != nil {
		x.log.Warn("message not sent", "err", err)
	}
}

// Shutdown kills every task and waits for their terminal updates.
func (x *runner) Shutdown(ctx context.Context) {
	x.mu.Lock()
	var all []*running
	for _, r := range x.tasks {
		r.killed = true
		all = append(all, r)
	}
	x.mu.Unlock()
	grace := defaultGrace
	if deadline, ok := ctx.Deadline(); ok {
		grace = min(grace, time.Until(deadline)/2)
	}
	for _, r := range all {
		go stop(r, grace)
	}
	for _, r := range all {
		select {
		case <-r.done:
		case <-ctx.Done():
			return
		}
	}
	// Give the last terminal updates a moment to be acknowledged.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if _, updates := x.driver.Unacknowledged(); updates == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (x *runner) forget(id string) {
	x.mu.Lock()
	delete(x.tasks, id)
	x.mu.Unlock()
}

func (x *runner) status(id mesos.TaskID, state mesos.TaskState, msg string) {
	if err := x.driver.SendStatus(context.Background(), id, state, msg); err != nil {
		x.log.Warn("status update not delivered yet (it is resent when the executor subscribes again)", "task_id", id.Value, "state", state.String(), "err", err)
	}
}

// command builds the task's process from its data: a shell command line
// run in its own process group, the sandbox as working directory, output
// appended to the executor's. A task without data runs "true".
func command(t mesos.TaskInfo, sandbox string) (*exec.Cmd, error) {
	line := string(t.Data)
	if line == "" {
		line = "true"
	}
	cmd := exec.Command("/bin/sh", "-c", line)
	cmd.Dir = sandbox
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), "MESOS_TASK_ID="+t.TaskID.Value)
	return cmd, nil
}
