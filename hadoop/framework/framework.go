// Package framework is agora's Hadoop framework scheduler: the JobTracker
// of the MapReduce engine run as an ordinary Mesos framework (DESIGN
// decision 5: it uses the scheduler SDK and the public API only).
//
// It accepts Streaming jobs over a REST API (package client), drives one
// jobtracker.Job core per job, and runs the attempts the cores assign on
// TaskTracker executors: custom executors (`agora hadoop tasktracker`,
// package hadoop/executor) sized from offers by mesos/hadoop's formulas
// (Sizing), one per agent, with map and reduce slots. Each attempt is a
// Mesos task launched on its tracker's executor with the
// tasktracker.Assignment and the tracker's umbilical token as data; its status updates carry progress and
// counters; a lost executor or agent loses the attempts and map outputs
// that lived there. Idle trackers are shut down after a number of idle
// checks. Submissions and job states are kept in a state directory
// (Store); a restarted scheduler re-subscribes with its framework ID and
// carries on with unfinished jobs, keeping their committed reduces and the
// map outputs that surviving trackers still serve (recovery.go).
//
// One goroutine (the loop) owns every job, tracker and task; the SDK's
// handler, the REST API and the umbilical (package umbilical) hand it
// events.
package framework

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/httplimit"
	"github.com/agora-cluster/agora/cluster/tlsconf"
	"github.com/agora-cluster/agora/frameworks/binstage"
	"github.com/agora-cluster/agora/frameworks/scheduler"
	"github.com/agora-cluster/agora/frameworks/servicepage"
	"github.com/agora-cluster/agora/hadoop/conf"

	// The built-in programs jobs may name (agora:teragen, agora:teravalidate).
	_ "github.com/agora-cluster/agora/hadoop/terasort"
)

// Config configures a Framework.
type Config struct {
	// Masters are the masters to subscribe with (host:port).
	Masters []string
	// Listener serves the REST API, the umbilical and (with ServeExecutor)
	// the executor binary. Required.
	Listener net.Listener
	// Advertise is how executors and clients reach the Listener, as
	// http://host:port; "" means the listener's address (127.0.0.1 when it
	// listens on every interface).
	Advertise string
	// StateDir keeps submissions and the framework ID across restarts.
	// Required.
	StateDir string
	// Conf holds the scheduler properties (mapred.mesos.*, see Sizing).
	Conf conf.Conf
	// Name is the framework's name; "" means "Hadoop".
	Name string
	// User runs the tasks; "" means the current user.
	User string
	// ExecutorBinary is the agora binary the agents run as the TaskTracker
	// ("agora hadoop tasktracker"); "" means this process's executable.
	// With ServeExecutor it is served over HTTP and fetched by the agents
	// (CommandInfo.uris, executable), as for agents on other machines.
	ExecutorBinary string
	ServeExecutor  bool
	// ExecutorEnv is added to the executors' environment.
	ExecutorEnv map[string]string
	// Principal and Secret are the framework's credentials, for a master
	// with --authenticate_frameworks (also its FrameworkInfo.principal).
	Principal, Secret string
	// TLS, if set, serves the Listener over HTTPS (the advertised URL
	// then starts with https://; the executors must trust its CA).
	TLS *tls.Config
	// TLSDowngrade also serves plain HTTP on the TLS port
	// (--ssl_support_downgrade), as the other services do.
	TLSDowngrade bool
	// WrapHTTP, if set, wraps the server's handler (authentication).
	WrapHTTP func(http.Handler) http.Handler
	// Logger receives the framework's logs; nil discards them.
	Logger *slog.Logger
}

// Framework is the Hadoop scheduler. Create it with New and start it with
// Run.
type Framework struct {
	cfg       Config
	log       *slog.Logger
	sizing    Sizing
	store     *Store
	advertise string
	// fetchToken is in the executor binary's URI (ServeExecutor): whoever
	// was given or may view the URI may fetch it, nobody else. Not a
	// secret (see executorURI).
	fetchToken string
	role       string
	events     chan any
	rng        *rand.Rand
	driver     *scheduler.Driver
	state      FrameworkState
	// changes is the page's change feed, bumped where the loop changes
	// what the page shows.
	changes *servicepage.Changes

	// Owned by the loop goroutine.
	jobs       map[string]*jobRun // every job, by ID
	active     []*jobRun          // running jobs, oldest first
	trackers   map[string]*tracker
	byAgent    map[string]*tracker     // the live tracker of each agent
	tasks      map[string]*taskRef     // live Mesos tasks by task ID
	shutdowns  map[string]bool         // executors we asked to shut down
	agentFails map[string]*agentHealth // trackers that died on each agent
	suppressed bool
	lastRevive time.Time
	recon      *scheduler.Reconciler
	nextExec   int
}

