// Package framework runs a real Storm cluster on agora, as mesos/storm
// does, through the scheduler SDK only: Nimbus as a long-running task (or
// the user's own), and supervisors launched on offers while the
// topologies Nimbus runs ask for more worker slots than there are, each
// sized with mesos/storm's keys (package plan), and released when idle.
// It asks for offers only while it needs one: it declines with long
// filters and suppresses otherwise.
package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	schedpb "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/frameworks/scheduler"
	"github.com/agora-cluster/agora/storm/plan"
)

const (
	// refuseIdle keeps offers away while nothing is wanted (offers are
	// suppressed too; this covers offers already on their way).
	refuseIdle = 2 * time.Minute
	// refuseUnfit is for an agent that cannot hold a supervisor now, or
	// may not (constraints, hosts, one per agent).
	refuseUnfit = 30 * time.Second
	// recentFor is how long, after a supervisor of the framework ends,
	// Nimbus's count of supervisors on its host is not trusted: Nimbus
	// lists a dead supervisor until nimbus.supervisor.timeout.secs (60).
	recentFor = 90 * time.Second
	// relaunchMin spaces the launches on an agent where daemons keep dying.
	relaunchMin = 2 * time.Second
	relaunchMax = time.Minute
)

// Config configures a Framework.
type Config struct {
	// Masters are the masters to subscribe with (host:port or zk://).
	Masters []string
	// Settings are the sizing and framework keys (plan.From).
	Settings plan.Settings
	// Home is the Storm home installed on every agent (`agora dist
	// install storm`).
	Home string
	// Nimbus is the user's Nimbus, host:port; "" launches one as a task.
	Nimbus string
	// ZooKeeper are the servers, host:port; "" with Nimbus given means
	// those Nimbus uses (getNimbusConf).
	ZooKeeper []string
	// StateDir keeps the framework ID and its tasks, so that a restarted
	// scheduler re-adopts its supervisors; "" keeps nothing, and the
	// framework is torn down (its tasks killed) when Run ends.
	StateDir string
	// Teardown tears the framework down when Run ends even with a
	// StateDir.
	Teardown bool
	// Watch is how often Nimbus is asked about its topologies (5 s).
	Watch time.Duration
	// OnNimbus is called with the address of each Nimbus the framework
	// launched once it answers.
	OnNimbus func(addr string)
	// Logger receives the framework's logs; nil discards them.
	Logger *slog.Logger
	// Env are the variables passed to the daemons (JAVA_HOME); nil means
	// this process's.
	Env map[string]string
	// Principal and Secret, if set, are the credential the framework
	// registers with (FrameworkInfo.principal, HTTP Basic on its calls),
	// for masters that authenticate frameworks.
	Principal, Secret string
	// WebUI, if set, is the framework's webui_url: where its topologies
	// page is served (UIHandler). SetWebUI sets it after New.
	WebUI string
}

// Task is one daemon of the framework.
type Task struct {
	TaskID string `json:"task_id"`
	plan.Supervisor
	// State is the task's last known state.
	State string `json:"state"`
	// Nimbus is the Nimbus a supervisor was pointed at.
	Nimbus string `json:"nimbus,omitempty"`
}

// Framework keeps a Storm cluster's daemons running on agora. Create it
// with New and run it with Run.
type Framework struct {
	cfg    Config
	s      plan.Settings
	log    *slog.Logger
	zk     zooKeeper
	driver *scheduler.Driver
	store  *store

	// offersMu orders the suppress and revive calls of the event loop
	// and the watch, so the last one sent matches f.suppressed.
	offersMu sync.Mutex

	mu          sync.Mutex
	sups        map[string]*sup
	nimbus      *Task  // the launched Nimbus's task, or nil
	nimbusAddr  string // where Nimbus answers (the user's, or the task's once running)
	nimbusUp    string // the address of the Nimbus that last answered
	nimbusSeen  string // its task and address, to tell a new Nimbus on the same port
	released    map[string]bool
	recent      map[string]time.Time // host → when a supervisor there ended
	agents      map[string]*agent
	short       int // slots wanted, from the last look at Nimbus
	known       bool
	suppressed  bool
	stopping    bool
	frameworkID string
	incarnation string
	next        int
}

