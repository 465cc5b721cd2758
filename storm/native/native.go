// Package native runs a Flux topology of multilang shell components with
// no JVM: one subprocess per task speaking Storm's multilang protocol
// (storm/multilang), the streams' groupings, at-least-once delivery with
// an XOR acker, topology.message.timeout.secs, topology.max.spout.pending,
// bounded queues for backpressure, tick tuples, heartbeats, and metrics.
//
// Task IDs are given as Storm gives them: components in ID order, each
// component's tasks consecutive from 1. A component whose process exits is
// started again (its tuples in flight are failed, so their spout tuples
// are replayed); a component that breaks the protocol (output that is not
// JSON, an unknown command, a failed handshake) stops the topology with an
// error naming the component and its script.
package native

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agora-cluster/agora/storm/flux"
	"github.com/agora-cluster/agora/storm/multilang"
)

// Storm's configuration keys the runtime reads, with Storm's defaults.
const (
	KeyMessageTimeout   = "topology.message.timeout.secs"         // 30
	KeyMaxSpoutPending  = "topology.max.spout.pending"            // unlimited
	KeyTickFreq         = "topology.tick.tuple.freq.secs"         // none
	KeySubprocessTimout = "topology.subprocess.timeout.secs"      // 30
	KeyShellBoltPending = "topology.shellbolt.max.pending"        // 100
	KeyExecutorQueue    = "topology.executor.receive.buffer.size" // 1024
	KeyWorkers          = "topology.workers"
)

// Options tune a run.
type Options struct {
	// Dir is where the commands run: the resources directory with
	// storm.py (default: the topology's Resources).
	Dir string
	// Conf overrides keys of the topology's configuration.
	Conf map[string]any
	// Stderr gets the components' stderr (nil: discarded).
	Stderr io.Writer
	Logger *slog.Logger
	// Peers are the addresses of every worker of a topology of more than
	// one (topology.workers of them), Worker this one's index and
	// Listener its listener on Peers[Worker].
	Peers    []string
	Worker   int
	Listener net.Listener
	// Launch is the launch this worker is of (rising from 1). A worker
	// of a launch after the first announces its address to the others,
	// which take it in place of the one they had.
	Launch int
	// Status is the topology's status to start in (nil: ACTIVE, of
	// generation 0).
	Status *Status
}

// Runtime is a running topology.
type Runtime struct {
	top     *flux.Topology
	conf    map[string]any
	dir     string
	pidDir  string
	opts    Options
	log     *slog.Logger
	acker   *Acker
	tasks   map[int]*task
	order   []int
	byComp  map[string][]int
	routes  map[string]map[string][]*subscriber // component → stream → subscribers
	metrics map[string]*compMetrics
	worker  int
	owner   map[int]int // task → worker
	peers   []*peer

	statusMu sync.Mutex
	status   Status
	active   atomic.Bool // status.Active, read by the spouts' loops

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	err    error
	done   chan struct{}
}

