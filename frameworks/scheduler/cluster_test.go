package scheduler

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/frameworks/offers"
)

// These tests run the driver against a real in-process agora cluster.

// wait bounds how long a test waits for an event; generous, since tests
// never assert on speed.
const wait = 30 * time.Second

// probe is a Handler that forwards events to channels for the test to
// read. Its methods run on the driver's event loop, so they put into
// unbounded queues and never block: a test that stops reading (waiting for
// something else, or failing) must not stop the loop, or Run cannot return
// at cleanup.
type probe struct {
	subscribed   <-chan *scheduler.Event_Subscribed
	offers       <-chan []mesos.Offer
	updates      <-chan mesos.TaskStatus
	heartbeats   chan struct{}
	disconnected <-chan error
	errors       <-chan string
	in           probeQueues
}

// probeQueues are the handlers' ends of a probe's channels.
type probeQueues struct {
	subscribed   *clustertest.Queue[*scheduler.Event_Subscribed]
	offers       *clustertest.Queue[[]mesos.Offer]
	updates      *clustertest.Queue[mesos.TaskStatus]
	disconnected *clustertest.Queue[error]
	errors       *clustertest.Queue[string]
}

func newProbe(t *testing.T) *probe {
	in := probeQueues{
		subscribed: clustertest.NewQueue[*scheduler.Event_Subscribed](t), offers: clustertest.NewQueue[[]mesos.Offer](t),
		updates: clustertest.NewQueue[mesos.TaskStatus](t), disconnected: clustertest.NewQueue[error](t),
		errors: clustertest.NewQueue[string](t),
	}
	return &probe{
		subscribed: in.subscribed.C(), offers: in.offers.C(), updates: in.updates.C(),
		heartbeats: make(chan struct{}, 1024), disconnected: in.disconnected.C(), errors: in.errors.C(), in: in,
	}
}

func (p *probe) Subscribed(_ context.Context, s *scheduler.Event_Subscribed) { p.in.subscribed.Put(s) }
func (p *probe) Offers(_ context.Context, os []mesos.Offer)                  { p.in.offers.Put(os) }
func (p *probe) Rescind(context.Context, mesos.OfferID)                      {}
func (p *probe) Update(_ context.Context, s mesos.TaskStatus)                { p.in.updates.Put(s) }
func (p *probe) Message(context.Context, *scheduler.Event_Message)           {}
func (p *probe) Failure(context.Context, *scheduler.Event_Failure)           {}
func (p *probe) Error(_ context.Context, m string)                           { p.in.errors.Put(m) }
func (p *probe) Disconnected(_ context.Context, err error)                   { p.in.disconnected.Put(err) }
func (p *probe) Heartbeat(context.Context) {
	select {
	case p.heartbeats <- struct{}{}:
	default: // heartbeats only show the stream is alive: one dropped when the test is not counting them loses nothing
	}
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// framework is a MULTI_ROLE FrameworkInfo in role "*".
func framework(name string, failover float64) mesos.FrameworkInfo {
	return mesos.FrameworkInfo{
		Name: name, Roles: []string{"*"}, FailoverTimeout: &failover,
		Capabilities: Capabilities(mesos.FrameworkInfo_Capability_MULTI_ROLE, mesos.FrameworkInfo_Capability_RESERVATION_REFINEMENT),
	}
}

// start runs a driver until the test ends; Run's result arrives on the
// returned channel.
func start(t *testing.T, cfg Config, p *probe) (*Driver, <-chan error) {
	t.Helper()
	d, err := New(cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() { errc <- d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); clustertest.AwaitStop(t, "the driver", done) })
	return d, errc
}

// commandTask is a shell command task on an offer's agent.
func commandTask(id string, o *mesos.Offer, rs []mesos.Resource, cmd string) mesos.TaskInfo {
	return mesos.TaskInfo{
		Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: o.AgentID, Resources: rs,
		Command: &mesos.CommandInfo{Value: &cmd},
	}
}

// launchOne takes one task's resources from the next offer and launches cmd.
func launchOne(t *testing.T, d *Driver, p *probe, id, cmd string) *mesos.Offer {
	t.Helper()
	os := recv(t, p.offers, "an offer")
	o := &os[0]
	pool := offers.NewPool(o)
	rs, ok := pool.Take(offers.Need{CPUs: 0.1, Mem: 32, Role: "*"})
	if !ok {
		t.Fatalf("offer %v does not fit a small task: %s", o.Resources, pool.Shortfall(offers.Need{CPUs: 0.1, Mem: 32}))
	}
	if err := d.Launch(context.Background(), []mesos.OfferID{o.ID}, []mesos.TaskInfo{commandTask(id, o, rs, cmd)}, RefuseFor(0)); err != nil {
		t.Fatalf("launch %s: %v", id, err)
	}
	return o
}