type sup struct {
	Task
	busy time.Time
}

type agent struct {
	losses   int
	notUntil time.Time
}

// New checks cfg and prepares the framework.
func New(cfg Config) (*Framework, error) {
	if len(cfg.Masters) == 0 {
		return nil, errors.New("storm framework: no master address")
	}
	if cfg.Home == "" {
		return nil, errors.New("storm framework: no Storm home on the agents (--storm_home)")
	}
	if cfg.Settings.Storm == nil {
		return nil, errors.New("storm framework: settings are incomplete; make them with plan.From")
	}
	f := &Framework{cfg: cfg, s: cfg.Settings, sups: map[string]*sup{}, released: map[string]bool{},
		recent: map[string]time.Time{}, agents: map[string]*agent{},
		incarnation: strconv.FormatInt(time.Now().Unix(), 36)}
	if cfg.Nimbus != "" {
		if err := checkHostPort(cfg.Nimbus); err != nil {
			return nil, fmt.Errorf("storm framework: --nimbus: %w", err)
		}
		f.nimbusAddr = cfg.Nimbus
	} else if len(cfg.ZooKeeper) == 0 {
		return nil, errors.New("storm framework: launching Nimbus needs its ZooKeeper servers (--storm_zookeeper HOST:PORT,...)")
	}
	if len(cfg.ZooKeeper) > 0 {
		z, err := parseZooKeeper(cfg.ZooKeeper)
		if err != nil {
			return nil, fmt.Errorf("storm framework: %w", err)
		}
		f.zk = z
	}
	if cfg.Watch <= 0 {
		f.cfg.Watch = 5 * time.Second
	}
	if cfg.Env == nil {
		f.cfg.Env = passedEnv()
	}
	f.log = cfg.Logger
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if cfg.StateDir != "" {
		st, saved, err := openStore(cfg.StateDir)
		if err != nil {
			return nil, fmt.Errorf("storm framework: %w", err)
		}
		f.store = st
		f.frameworkID = saved.FrameworkID
		// Their states are unknown until the master answers the
		// reconciliation.
		unknown := mesos.TASK_UNKNOWN.String()
		for _, t := range saved.Supervisors {
			t.State = unknown
			f.sups[t.TaskID] = &sup{Task: t, busy: time.Now()}
		}
		if saved.Nimbus != nil && cfg.Nimbus == "" {
			n := *saved.Nimbus
			n.State = unknown
			f.nimbus = &n
			f.nimbusAddr = net.JoinHostPort(n.Host, strconv.FormatUint(n.Port, 10))
		}
	}
	return f, nil
}

func checkHostPort(addr string) error {
	h, p, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil || h == "" || port < 1 || port > 65535 {
		return fmt.Errorf("%q is not HOST:PORT", addr)
	}
	return nil
}

// Supervisors lists the live supervisors, by task ID.
func (f *Framework) Supervisors() []Task {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Task, 0, len(f.sups))
	for _, s := range f.sups {
		out = append(out, s.Task)
	}
	slices.SortFunc(out, func(a, b Task) int { return compare(a.TaskID, b.TaskID) })
	return out
}

// SetWebUI sets the webui_url the framework subscribes with, before Run:
// the page's port is taken once the configuration is known to be good.
func (f *Framework) SetWebUI(u string) { f.cfg.WebUI = u }

// FrameworkID is the framework's ID once the master gave it ("" before).
func (f *Framework) FrameworkID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frameworkID
}

// Nimbus is the address of Nimbus once it answers.
func (f *Framework) Nimbus() (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nimbusUp, f.nimbusUp != ""
}

