package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/containerizer"
	"github.com/agora-cluster/agora/cluster/containerizer/docker"
	"github.com/agora-cluster/agora/cluster/tlsconf"
	sdk "github.com/agora-cluster/agora/frameworks/executor"
)

// These tests kill a real agent process (this test binary in the "agent"
// role) with SIGKILL and start it again on the same work directory and
// port, while a custom executor built on frameworks/executor (this binary
// in the "sdk-executor" role) keeps running its tasks.

// agentProcessConfig is what the "agent" role reads from AGORA_TEST_AGENT.
type agentProcessConfig struct {
	Master, WorkDir, Listen, Hostname string
	ReregistrationTimeout             time.Duration
	Recover                           string
	// Docker gives the agent a Docker containerizer
	// (executor_docker_test.go).
	Docker bool
	// NativeRoot, if set, gives the agent the native containerizer on
	// this cgroup root (executor_default_recover_test.go).
	NativeRoot string
	// CrashAt, if set, makes the agent kill itself with SIGKILL at this
	// agent.CrashPoint of the launch whose checkpoint directory contains
	// CrashMatch (launch_crash_test.go).
	CrashAt, CrashMatch string
	// TLSCert, TLSKey and TLSCA, if set, make the agent serve only TLS
	// with them; ExecutorKey signs its executors' tokens, which it then
	// requires (executor_docker_test.go).
	TLSCert, TLSKey, TLSCA string
	ExecutorKey            []byte
}

