package native

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agora-cluster/agora/storm/flux"
	"github.com/agora-cluster/agora/storm/multilang"
)

// task is one instance of a component: one process at a time.
type task struct {
	id    int
	index int
	comp  *flux.Component
	spout bool
	conf  map[string]any
	m     *compMetrics
	proc  atomic.Pointer[multilang.Proc]

	inbox    chan delivery   // bolts: tuples to execute
	outcomes *queue[Outcome] // spouts: finished trees to ack or fail
	wake     chan struct{}   // spouts: the topology's status changed

	mu      sync.Mutex
	pending map[string]*inflight // bolts: tuples given and not acked; spouts unused
	seq     uint64
	spoutN  atomic.Int64 // spouts: trees in flight
}

// delivery is a tuple on its way to task to, with its anchors: the edge
// ID for each spout tuple (root) whose tree it belongs to.
type delivery struct {
	to    int
	tuple multilang.Tuple
	edges map[uint64]uint64
}

// inflight is a tuple a bolt holds: its edges and the XOR of the edges
// of the tuples anchored to it.
type inflight struct {
	edges  map[uint64]uint64
	ackVal uint64
	start  time.Time
}

// runSpout drives a spout: ack and fail for finished trees, activate
// and deactivate as the topology's status changes, and next while the
// topology is active and topology.max.spout.pending and the downstream
// queues allow.
func (r *Runtime) runSpout(t *task, p *multilang.Proc) error {
	maxPending := int64(intConf(t.conf, KeyMaxSpoutPending, 0))
	idle := time.NewTimer(time.Millisecond)
	defer idle.Stop()
	told := false // what this process was last told: activated or not
	for {
		if r.ctx.Err() != nil {
			return r.ctx.Err()
		}
		for _, o := range t.outcomes.drain() {
			t.spoutN.Add(-1)
			cmd := multilang.SpoutFail
			if o.Acked {
				cmd = multilang.SpoutAck
				t.m.acked.Add(1)
				t.m.latency(o.Latency)
			} else {
				t.m.failed.Add(1)
			}
			if err := p.Send(map[string]any{"command": cmd, "id": o.MsgID}); err != nil {
				return err
			}
			if _, err := r.spoutUntilSync(t, p); err != nil {
				return err
			}
		}
		if on := r.active.Load(); on != told {
			cmd := multilang.SpoutDeactivate
			if on {
				cmd = multilang.SpoutActivate
			}
			if err := p.Send(map[string]string{"command": cmd, "id": ""}); err != nil {
				return err
			}
			if _, err := r.spoutUntilSync(t, p); err != nil {
				return err
			}
			told = on
		}
		if !told {
			// Inactive: only outcomes and a status change wake it.
			select {
			case <-t.outcomes.signal:
			case <-t.wake:
			case <-r.ctx.Done():
			}
			continue
		}
		emitted := 0
		if (maxPending <= 0 || t.spoutN.Load() < maxPending) && r.roomBelow(t) {
			if err := p.Send(map[string]string{"command": multilang.SpoutNext}); err != nil {
				return err
			}
			n, err := r.spoutUntilSync(t, p)
			if err != nil {
				return err
			}
			emitted = n
		}
		if emitted == 0 {
			// Nothing to do: wait for an outcome, or a moment (Storm's
			// spout wait strategy sleeps 1 ms).
			idle.Reset(time.Millisecond)
			select {
			case <-t.outcomes.signal:
			case <-idle.C:
			case <-r.ctx.Done():
			}
		}
	}
}

// roomBelow says whether every queue the spout feeds is under half full.
func (r *Runtime) roomBelow(t *task) bool {
	for _, subs := range r.routes[t.comp.ID] {
		for _, s := range subs {
			for _, id := range s.tasks {
				in := r.tasks[id].inbox
				if len(in) > cap(in)/2 {
					return false
				}
			}
		}
	}
	return true
}