// Suppressed says whether the framework has suppressed its offers.
func (f *Framework) Suppressed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.suppressed
}

// Run subscribes and keeps the cluster's daemons running until ctx ends.
// Without a state directory it then tears the framework down (the master
// kills its tasks); with one it leaves the tasks running for the next
// scheduler to adopt (within the failover timeout). It returns an error
// if the master refuses the framework.
func (f *Framework) Run(ctx context.Context) error {
	checkpoint := f.s.Checkpoint
	role := f.s.Role
	failover := f.s.FailoverTimeout.Seconds()
	info := mesos.FrameworkInfo{Name: f.s.Name, User: f.s.User, Checkpoint: &checkpoint, Role: &role, FailoverTimeout: &failover}
	if f.cfg.WebUI != "" {
		info.WebUiURL = &f.cfg.WebUI
	}
	if f.cfg.Principal != "" {
		info.Principal = &f.cfg.Principal
	}
	if f.frameworkID != "" {
		info.ID = &mesos.FrameworkID{Value: f.frameworkID}
	}
	d, err := scheduler.New(scheduler.Config{
		Masters: f.cfg.Masters, Framework: info, Principal: f.cfg.Principal, Secret: f.cfg.Secret,
		Logger: f.log.With("component", "scheduler-driver"),
	}, scheduler.Simple(f.log, f.subscribed, f.offers, f.update))
	if err != nil {
		return fmt.Errorf("storm framework: %w", err)
	}
	f.driver = d
	f.log.Info("storm framework starting", "nimbus", f.cfg.Nimbus, "home", f.cfg.Home, "framework_id", f.frameworkID)

	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); f.watch(runCtx) }()
	defer func() { cancel(); <-watchDone }()
	select {
	case err := <-done:
		return fmt.Errorf("storm framework: %w", err)
	case <-ctx.Done():
	}
	f.mu.Lock()
	f.stopping = true
	f.mu.Unlock()
	if f.store != nil && !f.cfg.Teardown {
		// Leave the tasks for the next scheduler: only the stream ends.
		cancel()
		<-done
		return nil
	}
	tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer tcancel()
	if err := d.Teardown(tctx); err != nil {
		f.log.Warn("tear down (the master removes the framework and its tasks once it notices it is gone)", "err", err)
	}
	cancel()
	<-done
	return nil
}

// subscribed records the framework ID and asks for the state of every
// task it knows: after a restart, those still running are adopted; those
// lost meanwhile come back terminal and are replaced as needed.
func (f *Framework) subscribed(ctx context.Context, id string) {
	f.mu.Lock()
	f.frameworkID = id
	var tasks []schedpb.Call_Reconcile_Task
	for _, s := range f.sups {
		tasks = append(tasks, scheduler.ReconcileTask(s.TaskID, s.AgentID))
	}
	if f.nimbus != nil {
		tasks = append(tasks, scheduler.ReconcileTask(f.nimbus.TaskID, f.nimbus.AgentID))
	}
	f.saveLocked()
	f.mu.Unlock()
	f.log.Info("subscribed", "framework_id", id, "tasks", len(tasks))
	if len(tasks) > 0 {
		if err := f.driver.Reconcile(ctx, tasks); err != nil {
			f.log.Warn("reconcile", "err", err)
		}
	}
	// The driver re-subscribes with the roles it suppressed, so
	// f.suppressed still holds.
	f.adjustOffers(ctx)
}

// offers launches Nimbus or supervisors on the offers that fit while
// they are wanted, and declines the rest.
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

