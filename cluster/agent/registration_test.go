package agent

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

func TestAgentIDIsCheckpointedAndReusedOnRestart(t *testing.T) {
	fm := newFakeMaster(t)
	workDir := t.TempDir()
	cfg := testConfig(t, fm, workDir)
	ta := startAgent(t, cfg)
	reg := fm.nextRegister(t)
	if reg.Info.ID != nil {
		t.Fatalf("a new agent registered with ID %q", reg.Info.ID.Value)
	}
	if reg.Info.Hostname != "agent.test" || reg.Version != api.Version ||
		int(reg.Info.GetPort()) != ta.ln.Addr().(*net.TCPAddr).Port ||
		api.ScalarSum(reg.Info.Resources, "cpus") != 4 || len(reg.Info.Attributes) != 1 || reg.Info.Attributes[0].Name != "rack" {
		t.Errorf("REGISTER info = %+v, version %q", reg.Info, reg.Version)
	}
	if len(reg.Warnings) == 0 || !strings.Contains(reg.Warnings[0], "isolation disabled") {
		t.Errorf("REGISTER warnings = %q, want the plain-process warning", reg.Warnings)
	}
	s := fm.nextSession(t)
	waitFor(t, "registered", func() bool { return ta.ID() == s.agentID })
	b, err := os.ReadFile(filepath.Join(workDir, "meta", "agent_id"))
	if err != nil || strings.TrimSpace(string(b)) != s.agentID {
		t.Fatalf("meta/agent_id = %q, %v; want %q", b, err, s.agentID)
	}
	ta.stop(t)

	again := startAgent(t, cfg)
	if id := fm.nextRegister(t).Info.GetID().GetValue(); id != s.agentID {
		t.Fatalf("restarted agent registered as %q, want %q", id, s.agentID)
	}
	fm.nextSession(t)
	waitFor(t, "re-registered", func() bool { return again.Registered() })
	if again.ID() != s.agentID {
		t.Fatalf("ID after restart = %q", again.ID())
	}
}

// Against a master that takes only JSON (415 to protobuf, as one from
// before protobuf), the agent registers in JSON and stays with it.
func TestAgentFallsBackToJSONForAMasterWithoutProtobuf(t *testing.T) {
	fm := newFakeMaster(t)
	fm.set(func(fm *fakeMaster) {
		fm.jsonOnly = true
		fm.sendPings = true
		fm.pingNanos = int64(50 * time.Millisecond)
	})
	startRegistered(t, fm, testConfig(t, fm, t.TempDir()))
	select {
	case <-fm.pongs:
	case <-time.After(waitTimeout):
		t.Fatal("no PONG from the agent")
	}
	fm.mu.Lock()
	defer fm.mu.Unlock()
	if fm.codecs[api.MediaProtobuf] != 1 || fm.codecs[api.MediaJSON] < 2 {
		t.Fatalf("calls by Content-Type: %v; want one protobuf REGISTER refused, then JSON", fm.codecs)
	}
}

// The agent speaks protobuf to a master that takes it.
func TestAgentSpeaksProtobuf(t *testing.T) {
	fm := newFakeMaster(t)
	startRegistered(t, fm, testConfig(t, fm, t.TempDir()))
	fm.mu.Lock()
	defer fm.mu.Unlock()
	if fm.codecs[api.MediaProtobuf] == 0 || fm.codecs[api.MediaJSON] != 0 {
		t.Fatalf("calls by Content-Type: %v; want protobuf only", fm.codecs)
	}
}