// until reads updates of task until one is in state, failing on a
// different terminal state.
func until(t *testing.T, p *probe, task string, state mesos.TaskState) mesos.TaskStatus {
	t.Helper()
	for {
		s := recv(t, p.updates, task+" reaching "+state.String())
		if s.TaskID.Value != task {
			continue
		}
		if s.GetState() == state {
			return s
		}
		if IsTerminal(s.GetState()) {
			t.Fatalf("task %s ended in %s (%s), want %s", task, s.GetState(), s.GetMessage(), state)
		}
	}
}

func TestClusterLaunchAndAutoAck(t *testing.T) {
	for _, codec := range []api.Codec{api.Protobuf, api.JSON} {
		t.Run(codec.MediaType, func(t *testing.T) {
			c := clustertest.Start(t, clustertest.Options{})
			p := newProbe(t)
			d, _ := start(t, Config{Masters: []string{c.MasterURL}, Framework: framework("launch", 0), Codec: codec}, p)
			sub := recv(t, p.subscribed, "SUBSCRIBED")
			if sub.GetFrameworkID().GetValue() == "" || d.FrameworkID() != sub.GetFrameworkID().GetValue() {
				t.Fatalf("SUBSCRIBED %v, driver says %q", sub, d.FrameworkID())
			}
			o := launchOne(t, d, p, "echo-1", "echo hi")
			for _, r := range o.Resources {
				if r.AllocationInfo.GetRole() != "*" {
					t.Errorf("offered %s without allocation_info role *: %v", r.Name, r)
				}
			}
			var states []string
			for {
				s := recv(t, p.updates, "updates of echo-1")
				states = append(states, s.GetState().String())
				if len(s.UUID) == 0 {
					t.Errorf("agent update %s carries no uuid", s.GetState())
				}
				if IsTerminal(s.GetState()) {
					if s.GetState() != mesos.TASK_FINISHED {
						t.Fatalf("task ended %s: %s (states %v)", s.GetState(), s.GetMessage(), states)
					}
					break
				}
			}
			// The master moves a task to completed_tasks only once its
			// terminal update is acknowledged.
			c.WaitFor("echo-1 acknowledged and completed", func(s *clustertest.State) bool {
				for _, f := range s.Frameworks {
					for _, task := range f.CompletedTasks {
						if task.ID == "echo-1" {
							return true
						}
					}
				}
				return false
			})
		})
	}
}

func TestClusterPacksManyTasksIntoOneOffer(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	p := newProbe(t)
	d, _ := start(t, Config{Masters: []string{c.MasterAddr}, Framework: framework("pack", 0)}, p)
	recv(t, p.subscribed, "SUBSCRIBED")
	os := recv(t, p.offers, "an offer")
	o := &os[0]
	pool := offers.NewPool(o)
	var tasks []mesos.TaskInfo
	for i := 0; i < 10; i++ {
		rs, ok := pool.Take(offers.Need{CPUs: 0.1, Mem: 32, Ports: 1})
		if !ok {
			t.Fatalf("task %d does not fit: %s", i, pool.Shortfall(offers.Need{CPUs: 0.1, Mem: 32, Ports: 1}))
		}
		tasks = append(tasks, commandTask("pack-"+string(rune('a'+i)), o, rs, "true"))
	}
	if err := d.Launch(context.Background(), []mesos.OfferID{o.ID}, tasks, nil); err != nil {
		t.Fatal(err)
	}
	finished := map[string]bool{}
	for len(finished) < len(tasks) {
		s := recv(t, p.updates, "the packed tasks finishing")
		if s.GetState() == mesos.TASK_FINISHED {
			finished[s.TaskID.Value] = true
		} else if IsTerminal(s.GetState()) {
			t.Fatalf("%s ended %s: %s", s.TaskID.Value, s.GetState(), s.GetMessage())
		}
	}
}