// spoutUntilSync handles a spout's commands until its sync and returns
// how many tuples it emitted.
func (r *Runtime) spoutUntilSync(t *task, p *multilang.Proc) (int, error) {
	n := 0
	for {
		m, err := p.Read()
		if err != nil {
			return n, err
		}
		switch m.Command {
		case "sync":
			return n, nil
		case "emit":
			if err := r.spoutEmit(t, p, &m); err != nil {
				return n, fmt.Errorf("%s: %w", p.Name, err)
			}
			n++
		case "ack", "fail":
			return n, fmt.Errorf("%s: a spout sent %q: only bolts ack and fail tuples", p.Name, m.Command)
		default:
			r.common(t, p, &m)
		}
	}
}

func (r *Runtime) spoutEmit(t *task, p *multilang.Proc, m *multilang.Message) error {
	stream := streamOf(m)
	var roots []uint64
	var root, val uint64
	if m.ID != nil {
		root = r.newRoot(rand.Uint64())
		roots = []uint64{root}
	}
	targets, ds, err := r.route(t, stream, m.Tuple, m.Task, roots, func(e uint64) { val ^= e })
	if err != nil {
		return err
	}
	t.m.emitted.Add(int64(len(ds)))
	if m.ID != nil {
		t.spoutN.Add(1)
		r.acker.Init(root, val, t.id, m.ID, time.Now())
	}
	for i := range ds {
		ds[i].tuple.ID = strconv.FormatUint(rand.Uint64(), 10)
	}
	if err := r.deliver(ds); err != nil {
		return err
	}
	if m.WantsTaskIDs() {
		return p.Send(nonNil(targets))
	}
	return nil
}

// common handles the commands both kinds send: log, error, metrics.
func (r *Runtime) common(t *task, p *multilang.Proc, m *multilang.Message) {
	switch m.Command {
	case "log":
		r.log.Log(r.ctx, logLevel(m.Level), m.Msg, "component", t.comp.ID, "task", t.id)
	case "error":
		t.m.errors.Add(1)
		r.log.Error("native storm: component reported an error", "component", t.comp.ID, "task", t.id, "msg", m.Msg)
	case "metrics":
		t.m.setCustom(m.Name, m.Params)
	}
}

// runBolt feeds a bolt its tuples, heartbeats and tick tuples from one
// goroutine and handles what it sends in this one.
func (r *Runtime) runBolt(t *task, p *multilang.Proc) error {
	heard := atomic.Int64{}
	heard.Store(time.Now().UnixNano())
	slots := make(chan struct{}, intConf(t.conf, KeyShellBoltPending, 100))
	// freed wakes the feeder when an ack or fail frees a slot: a feeder
	// that found every slot taken waits for it, not for the next
	// heartbeat.
	freed := make(chan struct{}, 1)
	stop := make(chan struct{})
	writeErr := make(chan error, 1)
	go func() { writeErr <- r.feedBolt(t, p, slots, freed, &heard, stop) }()
	defer func() {
		close(stop)
		p.Kill()
		<-writeErr
	}()
	for {
		m, err := p.Read()
		if err != nil {
			return err
		}
		heard.Store(time.Now().UnixNano())
		switch m.Command {
		case "sync":
		case "emit":
			if err := r.boltEmit(t, p, &m); err != nil {
				return fmt.Errorf("%s: %w", p.Name, err)
			}
		case "ack", "fail":
			id := fmt.Sprint(m.ID)
			t.mu.Lock()
			f, ok := t.pending[id]
			delete(t.pending, id)
			t.mu.Unlock()
			if !ok {
				continue // a tick tuple, or a tuple failed when its tree timed out
			}
			<-slots
			select {
			case freed <- struct{}{}:
			default:
			}
			if m.Command == "ack" {
				t.m.acked.Add(1)
				t.m.latency(time.Since(f.start))
				now := time.Now()
				for root, e := range f.edges {
					r.ackRoot(root, e^f.ackVal, now)
				}
			} else {
				t.m.failed.Add(1)
				for root := range f.edges {
					r.failRoot(root)
				}
			}
		default:
			r.common(t, p, &m)
		}
	}
}

// heartbeatEvery is how often a bolt is sent a heartbeat tuple (Storm's
// ShellBolt: every second); a variable so that a test can show that
// tuples never wait for one.
var heartbeatEvery = time.Second

