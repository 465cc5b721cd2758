// Package framework is agora's Spark scheduler: one SDK framework ("Spark
// Executors") that launches the executors of every Spark application whose
// driver runs with master mesos://HOST:PORT or agora://HOST:PORT, HOST:PORT
// being this scheduler's API. The driver's side is the cluster manager of
// spark/jvm, which only relays: it registers the application (its driver
// URL, application ID and spark.* settings), asks for a total of
// executors, asks for executors to be killed, and says when the
// application ends. Sizing, offers, placement and blocklisting are decided
// here.
//
// One framework serves every application (Spark's Mesos backend ran one
// per application, inside the driver through libmesos): the driver holds
// no subscription of its own, so an application starts with no
// subscription handshake, offers are declined and suppressed in one
// place, and a driver that dies without saying so leaves no framework
// behind — its executors lose their driver and exit, and their tasks end.
package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	mscheduler "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/frameworks/scheduler"
	"github.com/agora-cluster/agora/spark/dispatcher"
)

// Config configures a Scheduler.
type Config struct {
	// Masters are the masters (host:port, or one zk:// URL).
	Masters []string
	// Listener serves the API the cluster manager calls; nil serves
	// nothing (mount Handler elsewhere).
	Listener net.Listener
	// SparkHome is the Spark home on the agents whose bin/spark-class runs
	// the executors; an application's spark.mesos.executor.home or
	// spark.executor.uri overrides it.
	SparkHome string
	// Name (default "Spark Executors"), Roles (default ["*"]: an
	// application's spark.mesos.role must be one of them) and User
	// (default: the current user) of the framework.
	Name  string
	Roles []string
	User  string
	// MaxAgentFailures is how many executors of one application may fail
	// on an agent before the agent is not used for it again (default 2,
	// as Spark's Mesos backend).
	MaxAgentFailures int
	// ShuffleDir is where the external shuffle services and their
	// executors keep shuffle files on the agents' hosts, a directory
	// each service makes and removes (default /var/tmp/agora-spark-shuffle;
	// not /tmp, which a task may have to itself).
	ShuffleDir string
	// JavaHome, if set, is JAVA_HOME for the executors (default: this
	// process's JAVA_HOME).
	JavaHome string
	// Principal and Secret are the framework's credentials, for a master
	// with --authenticate_frameworks (also its FrameworkInfo.principal),
	// and sent on its reads of /master/slaves.
	Principal, Secret string
	// Auth, if set, asks every call of the API for a driver's token or an
	// operator's credentials (auth.go); nil leaves the API open.
	Auth   *Auth
	Logger *slog.Logger
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// calls are the calls the Scheduler makes to the master: a
// *scheduler.Driver once it runs (tests record them instead).
type calls interface {
	Launch(ctx context.Context, offerIDs []mesos.OfferID, tasks []mesos.TaskInfo, filters *mesos.Filters) error
	Decline(ctx context.Context, offerIDs []mesos.OfferID, refuse time.Duration) error
	Revive(ctx context.Context, roles ...string) error
	Suppress(ctx context.Context, roles ...string) error
	Kill(ctx context.Context, taskID, agentID string) error
	Reconcile(ctx context.Context, tasks []mscheduler.Call_Reconcile_Task) error
	Master() *mesos.MasterInfo
}

// Scheduler is a running Spark scheduler. Create it with New, then Run it.
type Scheduler struct {
	cfg   Config
	log   *slog.Logger
	sched calls

	mu         sync.Mutex
	apps       map[string]*App
	shuffle    map[string]*ShuffleService // by hostname
	shuffleSeq int
	order      []string // application IDs, oldest first
	subscribed bool
	// frameworkID is the framework's ID once subscribed (for the
	// dispatcher's page's links to the executors' sandboxes).
	frameworkID string
	gen         uint64     // moves with every change that wants offers
	callMu      sync.Mutex // orders revives after declines and suppresses
	agents      func(ctx context.Context) ([]AgentCapacity, error)
	// driverAlive checks a driver's endpoint (tests replace it).
	driverAlive func(driverURL string) bool
}

// New checks cfg.
func New(cfg Config) (*Scheduler, error) {
	switch {
	case len(cfg.Masters) == 0:
		return nil, errors.New("spark scheduler: no master given (--master)")
	case cfg.SparkHome == "":
		return nil, errors.New("spark scheduler: no Spark home for the executors (--spark_home)")
	}
	if cfg.Name == "" {
		cfg.Name = "Spark Executors"
	}
	var roles []string
	for _, r := range cfg.Roles {
		if r != "" {
			roles = append(roles, r)
		}
	}
	if cfg.Roles = roles; len(roles) == 0 {
		cfg.Roles = []string{"*"}
	}
	if cfg.MaxAgentFailures <= 0 {
		cfg.MaxAgentFailures = 2
	}
	if cfg.ShuffleDir == "" {
		cfg.ShuffleDir = "/var/tmp/agora-spark-shuffle"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Scheduler{cfg: cfg, log: cfg.Logger, apps: map[string]*App{}, shuffle: map[string]*ShuffleService{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.agents = s.masterAgents
	s.driverAlive = driverAlive
	return s, nil
}

// Addr is the API's address ("" without a Listener).
func (s *Scheduler) Addr() string {
	if s.cfg.Listener == nil {
		return ""
	}
	return s.cfg.Listener.Addr().String()
}

// Subscribed reports whether the framework is subscribed.
func (s *Scheduler) Subscribed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subscribed
}

// Run subscribes, serves the API and launches executors until ctx ends
// (it returns nil then). The framework is torn down when it stops: its
// executors end with it, as the applications cannot get new ones.
func (s *Scheduler) Run(ctx context.Context) error {
	info := mesos.FrameworkInfo{
		Name:         s.cfg.Name,
		User:         s.cfg.User,
		Roles:        s.cfg.Roles,
		Capabilities: scheduler.Capabilities(mesos.FrameworkInfo_Capability_MULTI_ROLE),
	}
	sd, err := scheduler.New(scheduler.Config{Masters: s.cfg.Masters, Framework: info,
		Principal: s.cfg.Principal, Secret: s.cfg.Secret, Logger: s.log.With("component", "scheduler-driver")}, s.handler())
	if err != nil {
		return fmt.Errorf("spark scheduler: %w", err)
	}
	s.mu.Lock()
	s.sched = sd
	s.mu.Unlock()
	if s.cfg.Listener != nil {
		srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(s.cfg.Listener)
		defer srv.Close()
	}
	s.log.Info("spark scheduler starting", "api", s.Addr(), "spark_home", s.cfg.SparkHome, "roles", s.cfg.Roles)
	// The framework is torn down while still subscribed, before the
	// driver's stream is closed.
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		select {
		case <-ctx.Done():
		case <-runCtx.Done():
			return
		}
		tctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sd.Teardown(tctx); err != nil {
			s.log.Warn("tear the framework down", "err", err)
		}
		stop()
	}()
	err = sd.Run(runCtx)
	s.mu.Lock()
	s.subscribed = false
	s.mu.Unlock()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("spark scheduler: %w", err)
}

// Apps are the applications, oldest first (copies).
func (s *Scheduler) Apps() []AppStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]AppStatus, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.apps[id].status())
	}
	return out
}