func TestRefusedAgentIDMakesTheAgentRegisterAfresh(t *testing.T) {
	fm := newFakeMaster(t)
	workDir := t.TempDir()
	ta, first := startRegistered(t, fm, testConfig(t, fm, workDir))
	run(fm, shellTask("doomed", "sleep 100"))
	pgid := runningPid(t, fm, "doomed")

	// The master forgets the agent and refuses its ID.
	fm.set(func(fm *fakeMaster) { fm.refuse[first.agentID] = true })
	fm.dropStream()
	if id := fm.nextRegister(t).Info.GetID().GetValue(); id != first.agentID {
		t.Fatalf("re-registered as %q, want %q", id, first.agentID)
	}
	fresh := fm.nextRegister(t)
	if fresh.Info.ID != nil || len(fresh.Tasks) != 0 {
		t.Fatalf("after 409 the agent registered with ID %v and %d tasks; want a fresh registration", fresh.Info.ID, len(fresh.Tasks))
	}
	s := fm.nextSession(t)
	if s.agentID == first.agentID {
		t.Fatalf("fake master reused ID %s", s.agentID)
	}
	waitFor(t, "new ID", func() bool { return ta.ID() == s.agentID })
	if left := liveInGroup(t, pgid); len(left) != 0 {
		t.Fatalf("task of the refused agent still runs: %v", left)
	}
	b, err := os.ReadFile(filepath.Join(workDir, "meta", "agent_id"))
	if err != nil || strings.TrimSpace(string(b)) != s.agentID {
		t.Fatalf("meta/agent_id = %q, %v; want %q", b, err, s.agentID)
	}
	if _, err := os.Stat(filepath.Join(workDir, "meta", "slaves", first.agentID)); !os.IsNotExist(err) {
		t.Fatalf("checkpoint of the refused ID is still there: %v", err)
	}
}

// A master that forbids the registration (403: --acls, or the agent's ID
// belongs to another principal) is not a refused ID: the agent keeps its
// ID and checkpoint, retries with backoff, and logs the master's answer
// once, and again only when the answer changes.
func TestForbiddenRegistrationKeepsTheIDAndLogsOncePerAnswer(t *testing.T) {
	fm := newFakeMaster(t)
	workDir := t.TempDir()
	logs := &lockedBuffer{}
	cfg := testConfig(t, fm, workDir)
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ta, first := startRegistered(t, fm, cfg)

	const one, two = "principal 'x' may not: first answer", "principal 'x' may not: second answer"
	refusals := func(reason string) int {
		n := 0
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "master forbids the registration") && strings.Contains(line, reason) {
				n++
			}
		}
		return n
	}
	// forbid makes the fake master answer 403 with reason from now on,
	// and forgets the REGISTERs it had before: each one read after it is
	// answered with reason.
	forbid := func(reason string) {
		fm.set(func(fm *fakeMaster) { fm.forbid[first.agentID] = reason })
		for len(fm.registers) > 0 {
			<-fm.registers
		}
	}
	forbidden := func(times int) {
		t.Helper()
		for i := 0; i < times; i++ {
			if id := fm.nextRegister(t).Info.GetID().GetValue(); id != first.agentID {
				t.Fatalf("after a 403 the agent registered as %q, want its ID %q kept", id, first.agentID)
			}
		}
	}
	// The answer is set before the stream drops: the agent, registering
	// again at once, must meet the 403 and not be let back in.
	forbid(one)
	fm.dropStream()
	forbidden(4) // the first REGISTER, then three retries
	forbid(two)
	forbidden(3) // three refused with the second answer
	fm.set(func(fm *fakeMaster) { delete(fm.forbid, first.agentID) })
	s := fm.nextSession(t)
	if s.agentID != first.agentID {
		t.Fatalf("once let in, the agent registered as %q, want %q", s.agentID, first.agentID)
	}
	waitFor(t, "registered under its ID", func() bool { return ta.Registered() && ta.ID() == first.agentID })
	if n := refusals(one); n != 1 {
		t.Fatalf("the first 403 answer is logged %d times, want once:\n%s", n, logs.String())
	}
	if n := refusals(two); n != 1 {
		t.Fatalf("the changed 403 answer is logged %d times, want once:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "forgot the agent ID") {
		t.Fatalf("a 403 made the agent forget its ID:\n%s", logs.String())
	}
	b, err := os.ReadFile(filepath.Join(workDir, "meta", "agent_id"))
	if err != nil || strings.TrimSpace(string(b)) != first.agentID {
		t.Fatalf("meta/agent_id = %q, %v; want %q kept", b, err, first.agentID)
	}
}

