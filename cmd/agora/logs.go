package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/master"

	"github.com/agora-cluster/agora/frameworks/oneshot"
	"github.com/agora-cluster/agora/frameworks/sandbox"
	"github.com/agora-cluster/agora/frameworks/state"
)

func init() {
	register(command{name: "logs", summary: "Print a task's stdout (or stderr); -f follows it until the task ends", run: runLogs})
}

// logsPoll is how often a followed file is read for new bytes.
const logsPoll = 200 * time.Millisecond

// sandboxWait is how long a task's agent may take to report its sandbox
// (a task just launched has none yet).
const sandboxWait = 30 * time.Second

func runLogs(args []string) int {
	var o clientOptions
	var follow, stderr, viaMaster bool
	fs := newClientFlags("logs", "TASK [-f] [--stderr]",
		"Prints the stdout (or with --stderr the stderr) of task TASK from its sandbox on\n"+
			"its agent, read through the agent's /files/read. With -f it follows the file\n"+
			"until the task ends, and then exits with the task's exit code: 0 for TASK_FINISHED,\n"+
			"the command's exit status for TASK_FAILED, non-zero for TASK_KILLED, TASK_LOST and\n"+
			"the other ends.",
		"agora logs -f my-task-id", &o, false)
	fs.BoolVar(&follow, "f", false, "follow the file until the task ends; exit with the task's exit code")
	fs.BoolVar(&follow, "follow", false, "same as -f")
	fs.BoolVar(&stderr, "stderr", false, "print the task's stderr instead of its stdout")
	fs.BoolVar(&viaMaster, "via_master", false, "read the sandbox through the master's relay to the agent (/agent/ID/...), as the web UI does; without it that is only the fallback when the agent cannot be reached directly")
	fs.BoolVar(&o.verbose, "verbose", false, "print progress and diagnostics on stderr")
	// Flags may come after TASK (agora logs TASK -f): parse what follows
	// the first argument that is not a flag too.
	if code, done := o.parse(fs, args); done {
		return code
	}
	rest := fs.Args()
	if len(rest) > 1 {
		if code, done := o.parse(fs, rest[1:]); done {
			return code
		}
		rest = append(rest[:1], fs.Args()...)
	}
	if len(rest) != 1 {
		fmt.Fprintln(os.Stderr, "agora logs: want one task ID; usage: agora logs TASK [-f] [--stderr]")
		return 2
	}
	taskID := rest[0]
	log := clientLogger(o.verbose)
	ctx, stop := interruptible(context.Background())
	defer stop()

	// The event stream answers both questions: where the task is (its
	// first event is the cluster's state) and, for -f, when it ends.
	s, err := subscribeEvents(ctx, &o)
	if err != nil {
		return masterFailure("logs", o.master, err)
	}
	defer s.Close()
	ev, _, err := s.next()
	if err != nil {
		return masterFailure("logs", o.master, err)
	}
	if ev.GetType() != master.Event_SUBSCRIBED {
		fmt.Fprintf(os.Stderr, "agora logs: the master's event stream began with %s, not SUBSCRIBED\n", ev.GetType())
		return 1
	}
	task, ok := findTask(ev.GetSubscribed().GetGetState().GetGetTasks(), taskID)
	if !ok {
		fmt.Fprintf(os.Stderr, "agora logs: no task %q is known to the master at %s (agora tasks --all lists them)\n", taskID, o.master)
		return 1
	}
	c := o.state()
	agent, err := c.Agent(ctx, o.master, task.AgentID.Value)
	if err != nil {
		return masterFailure("logs", o.master, fmt.Errorf("task %s: %w", taskID, err))
	}
	executorID := task.TaskID.Value
	if task.ExecutorID != nil {
		executorID = task.ExecutorID.Value
	}
	// The agent directly, or through the master's relay (the agent's
	// /state and /files/* under /agent/ID), when asked or when the agent
	// does not answer here.
	endpoint := agent.Endpoint()
	if strings.HasPrefix(s.base, "https://") && !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint // a cluster on HTTPS: its agents speak it too
	}
	relay := s.base + "/agent/" + url.PathEscape(task.AgentID.Value)
	if viaMaster {
		endpoint = relay
	}
	// A task that has ended has its sandbox already, or never had one
	// (the master refused it, or the agent lost it): no waiting then.
	last, ended := taskEnd(task)
	wait := sandboxWait
	if ended {
		wait = 0
	}
	dir, err := sandbox.Locate(ctx, c, endpoint, task.FrameworkID.Value, executorID, wait)
	var ue *state.UnreachableError
	if err != nil && !viaMaster && errors.As(err, &ue) {
		log.Info("the agent does not answer; reading through the master", "agent", endpoint, "err", err)
		endpoint = relay
		dir, err = sandbox.Locate(ctx, c, endpoint, task.FrameworkID.Value, executorID, wait)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "agora logs: task %s: %v\n", taskID, err)
		if ended && follow && errors.Is(err, sandbox.ErrNotFound) {
			return finishLogs(taskID, last, nil) // it ended without a sandbox: say how
		}
		return 1
	}
	if task.ExecutorID != nil {
		dir = taskSandbox(ctx, c, endpoint, dir, taskID)
	}
	file := "stdout"
	if stderr {
		file = "stderr"
	}
	log.Info("reading", "agent", endpoint, "path", dir+"/"+file)
	fl := &sandbox.Follower{Agent: endpoint, Path: dir + "/" + file, W: os.Stdout, HTTP: c.HTTP}
	poll := func() error {
		if _, err := fl.Poll(ctx); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
			return err
		}
		return nil
	}
	if !follow {
		if err := poll(); err != nil {
			fmt.Fprintf(os.Stderr, "agora logs: %v\n", err)
			return 1
		}
		return 0
	}
	if ended {
		return finishLogs(taskID, last, poll())
	}
	end := make(chan mesos.TaskStatus, 1)
	streamErr := make(chan error, 1)
	go func() { streamErr <- watchTaskEnd(s, task.FrameworkID.Value, taskID, end) }()
	t := time.NewTicker(logsPoll)
	defer t.Stop()
	for {
		select {
		case st := <-end:
			return finishLogs(taskID, st, poll())
		case err := <-streamErr:
			if ctx.Err() != nil {
				return 130
			}
			fmt.Fprintf(os.Stderr, "agora logs: lost the master's event stream before task %s ended: %v\n", taskID, err)
			return 1
		case <-ctx.Done():
			return 130 // interrupted: the task runs on
		case <-t.C:
			if err := poll(); err != nil {
				log.Warn("reading the task's output", "err", err)
			}
		}
	}
}

