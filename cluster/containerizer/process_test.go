package containerizer

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// liveInGroup scans /proc for live (non-zombie) processes of group pgid. It
// parses /proc on its own so the tests do not trust the code under test.
func liveInGroup(t *testing.T, pgid int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("read /proc: %v", err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" && f[0] != "X" {
			pids = append(pids, pid)
		}
	}
	return pids
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func launchShell(t *testing.T, script string) (Container, string) {
	t.Helper()
	dir := t.TempDir()
	c, err := Process{}.Launch(context.Background(), Spec{
		ID:     "c-" + strconv.Itoa(int(time.Now().UnixNano())),
		Path:   "/bin/sh",
		Args:   []string{"sh", "-c", script},
		Env:    []string{"PATH=/usr/bin:/bin"},
		Dir:    dir,
		Stdout: filepath.Join(dir, "stdout"),
		Stderr: filepath.Join(dir, "stderr"),
	})
	if err != nil {
		t.Fatalf("launch %q: %v", script, err)
	}
	t.Cleanup(func() { _ = c.Signal(syscall.SIGKILL) })
	return c, dir
}

func wait(t *testing.T, c Container) Exit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := c.Wait(ctx)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	return e
}

func TestLaunchWritesOutputInSandboxAndReportsExitStatus(t *testing.T) {
	c, dir := launchShell(t, `echo out; echo err >&2; pwd; exit 3`)
	e := wait(t, c)
	if e.Code != 3 || e.Signal != 0 || e.Success() {
		t.Fatalf("exit = %+v, want status 3", e)
	}
	if got := e.String(); got != "exited with status 3" {
		t.Errorf("String() = %q", got)
	}
	out, _ := os.ReadFile(filepath.Join(dir, "stdout"))
	if want := "out\n" + dir + "\n"; string(out) != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	errb, _ := os.ReadFile(filepath.Join(dir, "stderr"))
	if string(errb) != "err\n" {
		t.Errorf("stderr = %q", errb)
	}
	if err := c.Signal(syscall.SIGTERM); !errors.Is(err, ErrExited) {
		t.Errorf("Signal after exit = %v, want ErrExited", err)
	}
}

func TestSignalReachesTheWholeProcessTree(t *testing.T) {
	c, _ := launchShell(t, `sleep 100 & sleep 100`)
	waitFor(t, "shell and both sleeps", func() bool { return len(liveInGroup(t, c.Pid())) >= 3 })
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	e := wait(t, c)
	if e.Signal != syscall.SIGTERM {
		t.Errorf("exit = %+v, want terminated by SIGTERM", e)
	}
	if got := e.String(); got != "terminated with signal Terminated" {
		t.Errorf("String() = %q", got)
	}
	if left := liveInGroup(t, c.Pid()); len(left) != 0 {
		t.Fatalf("processes left in group %d: %v", c.Pid(), left)
	}
}

func TestMainProcessExitKillsLeftovers(t *testing.T) {
	c, dir := launchShell(t, `sleep 100 & echo $! > bg.pid`)
	if e := wait(t, c); !e.Success() {
		t.Fatalf("exit = %+v", e)
	}
	b, err := os.ReadFile(filepath.Join(dir, "bg.pid"))
	if err != nil {
		t.Fatal(err)
	}
	if left := liveInGroup(t, c.Pid()); len(left) != 0 {
		t.Fatalf("background sleep %s survived its container: %v", strings.TrimSpace(string(b)), left)
	}
}

func TestLaunchFailureStartsNothing(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{"/nonexistent/program", "no-such-program-agora"} {
		_, err := Process{}.Launch(context.Background(), Spec{ID: "x", Path: path, Dir: dir, Env: []string{"PATH=" + dir}})
		if err == nil {
			t.Fatalf("launch %s succeeded", path)
		}
		if path == "no-such-program-agora" && !errors.Is(err, exec.ErrNotFound) {
			t.Errorf("launch %s: %v, want ErrNotFound", path, err)
		}
	}
}

func TestProgramIsLookedUpInTheContainersPath(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "agora-hello"), []byte("#!/bin/sh\necho hello from $0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c, err := Process{}.Launch(context.Background(), Spec{
		ID: "p", Path: "agora-hello", Env: []string{"PATH=" + bin + ":/usr/bin:/bin"},
		Dir: dir, Stdout: filepath.Join(dir, "stdout"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if e := wait(t, c); !e.Success() {
		t.Fatalf("exit = %+v", e)
	}
	out, _ := os.ReadFile(filepath.Join(dir, "stdout"))
	if want := "hello from " + filepath.Join(bin, "agora-hello") + "\n"; string(out) != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
}

func TestRecoverAdoptsARunningContainer(t *testing.T) {
	c, _ := launchShell(t, `sleep 100 & sleep 100`)
	waitFor(t, "both sleeps", func() bool { return len(liveInGroup(t, c.Pid())) >= 3 })
	st := c.State()
	if st.Pid != c.Pid() || st.StartTime == 0 {
		t.Fatalf("state = %+v", st)
	}
	a, err := Process{}.Recover(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, a); !e.Unknown {
		t.Errorf("adopted exit = %+v, want Unknown", e)
	}
	wait(t, c)
	if left := liveInGroup(t, c.Pid()); len(left) != 0 {
		t.Fatalf("processes left: %v", left)
	}
	if _, err := (Process{}).Recover(context.Background(), st); !errors.Is(err, ErrGone) {
		t.Fatalf("recover of a dead container: %v, want ErrGone", err)
	}
	if _, err := (Process{}).Recover(context.Background(), State{ID: "x", Pid: os.Getpid(), StartTime: st.StartTime - 1}); !errors.Is(err, ErrGone) {
		t.Fatalf("recover with a stale start time: %v, want ErrGone", err)
	}
}