// A master that cannot take the registration now (503: its lookup of
// the agent's hostname failed) is retried like a 403: the agent keeps its
// ID, logs each answer once (not a warning per retry), and waits at least
// the answer's Retry-After before the next try.
func TestUnavailableRegistrationKeepsTheIDAndLogsOncePerAnswer(t *testing.T) {
	fm := newFakeMaster(t)
	workDir := t.TempDir()
	logs := &lockedBuffer{}
	cfg := testConfig(t, fm, workDir)
	cfg.RegistrationBackoffMax = 2 * time.Second // above the Retry-After
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ta, first := startRegistered(t, fm, cfg)

	const one, two = "agent.test could not be looked up: i/o timeout", "agent.test could not be looked up: server misbehaving"
	lines := func(what string) []string {
		var out []string
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, what) {
				out = append(out, line)
			}
		}
		return out
	}
	answer := func(reason, retryAfter string) {
		fm.set(func(fm *fakeMaster) { fm.unavailable[first.agentID] = [2]string{reason, retryAfter} })
		for len(fm.registers) > 0 {
			<-fm.registers
		}
	}
	answered := func(times int) {
		t.Helper()
		for i := 0; i < times; i++ {
			if id := fm.nextRegister(t).Info.GetID().GetValue(); id != first.agentID {
				t.Fatalf("after a 503 the agent registered as %q, want its ID %q kept", id, first.agentID)
			}
		}
	}
	answer(one, "1")
	fm.dropStream()
	answered(3)
	answer(two, "")
	answered(3)
	fm.set(func(fm *fakeMaster) { delete(fm.unavailable, first.agentID) })
	if s := fm.nextSession(t); s.agentID != first.agentID {
		t.Fatalf("once answered, the agent registered as %q, want %q", s.agentID, first.agentID)
	}
	waitFor(t, "registered under its ID", func() bool { return ta.Registered() && ta.ID() == first.agentID })

	ones, twos := lines(one), lines(two)
	if len(ones) != 1 || len(twos) != 1 {
		t.Fatalf("the 503 answers are logged %d and %d times, want each once:\n%s", len(ones), len(twos), logs.String())
	}
	if !strings.Contains(ones[0], "level=WARN") || !strings.Contains(ones[0], "503 Service Unavailable") || !strings.Contains(ones[0], "in=1s") {
		t.Errorf("the first 503's line %q; want a warning naming the 503 and the next try in 1s, its Retry-After", ones[0])
	}
	if n := len(lines("disconnected from master")); n > 1 {
		t.Errorf("%d lines say the agent was disconnected, want at most the stream's end, not one per 503:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "forgot the agent ID") {
		t.Fatalf("a 503 made the agent forget its ID:\n%s", logs.String())
	}
}

