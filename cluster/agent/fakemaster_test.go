package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

// waitTimeout bounds every wait in these tests; it only turns a hang into
// a failure and is never what a test asserts.
const waitTimeout = 20 * time.Second

// fakeMaster speaks the master's side of the internal agent protocol
// (cluster/api/agentwire.go) so the agent can be tested before the real
// master exists: it answers REGISTER with a REGISTERED stream, refuses the
// IDs it is told to with 409, records every STATUS_UPDATE and PONG, and
// acknowledges updates automatically or when the test says so.
type fakeMaster struct {
	t   *testing.T
	srv *httptest.Server

	registers chan *api.RegisterAgent
	pongs     chan uint64
	// stop closes at cleanup: the handlers' sends give up on it, since
	// httptest.Server.Close waits for every handler to return and one
	// stuck on a channel the test no longer reads would hang it.
	stop chan struct{}

	mu      sync.Mutex
	updates map[string]chan *api.StatusUpdate // by task ID, in arrival order
	nextID  int
	refuse  map[string]bool   // agent IDs answered with 409
	forbid  map[string]string // agent IDs answered with 403, and the answer
	// unavailable are agent IDs answered with 503, and the answer and
	// its Retry-After ("" for none).
	unavailable map[string][2]string
	autoAck     bool
	pingNanos   int64 // announced ping interval; 0 leaves the agent's default
	maxPings    int
	sendPings   bool
	jsonOnly    bool           // answer calls not in JSON with 415, as a master from before protobuf
	codecs      map[string]int // calls received by Content-Type
	current     *fakeSession
	sessions    chan *fakeSession
}

// fakeSession is one registration stream.
type fakeSession struct {
	agentID string
	events  chan *api.AgentEvent
	closed  chan struct{}
	once    sync.Once
}

func (s *fakeSession) close() { s.once.Do(func() { close(s.closed) }) }

func newFakeMaster(t *testing.T) *fakeMaster {
	fm := &fakeMaster{
		t:           t,
		registers:   make(chan *api.RegisterAgent, 100),
		updates:     map[string]chan *api.StatusUpdate{},
		pongs:       make(chan uint64, 1000),
		sessions:    make(chan *fakeSession, 100),
		refuse:      map[string]bool{},
		forbid:      map[string]string{},
		unavailable: map[string][2]string{},
		autoAck:     true,
		sendPings:   true,
		stop:        make(chan struct{}),
	}
	fm.srv = httptest.NewServer(http.HandlerFunc(fm.serve))
	t.Cleanup(func() {
		close(fm.stop)
		fm.mu.Lock()
		if fm.current != nil {
			fm.current.close()
		}
		fm.mu.Unlock()
		fm.srv.CloseClientConnections()
		fm.srv.Close()
	})
	return fm
}

func (fm *fakeMaster) addr() string { return strings.TrimPrefix(fm.srv.URL, "http://") }

func (fm *fakeMaster) set(f func(fm *fakeMaster)) {
	fm.mu.Lock()
	defer fm.mu.Unlock()
	f(fm)
}

