package main

// End-to-end tests with real processes: the agora binary is built once and
// run as a master, an agent and client commands, talking over loopback.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var agoraBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agora-e2e")
	if err != nil {
		panic(err)
	}
	agoraBin = filepath.Join(dir, "agora")
	out, err := exec.Command("go", "build", "-o", agoraBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build agora: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is a background agora process whose output is kept for failures.
type proc struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(agoraBin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, out: &out}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
		}
		if t.Failed() {
			t.Logf("output of agora %s:\n%s", strings.Join(args, " "), out.String())
		}
	})
	return p
}

type masterState struct {
	Slaves []struct {
		ID string `json:"id"`
	} `json:"slaves"`
	UnreachableSlaves int `json:"unreachable_slaves"`
}

func getState(url string) (*masterState, error) {
	resp, err := http.Get(url + "/master/state")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var s masterState
	return &s, json.NewDecoder(resp.Body).Decode(&s)
}

func waitState(t *testing.T, url, what string, cond func(*masterState) bool) *masterState {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if s, err := getState(url); err == nil && cond(s) {
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
	return nil
}

// runClient runs a client command to completion and returns its stdout,
// stderr and exit code.
func runClient(t *testing.T, master string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, agoraBin, args...)
	cmd.Env = append(os.Environ(), "AGORA_MASTER="+master)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("agora %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

func TestRealProcessesRunKillAndRecover(t *testing.T) {
	dir := t.TempDir()
	mport, aport := freePort(t), freePort(t)
	master := fmt.Sprintf("127.0.0.1:%d", mport)
	url := "http://" + master
	masterArgs := []string{"master", "--work_dir=" + filepath.Join(dir, "master"), fmt.Sprintf("--port=%d", mport),
		"--agent_ping_timeout=200ms", "--max_agent_ping_timeouts=3", "--allocation_interval=100ms"}
	masterProc := start(t, masterArgs...)
	agentArgs := []string{"agent", "--master=" + master, "--work_dir=" + filepath.Join(dir, "agent"),
		fmt.Sprintf("--port=%d", aport), "--resources=cpus:2;mem:1024;disk:1024", "--switch_user=false"}
	agent := start(t, agentArgs...)
	s := waitState(t, url, "agent registered", func(s *masterState) bool { return len(s.Slaves) == 1 })
	agentID := s.Slaves[0].ID

	out, _, code := runClient(t, master, "run", "--", "echo", "hello")
	if code != 0 || out != "hello\n" {
		t.Fatalf("agora run -- echo hello: exit %d, stdout %q", code, out)
	}
	_, _, code = runClient(t, master, "run", "--", "sh", "-c", "exit 3")
	if code != 3 {
		t.Fatalf("agora run -- sh -c 'exit 3': exit %d, want 3", code)
	}

	// A long task, then kill -9 of its agent: the task is lost (agora run
	// is not partition-aware) once the ping timeouts run out.
	longRun := exec.Command(agoraBin, "run", "--", "sleep", "1000")
	longRun.Env = append(os.Environ(), "AGORA_MASTER="+master)
	var longErr bytes.Buffer
	longRun.Stderr = &longErr
	if err := longRun.Start(); err != nil {
		t.Fatal(err)
	}
	waitTasks(t, master, "TASK_RUNNING", 1)
	// agora run suppresses offers once its task runs: agora explain says so.
	fwOut, _, _ := runClient(t, master, "frameworks", "--json")
	var fws []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(fwOut), &fws); err != nil || len(fws) != 1 {
		t.Fatalf("agora frameworks --json: %v %q", err, fwOut)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, errOut, code := runClient(t, master, "explain", fws[0].ID)
		if code == 0 && strings.Contains(out, "suppressed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agora explain %s: exit %d, %q %q", fws[0].ID, code, out, errOut)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := agent.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	agent.cmd.Wait()
	waitState(t, url, "agent unreachable", func(s *masterState) bool { return s.UnreachableSlaves == 1 })
	done := make(chan error, 1)
	go func() { done <- longRun.Wait() }()
	select {
	case err := <-done:
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() == 0 {
			t.Fatalf("agora run of a lost task exited %v; stderr %q", err, longErr.String())
		}
		if !strings.Contains(longErr.String(), "TASK_LOST") {
			t.Fatalf("agora run did not report TASK_LOST: %q", longErr.String())
		}
	case <-time.After(60 * time.Second):
		longRun.Process.Kill()
		t.Fatal("agora run did not notice its task was lost")
	}

	// Restarting the agent on the same work_dir re-registers the same ID,
	// and the orphaned task of the removed framework is killed.
	start(t, agentArgs...)
	waitState(t, url, "agent re-registered", func(s *masterState) bool {
		return len(s.Slaves) == 1 && s.Slaves[0].ID == agentID && s.UnreachableSlaves == 0
	})
	deadline = time.Now().Add(30 * time.Second)
	for sleepRunning() {
		if time.Now().After(deadline) {
			t.Fatal("the lost task's process still runs after its agent re-registered")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A master restart on the same work_dir: its registry remembers the
	// agent, which re-registers under the same ID, and tasks run again.
	if err := masterProc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	masterProc.cmd.Wait()
	start(t, masterArgs...)
	waitState(t, url, "agent re-registered with the restarted master", func(s *masterState) bool {
		return len(s.Slaves) == 1 && s.Slaves[0].ID == agentID
	})
	out, _, code = runClient(t, master, "run", "--", "echo", "after restart")
	if code != 0 || out != "after restart\n" {
		t.Fatalf("agora run after a master restart: exit %d, stdout %q", code, out)
	}
}

// waitTasks waits until `agora tasks --json` lists n tasks in state.
func waitTasks(t *testing.T, master, state string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		out, _, code := runClient(t, master, "tasks", "--json")
		if code == 0 && strings.Count(out, `"`+state+`"`) >= n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no %d tasks in %s", n, state)
}

// sleepRunning reports whether a `sleep 1000` process exists.
func sleepRunning() bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && string(b) == "sleep\x001000\x00" {
			stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if !strings.Contains(string(stat), ") Z ") {
				return true
			}
		}
	}
	return false
}

// agora dev stops in order when interrupted: when the process has exited,
// the tasks its agents ran are gone too, even one that outlives SIGTERM
// (it used to sleep 200 ms and hope).
func TestDevStopsItsTasksBeforeExiting(t *testing.T) {
	port := freePort(t)
	work, err := os.MkdirTemp("/var/tmp", "agora-dev-stop-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	dev := start(t, "dev", "--agents", "2", "--port", strconv.Itoa(port), "--hadoop_port", "0", "--work_dir", work)
	master := "127.0.0.1:" + strconv.Itoa(port)
	waitState(t, "http://"+master, "two agents", func(s *masterState) bool { return len(s.Slaves) == 2 })

	marker := fmt.Sprintf("%d.%03d", 5000+os.Getpid()%1000, time.Now().Nanosecond()%1000)
	// The task ignores SIGTERM (the disposition survives exec), so the
	// agents must wait out the kill grace period and SIGKILL it.
	run := exec.Command(agoraBin, "run", "--cpus", "0.1", "--mem", "32", "--", "sh", "-c", `trap "" TERM; exec sleep `+marker)
	run.Env = append(os.Environ(), "AGORA_MASTER="+master)
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run.Process.Kill(); run.Wait() })
	sleeping := func() bool {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err == nil && string(b) == "sleep\x00"+marker+"\x00" {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(time.Minute)
	for !sleeping() {
		if time.Now().After(deadline) {
			t.Fatal("the task never started")
		}
		time.Sleep(50 * time.Millisecond)
	}

	dev.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- dev.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agora dev exited with %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("agora dev did not exit within 90 s of SIGTERM")
	}
	if sleeping() {
		t.Fatal("agora dev exited while its task still ran")
	}
}
