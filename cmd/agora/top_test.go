package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// agora top --once prints one frame of what the master knows: its agent
// with the resources its tasks use, and the running task; not being on a
// terminal, it prints no colour.
func TestTopOncePrintsAgentsAndTasks(t *testing.T) {
	master := startSmallCluster(t)
	startRun(t, master, "--name=topped", "--cpus=0.5", "--mem=64", "--", "sleep", "1000")
	id := waitTaskID(t, master, "topped", "TASK_RUNNING")

	out, errOut, code := runClient(t, master, "top", "--once")
	if code != 0 {
		t.Fatalf("agora top --once: exit %d, stderr %q", code, errOut)
	}
	t.Logf("agora top --once:\n%s", out)
	if strings.Contains(out, "\x1b") {
		t.Errorf("agora top --once to a pipe wrote escapes: %q", out)
	}
	for _, want := range []string{"agents=1 frameworks=1 tasks=1", "0.5/2", "64/1024", id} {
		if !strings.Contains(out, want) {
			t.Errorf("agora top --once: no %q in\n%s", want, out)
		}
	}
	var row string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, id) {
			row = l
		}
	}
	if f := strings.Fields(row); len(f) < 5 || f[1] != "topped" || f[4] != "TASK_RUNNING" {
		t.Errorf("agora top --once: task row %q, want its name and TASK_RUNNING", row)
	}
}

// tmuxSession runs command in a detached tmux session on a server of the
// test's own, until the test ends.
type tmuxSession struct {
	t      *testing.T
	socket string
}

func startTmux(t *testing.T, env []string, command ...string) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed")
	}
	s := &tmuxSession{t: t, socket: fmt.Sprintf("agora-top-%d-%d", os.Getpid(), time.Now().UnixNano())}
	args := []string{"-L", s.socket, "new-session", "-d", "-x", "200", "-y", "50"}
	for _, e := range env {
		args = append(args, "-e", e)
	}
	if out, err := s.tmux(append(args, command...)...); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	t.Cleanup(func() { s.tmux("kill-server") })
	return s
}

func (s *tmuxSession) tmux(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	return string(out), err
}

// waitScreen waits, at most a minute, until the pane (with its colour
// escapes) satisfies cond, and returns it.
func (s *tmuxSession) waitScreen(what string, cond func(string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	var screen string
	for time.Now().Before(deadline) {
		out, err := s.tmux("capture-pane", "-p", "-e")
		if err == nil {
			screen = out
			if cond(screen) {
				return screen
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("the tmux screen never showed %s; last screen:\n%s", what, screen)
	return ""
}

// Under a terminal (tmux), agora top draws in colour and redraws when a
// task starts, from the event stream; with NO_COLOR it draws no colour.
func TestTopRedrawsUnderATerminal(t *testing.T) {
	master := startSmallCluster(t)
	s := startTmux(t, []string{"AGORA_MASTER=" + master}, agoraBin, "top")
	s.waitScreen("the agent", func(sc string) bool { return strings.Contains(sc, "agents=1 frameworks=0 tasks=0") })

	startRun(t, master, "--name=appears", "--", "sleep", "1000")
	screen := s.waitScreen("the new task running", func(sc string) bool {
		return strings.Contains(sc, "appears") && strings.Contains(sc, "TASK_RUNNING")
	})
	if !strings.Contains(screen, "tasks=1") {
		t.Errorf("the redrawn screen does not count the task:\n%s", screen)
	}
	if !strings.Contains(screen, "\x1b[32mTASK_RUNNING") {
		t.Errorf("a running task is not green on a terminal:\n%q", screen)
	}

	plain := startTmux(t, []string{"AGORA_MASTER=" + master, "NO_COLOR=1"}, agoraBin, "top")
	screen = plain.waitScreen("the running task", func(sc string) bool { return strings.Contains(sc, "TASK_RUNNING") })
	if strings.Contains(screen, "\x1b[") {
		t.Errorf("agora top with NO_COLOR drew colour:\n%q", screen)
	}
}
