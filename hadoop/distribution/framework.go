package distribution

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	schedpb "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/frameworks/scheduler"
)

const (
	// refuseBusy keeps an agent's offers away for a while when it already
	// runs a tracker or cannot hold one; revive clears it when a tracker is
	// lost.
	refuseBusy = 30 * time.Second
	// refuseShort is for offers declined while trackers are still wanted:
	// the agent may have room soon.
	refuseShort = 5 * time.Second
	// A tracker that ends is relaunched on its agent no sooner than
	// relaunchMin after, doubling with every further loss there up to
	// relaunchMax; one that ran for stableAfter starts the count anew.
	relaunchMin = time.Second
	relaunchMax = time.Minute
	stableAfter = time.Minute
)

// Config configures a Framework.
type Config struct {
	// Masters are the masters to subscribe with (host:port).
	Masters []string
	// Settings say what to launch; see SettingsFrom.
	Settings Settings
	// Name is the framework's name; "" means "Hadoop TaskTrackers (JobTracker host:port)".
	Name string
	// User runs the trackers; "" means the current user.
	User string
	// Logger receives the framework's logs; nil discards them.
	Logger *slog.Logger
}

// Framework keeps TaskTrackers of a Hadoop distribution running on the
// cluster: between agora.hadoop.executors.minimum and .maximum of them (or
// enough for the total slot minimums), at most one per agent, relaunched
// when lost. Create it with New and run it with Run.
type Framework struct {
	cfg    Config
	s      Settings
	log    *slog.Logger
	rng    *rand.Rand
	driver *scheduler.Driver

	mu         sync.Mutex
	trackers   map[string]*tracker // live trackers by task ID
	agents     map[string]*agent   // by agent ID
	next       int                 // number of the next tracker's task ID
	suppressed bool
	stopping   bool
}

type tracker struct {
	Tracker
	running time.Time // when TASK_RUNNING first arrived
}

// agent is what the framework remembers of an agent: its tracker and
// the trackers lost there.
type agent struct {
	tracker  string // task ID of its live tracker, or ""
	losses   int    // trackers lost in a row
	notUntil time.Time
}

// New checks cfg and prepares the framework.
func New(cfg Config) (*Framework, error) {
	if len(cfg.Masters) == 0 {
		return nil, errors.New("hadoop tasktrackers: no master address")
	}
	s := cfg.Settings
	if s.JobTracker == "" || (s.URI == "") == (s.Home == "") || s.Props == nil {
		return nil, errors.New("hadoop tasktrackers: settings are incomplete; make them with SettingsFrom")
	}
	if s.Env == nil {
		s.Env = passedEnv()
	}
	if cfg.Name == "" {
		cfg.Name = "Hadoop TaskTrackers (JobTracker " + s.JobTracker + ")"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Framework{
		cfg: cfg, s: s, log: log,
		rng:      rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x7474)),
		trackers: map[string]*tracker{},
		agents:   map[string]*agent{},
	}, nil
}

// Trackers lists the live trackers (launched and not yet ended), by task
// ID.
func (f *Framework) Trackers() []Tracker {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Tracker, 0, len(f.trackers))
	for _, t := range f.trackers {
		out = append(out, t.Tracker)
	}
	slices.SortFunc(out, func(a, b Tracker) int { return strings.Compare(a.TaskID, b.TaskID) })
	return out
}

// Run subscribes and keeps the trackers running until ctx ends; then it
// tears the framework down, which stops its trackers, and returns nil. It
// returns an error if the master refuses the framework.
func (f *Framework) Run(ctx context.Context) error {
	checkpoint := f.s.Checkpoint
	role := f.s.Role
	info := mesos.FrameworkInfo{Name: f.cfg.Name, User: f.cfg.User, Checkpoint: &checkpoint, Role: &role}
	d, err := scheduler.New(scheduler.Config{
		Masters: f.cfg.Masters, Framework: info,
		Logger: f.log.With("component", "scheduler-driver"),
	}, scheduler.Simple(f.log, f.subscribed, f.offers, f.update))
	if err != nil {
		return fmt.Errorf("hadoop tasktrackers: %w", err)
	}
	f.driver = d
	f.log.Info("hadoop tasktrackers starting", "jobtracker", f.s.JobTracker, "uri", f.s.URI, "home", f.s.Home,
		"minimum", f.s.Sizing.MinExecutors, "maximum", f.s.Sizing.MaxExecutors)
	return runDriver(ctx, d, f.log, "hadoop tasktrackers", func() {
		f.mu.Lock()
		f.stopping = true
		f.mu.Unlock()
	})
}

