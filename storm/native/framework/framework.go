// Package framework runs a native topology on the cluster: a framework
// (scheduler SDK) that launches the topology's workers as tasks, one per
// topology.workers, each with one port from its offer for the other
// workers' tuples. The workers' addresses are known at launch: all are
// first placed from one round of offers, and each task gets every address
// (AGORA_STORM_PEERS), its own index (AGORA_STORM_WORKER) and the number
// of the launch it belongs to (AGORA_STORM_LAUNCH). A worker killed by a
// signal or lost with its agent is launched again alone, maybe elsewhere:
// the new task gets the others' addresses and announces its own to them
// (the runtime's hello, whose launch number orders announcements); the
// other workers run on. A worker that fails on its own (the topology
// broke) ends the run with its message.
package framework

import (
	"context"
	"crypto/tls"
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
	EnvLaunch = "AGORA_STORM_LAUNCH" // the launch this task is of, from 1, rising
)

// ExitPortTaken is the exit status of a worker whose offered port another
// process holds (an offer's ports are only promised, not reserved on the
// machine): the worker is launched again on its next offer rather than the
// topology being stopped as broken. 75 is sysexits' EX_TEMPFAIL.
const ExitPortTaken = 75

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
	// worker is running after a launch, with the launch's number and the
	// workers' addresses.
	OnRunning func(launch int, peers []string)
	// OnReplace is called when a worker died and is to be launched again.
	OnReplace func(worker int, why string)
	// WebUI is the framework's webui_url: where the submitting command
	// serves its topology's control (rebalance).
	WebUI string
	// Principal and Secret, if set, are the framework's credentials, for
	// a master with --authenticate_frameworks; TLS, if set, calls masters
	// given as host:port over HTTPS, verified with its roots.
	Principal, Secret string
	TLS               *tls.Config
}

// ErrStopped is the error of Run when a worker failed on its own.
var ErrStopped = errors.New("the topology stopped")

// slot is one worker: its current task, where it runs and its state.
type slot struct {
	task, agent, addr string
	state             mesos.TaskState
	pending           bool // to be launched (again)
}

// Run is a running topology framework.
type Run struct {
	cfg Config
	log *slog.Logger
	d   *scheduler.Driver

	mu       sync.Mutex
	launch   int // the last launch's number
	slots    []slot
	placed   bool // the first launch placed every worker
	running  bool // OnRunning was called since the last launch
	stopping bool
	done     chan error
}

