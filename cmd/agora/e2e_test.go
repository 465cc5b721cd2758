package main

// End-to-end tests with real processes: the agora binary is built once and
// run as a master, an agent and client commands, talking over loopback.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

// proc is a background agora process whose output is kept for failures.
type proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed once the process has exited
}

// start runs agora with args on this host until the test ends.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startCmd(t, exec.Command(agoraBin, args...), "agora "+strings.Join(args, " "))
}

// startCmd starts cmd (agora, on this host or another) in a process group
// of its own, keeping its output. When the test ends a process still
// running gets SIGTERM, then its group SIGKILL 15 s later; the output of
// a failed test's processes is logged under name.
func startCmd(t *testing.T, cmd *exec.Cmd, name string) *proc {
	t.Helper()
	p := &proc{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(15 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, lastBytes(p.out.String(), 20000))
		}
	})
	return p
}

// kill9 kills the process itself (not its group: an agent's tasks outlive
// it) and waits, at most a minute, until it is gone.
func (p *proc) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Fatalf("pid %d still runs a minute after SIGKILL", p.cmd.Process.Pid)
	}
}

// addr waits, at most a minute, for the address the process bound: the
// line "agora CMD: listening on HOST:PORT" it prints once listening (see
// listeningAddr). It fails the test if the process exits first.
func (p *proc) addr(t *testing.T) string {
	t.Helper()
	addr, err := p.awaitAddr(time.Minute)
	if err != nil {
		t.Fatalf("agora %s: %v", strings.Join(p.cmd.Args[1:], " "), err)
	}
	return addr
}

