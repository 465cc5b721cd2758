package agentsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/registry"
)

// testMaster is an in-process master on a fixed address whose registry
// outlives it, so that it can be restarted as the same master would be.
type testMaster struct {
	t    *testing.T
	addr string
	reg  registry.Registry
	stop func()
	// agentConns counts the connections accepted from the agents'
	// source addresses (127.0.0.2 and up; the test's own calls come
	// from 127.0.0.1).
	agentConns atomic.Int64
}

func newTestMaster(t *testing.T) *testMaster {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tm := &testMaster{t: t, addr: ln.Addr().String(), reg: registry.NewMemory()}
	tm.start(ln)
	t.Cleanup(func() { tm.stop() })
	return tm
}

func (tm *testMaster) start(ln net.Listener) {
	port := ln.Addr().(*net.TCPAddr).Port
	m, err := master.New(master.Config{Hostname: "localhost", IP: "127.0.0.1", Port: port, AllocationInterval: 50 * time.Millisecond,
		AgentPingTimeout: 500 * time.Millisecond, MaxAgentPingTimeouts: 20, Registry: tm.reg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tm.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	srv := m.Server(nil)
	go func() { m.Run(ctx); close(done) }()
	go srv.Serve(countingListener{ln, &tm.agentConns})
	tm.stop = func() {
		srv.Close()
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			tm.t.Error("the master's loop did not stop within 30s of its cancel")
		}
		tm.stop = func() {}
	}
}

// restart stops the master and starts a new one on the same address and
// registry.
func (tm *testMaster) restart() {
	tm.stop()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ln, err = net.Listen("tcp", tm.addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		tm.t.Fatal(err)
	}
	tm.start(ln)
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		if a, ok := c.RemoteAddr().(*net.TCPAddr); ok && !a.IP.Equal(net.IPv4(127, 0, 0, 1)) {
			l.n.Add(1)
		}
	}
	return c, err
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
	}
}

func startFleet(t *testing.T, cfg Config) *Fleet {
	ctx, cancel := context.WithCancel(context.Background())
	f, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); f.Wait() })
	return f
}

func masterState(t *testing.T, addr string) *clustertest.State {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/master/state")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var s clustertest.State
	if err := json.Unmarshal(mustRead(t, resp.Body), &s); err != nil {
		return nil
	}
	return &s
}

func mustRead(t *testing.T, r io.Reader) []byte {
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func simTask(id string, agent mesos.AgentID, duration string) mesos.TaskInfo {
	rs, _ := api.ParseResources("cpus:0.1;mem:5")
	ti := mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: agent, Resources: rs,
		Command: &mesos.CommandInfo{Value: strPtr("true")}}
	if duration != "" {
		ti.Labels = &mesos.Labels{Labels: []mesos.Label{{Key: DurationLabel, Value: &duration}}}
	}
	return ti
}

func strPtr(s string) *string { return &s }

// Simulated agents register with a master, run tasks as timers with
// reliable status updates (STARTING, RUNNING, FINISHED, each acknowledged
// and then forgotten), and after a restart of the master re-register with
// their IDs and report the tasks they still run. They do so over one
// HTTP/1.1 connection each, as real agents, or multiplexed over HTTP/2.
func TestSimulatedAgentsRunTasksAndReregister(t *testing.T) {
	t.Run("http1", func(t *testing.T) { testSimulatedAgents(t, false) })
	t.Run("http2", func(t *testing.T) { testSimulatedAgents(t, true) })
}

