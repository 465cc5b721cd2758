// Package marathon is agora's long-running services framework: it speaks
// Marathon's /v2 REST API (apps, groups, tasks, the launch queue with
// placement diagnostics, deployments, app versions, events as SSE) and
// keeps every app's instances running on the cluster through the
// scheduler SDK only. Its decisions (validation, constraints, matching,
// health checks, scaling and rolling arithmetic) live in the pure package
// plan.
//
// Beyond Marathon: health checks all run on the agents; a deployment
// that makes no progress for its deadline (Config.DeploymentTimeout,
// ?deploymentTimeout=) fails with a reason and rolls back unless told
// not to (?autoRollback=false); GET /v2/deployments?embed=history lists
// the deployments that ended ([]DeploymentRecord: status success, failed
// or canceled, reason, rollbackDeploymentId), and each action of a
// deployment carries its progress (instances new, healthy, old, and the
// dependencies waited for).
package marathon

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

	"github.com/agora-cluster/agora/frameworks/marathon/plan"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

const (
	// refuseIdle keeps offers away while nothing is wanted (offers are
	// suppressed too; this covers offers already on their way).
	refuseIdle = 2 * time.Minute
	// refuseUnfit is for offers that no waiting instance fits; any
	// change revives, which clears it.
	refuseUnfit = 15 * time.Second
	// refuseRest is for what is left of an offer that launched.
	refuseRest = 5 * time.Second
	// tick is how often kills are re-sent, delays expire and
	// reconciliation is retried.
	tick = time.Second
	// killAgain is how long a kill may go unanswered before it is sent
	// again.
	killAgain = 10 * time.Second
)

// Config configures a Framework.
type Config struct {
	// Masters are the masters to subscribe with (host:port or zk://).
	Masters []string
	// WorkDir keeps the framework ID, the apps and the instances, so that
	// a restarted framework adopts its running tasks. Required.
	WorkDir string
	// Name is the framework's name (default "marathon"); User the user
	// tasks run as (default: the current user); Role its role ("*").
	Name, User, Role string
	// FailoverTimeout is how long the master keeps the tasks of a
	// disconnected framework (default one week, as Marathon's).
	FailoverTimeout time.Duration
	// HTTPAddress is where the API answers, host:port, for /v2/info,
	// /v2/leader and the framework's webui_url.
	HTTPAddress string
	// HTTPS says the API is served over TLS: the webui_url is https://.
	HTTPS bool
	// DeploymentTimeout is a deployment's progress deadline: one that makes
	// no progress for this long fails (default 10 minutes; negative: no
	// deadline). A request's ?deploymentTimeout= overrides it.
	DeploymentTimeout time.Duration
	// NoAutoRollback keeps a deployment that missed its deadline from
	// rolling back to the app's previous definition (a request's
	// ?autoRollback= overrides it).
	NoAutoRollback bool
	// MaxVersions is how many versions of each app are kept for
	// /v2/apps/{id}/versions (default 50); older ones are pruned.
	MaxVersions int
	// Principal and Secret are the framework's credentials, for a master
	// with --authenticate_frameworks (also its FrameworkInfo.principal).
	Principal, Secret string
	// Logger receives the framework's logs; nil discards them.
	Logger *slog.Logger
}