// useOffer launches a daemon on o if one is wanted and fits, or says for
// how long to refuse the offer.
func (f *Framework) useOffer(ctx context.Context, now time.Time, o *mesos.Offer) (time.Duration, bool) {
	f.mu.Lock()
	a := f.agent(o.AgentID.Value)
	switch {
	case f.stopping:
		f.mu.Unlock()
		return refuseIdle, false
	case now.Before(a.notUntil):
		f.mu.Unlock()
		return max(a.notUntil.Sub(now), 100*time.Millisecond), false
	case f.cfg.Nimbus == "" && f.nimbus == nil:
		return f.launchNimbus(ctx, o)
	case f.short <= 0 || f.nimbusAddr == "" || len(f.zk.hosts) == 0:
		f.mu.Unlock()
		return refuseIdle, false
	case f.onAgent(o.AgentID.Value) >= f.s.PerAgent:
		f.mu.Unlock()
		return refuseUnfit, false
	}
	sp, res, why := f.s.Size(o, f.short)
	if why != "" {
		f.mu.Unlock()
		f.log.Info("declining offer", "agent", o.AgentID.Value, "host", o.Hostname, "reason", why)
		return refuseUnfit, false
	}
	f.next++
	t := &sup{Task: Task{TaskID: fmt.Sprintf("storm-supervisor-%s-%d", f.incarnation, f.next), Supervisor: sp,
		State: mesos.TASK_STAGING.String(), Nimbus: f.nimbusAddr}, busy: now}
	f.sups[t.TaskID] = t
	f.short -= sp.Slots()
	nh, np := f.nimbusHostPort()
	d := supervisorDaemon(f.cfg.Home, f.s, f.zk, nh, np, sp, f.cfg.Env)
	f.saveLocked()
	f.mu.Unlock()

	ci := d.commandInfo()
	task := mesos.TaskInfo{
		Name:   fmt.Sprintf("%s | supervisor | %s", f.s.Name, sp.Host),
		TaskID: mesos.TaskID{Value: t.TaskID}, AgentID: o.AgentID,
		Resources: res, Command: &ci,
	}
	f.log.Info("launching supervisor", "task", t.TaskID, "host", sp.Host, "slots", sp.SlotPorts,
		"thrift_port", sp.Port, "cpus", sp.CPUs, "mem", sp.Mem)
	if err := f.driver.Launch(ctx, []mesos.OfferID{o.ID}, []mesos.TaskInfo{task}, scheduler.RefuseFor(refuseUnfit)); err != nil {
		f.log.Warn("launch supervisor", "task", t.TaskID, "err", err)
		f.mu.Lock()
		delete(f.sups, t.TaskID)
		f.short += sp.Slots()
		f.saveLocked()
		f.mu.Unlock()
		return refuseUnfit, false
	}
	return 0, true
}

// launchNimbus launches Nimbus on o. Call with f.mu held; it unlocks it.
func (f *Framework) launchNimbus(ctx context.Context, o *mesos.Offer) (time.Duration, bool) {
	port, res, why := f.s.SizeNimbus(o)
	if why != "" {
		f.mu.Unlock()
		f.log.Info("declining offer for Nimbus", "agent", o.AgentID.Value, "host", o.Hostname, "reason", why)
		return refuseUnfit, false
	}
	f.next++
	n := &Task{TaskID: fmt.Sprintf("storm-nimbus-%s-%d", f.incarnation, f.next), State: mesos.TASK_STAGING.String(),
		Supervisor: plan.Supervisor{AgentID: o.AgentID.Value, Host: o.Hostname, Port: port, CPUs: f.s.NimbusCPU, Mem: f.s.NimbusMem}}
	f.nimbus = n
	d := nimbusDaemon(f.cfg.Home, f.s, f.zk, o.Hostname, port, f.cfg.Env)
	f.saveLocked()
	f.mu.Unlock()
	ci := d.commandInfo()
	task := mesos.TaskInfo{
		Name:   f.s.Name + " | nimbus",
		TaskID: mesos.TaskID{Value: n.TaskID}, AgentID: o.AgentID,
		Resources: res, Command: &ci,
	}
	f.log.Info("launching nimbus", "task", n.TaskID, "host", o.Hostname, "port", port)
	if err := f.driver.Launch(ctx, []mesos.OfferID{o.ID}, []mesos.TaskInfo{task}, scheduler.RefuseFor(refuseUnfit)); err != nil {
		f.log.Warn("launch nimbus", "err", err)
		f.mu.Lock()
		f.nimbus = nil
		f.saveLocked()
		f.mu.Unlock()
		return refuseUnfit, false
	}
	return 0, true
}