func testSimulatedAgents(t *testing.T, http2 bool) {
	tm := newTestMaster(t)
	const n = 20
	f := startFleet(t, Config{Master: tm.addr, Agents: n, Resources: "cpus:2;mem:1024", UpdateRetry: 200 * time.Millisecond, HTTP2: http2})
	waitFor(t, "every simulated agent to register", time.Minute, func() bool { return f.Registered() == n })
	ids := f.IDs()
	s := masterState(t, tm.addr)
	if s == nil || len(s.Slaves) != n {
		t.Fatalf("the master lists %v agents, want %d", s, n)
	}

	sched := clustertest.SubscribeTo(t, "http://"+tm.addr, `{"user":"root","name":"sim","checkpoint":true,"failover_timeout":3600}`)
	// One short task and one long task on every agent.
	launched := map[string]bool{}
	for len(launched) < n {
		for _, o := range sched.Next(scheduler.Event_OFFERS).Offers.Offers {
			if launched[o.AgentID.Value] {
				continue
			}
			launched[o.AgentID.Value] = true
			sched.Launch(o, simTask("short-"+o.AgentID.Value, o.AgentID, "50ms"), simTask("long-"+o.AgentID.Value, o.AgentID, ""))
		}
	}
	for id := range launched {
		if st := sched.Until("short-"+id, mesos.TASK_FINISHED); st.GetSource() != mesos.SOURCE_EXECUTOR {
			t.Errorf("short task on %s: FINISHED from %v, want the agent's executor", id, st.GetSource())
		}
		sched.Until("long-"+id, mesos.TASK_RUNNING)
	}
	waitFor(t, "the agents to forget the acknowledged finished tasks", time.Minute, func() bool { return f.Tasks() == n })
	if got := f.Stats().TasksFinished; got != n {
		t.Fatalf("%d tasks finished, want %d", got, n)
	}

	tm.restart()
	waitFor(t, "every agent to re-register with the restarted master", time.Minute, func() bool {
		s := masterState(t, tm.addr)
		if s == nil || len(s.Slaves) != n {
			return false
		}
		running := 0
		for _, fw := range s.Frameworks {
			for _, task := range fw.Tasks {
				if task.State == "TASK_RUNNING" {
					running++
				}
			}
		}
		return running == n
	})
	if got := f.IDs(); fmt.Sprint(sortedCopy(got)) != fmt.Sprint(sortedCopy(ids)) {
		t.Fatalf("agent IDs changed across the restart: %v, then %v", ids, got)
	}
	// The master lists an agent once it has re-admitted it; the agent
	// counts its re-registration when the answer reaches it, a moment
	// later.
	waitFor(t, "every agent to count its re-registration", time.Minute, func() bool { return f.Stats().Reregistrations >= n })
	if st := f.Stats(); st.Refusals != 0 {
		t.Fatalf("stats after the restart: %+v; want no refusal", st)
	}
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
	// Each agent holds its own connection over HTTP/1.1 (one per
	// registration, and its calls may open more); over HTTP/2 the whole
	// fleet shares one connection per master, and one more per restart.
	conns := tm.agentConns.Load()
	switch {
	case http2 && conns > 4:
		t.Fatalf("%d agents over HTTP/2 opened %d connections to the master; want one per master (at most 4)", n, conns)
	case !http2 && conns < 2*n:
		t.Fatalf("%d agents over HTTP/1.1 opened %d connections to the master; want one per agent and registration (≥ %d)", n, conns, 2*n)
	}
	t.Logf("%d agents, http2=%v: %d connections", n, http2, conns)
}

func sortedCopy(ss []string) []string {
	out := append([]string(nil), ss...)
	sort.Strings(out)
	return out
}

// Bad input gets a clear error and starts nothing.
func TestStartRejectsBadConfig(t *testing.T) {
	for _, c := range []Config{
		{Master: "127.0.0.1:5050", Agents: 0},
		{Master: "no-port", Agents: 1},
		{Master: "zk://", Agents: 1},
		{Master: "127.0.0.1:5050", Agents: 1, Resources: "cpus:x"},
		{Master: "127.0.0.1:5050", Agents: 1, RegistrationBackoffFactor: -time.Second},
	} {
		if _, err := Start(context.Background(), c); err == nil {
			t.Errorf("Start(%+v) succeeded; want an error", c)
		} else {
			t.Logf("%+v: %v", c, err)
		}
	}
}

// With a registration backoff factor the agents do not all come to a new
// leader at once: each waits a random part of it first, so their first
// attempts spread over the factor (Mesos's --registration_backoff_factor).
func TestRegistrationBackoffFactorSpreadsFirstAttempts(t *testing.T) {
	const agents, factor = 20, 600 * time.Millisecond
	var mu sync.Mutex
	first := map[string]time.Time{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var call api.AgentCall
		if err := api.Protobuf.UnmarshalAgent(b, &call); err == nil && call.Register != nil && call.Register.Info != nil {
			mu.Lock()
			if _, ok := first[call.Register.Info.Hostname]; !ok {
				first[call.Register.Info.Hostname] = time.Now()
			}
			mu.Unlock()
		}
		// Not the leader yet: the agents back off (10 s, beyond the test).
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	startFleet(t, Config{Master: srv.Listener.Addr().String(), Agents: agents, RegistrationBackoffFactor: factor,
		Backoff: 10 * time.Second, BackoffMax: 10 * time.Second})
	waitFor(t, "every agent's first REGISTER", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(first) == agents
	})
	mu.Lock()
	defer mu.Unlock()
	var lo, hi time.Time
	for _, at := range first {
		if lo.IsZero() || at.Before(lo) {
			lo = at
		}
		if at.After(hi) {
			hi = at
		}
	}
	// 20 draws from [0, 600 ms] span less than 100 ms with a probability
	// of about 1e-14; without the wait they all come within milliseconds.
	if span := hi.Sub(lo); span < 100*time.Millisecond {
		t.Errorf("the first REGISTERs of %d agents came within %s of each other; want them spread over the %s factor", agents, span, factor)
	}
}