// Retry-After in seconds or as an HTTP date; nothing usable is 0.
func TestRegistrationRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0}, {"5", 5 * time.Second}, {" 2 ", 2 * time.Second}, {"0", 0}, {"-3", 0}, {"soon", 0},
		{"99999999999", 24 * time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		if got := retryAfter(tc.v, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

// lockedBuffer is a log destination the test reads while the agent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestPingsAreAnsweredWithPongs(t *testing.T) {
	fm := newFakeMaster(t)
	fm.set(func(fm *fakeMaster) { fm.pingNanos, fm.maxPings = int64(10*time.Millisecond), 100 })
	startRegistered(t, fm, testConfig(t, fm, ""))
	// Each PING is answered with its own sequence number. The PONGs go
	// out concurrently (one slow call holds up no other), so they may
	// arrive out of order.
	seen := map[uint64]bool{}
	deadline := time.After(waitTimeout)
	for !seen[1] || !seen[2] || !seen[3] {
		select {
		case seq := <-fm.pongs:
			if seq == 0 || seen[seq] {
				t.Fatalf("PONG seq %d (seen %v); want each PING's own sequence number once", seq, seen)
			}
			seen[seq] = true
		case <-deadline:
			t.Fatalf("PONGs for PINGs 1-3 not all received: %v", seen)
		}
	}
}

func TestMissingPingsMakeTheAgentReregister(t *testing.T) {
	fm := newFakeMaster(t)
	// The master announces 20ms × 2 but never pings.
	fm.set(func(fm *fakeMaster) { fm.pingNanos, fm.maxPings, fm.sendPings = int64(20*time.Millisecond), 2, false })
	_, first := startRegistered(t, fm, testConfig(t, fm, ""))
	reg := fm.nextRegister(t)
	if reg.Info.GetID().GetValue() != first.agentID {
		t.Fatalf("re-registered as %q, want %q", reg.Info.GetID().GetValue(), first.agentID)
	}
}

func TestAgentKeepsTryingUntilTheMasterAnswers(t *testing.T) {
	// A "master" that hangs up on the first two attempts, then serves.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := make(chan struct{})
	go func() {
		defer close(refused)
		for i := 0; i < 2; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	fm := newFakeMaster(t)
	cfg := testConfig(t, fm, "")
	cfg.MasterAddr = ln.Addr().String()
	ta := startAgent(t, cfg)
	select {
	case <-refused:
	case <-time.After(waitTimeout):
		t.Fatal("the agent did not retry its registration")
	}
	if ta.Registered() {
		t.Fatal("registered with a master that hung up")
	}
	late := httptest.NewUnstartedServer(http.HandlerFunc(fm.serve))
	late.Listener.Close()
	late.Listener = ln
	late.Start()
	t.Cleanup(func() { late.CloseClientConnections(); late.Close() })
	s := fm.nextSession(t)
	waitFor(t, "registered once the master answers", func() bool { return ta.ID() == s.agentID })
}

func TestNewRejectsBadConfiguration(t *testing.T) {
	dir := t.TempDir()
	for name, cfg := range map[string]Config{
		"no master":       {WorkDir: dir, Listen: "127.0.0.1:0"},
		"zk without path": {MasterAddr: "zk://h1:2181", WorkDir: dir, Listen: "127.0.0.1:0"},
		"file master":     {MasterAddr: "file:///etc/master", WorkDir: dir, Listen: "127.0.0.1:0"},
		"no work dir":     {MasterAddr: "127.0.0.1:5050", Listen: "127.0.0.1:0"},
		"bad resources":   {MasterAddr: "127.0.0.1:5050", WorkDir: dir, Listen: "127.0.0.1:0", Resources: "cpus:lots"},
		"bad attributes":  {MasterAddr: "127.0.0.1:5050", WorkDir: dir, Listen: "127.0.0.1:0", Attributes: "rack"},
	} {
		if a, err := New(cfg); err == nil {
			a.ln.Close()
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestReconcileResendsTheLatestState(t *testing.T) {
	fm := newFakeMaster(t)
	startRegistered(t, fm, testConfig(t, fm, ""))
	run(fm, shellTask("rec", "sleep 100"))
	ups := fm.expectStates(t, "rec", mesos.TASK_STARTING, mesos.TASK_RUNNING)
	fm.send(&api.AgentEvent{Type: api.AgentReconcileTasks, ReconcileTasks: &api.ReconcileTasks{FrameworkID: testFramework}})
	u := fm.nextUpdate(t, "rec")
	if u.Status.GetState() != mesos.TASK_RUNNING || u.LatestState == nil || *u.LatestState != mesos.TASK_RUNNING {
		t.Fatalf("reconciliation sent %s (latest %v), want TASK_RUNNING", u.Status.GetState(), u.LatestState)
	}
	if string(u.Status.UUID) != string(ups[1].Status.UUID) {
		t.Errorf("reconciliation invented a new update instead of resending the latest")
	}
}