// runDriver runs d until ctx ends, then marks the framework stopping and
// tears it down (the master then kills its tasks), waiting at most 10 s
// for the master. It returns an error only if the driver stops by itself
// (the master refused the framework).
func runDriver(ctx context.Context, d *scheduler.Driver, log *slog.Logger, name string, stopping func()) error {
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	select {
	case err := <-done:
		return fmt.Errorf("%s: %w", name, err)
	case <-ctx.Done():
	}
	stopping()
	tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer tcancel()
	if err := d.Teardown(tctx); err != nil {
		log.Warn("tear down (the master removes the framework and its tasks once it notices it is gone)", "err", err)
		cancel()
	}
	select {
	case <-done:
	case <-tctx.Done():
		cancel()
		<-done
	}
	return nil
}

// subscribed asks for the state of the trackers it knows (after a
// re-subscription: those lost meanwhile come back as TASK_LOST or
// TASK_GONE and are relaunched).
func (f *Framework) subscribed(ctx context.Context, id string) {
	f.mu.Lock()
	var tasks []schedpb.Call_Reconcile_Task
	for _, t := range f.trackers {
		tasks = append(tasks, scheduler.ReconcileTask(t.TaskID, t.AgentID))
	}
	f.mu.Unlock()
	f.log.Info("subscribed", "framework_id", id, "trackers", len(tasks))
	if len(tasks) > 0 {
		if err := f.driver.Reconcile(ctx, tasks); err != nil {
			f.log.Warn("reconcile trackers", "err", err)
		}
	}
	f.adjustOffers(ctx)
}

// offers launches a tracker on each offer it can use while trackers are
// wanted, and declines the rest.
func (f *Framework) offers(ctx context.Context, offs []mesos.Offer) {
	now := time.Now()
	declines := map[time.Duration][]mesos.OfferID{}
	for i := range offs {
		o := &offs[i]
		refuse, launched := f.useOffer(ctx, now, o)
		if !launched {
			declines[refuse] = append(declines[refuse], o.ID)
		}
	}
	for refuse, ids := range declines {
		if err := f.driver.Decline(ctx, ids, refuse); err != nil {
			f.log.Debug("decline offers", "err", err)
		}
	}
	f.adjustOffers(ctx)
}

// useOffer launches a tracker on o if one is wanted and fits, or says for
// how long to refuse the offer.
func (f *Framework) useOffer(ctx context.Context, now time.Time, o *mesos.Offer) (refuse time.Duration, launched bool) {
	f.mu.Lock()
	a := f.agent(o.AgentID.Value)
	n, maps, reduces := f.totals()
	switch {
	case f.stopping:
		f.mu.Unlock()
		return refuseBusy, false
	case !f.s.WantMore(n, maps, reduces):
		f.mu.Unlock()
		return refuseBusy, false
	case a.tracker != "":
		f.mu.Unlock()
		return refuseBusy, false
	case now.Before(a.notUntil):
		f.mu.Unlock()
		return max(a.notUntil.Sub(now), 100*time.Millisecond), false
	}
	t, res, reason := f.s.Plan(o, f.rng)
	if reason != "" {
		f.mu.Unlock()
		f.log.Info("declining offer", "agent", o.AgentID.Value, "host", o.Hostname, "reason", reason)
		return refuseBusy, false
	}
	f.next++
	t.TaskID = fmt.Sprintf("Task_Tracker_%d", f.next)
	f.trackers[t.TaskID] = &tracker{Tracker: t}
	a.tracker = t.TaskID
	f.mu.Unlock()

	task := f.s.TaskInfo(t, res)
	f.log.Info("launching task tracker", "task", t.TaskID, "agent", t.AgentID, "host", t.Host,
		"http_port", t.HTTPPort, "report_port", t.ReportPort, "map_slots", t.MapSlots, "reduce_slots", t.ReduceSlots,
		"cpus", t.CPUs, "mem", t.Mem, "disk", t.Disk)
	if err := f.driver.Launch(ctx, []mesos.OfferID{o.ID}, []mesos.TaskInfo{task}, scheduler.RefuseFor(refuseShort)); err != nil {
		f.log.Warn("launch task tracker", "task", t.TaskID, "agent", t.AgentID, "err", err)
		f.mu.Lock()
		delete(f.trackers, t.TaskID)
		a.tracker = ""
		f.mu.Unlock()
		return refuseShort, false
	}
	return 0, true
}