// An agent keeps its encoded REGISTER body while what it reports stays
// the same (it retries a dead master with it), and encodes it again after
// each change: a new task, a task's new state, an acknowledged update.
func TestRegisterBodyFollowsTheAgentsState(t *testing.T) {
	f := &Fleet{cfg: Config{}.withDefaults()}
	a := &agent{fleet: f, hostname: "sim-00000", id: "S1", tasks: map[taskKey]*task{}}
	decode := func() *api.RegisterAgent {
		t.Helper()
		b, used, err := a.registerBody()
		if err != nil {
			t.Fatal(err)
		}
		var c api.AgentCall
		if err := used.UnmarshalAgent(b, &c); err != nil {
			t.Fatal(err)
		}
		if c.Type != api.AgentRegister || c.AgentID != "S1" || c.Register == nil {
			t.Fatalf("REGISTER body decodes to %+v", c)
		}
		return c.Register
	}
	if r := decode(); len(r.Tasks) != 0 {
		t.Fatalf("an agent without tasks reports %d", len(r.Tasks))
	}
	first, _, _ := a.registerBody()
	again, _, _ := a.registerBody()
	if &first[0] != &again[0] {
		t.Fatal("the body was encoded again although nothing changed")
	}

	fid := "F1"
	a.runTask(&api.RunTask{Framework: &mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: fid}, Name: "fw", User: "root"},
		Task: &mesos.TaskInfo{Name: "t", TaskID: mesos.TaskID{Value: "T1"}, AgentID: mesos.AgentID{Value: "S1"}}})
	r := decode()
	if len(r.Tasks) != 1 || r.Tasks[0].GetState() != mesos.TASK_RUNNING || r.Tasks[0].GetStatusUpdateState() != mesos.TASK_STARTING {
		t.Fatalf("after RUN_TASK: tasks %+v; want T1 RUNNING with STARTING at the head of its updates", r.Tasks)
	}
	k := taskKey{fid, "T1"}
	a.mu.Lock()
	head := a.tasks[k].pending[0].Status.UUID
	a.mu.Unlock()
	a.acknowledge(&api.Acknowledge{FrameworkID: fid, TaskID: "T1", UUID: head})
	if r := decode(); len(r.Tasks) != 1 || r.Tasks[0].GetStatusUpdateState() != mesos.TASK_RUNNING {
		t.Fatalf("after STARTING was acknowledged: tasks %+v; want RUNNING at the head of its updates", r.Tasks)
	}
	a.kill(k)
	if r := decode(); len(r.Tasks) != 1 || r.Tasks[0].GetState() != mesos.TASK_KILLED {
		t.Fatalf("after KILL_TASK: tasks %+v; want T1 KILLED", r.Tasks)
	}
}

// Attempts are counted by why they failed — a master that is not there,
// one that does not act as leader — and the timeline of the master's
// epoch counts every attempt sent and answered, and the kinds of error.
func TestFailuresAreCountedByCause(t *testing.T) {
	const agents = 5
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	f := startFleet(t, Config{Master: srv.Listener.Addr().String(), Agents: agents, Backoff: 20 * time.Millisecond, BackoffMax: 40 * time.Millisecond})
	waitFor(t, "attempts refused by a master that does not lead", 30*time.Second, func() bool {
		return f.Stats().FailedNotLeading >= 2*agents
	})
	st, tl := f.Stats(), f.Timeline()
	if st.FailedUnreachable != 0 || st.FailedAttempts < st.FailedNotLeading {
		t.Fatalf("stats %+v: want every failure counted as not leading", st)
	}
	if tl.Sent.N < agents || tl.Answered.N < agents || tl.Registered.N != 0 || len(tl.Failures) != 0 {
		t.Fatalf("timeline %+v: want every agent's attempts sent and answered (with 503), none registered, no error", tl)
	}

	// A master that is not there: refused connections, by kind.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	g := startFleet(t, Config{Master: addr, Agents: agents, Backoff: 20 * time.Millisecond, BackoffMax: 40 * time.Millisecond})
	waitFor(t, "attempts on a master that is not there", 30*time.Second, func() bool {
		return g.Stats().FailedUnreachable >= 2*agents
	})
	tl = g.Timeline()
	n := 0
	for kind, c := range tl.Failures {
		if !strings.Contains(kind, "refused") {
			t.Errorf("failure kind %q (%d): want connection refused", kind, c)
		}
		n += c
	}
	if n < 2*agents || tl.Answered.N != 0 {
		t.Fatalf("timeline %+v: want at least %d refused attempts, none answered", tl, 2*agents)
	}
}

func TestQuantiles(t *testing.T) {
	var ds []time.Duration
	for i := 10; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*100*time.Millisecond)
	}
	q := quantiles(ds)
	if q.N != 10 || q.P10 != 0.1 || q.P50 != 0.5 || q.P90 != 0.9 || q.Max != 1 {
		t.Fatalf("quantiles of 0.1 s … 1 s: %+v", q)
	}
	if ds[0] != time.Second {
		t.Fatal("quantiles sorted its argument in place")
	}
	if q := quantiles(nil); q != (Quantiles{}) {
		t.Fatalf("quantiles of nothing: %+v", q)
	}
}