// Start checks what the topology needs to run here and starts every task.
// It fails, with nothing left running, when a component cannot be started
// or does not complete the handshake.
func Start(ctx context.Context, top *flux.Topology, opts Options) (*Runtime, error) {
	r := &Runtime{top: top, opts: opts, dir: opts.Dir, log: opts.Logger, tasks: map[int]*task{},
		byComp: map[string][]int{}, routes: map[string]map[string][]*subscriber{}, metrics: map[string]*compMetrics{},
		done: make(chan struct{})}
	if r.dir == "" {
		r.dir = top.Resources
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.status = Status{Active: true}
	if opts.Status != nil {
		r.status = *opts.Status
	}
	r.active.Store(r.status.Active)
	r.conf = map[string]any{"topology.name": top.Name}
	for k, v := range top.Config {
		r.conf[k] = v
	}
	for k, v := range opts.Conf {
		r.conf[k] = v
	}
	if err := r.checkWorkers(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(r.dir, multilang.StormPy)); err != nil {
		return nil, fmt.Errorf("topology %q: %s is not in %s: the Python components import it (FindStormPy reads it from a Storm home or Maven's repository)", top.Name, multilang.StormPy, r.dir)
	}
	r.acker = NewAcker(time.Duration(intConf(r.conf, KeyMessageTimeout, 30))*time.Second, r.outcome)
	if err := r.plan(); err != nil {
		return nil, err
	}
	pidDir, err := multilang.TempPIDDir()
	if err != nil {
		return nil, err
	}
	r.pidDir = pidDir
	r.ctx, r.cancel = context.WithCancel(ctx)
	if opts.Listener != nil {
		r.wg.Add(1)
		go r.serve(opts.Listener)
		if opts.Launch > 1 {
			r.announce()
		}
	}
	for _, id := range r.order {
		t := r.tasks[id]
		if r.owner[id] != r.worker {
			continue
		}
		p, err := r.startProc(t)
		if err != nil {
			// The first error is the cause: a task started before this
			// one may have broken the protocol and stopped the topology,
			// which ended this one's handshake.
			r.fail(err)
			r.Stop()
			return nil, r.err
		}
		r.wg.Add(1)
		go r.runTask(t, p)
	}
	r.wg.Add(1)
	go r.expire()
	go func() {
		r.wg.Wait()
		os.RemoveAll(r.pidDir)
		close(r.done)
	}()
	return r, nil
}

// checkWorkers matches topology.workers with the peers given.
func (r *Runtime) checkWorkers() error {
	w := intConf(r.conf, KeyWorkers, 1)
	n := max(1, len(r.opts.Peers))
	switch {
	case w != n:
		return fmt.Errorf("topology %q: %s is %v, and %d worker address(es) were given", r.top.Name, KeyWorkers, r.conf[KeyWorkers], len(r.opts.Peers))
	case n > maxWorkers:
		return fmt.Errorf("topology %q: %d workers: at most %d", r.top.Name, n, maxWorkers)
	case n > 1 && (r.opts.Worker < 0 || r.opts.Worker >= n || r.opts.Listener == nil):
		return fmt.Errorf("topology %q: worker %d of %d needs its index and listener", r.top.Name, r.opts.Worker, n)
	}
	r.worker = r.opts.Worker
	for _, a := range r.opts.Peers {
		r.peers = append(r.peers, &peer{addr: a, tuples: &conn{}, control: &conn{}})
	}
	return nil
}

// CheckWorkers reads topology.workers from the topology's configuration
// with overrides: a number from 1 to 256.
func CheckWorkers(top *flux.Topology, overrides map[string]any) (int, error) {
	conf := map[string]any{}
	for k, v := range top.Config {
		conf[k] = v
	}
	for k, v := range overrides {
		conf[k] = v
	}
	w := intConf(conf, KeyWorkers, 1)
	if w < 1 || w > maxWorkers {
		return 0, fmt.Errorf("topology %q: %s is %v: give 1 to %d", top.Name, KeyWorkers, conf[KeyWorkers], maxWorkers)
	}
	return w, nil
}

// plan gives the tasks their IDs and builds the routes.
func (r *Runtime) plan() error {
	comps := sortedComponents(r.top)
	spouts := map[string]bool{}
	for _, s := range r.top.Spouts {
		spouts[s.ID] = true
	}
	id := 1
	queue := intConf(r.conf, KeyExecutorQueue, 1024)
	r.owner = map[int]int{}
	workers := max(1, len(r.opts.Peers))
	for _, c := range comps {
		n := c.ParallelismOrDefault()
		r.metrics[c.ID] = newCompMetrics(spouts[c.ID])
		for i := 0; i < n; i++ {
			t := &task{id: id, comp: c, spout: spouts[c.ID], index: i, m: r.metrics[c.ID],
				conf: r.componentConf(c), pending: map[string]*inflight{}}
			if t.spout {
				t.outcomes = newQueue[Outcome]()
				t.wake = make(chan struct{}, 1)
			} else {
				t.inbox = make(chan delivery, queue)
			}
			r.tasks[id] = t
			r.owner[id] = ownerOf(id, workers)
			r.order = append(r.order, id)
			r.byComp[c.ID] = append(r.byComp[c.ID], id)
			id++
		}
	}
	for _, s := range r.top.Streams {
		from := r.top.Spouts
		if !spouts[s.From] {
			from = r.top.Bolts
		}
		var out []string
		for _, c := range from {
			if c.ID == s.From {
				out = c.Outputs[s.StreamID()]
			}
		}
		sub, err := newSubscriber(s, r.byComp[s.To], out, func(task int) bool { return r.owner[task] == r.worker })
		if err != nil {
			return fmt.Errorf("topology %q: %w", r.top.Name, err)
		}
		if r.routes[s.From] == nil {
			r.routes[s.From] = map[string][]*subscriber{}
		}
		r.routes[s.From][s.StreamID()] = append(r.routes[s.From][s.StreamID()], sub)
	}
	return nil
}

// sortedComponents are the topology's spouts and bolts in ID order, the
// order their tasks get IDs in.
func sortedComponents(top *flux.Topology) []*flux.Component {
	var comps []*flux.Component
	for i := range top.Spouts {
		comps = append(comps, &top.Spouts[i])
	}
	for i := range top.Bolts {
		comps = append(comps, &top.Bolts[i])
	}
	sort.Slice(comps, func(i, j int) bool { return comps[i].ID < comps[j].ID })
	return comps
}

// ownerOf is the worker that runs task id (IDs from 1) of a topology of
// workers workers: tasks are dealt out in ID order, as Storm's even
// scheduler spreads executors.
func ownerOf(id, workers int) int { return (id - 1) % workers }

// Assign is what each of workers workers of the topology runs: by
// component, its task IDs (each task is one executor, one process).
func Assign(top *flux.Topology, workers int) []map[string][]int {
	workers = max(1, workers)
	out := make([]map[string][]int, workers)
	for i := range out {
		out[i] = map[string][]int{}
	}
	id := 1
	for _, c := range sortedComponents(top) {
		for i := 0; i < c.ParallelismOrDefault(); i++ {
			w := ownerOf(id, workers)
			out[w][c.ID] = append(out[w][c.ID], id)
			id++
		}
	}
	return out
}

func (r *Runtime) componentConf(c *flux.Component) map[string]any {
	conf := make(map[string]any, len(r.conf)+len(c.Conf))
	for k, v := range r.conf {
		conf[k] = v
	}
	for k, v := range c.Conf {
		conf[k] = v
	}
	return conf
}

// Err is why the topology stopped (nil while it runs or after Stop).
func (r *Runtime) Err() error {
	select {
	case <-r.done:
		return r.err
	default:
		return nil
	}
}

// Done is closed once every task has ended.
func (r *Runtime) Done() <-chan struct{} { return r.done }

// Stop ends every task and waits for them.
func (r *Runtime) Stop() {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	if r.pidDir != "" {
		os.RemoveAll(r.pidDir)
	}
}

// fail stops the topology with err (the first error wins).
func (r *Runtime) fail(err error) {
	r.once.Do(func() {
		r.err = err
		r.log.Error("native storm: topology stopped", "topology", r.top.Name, "err", err)
		if r.cancel != nil {
			r.cancel()
		}
	})
}

// PIDs are the processes of a component's tasks now.
func (r *Runtime) PIDs(component string) []int {
	var pids []int
	for _, id := range r.byComp[component] {
		if p := r.tasks[id].proc.Load(); p != nil {
			pids = append(pids, p.PID())
		}
	}
	return pids
}

// Tasks are a component's task IDs.
func (r *Runtime) Tasks(component string) []int { return r.byComp[component] }

// expire fails trees past topology.message.timeout.secs.
func (r *Runtime) expire() {
	defer r.wg.Done()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case now := <-tick.C:
			r.acker.Expire(now)
		}
	}
}

