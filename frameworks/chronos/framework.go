// Package chronos is agora's scheduled-jobs framework: it speaks Chronos's
// /v1/scheduler REST API (ISO 8601 and cron schedules with a time zone,
// dependent jobs, retries, manual runs, the job graph) and runs each job
// run as a task through the scheduler SDK. Every scheduled instant runs at
// most once, even across a restart of the framework: a run's task is
// recorded before it is launched and reconciled after a restart. The
// scheduling decisions live in the pure package schedule.
package chronos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	schedpb "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/frameworks/chronos/schedule"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

const (
	// refuseIdle keeps offers away while no run waits (offers are
	// suppressed too; this covers offers already on their way).
	refuseIdle = 2 * time.Minute
	// refuseRest is for offers, or what is left of them, that no waiting
	// run fits.
	refuseRest = 5 * time.Second
	// tick is how often schedules are checked and reconciliation retried.
	tick = 250 * time.Millisecond
	// defaultEpsilon is Chronos's --task_epsilon.
	defaultEpsilon = time.Minute
)

// Config configures a Framework.
type Config struct {
	// Masters are the masters to subscribe with (host:port or zk://).
	Masters []string
	// WorkDir keeps the framework ID and one file per job. Required.
	WorkDir string
	// Name is the framework's name (default "chronos"); User the user
	// tasks run as (default: the current user); Role its role ("*").
	Name, User, Role string
	// FailoverTimeout is how long the master keeps the tasks of a
	// disconnected framework (default one week).
	FailoverTimeout time.Duration
	// Epsilon is how late a run may start before it is skipped, for jobs
	// that give none (default one minute, Chronos's --task_epsilon).
	Epsilon time.Duration
	// HTTPAddress is where the API answers, host:port (the webui_url and
	// /leader).
	HTTPAddress string
	// HTTPS says the API is served over TLS: the webui_url is https://.
	HTTPS bool
	// Now is the clock (default time.Now); tests drive schedules with a
	// fake one.
	Now func() time.Time
	// LaunchHook, if set, is called at the two moments of a launch: with
	// "recorded" once a run's task is written to disk and before it is
	// sent to the master, and with "sent" once the master took it. If it
	// returns false the framework stops dead there, as a process killed
	// at that moment would: nothing more is written or sent. Tests use it
	// to kill the framework at the moment a run starts.
	LaunchHook func(stage, job, taskID string) bool
	// Principal and Secret are the framework's credentials, for a master
	// with --authenticate_frameworks (also its FrameworkInfo.principal).
	Principal, Secret string
	// Logger receives the framework's logs; nil discards them.
	Logger *slog.Logger
}

// Framework runs Chronos jobs on agora. Create it with New, run it with
// Run, and serve its API with Handler.
type Framework struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	store  *store
	driver *scheduler.Driver

	// offersMu orders suppress and revive calls so that the last one
	// sent matches f.suppressed.
	offersMu sync.Mutex

	mu          sync.Mutex
	jobs        map[string]*record
	sched       map[string]schedule.Schedule // parsed schedules of scheduled jobs
	frameworkID string
	suppressed  bool
	reviveDue   bool
	reconciler  *scheduler.Reconciler
	kick        chan struct{}
	dead        bool // LaunchHook stopped it
	stopping    bool
}