// feedBolt writes tuples (at most topology.shellbolt.max.pending not yet
// acked), a heartbeat every second and tick tuples. A bolt silent for
// topology.subprocess.timeout.secs is killed (and started again). freed
// is signalled each time a slot is given back.
func (r *Runtime) feedBolt(t *task, p *multilang.Proc, slots, freed chan struct{}, heard *atomic.Int64, stop chan struct{}) error {
	hb := time.NewTicker(heartbeatEvery)
	defer hb.Stop()
	var tick <-chan time.Time
	if secs := intConf(t.conf, KeyTickFreq, 0); secs > 0 {
		tk := time.NewTicker(time.Duration(secs) * time.Second)
		defer tk.Stop()
		tick = tk.C
	}
	silent := time.Duration(intConf(t.conf, KeySubprocessTimout, 30)) * time.Second
	for {
		// Take a tuple only while the bolt holds fewer than its maximum;
		// heartbeats and ticks go regardless.
		var in <-chan delivery
		if len(slots) < cap(slots) {
			in = t.inbox
		}
		select {
		case <-stop:
			return nil
		case <-r.ctx.Done():
			return nil
		case <-freed:
			// A slot was given back: look at the inbox again.
		case now := <-hb.C:
			if now.Sub(time.Unix(0, heard.Load())) > silent {
				r.log.Warn("native storm: bolt did not answer heartbeats; killing it", "component", t.comp.ID, "task", t.id, "silent", silent)
				p.Kill()
				return nil
			}
			if err := p.Send(multilang.Tuple{ID: "-1", Stream: "__heartbeat", Task: -1, Values: []any{}}); err != nil {
				return err
			}
		case now := <-tick:
			id := "tick-" + strconv.FormatInt(now.UnixNano(), 10)
			if err := p.Send(multilang.Tuple{ID: id, Comp: "__system", Stream: "__tick", Task: -1, Values: []any{intConf(t.conf, KeyTickFreq, 0)}}); err != nil {
				return err
			}
		case d := <-in:
			slots <- struct{}{} // never waits: only this goroutine takes slots
			t.mu.Lock()
			t.seq++
			d.tuple.ID = strconv.Itoa(t.id) + ":" + strconv.FormatUint(t.seq, 10)
			t.pending[d.tuple.ID] = &inflight{edges: d.edges, start: time.Now()}
			t.mu.Unlock()
			t.m.executed.Add(1)
			if err := p.Send(d.tuple); err != nil {
				return err
			}
		}
	}
}

func (r *Runtime) boltEmit(t *task, p *multilang.Proc, m *multilang.Message) error {
	var anchors []*inflight
	var roots []uint64
	t.mu.Lock()
	for _, a := range m.Anchors {
		if f, ok := t.pending[fmt.Sprint(a)]; ok {
			anchors = append(anchors, f)
			for root := range f.edges {
				roots = append(roots, root)
			}
		}
	}
	t.mu.Unlock()
	targets, ds, err := r.route(t, streamOf(m), m.Tuple, m.Task, roots, func(e uint64) {
		t.mu.Lock()
		for _, a := range anchors {
			a.ackVal ^= e
		}
		t.mu.Unlock()
	})
	if err != nil {
		return err
	}
	t.m.emitted.Add(int64(len(ds)))
	if m.WantsTaskIDs() {
		// Answer before delivering: the bolt waits for its task IDs,
		// and delivery may wait for room downstream.
		if err := p.Send(nonNil(targets)); err != nil {
			return err
		}
	}
	return r.deliver(ds)
}

func streamOf(m *multilang.Message) string {
	if m.Stream == "" {
		return flux.DefaultStream
	}
	return m.Stream
}

func nonNil(ts []int) []int {
	if ts == nil {
		return []int{}
	}
	return ts
}

// queue is an unbounded FIFO with a signal: the acker never waits on a
// spout that is itself waiting for room downstream.
type queue[T any] struct {
	mu     sync.Mutex
	items  []T
	signal chan struct{}
}

func newQueue[T any]() *queue[T] { return &queue[T]{signal: make(chan struct{}, 1)} }

func (q *queue[T]) push(x T) {
	q.mu.Lock()
	q.items = append(q.items, x)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *queue[T]) drain() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.items
	q.items = nil
	return out
}
