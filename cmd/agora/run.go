package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/frameworks/oneshot"
	"github.com/agora-cluster/agora/frameworks/sandbox"
	"github.com/agora-cluster/agora/frameworks/state"
)

func init() {
	register(command{name: "run", summary: "Run one command as a task and stream its output (like mesos-execute)", run: runRun})
}

// outputPoll is how often the task's stdout and stderr are polled.
const outputPoll = 200 * time.Millisecond

func runRun(args []string) int {
	var o clientOptions
	spec := oneshot.Spec{Env: map[string]string{}}
	fs := newClientFlags("run", "[flags] -- CMD [ARGS...]",
		"Runs CMD as a task on an agent that has room for it, streams its stdout and stderr\n"+
			"here, and exits with the command's exit status. Ctrl-C kills the task.",
		"agora run --cpus 0.5 --mem 128 --env GREETING=hi -- sh -c 'echo $GREETING'", &o, false)
	fs.Float64Var(&spec.CPUs, "cpus", 0.1, "CPUs for the task")
	fs.Float64Var(&spec.Mem, "mem", 32, "memory for the task, in MB")
	fs.Float64Var(&spec.Disk, "disk", 0, "scratch disk for the task, in MB")
	fs.StringVar(&spec.Name, "name", "agora-run", "task (and framework) name")
	fs.StringVar(&spec.Role, "role", "*", "role to take resources from")
	fs.Var(envFlag(spec.Env), "env", "environment variable NAME=VALUE for the task (repeatable)")
	fs.BoolVar(&spec.Shell, "shell", false, "run CMD ARGS as one string through /bin/sh -c")
	fs.BoolVar(&o.verbose, "verbose", false, "print progress and diagnostics on stderr")
	if code, done := o.parse(fs, args); done {
		return code
	}
	spec.Command = fs.Args()
	if len(spec.Command) == 0 {
		fmt.Fprintln(os.Stderr, "agora run: no command given; usage: agora run [flags] -- CMD [ARGS...]")
		return 2
	}
	log := clientLogger(o.verbose)

	started := make(chan string, 1) // the agent ID, once the task has one
	job, err := oneshot.New(oneshot.Config{
		Masters:            []string{o.master},
		Logger:             log,
		FrameworkName:      spec.Name,
		MaxConnectFailures: 3,
		Principal:          o.cred.Principal,
		Secret:             o.cred.Secret,
		TLS:                o.tls,
		Task:               spec,
		OnStatus: func(st mesos.TaskStatus) {
			log.Info("task status", "state", st.GetState().String(), "message", st.GetMessage())
			if a := st.GetAgentID().GetValue(); a != "" {
				select {
				case started <- a:
				default:
				}
			}
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora run:", err)
		return 2
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	interrupted := watchInterrupts(ctx, job, cancel, log)

	finished := make(chan struct{})
	streamed := make(chan struct{})
	go func() {
		defer close(streamed)
		streamOutput(ctx, o.state(), o.master, job, started, finished, log)
	}()

	res, err := job.Run(ctx)
	close(finished)
	select {
	case <-streamed:
	case <-time.After(5 * time.Second):
	}
	if interrupted.Load() {
		if res != nil {
			fmt.Fprintf(os.Stderr, "agora run: task %s %s\n", res.TaskID, res.Status.GetState())
		}
		return 130
	}
	if err != nil {
		return masterFailure("run", o.master, err)
	}
	code, ok := oneshot.ExitCode(res.Status)
	msg := res.Status.GetMessage()
	switch {
	case !ok:
		fmt.Fprintf(os.Stderr, "agora run: task %s ended in %s: %s\n", res.TaskID, res.Status.GetState(), msg)
	case res.Status.GetState() == mesos.TASK_FAILED && !strings.Contains(msg, "exited with status"):
		fmt.Fprintf(os.Stderr, "agora run: task %s failed: %s\n", res.TaskID, msg)
	}
	return code
}

// interruptFlag is set once the user asked to stop.
type interruptFlag struct{ ch chan struct{} }

func (f interruptFlag) Load() bool {
	select {
	case <-f.ch:
		return true
	default:
		return false
	}
}

// watchInterrupts kills the task on the first Ctrl-C (or SIGTERM) and gives
// up waiting for it on the second, or 10s after the first.
func watchInterrupts(ctx context.Context, job *oneshot.Job, cancel context.CancelFunc, log *slog.Logger) interruptFlag {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	flag := interruptFlag{ch: make(chan struct{})}
	go func() {
		defer signal.Stop(sigs)
		select {
		case <-ctx.Done():
			return
		case <-sigs:
		}
		close(flag.ch)
		fmt.Fprintln(os.Stderr, "agora run: killing the task (Ctrl-C again to stop waiting)")
		kctx, kcancel := context.WithTimeout(ctx, 5*time.Second)
		if err := job.Kill(kctx); err != nil {
			log.Warn("kill", "err", err)
		}
		kcancel()
		select {
		case <-ctx.Done():
		case <-sigs:
			cancel()
		case <-time.After(10 * time.Second):
			cancel()
		}
	}()
	return flag
}

// streamOutput copies the task's stdout and stderr from its sandbox to ours
// while it runs, and what is left once it has finished.
func streamOutput(ctx context.Context, c state.Client, master string, job *oneshot.Job, started <-chan string, finished <-chan struct{}, log *slog.Logger) {
	var agentID string
	select {
	case agentID = <-started:
	case <-finished:
		select { // the task may have started and ended in one breath
		case agentID = <-started:
		default:
			return
		}
	}
	agent, err := c.Agent(ctx, master, agentID)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora run: cannot stream the task's output:", err)
		return
	}
	endpoint := agent.Endpoint()
	dir, err := sandbox.Locate(ctx, c, endpoint, job.FrameworkID(), job.TaskID(), 10*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora run: cannot stream the task's output:", err)
		return
	}
	log.Info("streaming output", "agent", endpoint, "sandbox", dir)
	outs := []*sandbox.Follower{
		{Agent: endpoint, Path: dir + "/stdout", W: os.Stdout, HTTP: c.HTTP},
		{Agent: endpoint, Path: dir + "/stderr", W: os.Stderr, HTTP: c.HTTP},
	}
	poll := func() error {
		for _, f := range outs {
			if _, err := f.Poll(ctx); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
				return err
			}
		}
		return nil
	}
	t := time.NewTicker(outputPoll)
	defer t.Stop()
	for {
		select {
		case <-finished:
			if err := poll(); err != nil {
				log.Warn("reading the task's output", "err", err)
			}
			return
		case <-ctx.Done():
			return
		case <-t.C:
			if err := poll(); err != nil {
				log.Warn("reading the task's output", "err", err)
			}
		}
	}
}