// outcome hands a finished tree to its spout task.
func (r *Runtime) outcome(o Outcome) {
	if t := r.tasks[o.SpoutTask]; t != nil && t.spout {
		t.outcomes.push(o)
	}
}

func (r *Runtime) startProc(t *task) (*multilang.Proc, error) {
	kind := "bolt"
	if t.spout {
		kind = "spout"
	}
	name := fmt.Sprintf("%s %q task %d (%s in %s)", kind, t.comp.ID, t.id, quoteCommand(t.comp.Command), r.dir)
	tc := map[string]string{}
	for id, x := range r.tasks {
		tc[strconv.Itoa(id)] = x.comp.ID
	}
	setup := multilang.Setup{Conf: t.conf, PIDDir: r.pidDir, Context: multilang.Context{
		TaskID: t.id, ComponentID: t.comp.ID, TaskToComponent: tc, StreamToFields: t.comp.Outputs}}
	ctx, cancel := context.WithTimeout(r.ctx, time.Duration(intConf(r.conf, KeySubprocessTimout, 30))*time.Second)
	defer cancel()
	type res struct {
		p   *multilang.Proc
		err error
	}
	ch := make(chan res, 1)
	go func() {
		p, err := multilang.Start(r.ctx, name, r.dir, t.comp.Command, setup, r.opts.Stderr)
		ch <- res{p, err}
	}()
	select {
	case x := <-ch:
		if x.err == nil {
			t.proc.Store(x.p)
		}
		return x.p, x.err
	case <-ctx.Done():
		// Start ends when r.ctx ends (the process is killed); a
		// handshake that never comes is killed through the ctx too.
		go func() {
			if x := <-ch; x.p != nil {
				x.p.Kill()
			}
		}()
		return nil, fmt.Errorf("%s: no handshake within %s", name, KeySubprocessTimout)
	}
}

// runTask runs a task's process and, when it exits, fails its tuples in
// flight and starts it again.
func (r *Runtime) runTask(t *task, p *multilang.Proc) {
	defer r.wg.Done()
	backoff := 100 * time.Millisecond
	for {
		var err error
		if t.spout {
			err = r.runSpout(t, p)
		} else {
			err = r.runBolt(t, p)
		}
		p.Kill()
		t.proc.Store(nil)
		r.failInflight(t)
		if r.ctx.Err() != nil {
			return
		}
		if !errors.Is(err, multilang.ErrEnded) {
			r.fail(err)
			return
		}
		t.m.restarts.Add(1)
		r.log.Warn("native storm: component ended; starting it again", "component", t.comp.ID, "task", t.id, "err", err)
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
		if p, err = r.startProc(t); err != nil {
			if r.ctx.Err() == nil {
				r.fail(err)
			}
			return
		}
	}
}