func (p *proc) awaitAddr(limit time.Duration) (string, error) {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-p.done:
			if addr, ok := listeningAddr(p.out.String()); ok {
				return addr, nil
			}
			if strings.Contains(p.out.String(), "address already in use") {
				return "", fmt.Errorf("%w: %s", errPortTaken, lastLine(p.out.String()))
			}
			return "", fmt.Errorf("exited (%v) before it listened: %s", p.cmd.ProcessState, lastLine(p.out.String()))
		default:
		}
		if addr, ok := listeningAddr(p.out.String()); ok {
			return addr, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no %q line within %s", "listening on", limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startBound starts agora with args (with --port=0, or none of its own)
// and returns it with the address it bound.
func startBound(t *testing.T, args ...string) (*proc, string) {
	t.Helper()
	p := start(t, args...)
	return p, p.addr(t)
}

// restartOn starts agora with args again on the port of addr, which an
// earlier run bound: a restarted master or agent must come back where its
// agents, frameworks and executors know it. Another process on this busy
// machine may have bound the port since the kill, usually for a moment, so
// a start refused with "address already in use" is tried again, at most 5
// times.
func restartOn(t *testing.T, addr string, args ...string) *proc {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	args = withPort(args, port)
	for attempt := 1; ; attempt++ {
		p := start(t, args...)
		got, err := p.awaitAddr(time.Minute)
		switch {
		case err == nil && got != addr:
			t.Fatalf("agora %s listens on %s, not %s", args[0], got, addr)
		case err == nil:
			return p
		case attempt == 5 || !errors.Is(err, errPortTaken):
			t.Fatalf("agora %s again on %s (attempt %d): %v", args[0], addr, attempt, err)
		}
		t.Logf("agora %s again on %s (attempt %d): %v; trying again", args[0], addr, attempt, err)
		time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
	}
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
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
	masterArgs := []string{"master", "--work_dir=" + filepath.Join(dir, "master"), "--port=0",
		"--agent_ping_timeout=200ms", "--max_agent_ping_timeouts=3", "--allocation_interval=100ms"}
	masterProc, master := startBound(t, masterArgs...)
	url := "http://" + master
	agentArgs := []string{"agent", "--master=" + master, "--work_dir=" + filepath.Join(dir, "agent"),
		"--port=0", "--resources=cpus:2;mem:1024;disk:1024", "--switch_user=false"}
	agent, agentAddr := startBound(t, agentArgs...)
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
	agent.kill9(t)
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

	// Restarting the agent on the same work_dir (and port) re-registers
	// the same ID, and the orphaned task of the removed framework is killed.
	restartOn(t, agentAddr, agentArgs...)
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
	masterProc.kill9(t)
	restartOn(t, master, masterArgs...)
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
	work, err := os.MkdirTemp("/var/tmp", "agora-dev-stop-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	// The services framework runs too (on a free port): an app it keeps
	// running must be gone as well.
	// So does the scheduled-jobs framework.
	// Distinct free ports: each listener stays open until all are chosen.
	var held []net.Listener
	freePort := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
		_, port, _ := net.SplitHostPort(l.Addr().String())
		return port
	}
	// And the DNS server, which must come to name the app's instance.
	marathonPort, chronosPort, dnsPort, dnsHTTPPort := freePort(), freePort(), freePort(), freePort()
	for _, l := range held {
		l.Close()
	}
	marathonAddr := "127.0.0.1:" + marathonPort
	dev, master := startBound(t, "dev", "--agents", "2", "--port=0", "--hadoop_port", "0",
		"--marathon_port", marathonPort, "--chronos_port", chronosPort,
		"--dns_port", dnsPort, "--dns_http_port", dnsHTTPPort, "--spark_port", "0", "--work_dir", work)
	waitState(t, "http://"+master, "two agents", func(s *masterState) bool { return len(s.Slaves) == 2 })
	if resp, err := http.Get("http://127.0.0.1:" + chronosPort + "/v1/scheduler/jobs"); err != nil {
		t.Fatalf("agora dev's scheduled-jobs API: %v", err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/scheduler/jobs on agora dev: %s", resp.Status)
	}

	marker := fmt.Sprintf("%d.%03d", 5000+os.Getpid()%1000, time.Now().Nanosecond()%1000)
	appMarker := fmt.Sprintf("%d.%03d", 6000+os.Getpid()%1000, time.Now().Nanosecond()%1000)
	app := `{"id":"/stop-test","cmd":"sleep ` + appMarker + `","cpus":0.1,"mem":32,"instances":1}`
	resp, err := http.Post("http://"+marathonAddr+"/v2/apps", "application/json", strings.NewReader(app))
	if err != nil {
		t.Fatalf("agora dev's services API on %s: %v", marathonAddr, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v2/apps to agora dev's services API: %s, want 201 Created", resp.Status)
	}
	// The task ignores SIGTERM (the disposition survives exec), so the
	// agents must wait out the kill grace period and SIGKILL it.
	run := exec.Command(agoraBin, "run", "--cpus", "0.1", "--mem", "32", "--", "sh", "-c", `trap "" TERM; exec sleep `+marker)
	run.Env = append(os.Environ(), "AGORA_MASTER="+master)
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run.Process.Kill(); run.Wait() })
	sleepingOn := func(m string) bool {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err == nil && (string(b) == "sleep\x00"+m+"\x00" || string(b) == "sh\x00-c\x00sleep "+m+"\x00") {
				return true
			}
		}
		return false
	}
	sleeping := func() bool { return sleepingOn(marker) || sleepingOn(appMarker) }
	named := func() string {
		resp, err := http.Get("http://127.0.0.1:" + dnsHTTPPort + "/v1/services/_stop-test._tcp.marathon.agora")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		var recs []struct{ Host, IP, Port string }
		if err := json.NewDecoder(resp.Body).Decode(&recs); err != nil {
			return err.Error()
		}
		if len(recs) == 1 && recs[0].Port != "" && recs[0].IP != "" {
			return ""
		}
		return fmt.Sprintf("%+v", recs)
	}
	deadline := time.Now().Add(time.Minute)
	for !sleepingOn(marker) || !sleepingOn(appMarker) {
		if time.Now().After(deadline) {
			t.Fatalf("the tasks never started (agora run's: %v, the app's: %v)", sleepingOn(marker), sleepingOn(appMarker))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for deadline := time.Now().Add(time.Minute); named() != ""; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("agora dev's DNS server never named the app's instance: %s", named())
		}
	}

	dev.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-dev.done:
		if !dev.cmd.ProcessState.Success() {
			t.Fatalf("agora dev exited with %v", dev.cmd.ProcessState)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("agora dev did not exit within 90 s of SIGTERM")
	}
	if sleeping() {
		t.Fatal("agora dev exited while its task still ran")
	}
}