func TestClusterReconcileAndKill(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	p := newProbe(t)
	d, _ := start(t, Config{Masters: []string{c.MasterAddr}, Framework: framework("reconcile", 0)}, p)
	recv(t, p.subscribed, "SUBSCRIBED")
	ctx := context.Background()

	if err := d.Reconcile(ctx, []scheduler.Call_Reconcile_Task{ReconcileTask("nobody-knows", "")}); err != nil {
		t.Fatal(err)
	}
	s := recv(t, p.updates, "explicit reconciliation answer")
	if s.TaskID.Value != "nobody-knows" || s.GetState() != mesos.TASK_LOST || s.GetReason() != mesos.REASON_RECONCILIATION || len(s.UUID) != 0 {
		t.Errorf("unknown task reconciled as %s %s uuid=%x, want TASK_LOST REASON_RECONCILIATION without uuid", s.GetState(), s.GetReason(), s.UUID)
	}

	launchOne(t, d, p, "sleeper", "sleep 60")
	running := until(t, p, "sleeper", mesos.TASK_RUNNING)
	if err := d.Reconcile(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for {
		s := recv(t, p.updates, "implicit reconciliation answer")
		if s.GetReason() == mesos.REASON_RECONCILIATION {
			if s.TaskID.Value != "sleeper" || s.GetState() != mesos.TASK_RUNNING || len(s.UUID) != 0 {
				t.Errorf("implicit reconciliation gave %s %s uuid=%x", s.TaskID.Value, s.GetState(), s.UUID)
			}
			break
		}
	}
	if err := d.Kill(ctx, "sleeper", running.GetAgentID().GetValue()); err != nil {
		t.Fatal(err)
	}
	until(t, p, "sleeper", mesos.TASK_KILLED)
}

func TestClusterManualAcks(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	p := newProbe(t)
	d, _ := start(t, Config{Masters: []string{c.MasterAddr}, Framework: framework("manual", 0), ManualAcks: true}, p)
	recv(t, p.subscribed, "SUBSCRIBED")
	launchOne(t, d, p, "manual-1", "true")
	first := recv(t, p.updates, "first update")
	// Unacknowledged, the agent resends the same update rather than the next.
	again := recv(t, p.updates, "the unacknowledged update again")
	if again.GetState() != first.GetState() || string(again.UUID) != string(first.UUID) {
		t.Fatalf("without an ack got %s after %s; want the same update retried", again.GetState(), first.GetState())
	}
	s := first
	for {
		if err := d.Acknowledge(context.Background(), s); err != nil {
			t.Fatalf("ack %s: %v", s.GetState(), err)
		}
		if s.GetState() == mesos.TASK_FINISHED {
			break
		}
		for next := recv(t, p.updates, "next update"); ; next = recv(t, p.updates, "next update") {
			if string(next.UUID) != string(s.UUID) {
				s = next
				break
			}
		}
	}
	c.WaitFor("manual-1 completed", func(st *clustertest.State) bool {
		for _, f := range st.Frameworks {
			for _, task := range f.CompletedTasks {
				if task.ID == "manual-1" {
					return true
				}
			}
		}
		return false
	})
}

func TestClusterTeardownEndsRun(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	p := newProbe(t)
	d, errc := start(t, Config{Masters: []string{c.MasterAddr}, Framework: framework("teardown", 3600)}, p)
	sub := recv(t, p.subscribed, "SUBSCRIBED")
	if err := d.Teardown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, errc, "Run to return"); err != nil {
		t.Fatalf("Run after Teardown = %v, want nil", err)
	}
	c.WaitFor("framework completed", func(s *clustertest.State) bool {
		for _, f := range s.CompletedFrameworks {
			if f.ID == sub.GetFrameworkID().GetValue() {
				return true
			}
		}
		return false
	})

	// Re-subscribing as the removed framework is refused for good.
	info := framework("teardown", 3600)
	info.ID = sub.GetFrameworkID()
	_, errc = start(t, Config{Masters: []string{c.MasterAddr}, Framework: info, MaxConnectFailures: 3}, newProbe(t))
	err := recv(t, errc, "Run of the removed framework to return")
	var me *MasterError
	var ae *APIError
	if !errors.As(err, &me) && !(errors.As(err, &ae) && ae.ClientError()) {
		t.Errorf("re-subscribing a removed framework: Run = %v, want *MasterError or a 4xx *APIError", err)
	}
}