// taskSandbox is the sandbox of a task that runs under an executor:
// the default executor gives each task of a group its own
// (<executor sandbox>/tasks/<task id>); a custom executor's tasks share
// the executor's.
func taskSandbox(ctx context.Context, c state.Client, endpoint, executorDir, taskID string) string {
	nested := executorDir + "/tasks/" + taskID
	var listing []json.RawMessage
	if err := c.Get(ctx, endpoint, "/files/browse?path="+url.QueryEscape(nested), &listing); err == nil {
		return nested
	}
	return executorDir
}

// findTask looks a task up by ID among the master's tasks: a live one
// before a completed one of the same ID (another framework's, or an
// earlier run's).
func findTask(ts *master.Response_GetTasks, id string) (mesos.Task, bool) {
	for _, list := range [][]mesos.Task{ts.GetTasks(), ts.GetUnreachableTasks(), ts.GetOrphanTasks(), ts.GetCompletedTasks()} {
		for i := len(list) - 1; i >= 0; i-- {
			if list[i].TaskID.Value == id {
				return list[i], true
			}
		}
	}
	return mesos.Task{}, false
}

// taskEnd is the status that ended t, if it has ended.
func taskEnd(t mesos.Task) (mesos.TaskStatus, bool) {
	if !terminalState(t.GetState()) {
		return mesos.TaskStatus{}, false
	}
	for i := len(t.Statuses) - 1; i >= 0; i-- {
		if terminalState(t.Statuses[i].GetState()) {
			return t.Statuses[i], true
		}
	}
	st := t.GetState()
	return mesos.TaskStatus{TaskID: t.TaskID, State: &st}, true
}

// watchTaskEnd reads s until the task ends, and sends the status that
// ended it; it returns the stream's error otherwise.
func watchTaskEnd(s *eventStream, frameworkID, taskID string, ended chan<- mesos.TaskStatus) error {
	for {
		ev, _, err := s.next()
		if err != nil {
			return err
		}
		u := ev.GetTaskUpdated()
		if u == nil || u.Status.TaskID.Value != taskID || u.FrameworkID.Value != frameworkID || !terminalState(u.GetState()) {
			continue
		}
		st := u.Status
		state := u.GetState()
		st.State = &state
		ended <- st
		return nil
	}
}

// finishLogs reports how the task ended and returns its exit code.
func finishLogs(taskID string, st mesos.TaskStatus, readErr error) int {
	if readErr != nil {
		fmt.Fprintf(os.Stderr, "agora logs: %v\n", readErr)
	}
	code, ok := oneshot.ExitCode(st)
	if !ok || code != 0 {
		fmt.Fprintf(os.Stderr, "agora logs: task %s ended in %s: %s\n", taskID, st.GetState(), st.GetMessage())
	}
	if code == 0 && readErr != nil {
		return 1
	}
	return code
}

// terminalState reports the states a task does not leave.
func terminalState(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_LOST,
		mesos.TASK_ERROR, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}