// With --port=0 the master and the agent bind free ports, print them on
// the listening line, and advertise those: the master in its MasterInfo
// and flags, the agent in its registration (the master's view of it) and
// its own /state.
func TestPortZeroAdvertisesTheBoundPort(t *testing.T) {
	dir := t.TempDir()
	_, master := startBound(t, "master", "--work_dir="+filepath.Join(dir, "master"), "--port=0")
	_, agentAddr := startBound(t, "agent", "--master="+master, "--work_dir="+filepath.Join(dir, "agent"), "--port=0",
		"--resources=cpus:1;mem:256;disk:256", "--switch_user=false")
	_, mport, _ := net.SplitHostPort(master)
	_, aport, _ := net.SplitHostPort(agentAddr)
	if mport == "0" || aport == "0" || mport == aport {
		t.Fatalf("master on %s, agent on %s: want two distinct bound ports", master, agentAddr)
	}
	var ms struct {
		LeaderInfo struct {
			Port int    `json:"port"`
			PID  string `json:"pid"`
		} `json:"leader_info"`
		Flags  map[string]string `json:"flags"`
		Slaves []struct {
			PID  string `json:"pid"`
			Port int    `json:"port"`
		} `json:"slaves"`
	}
	waitUntil(t, "the agent registered", time.Minute, func() bool {
		return getJSON("http://"+master+"/master/state", &ms) == nil && len(ms.Slaves) == 1
	})
	if strconv.Itoa(ms.LeaderInfo.Port) != mport || ms.LeaderInfo.PID != "master@"+master || ms.Flags["port"] != mport {
		t.Errorf("the master on %s advertises leader_info %+v, flags port %q", master, ms.LeaderInfo, ms.Flags["port"])
	}
	if strconv.Itoa(ms.Slaves[0].Port) != aport || !strings.HasSuffix(ms.Slaves[0].PID, ":"+aport) {
		t.Errorf("the master lists the agent on %s as %+v", agentAddr, ms.Slaves[0])
	}
	var as struct {
		Port  int               `json:"port"`
		Flags map[string]string `json:"flags"`
	}
	if err := getJSON("http://"+agentAddr+"/state", &as); err != nil {
		t.Fatal(err)
	}
	if strconv.Itoa(as.Port) != aport || as.Flags["port"] != aport {
		t.Errorf("the agent on %s says port %d, flags port %q", agentAddr, as.Port, as.Flags["port"])
	}
}

// `agora bench launch` without --max-in-flight, as the README's tour runs
// it, reports both the saturated run and one with at most 8 tasks in
// flight; with --max-in-flight it runs once with that window.
func TestBenchLaunchReportsBothByDefault(t *testing.T) {
	work, err := os.MkdirTemp("/var/tmp", "agora-bench-launch-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	_, master := startBound(t, "dev", "--agents", "1", "--port=0", "--hadoop_port", "0", "--marathon_port", "0", "--chronos_port", "0", "--dns_port", "0", "--spark_port", "0", "--work_dir", work)
	waitState(t, "http://"+master, "the agent", func(s *masterState) bool { return len(s.Slaves) == 1 })

	type result struct {
		Tasks       int `json:"tasks"`
		MaxInFlight int `json:"max_in_flight"`
		Finished    int `json:"finished"`
	}
	trace := filepath.Join(work, "trace.tsv")
	out, stderr, code := runClient(t, master, "bench", "launch", "--tasks", "30", "--mem", "16", "--json", "--trace", trace)
	var both []result
	if err := json.Unmarshal([]byte(out), &both); err != nil || code != 0 {
		t.Fatalf("bench launch: exit %d, %v\n%s\n%s", code, err, out, stderr)
	}
	if len(both) != 2 || both[0].MaxInFlight != 0 || both[1].MaxInFlight != 8 || both[0].Finished != 30 || both[1].Finished != 30 {
		t.Fatalf("default bench launch reported %+v; want a saturated run and one with 8 in flight, 30 tasks finished each", both)
	}
	// The trace: a header, then both runs' tasks, each finished.
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 61 || !strings.HasPrefix(lines[0], "run\ttask_id\t") {
		t.Fatalf("--trace wrote %d lines, want a header and 60 tasks:\n%s", len(lines), b)
	}
	runs := map[string]int{}
	for _, l := range lines[1:] {
		f := strings.Split(l, "\t")
		if len(f) != 10 || f[3] != "TASK_FINISHED" {
			t.Fatalf("--trace line %q: want 10 columns and TASK_FINISHED", l)
		}
		runs[f[0]]++
	}
	if runs["max_in_flight=0"] != 30 || runs["max_in_flight=8"] != 30 {
		t.Fatalf("--trace runs %v, want 30 tasks of each", runs)
	}
	_, stderr, code = runClient(t, master, "bench", "launch", "--tasks", "1", "--trace", filepath.Join(work, "no-such-dir", "trace.tsv"))
	if code != 2 || !strings.Contains(stderr, "--trace") || !strings.Contains(stderr, "no-such-dir") {
		t.Fatalf("--trace into a missing directory: exit %d, %q; want 2 and the path", code, stderr)
	}
	out, stderr, code = runClient(t, master, "bench", "launch", "--tasks", "20", "--mem", "16", "--max-in-flight", "4", "--json")
	var one result
	if err := json.Unmarshal([]byte(out), &one); err != nil || code != 0 || one.MaxInFlight != 4 || one.Finished != 20 {
		t.Fatalf("bench launch --max-in-flight 4: exit %d, %+v, %v\n%s", code, one, err, stderr)
	}
}