// New checks cfg, reads the work directory and prepares the framework.
func New(cfg Config) (*Framework, error) {
	if len(cfg.Masters) == 0 {
		return nil, errors.New("chronos: no master address")
	}
	if cfg.WorkDir == "" {
		return nil, errors.New("chronos: no work directory (--work_dir)")
	}
	if cfg.Name == "" {
		cfg.Name = "chronos"
	}
	if cfg.Role == "" {
		cfg.Role = "*"
	}
	if cfg.FailoverTimeout <= 0 {
		cfg.FailoverTimeout = 7 * 24 * time.Hour
	}
	if cfg.Epsilon <= 0 {
		cfg.Epsilon = defaultEpsilon
	}
	f := &Framework{cfg: cfg, log: cfg.Logger, now: cfg.Now, jobs: map[string]*record{},
		sched: map[string]schedule.Schedule{}, kick: make(chan struct{}, 1)}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.now == nil {
		f.now = time.Now
	}
	st, id, recs, err := openStore(cfg.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("chronos: %w", err)
	}
	f.store, f.frameworkID = st, id
	for _, r := range recs {
		s, err := r.Job.scheduleOf()
		if err != nil {
			return nil, fmt.Errorf("chronos: stored job %q: %w", r.Job.Name, err)
		}
		f.jobs[r.Job.Name] = r
		if s != nil {
			f.sched[r.Job.Name] = s
		}
	}
	checkpoint := true
	failover := cfg.FailoverTimeout.Seconds()
	role := cfg.Role
	info := mesos.FrameworkInfo{Name: cfg.Name, User: cfg.User, Role: &role, Checkpoint: &checkpoint,
		FailoverTimeout: &failover}
	if f.frameworkID != "" {
		info.ID = &mesos.FrameworkID{Value: f.frameworkID}
	}
	if cfg.HTTPAddress != "" {
		ui := "http://" + cfg.HTTPAddress
		if cfg.HTTPS {
			ui = "https://" + cfg.HTTPAddress
		}
		info.WebUiURL = &ui
	}
	if f.driver, err = scheduler.New(scheduler.Config{Masters: cfg.Masters, Framework: info,
		Principal: cfg.Principal, Secret: cfg.Secret, Logger: f.log.With("component", "scheduler-driver")}, scheduler.Simple(f.log, f.subscribed, f.offers, f.update)); err != nil {
		return nil, fmt.Errorf("chronos: %w", err)
	}
	return f, nil
}

// Run subscribes and runs the jobs until ctx ends. Tasks keep running
// when it returns, for the next framework with the same work directory to
// adopt. It returns an error if the master refuses the framework.
func (f *Framework) Run(ctx context.Context) error {
	f.log.Info("chronos framework starting", "jobs", len(f.jobs), "framework_id", f.frameworkID)
	// The pages' change feeds end with the framework, so that the API's
	// graceful shutdown does not wait for the pages to go.
	defer f.store.changes.Close()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.driver.Run(runCtx) }()
	tickDone := make(chan struct{})
	go func() { defer close(tickDone); f.ticker(runCtx) }()
	defer func() { cancel(); <-tickDone }()
	select {
	case err := <-done:
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("chronos: %w", err)
	case <-ctx.Done():
	}
	f.mu.Lock()
	f.stopping = true
	f.mu.Unlock()
	cancel()
	<-done
	return nil
}

// FrameworkID is the ID the master gave, or "".
func (f *Framework) FrameworkID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frameworkID
}

// Subscribed reports whether the framework is subscribed with a master.
func (f *Framework) Subscribed() bool { return f.driver.Subscribed() }

// Dead reports whether LaunchHook stopped the framework.
func (f *Framework) Dead() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dead
}

// poke has the ticker look at the jobs now.
func (f *Framework) poke() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// subscribed records the framework ID (durably, before anything is
// launched under it) and reconciles the runs whose task may exist: those
// still running are adopted, those that ended are settled, and those the
// master never saw are launched again. Then all the master knows of the
// framework, so that tasks of no run are killed.
func (f *Framework) subscribed(ctx context.Context, id string) {
	f.mu.Lock()
	if f.dead {
		f.mu.Unlock()
		return
	}
	if f.frameworkID != id {
		if err := f.store.saveFrameworkID(id); err != nil {
			f.log.Error("save the framework ID", "err", err)
		}
		f.frameworkID = id
	}
	known := map[string]string{}
	for _, r := range f.jobs {
		if r.Run != nil && r.Run.TaskID != "" {
			known[r.Run.TaskID] = r.Run.AgentID
		}
	}
	f.reconciler = scheduler.NewReconciler(known, time.Now(), scheduler.Backoff{Min: time.Second, Max: time.Minute})
	f.reviveDue = true
	f.mu.Unlock()
	f.log.Info("subscribed", "framework_id", id, "runs in flight", len(known))
	f.reconcile(ctx)
	if err := f.driver.Reconcile(ctx, nil); err != nil {
		f.log.Warn("implicit reconciliation", "err", err)
	}
	f.poke()
}