// New checks cfg; nothing is sent before Start.
func New(cfg Config) (*Run, error) {
	if cfg.Workers < 1 || len(cfg.Command) == 0 || cfg.Topology == "" {
		return nil, fmt.Errorf("native topology %q: needs a name, a command and at least one worker", cfg.Topology)
	}
	r := &Run{cfg: cfg, log: cfg.Logger, done: make(chan error, 1), slots: make([]slot, cfg.Workers)}
	for i := range r.slots {
		r.slots[i].pending = true
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	zero := 0.0
	d, err := scheduler.New(scheduler.Config{
		Masters: cfg.Masters, Logger: r.log, MaxConnectFailures: 3,
		Principal: cfg.Principal, Secret: cfg.Secret, TLS: cfg.TLS,
		Framework: mesos.FrameworkInfo{Name: Name, Roles: []string{"*"}, FailoverTimeout: &zero, WebUiURL: webUI(cfg.WebUI),
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

func webUI(u string) *string {
	if u == "" {
		return nil
	}
	return &u
}

// Rebalance launches the topology again as workers workers with env and
// labels in place of the Config's (a new configuration, new executor
// counts): every worker is killed and all are placed again, from one
// round of offers.
func (r *Run) Rebalance(ctx context.Context, workers int, env map[string]string, labels func(int) map[string]string) error {
	if workers < 1 {
		return fmt.Errorf("native topology %q: %d workers: want at least 1", r.cfg.Topology, workers)
	}
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		return fmt.Errorf("native topology %q is being killed", r.cfg.Topology)
	}
	old := r.live()
	r.cfg.Workers, r.cfg.Env, r.cfg.Labels = workers, env, labels
	r.slots = make([]slot, workers)
	for i := range r.slots {
		r.slots[i].pending = true
	}
	r.placed, r.running = false, false
	r.mu.Unlock()
	for id, agent := range old {
		r.d.Kill(ctx, id, agent)
	}
	r.log.Info("native topology: rebalancing", "topology", r.cfg.Topology, "workers", workers)
	return r.d.Revive(ctx)
}

// SetEnv sets a variable of the environment of every worker launched
// from now on (a replaced worker's, or a rebalance's without it).
func (r *Run) SetEnv(key, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	env := make(map[string]string, len(r.cfg.Env)+1)
	for k, v := range r.cfg.Env {
		env[k] = v
	}
	env[key] = value
	r.cfg.Env = env
}

// Addresses are the workers' addresses by index: "" for a worker waiting
// to be launched (again).
func (r *Run) Addresses() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.slots))
	for i, s := range r.slots {
		if !s.pending && !scheduler.IsTerminal(s.state) {
			out[i] = s.addr
		}
	}
	return out
}

func (r *Run) finish(err error) {
	select {
	case r.done <- err:
	default:
	}
}

// live are the workers' tasks not known to have ended.
func (r *Run) live() map[string]string {
	out := map[string]string{}
	for _, s := range r.slots {
		if s.task != "" && !s.pending && !scheduler.IsTerminal(s.state) {
			out[s.task] = s.agent
		}
	}
	return out
}

// placement is a worker placed on an offer.
type placement struct {
	worker, offer int
	rs            []mesos.Resource
	addr          string
}

// offers places the workers waiting for a launch: at first all of them
// from one round of offers (or none), later each that fits.
func (r *Run) offers(ctx context.Context, os []mesos.Offer) {
	r.mu.Lock()
	var waiting []int
	for i, s := range r.slots {
		if s.pending {
			waiting = append(waiting, i)
		}
	}
	all, stopping := !r.placed, r.stopping
	r.mu.Unlock()
	if stopping || len(waiting) == 0 {
		r.d.Decline(ctx, offerIDs(os), time.Hour)
		r.d.Suppress(ctx)
		return
	}
	places := r.place(os, waiting)
	if len(places) == 0 || (all && len(places) < len(waiting)) {
		r.log.Info("native topology: offers hold fewer workers than needed", "placed", len(places), "waiting", len(waiting))
		r.d.Decline(ctx, offerIDs(os), time.Second)
		return
	}
	r.mu.Lock()
	r.launch++
	launch := r.launch
	for _, p := range places {
		r.slots[p.worker] = slot{addr: p.addr, agent: os[p.offer].AgentID.Value, state: mesos.TASK_STAGING}
	}
	peers := make([]string, len(r.slots))
	for i, s := range r.slots {
		peers[i] = s.addr
	}
	byOffer := map[int][]mesos.TaskInfo{}
	for _, p := range places {
		env := map[string]string{EnvPeers: strings.Join(peers, ","), EnvWorker: strconv.Itoa(p.worker), EnvLaunch: strconv.Itoa(launch)}
		for k, v := range r.cfg.Env {
			env[k] = v
		}
		id := fmt.Sprintf("%s-%d-w%d-%s", taskIDSafe(r.cfg.Topology), launch, p.worker, strconv.FormatInt(time.Now().UnixNano()%1e9, 36))
		r.slots[p.worker].task = id
		byOffer[p.offer] = append(byOffer[p.offer], taskInfo(r.cfg, id, os[p.offer].AgentID, p.rs, env, p.worker))
	}
	r.placed, r.running = true, false
	left := len(waiting) - len(places)
	r.mu.Unlock()
	var decline []mesos.OfferID
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
	if left == 0 {
		r.d.Suppress(ctx)
	}
	r.log.Info("native topology: workers launched", "topology", r.cfg.Topology, "launch", launch, "peers", peers, "waiting", left)
}

// place fits the waiting workers into the offers, one port each.
func (r *Run) place(os []mesos.Offer, waiting []int) []placement {
	need := offers.Need{CPUs: r.cfg.CPUs, Mem: r.cfg.Mem, Ports: 1}
	pools := make([]*offers.Pool, len(os))
	for i := range os {
		pools[i] = offers.NewPool(&os[i])
	}
	var places []placement
	for _, w := range waiting {
		for i, p := range pools {
			rs, ok := p.Take(need)
			if !ok {
				continue
			}
			addr := net.JoinHostPort(os[i].Hostname, strconv.FormatUint(firstPort(rs), 10))
			places = append(places, placement{worker: w, offer: i, rs: rs, addr: addr})
			break
		}
	}
	return places
}

func offerIDs(os []mesos.Offer) []mesos.OfferID {
	ids := make([]mesos.OfferID, len(os))
	for i, o := range os {
		ids[i] = o.ID
	}
	return ids
}

func (r *Run) update(ctx context.Context, st mesos.TaskStatus) {
	id := st.TaskID.Value
	r.mu.Lock()
	w := -1
	for i, s := range r.slots {
		if s.task == id && !s.pending {
			w = i
		}
	}
	if w < 0 {
		r.mu.Unlock()
		return
	}
	r.slots[w].state = st.GetState()
	running := 0
	peers := make([]string, len(r.slots))
	for i, s := range r.slots {
		peers[i] = s.addr
		if s.state == mesos.TASK_RUNNING && !s.pending {
			running++
		}
	}
	live, launch, stopping := r.live(), r.launch, r.stopping
	announce := running == len(r.slots) && !r.running
	r.running = r.running || announce
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
	if exited && code > 0 && code <= 128 && code != ExitPortTaken {
		// The worker failed on its own: the topology is broken.
		r.finish(fmt.Errorf("%w: worker task %s: %s", ErrStopped, id, st.GetMessage()))
		r.Kill(ctx)
		return
	}
	// Killed by a signal, lost, killed by someone else, or its port was
	// taken: launch this worker again; the others run on.
	why := fmt.Sprintf("task %s ended %s: %s", id, st.GetState(), st.GetMessage())
	r.mu.Lock()
	r.slots[w].pending = true
	r.mu.Unlock()
	if r.cfg.OnReplace != nil {
		r.cfg.OnReplace(w, why)
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