// Task is one instance of an app as Marathon's API shows it, and as it is
// kept in its file.
type Task struct {
	ID        string     `json:"id"`
	AppID     string     `json:"appId"`
	AgentID   string     `json:"slaveId"`
	Host      string     `json:"host"`
	Ports     []uint64   `json:"ports"`
	State     string     `json:"state"`
	StagedAt  time.Time  `json:"stagedAt"`
	StartedAt *time.Time `json:"startedAt,omitempty"`
	Version   string     `json:"version"`
	// ConfigVersion is the app's lastConfigChangeAt at launch: instances
	// of an older config are replaced.
	ConfigVersion string `json:"configVersion"`
	// Goal is Running, or Decommissioned once the framework has decided
	// to kill it (scale down, restart, delete).
	Goal string `json:"goal"`
	// Agent is what constraints see of its agent.
	Agent plan.Agent `json:"agent"`
	// HealthChecked says its app had a health check when it was launched:
	// it counts as healthy only once the agent reports it so.
	HealthChecked bool `json:"healthChecked,omitempty"`
	// UnreachableSince is when the master lost the instance's agent
	// (TASK_UNREACHABLE), nil while it is reachable. The app's
	// unreachableStrategy says when it is replaced and forgotten.
	UnreachableSince *time.Time `json:"unreachableSince,omitempty"`
	inactive         bool       // unreachable long enough to be replaced
	// HealthCheckResults is what the agent last reported of its health.
	HealthCheckResults []HealthResult `json:"healthCheckResults,omitempty"`
	// Ready says its app's readiness check has answered ready (then it
	// is not checked again).
	Ready bool `json:"ready,omitempty"`

	// The latest readiness check, and when the next is due.
	readiness     *ReadinessResult
	readyNext     time.Time
	readyChecking bool

	killSent time.Time
	// confirmed is set by the first status update since this run of the
	// framework launched or loaded the task: the state and health read
	// from disk are not current (updates are not written), so an app
	// with unconfirmed instances is not acted on until reconciliation
	// has answered for them.
	confirmed bool
}

// Goals of an instance.
const (
	GoalRunning        = "Running"
	GoalDecommissioned = "Decommissioned"
)

func (t *Task) running() bool { return t.State == mesos.TASK_RUNNING.String() }

// healthy reports whether the instance runs and, if it has a health
// check, has passed it since its last failure.
func (t *Task) healthy() bool {
	if !t.running() {
		return false
	}
	return !t.HealthChecked || (len(t.HealthCheckResults) > 0 && t.HealthCheckResults[0].Alive)
}

// unhealthy reports whether the instance's last health report failed.
func (t *Task) unhealthy() bool {
	return t.HealthChecked && len(t.HealthCheckResults) > 0 && !t.HealthCheckResults[0].Alive
}

// HealthResult is an instance's health as Marathon's healthCheckResults
// show it, from the agent's health reports.
type HealthResult struct {
	Alive               bool       `json:"alive"`
	ConsecutiveFailures int        `json:"consecutiveFailures"`
	FirstSuccess        *time.Time `json:"firstSuccess"`
	LastSuccess         *time.Time `json:"lastSuccess"`
	LastFailure         *time.Time `json:"lastFailure"`
	LastFailureCause    string     `json:"lastFailureCause,omitempty"`
	TaskID              string     `json:"taskId"`
	InstanceID          string     `json:"instanceId"`
}

// observeHealth records a health report; it says whether the instance's
// health changed.
func (t *Task) observeHealth(healthy bool, cause string, now time.Time) bool {
	if len(t.HealthCheckResults) == 0 {
		t.HealthCheckResults = []HealthResult{{TaskID: t.ID, InstanceID: t.ID}}
	}
	r := &t.HealthCheckResults[0]
	was := r.Alive && r.LastSuccess != nil
	at := now
	if healthy {
		r.Alive, r.ConsecutiveFailures, r.LastSuccess = true, 0, &at
		if r.FirstSuccess == nil {
			r.FirstSuccess = &at
		}
		return !was
	}
	r.Alive = false
	r.ConsecutiveFailures++
	r.LastFailure, r.LastFailureCause = &at, cause
	return was || r.ConsecutiveFailures == 1
}

// app is one app and what the framework tracks for it.
type app struct {
	def        plan.App
	cons       []plan.Constraint
	want       int       // new instances to launch now
	since      time.Time // when it began waiting for offers
	stats      plan.OfferStats
	failures   int // failed or finished instances in a row
	delayUntil time.Time
	lastFail   *TaskFailure
	scaledAt   time.Time
	changedAt  time.Time
}