// runAgentProcess is the "agent" role: one agent with the Process
// containerizer until it is killed.
func runAgentProcess() int {
	var pc agentProcessConfig
	if err := json.Unmarshal([]byte(os.Getenv("AGORA_TEST_AGENT")), &pc); err != nil {
		fmt.Fprintln(os.Stderr, "AGORA_TEST_AGENT:", err)
		return 2
	}
	cfg := agent.Config{
		MasterAddr: pc.Master, WorkDir: pc.WorkDir, Listen: pc.Listen, Hostname: pc.Hostname,
		Resources:                     "cpus:4;mem:4096;disk:1000",
		RegistrationBackoff:           50 * time.Millisecond,
		StatusUpdateRetry:             500 * time.Millisecond,
		ExecutorReregistrationTimeout: pc.ReregistrationTimeout,
		Recover:                       pc.Recover,
		Logger:                        slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	if pc.NativeRoot != "" {
		n, err := containerizer.NewNative(containerizer.NativeConfig{Root: pc.NativeRoot, Logger: cfg.Logger})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		cfg.Containerizer = n
	}
	if pc.Docker {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		d, err := docker.New(ctx, docker.Config{Logger: cfg.Logger})
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		cfg.Docker = d
	}
	if pc.TLSCert != "" {
		serverTLS, err := (&tlsconf.Flags{CertFile: pc.TLSCert, KeyFile: pc.TLSKey}).Server()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		cfg.TLS, cfg.TLSCAFile = serverTLS, pc.TLSCA
	}
	if len(pc.ExecutorKey) > 0 {
		cfg.ExecutorSecretKey, cfg.AuthenticateHTTPExecutors = pc.ExecutorKey, true
	}
	if pc.CrashAt != "" {
		f, _ := agent.InjectDiskFaults(pc.WorkDir)
		f.CrashAt(agent.CrashPoint(pc.CrashAt), pc.CrashMatch, func() {
			fmt.Fprintln(os.Stderr, "killing the agent at", pc.CrashAt, "of", pc.CrashMatch)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		})
	}
	a, err := agent.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	// The line startAgentProcess waits for: Listen may give port 0.
	fmt.Fprintln(os.Stderr, "agent listening on", a.Addr())
	if err := a.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// runSDKExecutor is the "sdk-executor" role: a task's data is the path of
// a marker file; the task reports TASK_RUNNING, waits for the marker, then
// reports TASK_FINISHED and leaves <AGORA_TEST_DONE_DIR>/<task ID> behind,
// so a test knows the executor has sent (or tried to send) the update.
func runSDKExecutor() int {
	cfg, err := sdk.FromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	doneDir := os.Getenv("AGORA_TEST_DONE_DIR")
	var d *sdk.Driver
	d, err = sdk.New(cfg, sdk.Funcs{
		OnLaunch: func(ctx context.Context, task mesos.TaskInfo) {
			_ = d.SendStatus(ctx, task.TaskID, mesos.TASK_RUNNING, "")
			if mb, ok := strings.CutPrefix(string(task.Data), "alloc:"); ok {
				// A task run inside the executor that takes (and touches)
				// mb megabytes.
				n, _ := strconv.Atoi(mb)
				go func() {
					for i := 0; i < n; i++ {
						b := make([]byte, 1<<20)
						for j := range b {
							b[j] = byte(j)
						}
						hog = append(hog, b)
					}
				}()
				return
			}
			go func() {
				for {
					if _, err := os.Stat(string(task.Data)); err == nil {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				_ = d.SendStatus(context.Background(), task.TaskID, mesos.TASK_FINISHED, "marker found")
				_ = os.WriteFile(filepath.Join(doneDir, task.TaskID.Value), nil, 0o644)
			}()
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := d.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// hog holds what "alloc:" tasks allocate.
var hog [][]byte

// agentProcess is a running "agent" role process.
type agentProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
	addr string // the address it listens on
}

// errPortTaken is an agent process that could not bind its port.
var errPortTaken = errors.New("port already in use")

// startAgentProcess starts the "agent" role with pc and waits for the
// address it bound: pc.Listen, or a free port when that gives port 0 (the
// first start). A restart gives the port the first run bound, where its
// executors reconnect; another process on this machine may have bound it
// since the kill, usually for a moment, so a start refused with "address
// already in use" is tried again, at most 5 times.
func startAgentProcess(t *testing.T, pc agentProcessConfig, logName string) *agentProcess {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p, err := tryAgentProcess(t, pc, logName)
		switch {
		case err == nil:
			return p
		case attempt == 5 || !errors.Is(err, errPortTaken):
			t.Fatalf("agent process on %s (attempt %d): %v", pc.Listen, attempt, err)
		}
		t.Logf("agent process on %s (attempt %d): %v; trying again", pc.Listen, attempt, err)
		time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
	}
}

var agentListening = regexp.MustCompile(`(?m)^agent listening on (\S+)$`)

func tryAgentProcess(t *testing.T, pc agentProcessConfig, logName string) (*agentProcess, error) {
	t.Helper()
	b, _ := json.Marshal(pc)
	logPath := filepath.Join(pc.WorkDir+"-logs", logName)
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(testBinary(t))
	cmd.Env = append(os.Environ(), "AGORA_TEST_ROLE=agent", "AGORA_TEST_AGENT="+string(b))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &agentProcess{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	for deadline := time.Now().Add(wait); ; time.Sleep(20 * time.Millisecond) {
		exited := false
		select {
		case <-p.done:
			exited = true // all its output is in the log now
		default:
		}
		out, _ := os.ReadFile(logPath)
		if m := agentListening.FindSubmatch(out); m != nil {
			p.addr = string(m[1])
			return p, nil
		}
		switch {
		case exited && bytes.Contains(out, []byte("address already in use")):
			return nil, fmt.Errorf("%w: %s", errPortTaken, bytes.TrimSpace(out))
		case exited:
			return nil, fmt.Errorf("exited (%v) before it listened: %s", cmd.ProcessState, bytes.TrimSpace(out))
		case time.Now().After(deadline):
			return nil, fmt.Errorf("not listening after %s", wait)
		}
	}
}

// kill is kill -9, and waits for the process to be gone.
func (p *agentProcess) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// offerFrom waits for an offer of the agent with the given hostname (the
// cluster's own agent offers too; its offers are left alone).
func (s *sched) offerFrom(hostname string) mesos.Offer {
	s.t.Helper()
	for {
		for _, o := range s.next(scheduler.Event_OFFERS).Offers.Offers {
			if o.Hostname == hostname {
				return o
			}
		}
	}
}

// recoveryFixture is a cluster whose master also serves an agent process
// the test kills and restarts, and a checkpointing framework.
type recoveryFixture struct {
	c        *clustertest.Cluster
	pc       agentProcessConfig
	agent    *agentProcess
	s        *sched
	markers  string // the tasks' marker files (not under /tmp: executors may get their own)
	doneDir  string
	executor mesos.ExecutorInfo
}

func newRecoveryFixture(t *testing.T, framework string, adjust ...func(*agentProcessConfig)) *recoveryFixture {
	t.Helper()
	// The cluster's own agent is too small to be offered to anyone here.
	c := clustertest.Start(t, clustertest.Options{AgentResources: "cpus:0.01;mem:1;disk:1"})
	t.Cleanup(c.Stop)
	dir := t.TempDir()
	markers, err := os.MkdirTemp("/var/tmp", "agora-reattach-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(markers) })
	f := &recoveryFixture{c: c, markers: markers, doneDir: filepath.Join(markers, "done")}
	if err := os.MkdirAll(f.doneDir, 0o755); err != nil {
		t.Fatal(err)
	}
	f.pc = agentProcessConfig{Master: c.MasterAddr, WorkDir: filepath.Join(dir, "agent"), Listen: "127.0.0.1:0",
		Hostname: "reattach", ReregistrationTimeout: 10 * time.Second}
	if err := os.MkdirAll(f.pc.WorkDir+"-logs", 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("AGORA_TEST_LOGS") != "" {
			logs, _ := filepath.Glob(filepath.Join(f.pc.WorkDir+"-logs", "*"))
			sandboxes, _ := filepath.Glob(filepath.Join(f.pc.WorkDir, "slaves", "*", "frameworks", "*", "executors", "*", "runs", "*-*", "stderr"))
			for _, l := range append(logs, sandboxes...) {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", l, b)
			}
		}
	})
	for _, fn := range adjust {
		fn(&f.pc)
	}
	f.agent = startAgentProcess(t, f.pc, "agent-1.log")
	f.pc.Listen = f.agent.addr // restarts come back on the port it bound
	f.s = subscribe(t, c.MasterURL, framework)
	self := testBinary(t)
	f.executor = mesos.ExecutorInfo{Type: mesos.ExecutorInfo_CUSTOM, ExecutorID: mesos.ExecutorID{Value: "sdk"},
		Command: &mesos.CommandInfo{Value: &self, Shell: new(bool), Arguments: []string{"sdk-executor"},
			Environment: &mesos.Environment{Variables: []mesos.Environment_Variable{
				{Name: "AGORA_TEST_ROLE", Value: strp("sdk-executor")},
				{Name: "AGORA_TEST_DONE_DIR", Value: strp(f.doneDir)},
			}}},
		Resources: resources(t, "cpus:0.1;mem:32")}
	return f
}

// launch starts tasks on the executor; task i waits for markers[i].
func (f *recoveryFixture) launch(t *testing.T, ids, markers []string) {
	t.Helper()
	o := f.s.offerFrom(f.pc.Hostname)
	var tasks []mesos.TaskInfo
	for i, id := range ids {
		ex := f.executor
		tasks = append(tasks, mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: o.AgentID, Executor: &ex,
			Data: []byte(markers[i]), Resources: resources(t, "cpus:0.01;mem:8")})
	}
	f.s.launch(o, tasks...)
}

// killExecutorAtCleanup kills the executor process (pid from a status
// update) when the test ends: it would otherwise wait for its agent for
// the whole recovery timeout.
func killExecutorAtCleanup(t *testing.T, pid uint32) {
	t.Cleanup(func() {
		if pid > 0 {
			_ = syscall.Kill(-int(pid), syscall.SIGKILL)
			_ = syscall.Kill(int(pid), syscall.SIGKILL)
		}
	})
}

// TestCustomExecutorReattachesAfterAgentKill9: a checkpointing framework's
// custom executor runs 10 tasks; the agent process is killed with SIGKILL;
// half the tasks finish while no agent runs (the executor keeps their
// TASK_FINISHED unacknowledged), the agent starts again on its work_dir
// and port, the executor re-subscribes with those updates, and the
// scheduler sees every task reach TASK_FINISHED, reported by the same
// executor process, with no task failed or lost and no second, different
// terminal update.
func TestCustomExecutorReattachesAfterAgentKill9(t *testing.T) {
	const n = 10
	f := newRecoveryFixture(t, `{"user":"root","name":"reattach","checkpoint":true,"failover_timeout":3600}`)
	early, late := filepath.Join(f.markers, "early"), filepath.Join(f.markers, "late")
	var ids, markers []string
	for i := 0; i < n; i++ {
		ids = append(ids, fmt.Sprintf("task-%02d", i))
		markers = append(markers, map[bool]string{true: early, false: late}[i%2 == 0])
	}
	f.launch(t, ids, markers)
	var pid uint32
	for _, id := range ids {
		st := f.s.waitState(id, mesos.TASK_RUNNING)
		pid = st.GetContainerStatus().GetExecutorPID()
	}
	killExecutorAtCleanup(t, pid)

	f.agent.kill()
	if err := os.WriteFile(early, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The early tasks finish while no agent runs.
	deadline := time.Now().Add(wait)
	for i := 0; i < n; i += 2 {
		for {
			if _, err := os.Stat(filepath.Join(f.doneDir, ids[i])); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %s did not finish while the agent was down", ids[i])
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if syscall.Kill(int(pid), 0) != nil {
		t.Fatal("the executor did not outlive its agent")
	}

	f.agent = startAgentProcess(t, f.pc, "agent-2.log")
	if err := os.WriteFile(late, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		f.s.waitTerminal(id)
	}
	for _, id := range ids {
		var finished []byte
		for _, st := range f.s.statuses(id) {
			state := st.GetState()
			if state != mesos.TASK_RUNNING && state != mesos.TASK_FINISHED {
				t.Errorf("task %s: %v (%s) in %s", id, state, st.GetMessage(), describe(f.s.statuses(id)))
				continue
			}
			if got := st.GetContainerStatus().GetExecutorPID(); got != pid {
				t.Errorf("task %s: %v reported by executor pid %d, want %d", id, state, got, pid)
			}
			if state == mesos.TASK_FINISHED {
				// At least once: a TASK_FINISHED may come again, but only
				// as the same update (same UUID).
				if finished != nil && string(finished) != string(st.UUID) {
					t.Errorf("task %s: two different TASK_FINISHED updates: %s", id, describe(f.s.statuses(id)))
				}
				finished = st.UUID
			} else if finished != nil {
				t.Errorf("task %s: TASK_RUNNING after TASK_FINISHED: %s", id, describe(f.s.statuses(id)))
			}
		}
		if finished == nil {
			t.Errorf("task %s never reached TASK_FINISHED: %s", id, describe(f.s.statuses(id)))
		}
	}
}

// TestExecutorThatDoesNotReregisterIsDestroyed: an executor that does not
// re-subscribe within --executor_reregistration_timeout of the agent's
// restart (here: stopped with SIGSTOP) is destroyed, and its running task
// is reported gone (TASK_LOST to a framework that is not partition-aware)
// with REASON_EXECUTOR_REREGISTRATION_TIMEOUT.
func TestExecutorThatDoesNotReregisterIsDestroyed(t *testing.T) {
	f := newRecoveryFixture(t, `{"user":"root","name":"hung","checkpoint":true,"failover_timeout":3600}`)
	f.launch(t, []string{"hung"}, []string{filepath.Join(f.markers, "never")})
	running := f.s.waitState("hung", mesos.TASK_RUNNING)
	pid := running.GetContainerStatus().GetExecutorPID()
	killExecutorAtCleanup(t, pid)

	f.agent.kill()
	if err := syscall.Kill(int(pid), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	f.pc.ReregistrationTimeout = time.Second
	f.agent = startAgentProcess(t, f.pc, "agent-2.log")
	st := f.s.waitTerminal("hung")
	if st.GetState() != mesos.TASK_LOST || st.GetReason() != mesos.REASON_EXECUTOR_REREGISTRATION_TIMEOUT || st.GetSource() != mesos.SOURCE_AGENT {
		t.Fatalf("hung executor's task: %s", describe(f.s.statuses("hung")))
	}
	deadline := time.Now().Add(wait)
	for !processGone(int(pid)) {
		if time.Now().After(deadline) {
			t.Fatal("the executor that did not re-subscribe still runs")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processGone reports whether pid has ended (or is a zombie).
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ')' {
			return len(s) > i+2 && (s[i+2] == 'Z' || s[i+2] == 'X')
		}
	}
	return false
}

// TestNonCheckpointingFrameworksExecutorIsDestroyedOnRestart: the executor
// of a framework without checkpointing does not survive an agent restart;
// here it cannot exit by itself (SIGSTOP), so the restarted agent destroys
// it, and the master reports its task lost.
func TestNonCheckpointingFrameworksExecutorIsDestroyedOnRestart(t *testing.T) {
	f := newRecoveryFixture(t, `{"user":"root","name":"transient","checkpoint":false}`)
	f.launch(t, []string{"transient"}, []string{filepath.Join(f.markers, "never")})
	running := f.s.waitState("transient", mesos.TASK_RUNNING)
	pid := running.GetContainerStatus().GetExecutorPID()
	killExecutorAtCleanup(t, pid)
	if err := syscall.Kill(int(pid), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	f.agent.kill()
	f.agent = startAgentProcess(t, f.pc, "agent-2.log")
	deadline := time.Now().Add(wait)
	for !processGone(int(pid)) {
		if time.Now().After(deadline) {
			t.Fatal("the executor of a framework that does not checkpoint survived the agent's restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := f.s.waitTerminal("transient"); st.GetState() != mesos.TASK_LOST {
		t.Fatalf("task of the destroyed executor: %s", describe(f.s.statuses("transient")))
	}
}

// TestRecoverCleanupDestroysExecutorsAndExits: an agent started with
// --recover=cleanup destroys the live executors of the previous agent
// (even a checkpointing framework's), removes its checkpoint and exits.
func TestRecoverCleanupDestroysExecutorsAndExits(t *testing.T) {
	f := newRecoveryFixture(t, `{"user":"root","name":"cleanup","checkpoint":true,"failover_timeout":3600}`)
	f.launch(t, []string{"doomed"}, []string{filepath.Join(f.markers, "never")})
	running := f.s.waitState("doomed", mesos.TASK_RUNNING)
	pid := running.GetContainerStatus().GetExecutorPID()
	killExecutorAtCleanup(t, pid)
	f.agent.kill()

	f.pc.Recover = agent.RecoverCleanup
	p := startAgentProcess(t, f.pc, "agent-cleanup.log")
	select {
	case <-p.done:
	case <-time.After(wait):
		t.Fatal("the agent did not exit after --recover=cleanup")
	}
	if !p.cmd.ProcessState.Success() {
		t.Fatalf("agent with --recover=cleanup: %v", p.cmd.ProcessState)
	}
	if !processGone(int(pid)) {
		t.Error("the executor survived --recover=cleanup")
	}
	if _, err := os.Stat(filepath.Join(f.pc.WorkDir, "meta", "agent_id")); !os.IsNotExist(err) {
		t.Errorf("checkpointed agent ID after --recover=cleanup: %v", err)
	}
}