// New checks cfg and prepares a framework.
func New(cfg Config) (*Framework, error) {
	if cfg.Listener == nil {
		return nil, errors.New("hadoop framework: no listener")
	}
	if len(cfg.Masters) == 0 {
		return nil, errors.New("hadoop framework: no master address")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("hadoop framework: no state directory")
	}
	if cfg.Conf == nil {
		cfg.Conf = conf.New()
	}
	sizing, err := SizingFrom(cfg.Conf)
	if err != nil {
		return nil, fmt.Errorf("hadoop framework: %w", err)
	}
	if cfg.ExecutorBinary == "" {
		if cfg.ExecutorBinary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("hadoop framework: the executor binary: %w", err)
		}
	}
	if _, err := os.Stat(cfg.ExecutorBinary); err != nil {
		return nil, fmt.Errorf("hadoop framework: the executor binary: %w", err)
	}
	if !cfg.ServeExecutor && binstage.UnderTmp(cfg.ExecutorBinary) && !binstage.UnderTmp(cfg.StateDir) {
		if cfg.ExecutorBinary, err = binstage.Copy(cfg.ExecutorBinary, cfg.StateDir); err != nil {
			return nil, fmt.Errorf("hadoop framework: the executor binary: %w", err)
		}
	}
	if cfg.Name == "" {
		cfg.Name = "Hadoop"
	}
	store, err := OpenStore(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Framework{
		cfg: cfg, log: log, sizing: sizing, store: store, changes: servicepage.NewChanges(),
		role:       cfg.Conf.Get(KeyRole),
		events:     make(chan any, 4096),
		rng:        rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x68616470)),
		jobs:       map[string]*jobRun{},
		trackers:   map[string]*tracker{},
		byAgent:    map[string]*tracker{},
		tasks:      map[string]*taskRef{},
		shutdowns:  map[string]bool{},
		agentFails: map[string]*agentHealth{},
	}
	if f.role == "" {
		f.role = "*"
	}
	if cfg.ServeExecutor {
		if f.fetchToken, err = newToken(); err != nil {
			return nil, err
		}
	}
	f.advertise = cfg.Advertise
	if f.advertise == "" {
		tcp, ok := cfg.Listener.Addr().(*net.TCPAddr)
		if !ok {
			return nil, fmt.Errorf("hadoop framework: listener %s is not TCP; set Advertise", cfg.Listener.Addr())
		}
		ip := tcp.IP
		if ip == nil || ip.IsUnspecified() {
			ip = net.IPv4(127, 0, 0, 1)
		}
		scheme := "http://"
		if cfg.TLS != nil {
			scheme = "https://"
		}
		f.advertise = scheme + net.JoinHostPort(ip.String(), strconv.Itoa(tcp.Port))
	}
	return f, nil
}

// URL is where the framework's API is: http://host:port.
func (f *Framework) URL() string { return f.advertise }

// Run loads the state, subscribes, serves the API and schedules until ctx
// ends (it returns nil then) or the master refuses the framework for good.
// It does not tear the framework down: a scheduler started again on the
// same state directory within the failover timeout takes its tasks back.
func (f *Framework) Run(ctx context.Context) error {
	now := time.Now()
	st, err := f.store.LoadFramework(now)
	if err != nil {
		return err
	}
	st.Incarnation++
	if err := f.store.SaveFramework(st); err != nil {
		return err
	}
	f.state = st
	if err := f.recover(now); err != nil {
		return err
	}
	failover, err := f.cfg.Conf.Float(KeyFailoverTimeout, 7*24*3600)
	if err != nil {
		return fmt.Errorf("hadoop framework: %w", err)
	}
	checkpoint, err := f.cfg.Conf.Bool(KeyCheckpoint, false)
	if err != nil {
		return fmt.Errorf("hadoop framework: %w", err)
	}
	info := mesos.FrameworkInfo{
		Name:            f.cfg.Name,
		User:            f.cfg.User,
		FailoverTimeout: &failover,
		Checkpoint:      &checkpoint,
		Role:            &f.role,
		WebUiURL:        &f.advertise,
	}
	if st.FrameworkID != "" {
		info.ID = &mesos.FrameworkID{Value: st.FrameworkID}
	}
	d, err := scheduler.New(scheduler.Config{Masters: f.cfg.Masters, Framework: info,
		Principal: f.cfg.Principal, Secret: f.cfg.Secret, Logger: f.log.With("component", "scheduler-driver")}, handler{f.events})
	if err != nil {
		return fmt.Errorf("hadoop framework: %w", err)
	}
	f.driver = d
	f.log.Info("hadoop framework starting", "url", f.advertise, "incarnation", st.Incarnation, "framework_id", st.FrameworkID, "state_dir", f.store.Dir())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h := f.Handler()
	if f.cfg.WrapHTTP != nil {
		h = f.cfg.WrapHTTP(h)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go httplimit.Serve(srv, tlsconf.Listener(f.cfg.Listener, f.cfg.TLS, f.cfg.TLSDowngrade), httplimit.Config{Name: "hadoop"})
	defer srv.Close()
	driverErr := make(chan error, 1)
	go func() { driverErr <- d.Run(ctx) }()
	loopDone := make(chan struct{})
	go func() { f.loop(ctx); close(loopDone) }()
	select {
	case <-ctx.Done():
		<-loopDone
		<-driverErr
		return nil
	case err := <-driverErr:
		cancel()
		<-loopDone
		var me *scheduler.MasterError
		if errors.As(err, &me) {
			// The master removed the framework (failover timeout passed):
			// the next start must register anew.
			f.state.FrameworkID = ""
			if serr := f.store.SaveFramework(f.state); serr != nil {
				f.log.Warn("forget framework ID", "err", serr)
			}
		}
		if ctx.Err() != nil && err == context.Canceled {
			return nil
		}
		return fmt.Errorf("hadoop framework: %w", err)
	}
}