// nimbusHostPort is where the supervisors find Nimbus. Call with f.mu held.
func (f *Framework) nimbusHostPort() (string, uint64) {
	h, p, _ := net.SplitHostPort(f.nimbusAddr)
	port, _ := strconv.ParseUint(p, 10, 64)
	return h, port
}

// update follows the daemons' tasks. A supervisor that ends is forgotten
// (its slots are wanted again at once if Nimbus's topologies still need
// them); a Nimbus that ends is launched again.
func (f *Framework) update(ctx context.Context, st mesos.TaskStatus) {
	now := time.Now()
	id := st.TaskID.Value
	state := st.GetState()
	f.mu.Lock()
	var t *Task
	isNimbus := false
	if s, ok := f.sups[id]; ok {
		t = &s.Task
	} else if f.nimbus != nil && f.nimbus.TaskID == id {
		t, isNimbus = f.nimbus, true
	} else {
		f.mu.Unlock()
		if !scheduler.IsTerminal(state) && state != mesos.TASK_UNKNOWN {
			// A task of an earlier life this scheduler does not know.
			f.log.Info("killing a task it does not know", "task", id)
			_ = f.driver.Kill(ctx, id, st.GetAgentID().GetValue())
		}
		return
	}
	t.State = state.String()
	if isNimbus && state == mesos.TASK_RUNNING {
		f.nimbusAddr = net.JoinHostPort(t.Host, strconv.FormatUint(t.Port, 10))
	}
	if !scheduler.IsTerminal(state) {
		f.saveLocked()
		f.mu.Unlock()
		return
	}
	a := f.agent(t.AgentID)
	released := f.released[id]
	delete(f.released, id)
	if !released {
		a.losses++
		a.notUntil = now.Add(min(relaunchMin<<min(a.losses-1, 16), relaunchMax))
	}
	if isNimbus {
		f.nimbus = nil
		f.nimbusAddr = ""
		f.nimbusUp = ""
	} else {
		delete(f.sups, id)
		f.recent[t.Host] = now
		if !released {
			f.short += t.Slots()
		}
	}
	f.saveLocked()
	stopping := f.stopping
	f.mu.Unlock()
	if stopping {
		return
	}
	if released {
		f.log.Info("supervisor released", "task", id, "host", t.Host, "state", t.State)
		return
	}
	f.log.Warn("daemon ended; launching another", "task", id, "host", t.Host, "nimbus", isNimbus,
		"state", t.State, "reason", st.GetReason().String(), "message", st.GetMessage())
	f.offersMu.Lock()
	defer f.offersMu.Unlock()
	if err := f.driver.Revive(ctx); err == nil {
		f.mu.Lock()
		f.suppressed = false
		f.mu.Unlock()
	}
}

// adjustOffers suppresses offers while nothing is wanted and revives them
// when something is.
func (f *Framework) adjustOffers(ctx context.Context) {
	f.offersMu.Lock()
	defer f.offersMu.Unlock()
	f.mu.Lock()
	want := !f.stopping && ((f.cfg.Nimbus == "" && f.nimbus == nil) || (f.short > 0 && f.nimbusAddr != ""))
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
	f.log.Info("offers", "wanted", want)
	f.mu.Lock()
	f.suppressed = !want
	f.mu.Unlock()
}

// onAgent counts the supervisors on an agent. Call with f.mu held.
func (f *Framework) onAgent(id string) int {
	n := 0
	for _, s := range f.sups {
		if s.AgentID == id {
			n++
		}
	}
	return n
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

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