// update follows a tracker's task: a tracker that ends is forgotten (and
// its agent rests a little before the next one), so that offers launch a
// new one.
func (f *Framework) update(ctx context.Context, st mesos.TaskStatus) {
	now := time.Now()
	id := st.TaskID.Value
	f.mu.Lock()
	t, ok := f.trackers[id]
	if !ok {
		f.mu.Unlock()
		return
	}
	state := st.GetState()
	t.State = state.String()
	if state == mesos.TASK_RUNNING && t.running.IsZero() {
		t.running = now
	}
	if !scheduler.IsTerminal(state) {
		f.mu.Unlock()
		return
	}
	delete(f.trackers, id)
	a := f.agent(t.AgentID)
	if a.tracker == id {
		a.tracker = ""
	}
	if !t.running.IsZero() && now.Sub(t.running) >= stableAfter {
		a.losses = 0
	}
	a.losses++
	wait := min(relaunchMin<<min(a.losses-1, 16), relaunchMax)
	a.notUntil = now.Add(wait)
	stopping := f.stopping
	f.mu.Unlock()
	if stopping {
		return
	}
	f.log.Warn("task tracker ended; launching another", "task", id, "agent", t.AgentID, "host", t.Host,
		"state", t.State, "reason", st.GetReason().String(), "message", st.GetMessage(), "relaunch_after", wait)
	// Revive even when offers are not suppressed: it also clears the
	// filters of earlier declines, so the freed agent is offered at once.
	if err := f.driver.Revive(ctx); err != nil {
		f.log.Debug("revive offers", "err", err)
		return
	}
	f.mu.Lock()
	f.suppressed = false
	f.mu.Unlock()
}

// adjustOffers suppresses offers while no tracker is wanted and revives
// them when one is.
func (f *Framework) adjustOffers(ctx context.Context) {
	f.mu.Lock()
	n, maps, reduces := f.totals()
	want := f.s.WantMore(n, maps, reduces) && !f.stopping
	change := want == f.suppressed
	f.mu.Unlock()
	if !change {
		return
	}
	var err error
	if want {
		err = f.driver.Revive(ctx)
	} else {
		err = f.driver.Suppress(ctx)
	}
	if err != nil {
		f.log.Debug("suppress or revive offers", "revive", want, "err", err)
		return
	}
	f.mu.Lock()
	f.suppressed = !want
	f.mu.Unlock()
}

// totals counts the live trackers and their slots. Call with f.mu held.
func (f *Framework) totals() (n, maps, reduces int) {
	for _, t := range f.trackers {
		n, maps, reduces = n+1, maps+t.MapSlots, reduces+t.ReduceSlots
	}
	return n, maps, reduces
}

// agent returns the record of agent id. Call with f.mu held.
func (f *Framework) agent(id string) *agent {
	a := f.agents[id]
	if a == nil {
		a = &agent{}
		f.agents[id] = a
	}
	return a
}
