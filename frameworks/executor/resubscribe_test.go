package executor_test

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	executorpb "github.com/mesos/mesos-go/api/v1/lib/executor"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/frameworks/executor"
	sched "github.com/agora-cluster/agora/frameworks/scheduler"
)

// proxy forwards TCP connections to the agent; cut breaks them all and,
// while down, new connections are closed at once: a network fault between
// an executor and its agent.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut(false) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.down
			if !down {
				p.conns = append(p.conns, c)
			}
			p.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			go p.forward(c)
		}
	}()
	return p
}

func (p *proxy) forward(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, up)
	p.mu.Unlock()
	go func() { _, _ = io.Copy(up, c); up.Close() }()
	_, _ = io.Copy(c, up)
	c.Close()
}

// cut closes every connection; down says whether new ones are refused.
func (p *proxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) up() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// TestResubscribeResendsUnacknowledgedUpdates: an executor of a
// checkpointing framework loses its agent, sends an update meanwhile
// (which fails), subscribes again when the network is back, and the update
// and the unacknowledged task go out with SUBSCRIBE: the scheduler gets the
// update, the agent acknowledges it.
func TestResubscribeResendsUnacknowledgedUpdates(t *testing.T) {
	// The agent launches a stand-in process; this test's driver speaks for
	// the executor, through the proxy.
	c, d, ev, task, ctx := launchStandIn(t, "resubscribe", "flaky")

	p := newProxy(t, c.Agents[0].Addr())
	launched, subscribed := clustertest.NewQueue[mesos.TaskInfo](t), clustertest.NewQueue[struct{}](t)
	var launches atomic.Int32 // counted as OnLaunch runs, to tell a second LAUNCH exactly
	x, err := executor.New(executor.Config{
		FrameworkID: d.FrameworkID(), ExecutorID: "flaky", AgentEndpoint: p.ln.Addr().String(), Codec: api.JSON,
		Checkpoint: true, RecoveryTimeout: wait, SubscriptionBackoffMax: 100 * time.Millisecond,
	}, executor.Funcs{
		OnSubscribed: func(context.Context, *executorpb.Event_Subscribed) { subscribed.Put(struct{}{}) },
		OnLaunch:     func(_ context.Context, t mesos.TaskInfo) { launches.Add(1); launched.Put(t) },
	})
	if err != nil {
		t.Fatal(err)
	}
	xctx, xcancel := context.WithCancel(context.Background())
	xdone := make(chan error, 1)
	go func() { xdone <- x.Run(xctx) }()
	t.Cleanup(func() { xcancel(); clustertest.AwaitStop(t, "the executor driver", xdone) })
	// The executor is launched asynchronously; the driver retries until it
	// can subscribe.
	recv(t, subscribed.C(), "SUBSCRIBED")
	if got := recv(t, launched.C(), "LAUNCH"); got.TaskID.Value != "a" {
		t.Fatalf("LAUNCH of %s", got.TaskID.Value)
	}
	if tasks, updates := x.Unacknowledged(); tasks != 1 || updates != 0 {
		t.Fatalf("unacknowledged before the fault: %d tasks, %d updates", tasks, updates)
	}

	p.cut(true)
	if err := x.SendStatus(ctx, task.TaskID, mesos.TASK_RUNNING, "sent while disconnected"); err == nil {
		t.Fatal("an update through a broken network succeeded")
	}
	if tasks, updates := x.Unacknowledged(); tasks != 1 || updates != 1 {
		t.Fatalf("unacknowledged during the fault: %d tasks, %d updates", tasks, updates)
	}
	p.up()
	recv(t, subscribed.C(), "SUBSCRIBED again")
	for {
		st := recv(t, ev.updates, "the update sent while disconnected")
		if st.TaskID.Value == "a" && st.GetState() == mesos.TASK_RUNNING {
			if st.GetMessage() != "sent while disconnected" {
				t.Errorf("RUNNING with message %q", st.GetMessage())
			}
			break
		}
	}
	deadline := time.Now().Add(wait)
	for {
		tasks, updates := x.Unacknowledged()
		if tasks == 0 && updates == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still unacknowledged after re-subscribing: %d tasks, %d updates", tasks, updates)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The task was not delivered twice: the driver reported it as known.
	if n := launches.Load(); n != 1 {
		t.Errorf("task launched %d times, want once (not again after re-subscribing)", n)
	}
}

// launchStandIn runs a checkpointing framework on a one-agent cluster and
// launches task "a" on a custom executor execID whose process is a stand-in
// (sleep): the test's own executor driver then speaks for it. ctx lasts
// until the test ends.
func launchStandIn(t *testing.T, name, execID string) (*clustertest.Cluster, *sched.Driver, *events, mesos.TaskInfo, context.Context) {
	t.Helper()
	c := clustertest.Start(t, clustertest.Options{Agent: func(_ int, cfg *agent.Config) { cfg.ExecutorShutdownGracePeriod = time.Second }})
	t.Cleanup(c.Stop)
	ev := newEvents(t)
	checkpoint := true
	d, err := sched.New(sched.Config{Masters: []string{c.MasterAddr},
		Framework: mesos.FrameworkInfo{User: "tester", Name: name, Checkpoint: &checkpoint}}, ev)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); clustertest.AwaitStop(t, "the scheduler driver", done) })
	standIn := "sleep 600"
	o := recv(t, ev.offers, "an offer")
	exec := &mesos.ExecutorInfo{Type: mesos.ExecutorInfo_CUSTOM, ExecutorID: mesos.ExecutorID{Value: execID},
		Command: &mesos.CommandInfo{Value: &standIn}, Resources: res(t, "cpus:0.1;mem:32")}
	task := mesos.TaskInfo{Name: "a", TaskID: mesos.TaskID{Value: "a"}, AgentID: o.AgentID, Executor: exec, Resources: res(t, "cpus:0.1;mem:16")}
	if err := d.Launch(ctx, []mesos.OfferID{o.ID}, []mesos.TaskInfo{task}, sched.RefuseFor(0)); err != nil {
		t.Fatal(err)
	}
	return c, d, ev, task, ctx
}
