// Package framework runs a native topology on the cluster: a framework
// (scheduler SDK) that launches the topology's workers as tasks, one per
// topology.workers, each with one port from its offer for the other
// workers' tuples. The workers' addresses are known at launch: all are
// placed from one round of offers, and each task gets every address
// (AGORA_STORM_PEERS) and its own index (AGORA_STORM_WORKER). A worker
// killed by a signal or lost with its agent has all workers launched again
// (the spouts start over, replaying what was not acked); a worker that
// fails on its own (the topology broke) ends the run with its message.
package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/frameworks/offers"
	"github.com/agora-cluster/agora/frameworks/oneshot"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// Name is the framework's name; its tasks are named as their topology.
const Name = "agora-storm-native"

// The environment a worker task gets besides the Config's.
const (
	EnvPeers  = "AGORA_STORM_PEERS"  // every worker's HOST:PORT, comma-separated, by index
	EnvWorker = "AGORA_STORM_WORKER" // this worker's index
)

// LabelWorker is the label of a worker task holding its index.
const LabelWorker = "agora.storm.worker"

// Config is one topology's run.
type Config struct {
	Masters   []string
	Topology  string
	Workers   int
	CPUs, Mem float64 // per worker
	Command   []string
	Env       map[string]string
	// Labels, if given, are the labels of worker i's task (what it runs,
	// for `agora storm workers`).
	Labels func(worker int) map[string]string
	Logger *slog.Logger
	// OnRunning is called (on the driver's goroutine) each time every
	// worker of a launch is running, with their addresses.
	OnRunning func(launch int, peers []string)
	// OnRelaunch is called when a launch's worker died and all are
	// launched again.
	OnRelaunch func(launch int, why string)
}

// ErrStopped is the error of Run when a worker failed on its own.
var ErrStopped = errors.New("the topology stopped")

// Run is a running topology framework.
type Run struct {
	cfg Config
	log *slog.Logger
	d   *scheduler.Driver

	mu       sync.Mutex
	launch   int               // launch number, from 1
	tasks    map[string]string // task ID → agent ID, of the current launch
	states   map[string]mesos.TaskState
	peerList []string // the current launch's worker addresses
	launched bool
	running  bool // OnRunning was called for this launch
	stopping bool
	done     chan error
}

// New checks cfg; nothing is sent before Start.
func New(cfg Config) (*Run, error) {
	if cfg.Workers < 1 || len(cfg.Command) == 0 || cfg.Topology == "" {
		return nil, fmt.Errorf("native topology %q: needs a name, a command and at least one worker", cfg.Topology)
	}
	r := &Run{cfg: cfg, log: cfg.Logger, done: make(chan error, 1), launch: 1}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	zero := 0.0
	d, err := scheduler.New(scheduler.Config{
		Masters: cfg.Masters, Logger: r.log, MaxConnectFailures: 3,
		Framework: mesos.FrameworkInfo{Name: Name, Roles: []string{"*"}, FailoverTimeout: &zero,
			Capabilities: scheduler.Capabilities(mesos.FrameworkInfo_Capability_MULTI_ROLE)},
	}, scheduler.Funcs{OnOffers: r.offers, OnUpdate: r.update})
	if err != nil {
		return nil, fmt.Errorf("native topology %q: %w", cfg.Topology, err)
	}
	r.d = d
	return r, nil
}

// FrameworkID is the framework's ID once subscribed.
func (r *Run) FrameworkID() string { return r.d.FrameworkID() }

// Wait runs the framework until the topology is killed (nil), a worker
// fails on its own (ErrStopped with its message) or the framework ends
// (torn down: the driver's error). The framework is torn down at the end.
func (r *Run) Wait(ctx context.Context) error {
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- r.d.Run(dctx) }()
	var err error
	select {
	case err = <-r.done:
	case err = <-errc:
		if err == nil {
			err = errors.New("the framework ended")
		}
		return err
	case <-ctx.Done():
		err = ctx.Err()
	}
	tctx, tcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer tcancel()
	r.d.Teardown(tctx)
	cancel()
	<-errc
	return err
}

// Kill kills every worker; Wait then returns nil.
func (r *Run) Kill(ctx context.Context) {
	r.mu.Lock()
	r.stopping = true
	tasks := r.live()
	r.mu.Unlock()
	if len(tasks) == 0 {
		r.finish(nil)
	}
	for id, agent := range tasks {
		r.d.Kill(ctx, id, agent)
	}
}

func (r *Run) finish(err error) {
	select {
	case r.done <- err:
	default:
	}
}

// live are the current launch's tasks not known to have ended.
func (r *Run) live() map[string]string {
	out := map[string]string{}
	for id, agent := range r.tasks {
		if !scheduler.IsTerminal(r.states[id]) {
			out[id] = agent
		}
	}
	return out
}