// TaskFailure is an app's lastTaskFailure.
type TaskFailure struct {
	AppID     string    `json:"appId"`
	Host      string    `json:"host"`
	Message   string    `json:"message"`
	State     string    `json:"state"`
	TaskID    string    `json:"taskId"`
	Timestamp time.Time `json:"timestamp"`
	Version   string    `json:"version"`
}

// Framework keeps Marathon apps running on agora. Create it with New,
// run it with Run, and serve its API with Handler.
type Framework struct {
	cfg    Config
	log    *slog.Logger
	store  *store
	driver *scheduler.Driver
	events *bus

	// offersMu orders suppress and revive calls so that the last one
	// sent matches f.suppressed.
	offersMu sync.Mutex

	mu          sync.Mutex
	apps        map[string]*app
	tasks       map[string]*Task
	byApp       map[string]map[string]*Task // the tasks by app, for tasksOf
	deployments map[string]*Deployment
	history     []DeploymentRecord // ended deployments, oldest first
	frameworkID string
	suppressed  bool
	reconciler  *scheduler.Reconciler
	reviveDue   bool          // something new is wanted: clear the decline filters
	kick        chan struct{} // converge now (capacity 1)
	stopping    bool
	probing     int            // readiness probes in flight
	probes      sync.WaitGroup // the readiness probes' goroutines
}

// New checks cfg, reads the work directory and prepares the framework.
func New(cfg Config) (*Framework, error) {
	if len(cfg.Masters) == 0 {
		return nil, errors.New("marathon: no master address")
	}
	if cfg.WorkDir == "" {
		return nil, errors.New("marathon: no work directory (--work_dir)")
	}
	if cfg.Name == "" {
		cfg.Name = "marathon"
	}
	if cfg.Role == "" {
		cfg.Role = "*"
	}
	if cfg.DeploymentTimeout == 0 {
		cfg.DeploymentTimeout = 10 * time.Minute
	}
	if cfg.MaxVersions <= 0 {
		cfg.MaxVersions = 50
	}
	if cfg.FailoverTimeout <= 0 {
		cfg.FailoverTimeout = 7 * 24 * time.Hour
	}
	f := &Framework{cfg: cfg, log: cfg.Logger, apps: map[string]*app{}, tasks: map[string]*Task{},
		byApp:       map[string]map[string]*Task{},
		deployments: map[string]*Deployment{}, events: newBus(), kick: make(chan struct{}, 1)}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	st, s, err := openStore(cfg.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("marathon: %w", err)
	}
	f.store = st
	f.frameworkID = s.FrameworkID
	now := time.Now()
	for _, d := range s.Apps {
		f.apps[d.ID] = &app{def: d, cons: d.ParsedConstraints(), since: now}
	}
	for _, t := range s.Tasks {
		f.addTask(t)
	}
	for _, d := range s.Deployments {
		f.restoreDeployment(d, now)
	}
	checkpoint := true
	failover := cfg.FailoverTimeout.Seconds()
	role := cfg.Role
	// Partition-aware: an instance whose agent is lost is
	// TASK_UNREACHABLE (not TASK_LOST), so each app's unreachableStrategy
	// decides when it is replaced and whether it may come back.
	info := mesos.FrameworkInfo{Name: cfg.Name, User: cfg.User, Role: &role, Checkpoint: &checkpoint,
		FailoverTimeout: &failover, Capabilities: scheduler.Capabilities(mesos.FrameworkInfo_Capability_PARTITION_AWARE)}
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
		return nil, fmt.Errorf("marathon: %w", err)
	}
	return f, nil
}