// reconcile sends the explicit reconciliation that is due.
func (f *Framework) reconcile(ctx context.Context) {
	f.mu.Lock()
	var due []schedpb.Call_Reconcile_Task
	if f.reconciler != nil && !f.dead {
		due, _ = f.reconciler.Due(time.Now())
	}
	f.mu.Unlock()
	if len(due) == 0 {
		return
	}
	if err := f.driver.Reconcile(ctx, due); err != nil {
		f.log.Warn("reconcile", "tasks", len(due), "err", err)
	}
}

// ticker starts the runs that fall due and keeps the offers flowing to
// match the runs that wait.
func (f *Framework) ticker(ctx context.Context) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.kick:
		}
		if !f.Subscribed() {
			continue
		}
		f.reconcile(ctx)
		f.startDue()
		f.adjustOffers(ctx)
	}
}

// startDue queues a run for every scheduled job whose instant has come,
// and records the instants missed by more than their epsilon.
func (f *Framework) startDue() {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead || f.stopping {
		return
	}
	for _, name := range f.names() {
		r, s := f.jobs[name], f.sched[name]
		if s == nil && f.startChild(r, now) {
			f.save(r)
		}
		if s == nil || r.NextDue == nil || r.Run != nil || now.Before(*r.NextDue) {
			continue
		}
		d := schedule.Due(s, *r.NextDue, now, r.Job.epsilon(f.cfg.Epsilon))
		if d.RunOK && r.Job.Disabled {
			d.RunOK = false
		}
		next := r.NextDue
		if d.NextOK {
			next = &d.Next
		} else {
			next = nil
		}
		old := *r
		r.NextDue = next
		for _, m := range d.Missed {
			r.remember(RunResult{Instant: m, State: stateMissed, Ended: now,
				Message: fmt.Sprintf("not started within epsilon %s", r.Job.epsilon(f.cfg.Epsilon))})
			r.Missed = append(r.Missed, m)
		}
		if n := len(r.Missed) - 20; n > 0 {
			r.Missed = append([]time.Time(nil), r.Missed[n:]...)
		}
		r.MissedCount += d.MissedCount
		if d.RunOK {
			r.Run = &Run{Instant: d.Run, State: stateQueued, QueuedAt: now}
			r.LastTriggered = d.Run
			f.reviveDue = true
		}
		if err := f.store.save(r); err != nil {
			*r = old // not started: a run not on disk could run twice
			f.log.Error("save job; not starting its run", "job", name, "err", err)
			continue
		}
		if d.MissedCount > 0 {
			f.log.Warn("missed runs: later than epsilon", "job", name, "missed", d.MissedCount, "last", d.Missed[len(d.Missed)-1])
		}
		if d.RunOK {
			f.log.Info("run due", "job", name, "instant", d.Run)
		}
	}
}

// names lists the jobs by name. Call with f.mu held.
func (f *Framework) names() []string {
	out := make([]string, 0, len(f.jobs))
	for n := range f.jobs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// waiting lists the jobs whose run waits for an offer, oldest first. Call
// with f.mu held.
func (f *Framework) waiting() []*record {
	var out []*record
	for _, r := range f.jobs {
		if r.Run != nil && r.Run.State == stateQueued {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Run, out[j].Run
		if !a.QueuedAt.Equal(b.QueuedAt) {
			return a.QueuedAt.Before(b.QueuedAt)
		}
		return out[i].Job.Name < out[j].Job.Name
	})
	return out
}

// adjustOffers revives offers when runs wait (and something changed since
// the last decline) and suppresses them when none does.
func (f *Framework) adjustOffers(ctx context.Context) {
	f.offersMu.Lock()
	defer f.offersMu.Unlock()
	f.mu.Lock()
	if f.dead {
		f.mu.Unlock()
		return
	}
	want := !f.stopping && len(f.waiting()) > 0
	revive := want && (f.suppressed || f.reviveDue)
	suppress := !want && !f.suppressed
	f.mu.Unlock()
	var err error
	switch {
	case revive:
		err = f.driver.Revive(ctx)
	case suppress:
		err = f.driver.Suppress(ctx)
	default:
		return
	}
	if err != nil {
		f.log.Debug("revive or suppress offers", "revive", revive, "err", err)
		return
	}
	f.mu.Lock()
	f.suppressed = suppress
	if revive {
		f.reviveDue = false
	}
	f.mu.Unlock()
}