// App is one application's status.
func (s *Scheduler) App(id string) (AppStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[id]
	if a == nil {
		return AppStatus{}, false
	}
	return a.status(), true
}

// sortedKeys are m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// DispatcherApps are the applications as the dispatcher's page shows
// them with their drivers (dispatcher.Config.Applications): each tied to
// its driver by the spark.mesos.driver.frameworkId the dispatcher gave it.
func (s *Scheduler) DispatcherApps() []dispatcher.Application {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]dispatcher.Application, 0, len(s.order))
	for _, id := range s.order {
		a := s.apps[id]
		da := dispatcher.Application{ID: a.ID, Name: a.Name, State: a.State, DriverFrameworkID: a.Conf["spark.mesos.driver.frameworkId"],
			UIURL: a.UIURL, FrameworkID: s.frameworkID, Executors: make([]dispatcher.ApplicationExecutor, 0, len(a.execOrder))}
		for _, eid := range a.execOrder {
			e := a.executors[eid]
			da.Executors = append(da.Executors, dispatcher.ApplicationExecutor{ID: e.ID, TaskID: e.TaskID, AgentID: e.AgentID,
				Hostname: e.Hostname, CPUs: e.CPUs, MemMB: e.MemMB, State: e.State, Launched: e.Launched})
		}
		out = append(out, da)
	}
	return out
}