// Run subscribes and keeps the apps' instances running until ctx ends.
// The tasks keep running when it returns, for the next framework with the
// same work directory to adopt (within the failover timeout). It returns
// an error if the master refuses the framework.
func (f *Framework) Run(ctx context.Context) error {
	d := f.driver
	f.log.Info("marathon framework starting", "apps", len(f.apps), "instances", len(f.tasks), "framework_id", f.frameworkID)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	tickDone := make(chan struct{})
	go func() { defer close(tickDone); f.ticker(runCtx) }()
	readyDone := make(chan struct{})
	go func() { defer close(readyDone); f.readinessLoop(runCtx) }()
	defer func() { cancel(); <-tickDone; <-readyDone }()
	select {
	case err := <-done:
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("marathon: %w", err)
	case <-ctx.Done():
	}
	f.mu.Lock()
	f.stopping = true
	f.mu.Unlock()
	cancel()
	<-done
	f.events.close()
	return nil
}

// FrameworkID is the ID the master gave, or "".
func (f *Framework) FrameworkID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frameworkID
}

// Subscribed reports whether the framework is subscribed with a master.
func (f *Framework) Subscribed() bool {
	return f.driver.Subscribed()
}

// Suppressed says whether the framework has suppressed its offers.
func (f *Framework) Suppressed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.suppressed
}

// subscribed records the framework ID (durably, before anything is
// launched under it) and reconciles: every task it knows explicitly, so
// that those still running are adopted and those lost are replaced, and
// then all the master knows of it, so that tasks it does not know are
// killed.
func (f *Framework) subscribed(ctx context.Context, id string) {
	f.mu.Lock()
	if f.frameworkID != id {
		if err := f.store.saveFrameworkID(id); err != nil {
			f.log.Error("save the framework ID", "err", err)
		}
		f.frameworkID = id
	}
	known := map[string]string{}
	for _, t := range f.tasks {
		known[t.ID] = t.AgentID
	}
	f.reconciler = scheduler.NewReconciler(known, time.Now(), scheduler.Backoff{Min: time.Second, Max: time.Minute})
	f.mu.Unlock()
	f.log.Info("subscribed", "framework_id", id, "instances", len(known))
	f.reconcile(ctx)
	if err := f.driver.Reconcile(ctx, nil); err != nil {
		f.log.Warn("implicit reconciliation", "err", err)
	}
	f.converge(ctx)
}

// reconcile sends the explicit reconciliation that is due.
func (f *Framework) reconcile(ctx context.Context) {
	f.mu.Lock()
	r := f.reconciler
	var due []schedpb.Call_Reconcile_Task
	if r != nil {
		due, _ = r.Due(time.Now())
	}
	f.mu.Unlock()
	if len(due) == 0 {
		return
	}
	if err := f.driver.Reconcile(ctx, due); err != nil {
		f.log.Warn("reconcile", "tasks", len(due), "err", err)
	}
}

// ticker does what no event prompts: launch delays run out, kills are
// sent again, reconciliation is retried.
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
		f.converge(ctx)
	}
}

// sortedApps lists the apps by ID. Call with f.mu held.
func (f *Framework) sortedApps() []*app {
	out := make([]*app, 0, len(f.apps))
	for _, a := range f.apps {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].def.ID < out[j].def.ID })
	return out
}

// addTask and removeTask keep f.tasks and its index by app. Call with
// f.mu held.
func (f *Framework) addTask(t *Task) {
	f.tasks[t.ID] = t
	if f.byApp[t.AppID] == nil {
		f.byApp[t.AppID] = map[string]*Task{}
	}
	f.byApp[t.AppID][t.ID] = t
}

func (f *Framework) removeTask(t *Task) {
	delete(f.tasks, t.ID)
	delete(f.byApp[t.AppID], t.ID)
	if len(f.byApp[t.AppID]) == 0 {
		delete(f.byApp, t.AppID)
	}
}

// tasksOf lists an app's tasks, oldest first. Call with f.mu held.
func (f *Framework) tasksOf(appID string) []*Task {
	out := make([]*Task, 0, len(f.byApp[appID]))
	for _, t := range f.byApp[appID] {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StagedAt.Equal(out[j].StagedAt) {
			return out[i].StagedAt.Before(out[j].StagedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}