func (r *Runtime) failInflight(t *task) {
	t.mu.Lock()
	pending := t.pending
	t.pending = map[string]*inflight{}
	t.mu.Unlock()
	for _, f := range pending {
		for root := range f.edges {
			r.failRoot(root)
		}
	}
}

// route sends a tuple emitted by task from on stream to its targets and
// returns them. edges gives the new tuple's anchors: for each target a
// fresh edge ID is XORed into every root (and reported through onEdge,
// which adds it to the anchors' ack values).
func (r *Runtime) route(from *task, stream string, values []any, direct *int, roots []uint64, onEdge func(uint64)) ([]int, []delivery, error) {
	var targets []int
	var out []delivery
	subs := r.routes[from.comp.ID][stream]
	if direct != nil {
		owned := false
		for _, s := range subs {
			owned = owned || (s.kind == flux.GroupDirect && s.owns(*direct))
		}
		if !owned {
			return nil, nil, fmt.Errorf("%q emitted directly to task %d on stream %q, which no DIRECT subscriber of the stream runs", from.comp.ID, *direct, stream)
		}
	}
	for _, s := range subs {
		ts, err := s.targets(values, direct)
		if err != nil {
			return nil, nil, err
		}
		for _, tid := range ts {
			d := delivery{to: tid, tuple: multilang.Tuple{Comp: from.comp.ID, Stream: stream, Task: from.id, Values: values}}
			if len(roots) > 0 {
				e := rand.Uint64() | 1
				d.edges = make(map[uint64]uint64, len(roots))
				for _, root := range roots {
					d.edges[root] = e
				}
				onEdge(e)
			}
			targets = append(targets, tid)
			out = append(out, d)
		}
	}
	return targets, out, nil
}

// deliver queues tuples at their bolts, waiting while a queue is full
// (backpressure up to the emitter).
func (r *Runtime) deliver(ds []delivery) error {
	for _, d := range ds {
		if w := r.owner[d.to]; w != r.worker {
			tuple := d.tuple
			r.sendOrDrop(w, wire{Kind: "tuple", To: d.to, Tuple: &tuple, Edges: d.edges})
			continue
		}
		select {
		case r.tasks[d.to].inbox <- d:
		case <-r.ctx.Done():
			return r.ctx.Err()
		}
	}
	return nil
}

func quoteCommand(c []string) string {
	s := ""
	for i, x := range c {
		if i > 0 {
			s += " "
		}
		s += x
	}
	return s
}

func intConf(conf map[string]any, key string, def int) int {
	switch v := conf[key].(type) {
	case int:
		return v
	case int64:
		return int(v)
	case float64:
		return int(v)
	case string:
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

// KeyParallelism is the configuration key of a rebalanced native
// topology: by component, its number of executors (tasks, processes) in
// place of the file's parallelism.
const KeyParallelism = "agora.storm.parallelism"

// WithParallelism is a copy of top whose components named in executors
// have that many executors: an unknown component or a number below 1 is
// an error naming it.
func WithParallelism(top *flux.Topology, executors map[string]int) (*flux.Topology, error) {
	c := *top
	c.Spouts = append([]flux.Component(nil), top.Spouts...)
	c.Bolts = append([]flux.Component(nil), top.Bolts...)
	for comp, n := range executors {
		if n < 1 {
			return nil, fmt.Errorf("topology %q: component %q: %d executors: want at least 1", top.Name, comp, n)
		}
		found := false
		for _, cs := range [][]flux.Component{c.Spouts, c.Bolts} {
			for i := range cs {
				if cs[i].ID == comp {
					cs[i].Parallelism, found = &n, true
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("topology %q has no component %q (it has %s)", top.Name, comp, componentIDs(top))
		}
	}
	return &c, nil
}

// ParallelismOf reads KeyParallelism from a configuration.
func ParallelismOf(conf map[string]any) (map[string]int, error) {
	v, ok := conf[KeyParallelism]
	if !ok {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s is %v: want a map of component to executors", KeyParallelism, v)
	}
	out := map[string]int{}
	for comp, n := range m {
		f, ok := n.(float64)
		if !ok || f != float64(int(f)) {
			return nil, fmt.Errorf("%s: component %q: %v is not a whole number", KeyParallelism, comp, n)
		}
		out[comp] = int(f)
	}
	return out, nil
}

func componentIDs(top *flux.Topology) string {
	var ids []string
	for _, c := range sortedComponents(top) {
		ids = append(ids, c.ID)
	}
	return fmt.Sprint(ids)
}