// offers places every worker from this round of offers, or declines it.
func (r *Run) offers(ctx context.Context, os []mesos.Offer) {
	r.mu.Lock()
	busy := r.launched || r.stopping
	launch := r.launch
	r.mu.Unlock()
	var decline []mesos.OfferID
	if busy {
		for _, o := range os {
			decline = append(decline, o.ID)
		}
		r.d.Decline(ctx, decline, time.Hour)
		return
	}
	need := offers.Need{CPUs: r.cfg.CPUs, Mem: r.cfg.Mem, Ports: 1}
	pools := make([]*offers.Pool, len(os))
	for i := range os {
		pools[i] = offers.NewPool(&os[i])
	}
	type place struct {
		offer int
		rs    []mesos.Resource
		addr  string
	}
	var places []place
	for w := 0; w < r.cfg.Workers; w++ {
		found := false
		for i, p := range pools {
			rs, ok := p.Take(need)
			if !ok {
				continue
			}
			port := firstPort(rs)
			places = append(places, place{offer: i, rs: rs, addr: net.JoinHostPort(os[i].Hostname, strconv.FormatUint(port, 10))})
			found = true
			break
		}
		if !found {
			break
		}
	}
	if len(places) < r.cfg.Workers {
		for _, o := range os {
			decline = append(decline, o.ID)
		}
		r.log.Info("native topology: offers hold fewer workers than needed", "placed", len(places), "workers", r.cfg.Workers)
		r.d.Decline(ctx, decline, time.Second)
		return
	}
	peers := make([]string, len(places))
	for i, p := range places {
		peers[i] = p.addr
	}
	byOffer := map[int][]mesos.TaskInfo{}
	tasks := map[string]string{}
	for i, p := range places {
		env := map[string]string{EnvPeers: strings.Join(peers, ","), EnvWorker: strconv.Itoa(i)}
		for k, v := range r.cfg.Env {
			env[k] = v
		}
		id := fmt.Sprintf("%s-%d-w%d-%s", taskIDSafe(r.cfg.Topology), launch, i, strconv.FormatInt(time.Now().UnixNano()%1e9, 36))
		o := os[p.offer]
		byOffer[p.offer] = append(byOffer[p.offer], taskInfo(r.cfg, id, o.AgentID, p.rs, env, i))
		tasks[id] = o.AgentID.Value
	}
	r.mu.Lock()
	r.tasks, r.states, r.launched, r.running, r.peerList = tasks, map[string]mesos.TaskState{}, true, false, peers
	r.mu.Unlock()
	for i, o := range os {
		if ts, ok := byOffer[i]; ok {
			if err := r.d.Launch(ctx, []mesos.OfferID{o.ID}, ts, scheduler.RefuseFor(time.Hour)); err != nil {
				r.finish(fmt.Errorf("launch the workers of %q: %w", r.cfg.Topology, err))
				return
			}
		} else {
			decline = append(decline, o.ID)
		}
	}
	if len(decline) > 0 {
		r.d.Decline(ctx, decline, time.Hour)
	}
	r.d.Suppress(ctx)
	r.log.Info("native topology: workers launched", "topology", r.cfg.Topology, "launch", launch, "peers", peers)
}

func (r *Run) update(ctx context.Context, st mesos.TaskStatus) {
	id := st.TaskID.Value
	r.mu.Lock()
	if _, ours := r.tasks[id]; !ours {
		r.mu.Unlock()
		return
	}
	r.states[id] = st.GetState()
	running, live, launch := 0, r.live(), r.launch
	for _, s := range r.states {
		if s == mesos.TASK_RUNNING {
			running++
		}
	}
	stopping := r.stopping
	announce := running == r.cfg.Workers && !r.running
	r.running = r.running || announce
	peers := r.peerList
	r.mu.Unlock()
	if !scheduler.IsTerminal(st.GetState()) {
		if announce && r.cfg.OnRunning != nil {
			r.cfg.OnRunning(launch, peers)
		}
		return
	}
	if stopping {
		if len(live) == 0 {
			r.finish(nil)
		}
		return
	}
	code, exited := oneshot.ExitCode(st)
	if exited && code > 0 && code <= 128 {
		// The worker failed on its own: the topology is broken.
		r.finish(fmt.Errorf("%w: worker task %s: %s", ErrStopped, id, st.GetMessage()))
		r.Kill(ctx)
		return
	}
	// Killed by a signal, lost, or killed by someone else: launch every
	// worker again (their addresses change).
	why := fmt.Sprintf("task %s ended %s: %s", id, st.GetState(), st.GetMessage())
	for tid, agent := range live {
		r.d.Kill(ctx, tid, agent)
	}
	r.mu.Lock()
	r.launch++
	r.launched = false
	r.tasks = map[string]string{}
	launch = r.launch
	r.mu.Unlock()
	if r.cfg.OnRelaunch != nil {
		r.cfg.OnRelaunch(launch, why)
	}
	r.d.Revive(ctx)
}

func firstPort(rs []mesos.Resource) uint64 {
	for _, res := range rs {
		if res.Name == "ports" && res.Ranges != nil && len(res.Ranges.Range) > 0 {
			return res.Ranges.Range[0].Begin
		}
	}
	return 0
}

func taskInfo(cfg Config, id string, agent mesos.AgentID, rs []mesos.Resource, env map[string]string, worker int) mesos.TaskInfo {
	shell, value := false, cfg.Command[0]
	cmd := &mesos.CommandInfo{Shell: &shell, Value: &value, Arguments: cfg.Command}
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	e := &mesos.Environment{}
	for _, k := range names {
		v := env[k]
		e.Variables = append(e.Variables, mesos.Environment_Variable{Name: k, Value: &v})
	}
	cmd.Environment = e
	ti := mesos.TaskInfo{Name: cfg.Topology, TaskID: mesos.TaskID{Value: id}, AgentID: agent, Resources: rs, Command: cmd}
	labels := map[string]string{LabelWorker: strconv.Itoa(worker)}
	if cfg.Labels != nil {
		for k, v := range cfg.Labels(worker) {
			labels[k] = v
		}
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ti.Labels = &mesos.Labels{}
	for _, k := range keys {
		v := labels[k]
		ti.Labels.Labels = append(ti.Labels.Labels, mesos.Label{Key: k, Value: &v})
	}
	return ti
}

// taskIDSafe keeps the characters Mesos allows in IDs.
func taskIDSafe(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, name)
}