func (fm *fakeMaster) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != api.AgentPath {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	// Calls come in either codec; the stream is always JSON (as from a
	// master that does not speak protobuf events), which the agent reads
	// by the stream's Content-Type.
	fm.mu.Lock()
	jsonOnly := fm.jsonOnly
	if fm.codecs == nil {
		fm.codecs = map[string]int{}
	}
	fm.codecs[r.Header.Get("Content-Type")]++
	fm.mu.Unlock()
	codec, err := api.RequestCodec(r.Header.Get("Content-Type"))
	if err == nil && jsonOnly && codec != api.JSON {
		err = fmt.Errorf("expecting 'Content-Type' of %s", api.MediaJSON)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(r.Body)
	var call api.AgentCall
	if err == nil {
		err = codec.UnmarshalAgent(body, &call)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch call.Type {
	case api.AgentRegister:
		fm.register(w, r, &call)
	case api.AgentStatusUpdate:
		for _, u := range call.Updates {
			if u == nil || u.Status == nil || len(u.Status.UUID) != 16 {
				http.Error(w, "STATUS_UPDATE needs statuses with 16-byte uuids", http.StatusBadRequest)
				return
			}
		}
		if len(call.Updates) == 0 {
			http.Error(w, "STATUS_UPDATE without updates", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		for _, u := range call.Updates {
			if !put(fm, fm.taskUpdates(u.Status.TaskID.Value), u) {
				return
			}
			fm.mu.Lock()
			ack := fm.autoAck
			fm.mu.Unlock()
			if ack {
				fm.ack(u)
			}
		}
	case api.AgentPong:
		w.WriteHeader(http.StatusAccepted)
		if call.Pong != nil {
			put(fm, fm.pongs, call.Pong.Seq)
		}
	default:
		http.Error(w, "unexpected call "+string(call.Type), http.StatusBadRequest)
	}
}

func (fm *fakeMaster) register(w http.ResponseWriter, r *http.Request, call *api.AgentCall) {
	reg := call.Register
	if reg == nil || reg.Info == nil {
		http.Error(w, "REGISTER without info", http.StatusBadRequest)
		return
	}
	if !put(fm, fm.registers, reg) {
		http.Error(w, "fake master stopped", http.StatusServiceUnavailable)
		return
	}
	fm.mu.Lock()
	id := reg.Info.GetID().GetValue()
	if id != "" && fm.refuse[id] {
		fm.mu.Unlock()
		http.Error(w, "agent "+id+" is not known to this master", http.StatusConflict)
		return
	}
	if why, ok := fm.forbid[id]; ok && id != "" {
		fm.mu.Unlock()
		http.Error(w, why, http.StatusForbidden)
		return
	}
	if u, ok := fm.unavailable[id]; ok && id != "" {
		fm.mu.Unlock()
		if u[1] != "" {
			w.Header().Set("Retry-After", u[1])
		}
		http.Error(w, u[0], http.StatusServiceUnavailable)
		return
	}
	if id == "" {
		fm.nextID++
		id = fmt.Sprintf("fake-agent-%d", fm.nextID)
	}
	s := &fakeSession{agentID: id, events: make(chan *api.AgentEvent, 100), closed: make(chan struct{})}
	if fm.current != nil {
		fm.current.close()
	}
	fm.current = s
	pingNanos, maxPings, sendPings := fm.pingNanos, fm.maxPings, fm.sendPings
	fm.mu.Unlock()
	if !put(fm, fm.sessions, s) {
		return
	}

	w.Header().Set("Content-Type", api.MediaJSON)
	w.WriteHeader(http.StatusOK)
	rw := api.NewRecordWriter(w)
	write := func(ev *api.AgentEvent) bool {
		b, err := json.Marshal(ev)
		if err != nil {
			fm.t.Errorf("fake master: encode %s: %v", ev.Type, err)
			return false
		}
		return rw.WriteRecord(b) == nil
	}
	if !write(&api.AgentEvent{Type: api.AgentRegistered, Registered: &api.AgentRegisteredInfo{
		AgentID: id, PingIntervalNanos: pingNanos, MaxPingTimeouts: maxPings, MasterID: "fake-master",
	}}) {
		return
	}
	var ticks <-chan time.Time
	if pingNanos > 0 && sendPings {
		tk := time.NewTicker(time.Duration(pingNanos))
		defer tk.Stop()
		ticks = tk.C
	}
	var seq uint64
	for {
		select {
		case ev := <-s.events:
			if !write(ev) {
				return
			}
		case <-ticks:
			seq++
			if !write(&api.AgentEvent{Type: api.AgentPing, Ping: &api.Ping{Seq: seq}}) {
				return
			}
		case <-s.closed:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// send puts an event on the current registration stream.
func (fm *fakeMaster) send(ev *api.AgentEvent) {
	fm.mu.Lock()
	s := fm.current
	fm.mu.Unlock()
	if s == nil {
		fm.t.Fatalf("fake master: no agent registered to send %s to", ev.Type)
	}
	s.send(fm, ev)
}

// ack relays the framework's acknowledgement of u.
func (fm *fakeMaster) ack(u *api.StatusUpdate) {
	fm.mu.Lock()
	s := fm.current
	fm.mu.Unlock()
	if s == nil {
		return
	}
	s.send(fm, &api.AgentEvent{Type: api.AgentAcknowledge, Acknowledge: &api.Acknowledge{
		FrameworkID: u.FrameworkID, TaskID: u.Status.TaskID.Value, UUID: u.Status.UUID,
	}})
}

// put sends v on ch for the test to read unless the fake master is
// stopping; it reports whether v was sent.
func put[T any](fm *fakeMaster, ch chan T, v T) bool {
	select {
	case ch <- v:
		return true
	case <-fm.stop:
		return false
	}
}

// send queues ev on the session's stream; an event for a stream that has
// ended, or sent while the fake master stops, is dropped as the stream
// would drop it.
func (s *fakeSession) send(fm *fakeMaster, ev *api.AgentEvent) {
	select {
	case s.events <- ev:
	case <-s.closed:
	case <-fm.stop:
	}
}

// dropStream ends the current registration stream, as a master failover would.
func (fm *fakeMaster) dropStream() {
	fm.mu.Lock()
	defer fm.mu.Unlock()
	if fm.current != nil {
		fm.current.close()
		fm.current = nil
	}
}

func (fm *fakeMaster) nextRegister(t *testing.T) *api.RegisterAgent {
	t.Helper()
	select {
	case r := <-fm.registers:
		return r
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for REGISTER")
	}
	return nil
}

func (fm *fakeMaster) nextSession(t *testing.T) *fakeSession {
	t.Helper()
	select {
	case s := <-fm.sessions:
		return s
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for a registration stream")
	}
	return nil
}

func (fm *fakeMaster) taskUpdates(taskID string) chan *api.StatusUpdate {
	fm.mu.Lock()
	defer fm.mu.Unlock()
	ch := fm.updates[taskID]
	if ch == nil {
		ch = make(chan *api.StatusUpdate, 1000)
		fm.updates[taskID] = ch
	}
	return ch
}

// nextUpdate returns the next STATUS_UPDATE the master received for task.
func (fm *fakeMaster) nextUpdate(t *testing.T, taskID string) *api.StatusUpdate {
	t.Helper()
	select {
	case u := <-fm.taskUpdates(taskID):
		return u
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for a status update of task %s", taskID)
	}
	return nil
}

// expectStates reads the task's next updates and checks their states.
func (fm *fakeMaster) expectStates(t *testing.T, taskID string, states ...mesos.TaskState) []*api.StatusUpdate {
	t.Helper()
	var got []*api.StatusUpdate
	for _, want := range states {
		u := fm.nextUpdate(t, taskID)
		got = append(got, u)
		if s := u.Status.GetState(); s != want {
			t.Fatalf("task %s: update %d is %s (%q), want %s", taskID, len(got), s, u.Status.GetMessage(), want)
		}
	}
	return got
}

// testLogger routes the agent's logs to t.Log until the test ends.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// testAgent is an agent running against a fake master.
type testAgent struct {
	*Agent
	cancel context.CancelFunc
	done   chan error
}

// stop cancels Run and waits for it to return.
func (ta *testAgent) stop(t *testing.T) {
	t.Helper()
	ta.cancel()
	select {
	case err := <-ta.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		ta.done <- nil // later stops return at once
	case <-time.After(waitTimeout):
		t.Fatal("agent did not stop")
	}
}

func testConfig(t *testing.T, fm *fakeMaster, workDir string) Config {
	if workDir == "" {
		workDir = t.TempDir()
	}
	return Config{
		MasterAddr:             fm.addr(),
		WorkDir:                workDir,
		Listen:                 "127.0.0.1:0",
		Hostname:               "agent.test",
		Resources:              "cpus:4;mem:4096;disk:8192;ports:[31000-31099]",
		Attributes:             "rack:r1",
		RegistrationBackoff:    10 * time.Millisecond,
		RegistrationBackoffMax: 100 * time.Millisecond,
		Logger:                 testLogger(t),
	}
}

func startAgent(t *testing.T, cfg Config) *testAgent {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ta := &testAgent{Agent: a, cancel: cancel, done: make(chan error, 1)}
	go func() { ta.done <- a.Run(ctx) }()
	t.Cleanup(func() { ta.stop(t) })
	return ta
}

// startRegistered starts an agent and waits until the fake master has its
// registration stream.
func startRegistered(t *testing.T, fm *fakeMaster, cfg Config) (*testAgent, *fakeSession) {
	t.Helper()
	ta := startAgent(t, cfg)
	fm.nextRegister(t)
	s := fm.nextSession(t)
	waitFor(t, "agent registered", func() bool { return ta.Registered() && ta.ID() == s.agentID })
	return ta, s
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const testFramework = "fw-1"

func frameworkInfo(caps ...mesos.FrameworkInfo_Capability_Type) *mesos.FrameworkInfo {
	fi := &mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: testFramework}, Name: "test-fw", Role: proto("analytics"), Checkpoint: proto(true)}
	for _, c := range caps {
		fi.Capabilities = append(fi.Capabilities, mesos.FrameworkInfo_Capability{Type: c})
	}
	return fi
}

func proto[T any](v T) *T { return &v }

// shellTask is a RUN_TASK of a shell command.
func shellTask(id, script string) *api.RunTask {
	return &api.RunTask{
		Framework: frameworkInfo(),
		Task: &mesos.TaskInfo{
			Name:   "task " + id,
			TaskID: mesos.TaskID{Value: id},
			Resources: []mesos.Resource{{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 0.5},
				AllocationInfo: &mesos.Resource_AllocationInfo{Role: proto("analytics")}}},
			Command: &mesos.CommandInfo{Value: proto(script)},
		},
	}
}

func run(fm *fakeMaster, rt *api.RunTask) {
	fm.send(&api.AgentEvent{Type: api.AgentRunTask, RunTask: rt})
}

func kill(fm *fakeMaster, taskID string, grace *time.Duration) {
	kt := &api.KillTask{FrameworkID: testFramework, TaskID: taskID}
	if grace != nil {
		kt.KillPolicy = &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: grace.Nanoseconds()}}
	}
	fm.send(&api.AgentEvent{Type: api.AgentKillTask, KillTask: kt})
}

// get fetches an agent endpoint.
func get(t *testing.T, a *Agent, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get("http://" + a.Addr() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, body
}

// getJSON fetches an endpoint that must answer 200 and decodes its JSON.
func getJSON(t *testing.T, a *Agent, path string, v any) {
	t.Helper()
	code, body := get(t, a, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: decode %q: %v", path, body, err)
	}
}

// liveInGroup scans /proc for live (non-zombie) processes of group pgid.
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
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" && f[0] != "X" {
			pids = append(pids, pid)
		}
	}
	return pids
}

func killPid(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

// expectAfterResends returns the task's next update in state want, letting
// through resends of earlier, unacknowledged TASK_STARTING/TASK_RUNNING
// updates (an agent restarted right after sending them resends them).
func (fm *fakeMaster) expectAfterResends(t *testing.T, taskID string, want mesos.TaskState) *api.StatusUpdate {
	t.Helper()
	for {
		u := fm.nextUpdate(t, taskID)
		switch s := u.Status.GetState(); s {
		case want:
			return u
		case mesos.TASK_STARTING, mesos.TASK_RUNNING:
		default:
			t.Fatalf("task %s: got %s (%q), want %s", taskID, s, u.Status.GetMessage(), want)
		}
	}
}