func TestClusterResubscribesWithItsFrameworkID(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	p := newProbe(t)
	d, _ := start(t, Config{Masters: []string{c.MasterAddr}, Framework: framework("failover", 3600),
		Backoff: Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}}, p)
	first := recv(t, p.subscribed, "SUBSCRIBED")
	d.mu.Lock()
	stream := d.streamID
	d.mu.Unlock()
	d.endStream(stream, errors.New("test: connection broken"))
	recv(t, p.disconnected, "Disconnected")
	again := recv(t, p.subscribed, "SUBSCRIBED after the broken stream")
	if again.GetFrameworkID().GetValue() != first.GetFrameworkID().GetValue() {
		t.Fatalf("re-subscribed as %s, want %s", again.GetFrameworkID().GetValue(), first.GetFrameworkID().GetValue())
	}
	if err := d.Revive(context.Background()); err != nil {
		t.Errorf("call on the new stream: %v", err)
	}
	c.WaitFor("one active framework", func(s *clustertest.State) bool {
		return len(s.Frameworks) == 1 && s.Frameworks[0].Active && s.Frameworks[0].ID == first.GetFrameworkID().GetValue()
	})
}

func TestClusterHeartbeatWatchdog(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Master: func(mc *master.Config) { mc.HeartbeatInterval = 50 * time.Millisecond }})
	px := newFreezeProxy(t, c.MasterAddr)
	p := newProbe(t)
	start(t, Config{Masters: []string{px.addr}, Framework: framework("watchdog", 3600), MissedHeartbeats: 3,
		ConnectTimeout: 2 * time.Second, Backoff: Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}}, p)
	first := recv(t, p.subscribed, "SUBSCRIBED")
	if first.GetHeartbeatIntervalSeconds() != 0.05 {
		t.Fatalf("heartbeat interval %v, want 0.05", first.GetHeartbeatIntervalSeconds())
	}
	recv(t, p.heartbeats, "a HEARTBEAT")
	px.freeze(true)
	if err := recv(t, p.disconnected, "the watchdog to drop the silent stream"); !errors.Is(err, ErrHeartbeatTimeout) {
		t.Errorf("Disconnected(%v), want ErrHeartbeatTimeout", err)
	}
	px.freeze(false)
	again := recv(t, p.subscribed, "SUBSCRIBED after the watchdog")
	if again.GetFrameworkID().GetValue() != first.GetFrameworkID().GetValue() {
		t.Errorf("re-subscribed as %s, want %s", again.GetFrameworkID().GetValue(), first.GetFrameworkID().GetValue())
	}
}

func TestClusterTriesTheNextMaster(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	dead := closedAddr(t)
	p := newProbe(t)
	start(t, Config{Masters: []string{dead, c.MasterAddr}, Framework: framework("next", 0),
		Backoff: Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}}, p)
	recv(t, p.subscribed, "SUBSCRIBED through the second master")
}

func TestConnectFailuresEndRun(t *testing.T) {
	_, errc := start(t, Config{Masters: []string{closedAddr(t)}, Framework: framework("nobody", 0), MaxConnectFailures: 2,
		Backoff: Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond}}, newProbe(t))
	err := recv(t, errc, "Run to give up")
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Attempts != 2 {
		t.Errorf("Run = %v, want a *ConnectError after 2 attempts", err)
	}
}

// closedAddr is a loopback address that refuses connections (its port
// held until the test ends, so nothing else takes it).
func closedAddr(t *testing.T) string { return clustertest.RefusedAddr(t) }

// freezeProxy relays TCP to the master; frozen, it keeps connections open
// but passes nothing from the master on, as a silent network partition.
type freezeProxy struct {
	addr   string
	mu     sync.Mutex
	frozen bool
	thaw   chan struct{}
}

func newFreezeProxy(t *testing.T, target string) *freezeProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	px := &freezeProxy{addr: ln.Addr().String(), thaw: make(chan struct{})}
	close(px.thaw)
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			go func() { io.Copy(server, client); server.Close() }()
			go func() { px.relay(client, server); client.Close() }()
		}
	}()
	return px
}

func (px *freezeProxy) freeze(on bool) {
	px.mu.Lock()
	defer px.mu.Unlock()
	if on && !px.frozen {
		px.thaw = make(chan struct{})
	} else if !on && px.frozen {
		close(px.thaw)
	}
	px.frozen = on
}

func (px *freezeProxy) relay(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		px.mu.Lock()
		thaw := px.thaw
		px.mu.Unlock()
		<-thaw
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
