// Package standalone runs Spark's standalone cluster manager on agora, as
// the book's §3.3 does on Mesos: one SDK framework ("Spark Standalone")
// launches a real standalone Master (org.apache.spark.deploy.master.Master)
// and Workers (org.apache.spark.deploy.worker.Worker) as agora tasks, from
// a Spark home's bin/spark-class, on ports taken from the offers. An
// unchanged spark-submit --master spark://HOST:PORT then runs on them.
//
// The workers are sized from the offers (SPARK_WORKER_CORES and
// SPARK_WORKER_MEMORY: what the offer has, or fixed sizes) and their number
// follows the applications: the Master's web UI (/json/ and each
// application's page) says which applications wait for cores, and a worker
// is added while they wait, up to a maximum; a worker that ran no executor
// for the idle timeout is released, down to a minimum. With nothing to
// launch, offers are declined for long and suppressed.
package standalone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// Config configures a Scheduler.
type Config struct {
	// Masters are agora's masters (host:port, or one zk:// URL).
	Masters []string
	// SparkHome is the Spark home on the agents whose bin/spark-class runs
	// the Master and the Workers.
	SparkHome string
	// Name (default "Spark Standalone"), Role (default "*") and User
	// (default: the current user) of the framework.
	Name string
	Role string
	User string
	// WorkersMin and WorkersMax bound the number of workers (default 0
	// and 4): at least WorkersMin run, more are added while applications
	// wait for cores.
	WorkersMin int
	WorkersMax int
	// WorkerCores and WorkerMemMB size each worker (SPARK_WORKER_CORES,
	// SPARK_WORKER_MEMORY); 0 takes what the offer has (whole cpus, and
	// the memory less the worker daemon's own).
	WorkerCores int
	WorkerMemMB float64
	// IdleTimeout is how long a worker runs no executor before it is
	// released (default 60s).
	IdleTimeout time.Duration
	// PollInterval is how often the Master's web UI is read (default 2s).
	PollInterval time.Duration
	// JavaHome, if set, is JAVA_HOME for the daemons (default: this
	// process's JAVA_HOME).
	JavaHome string
	Logger   *slog.Logger
}

// The daemons' own sizes: the Master's task, and what a Worker's task has
// beyond SPARK_WORKER_MEMORY (its own JVM).
const (
	masterCPUs     = 0.5
	masterMemMB    = 640
	masterHeap     = "512m"
	workerDaemonMB = 384
	workerHeap     = "256m"
	// minWorkerMemMB is the least SPARK_WORKER_MEMORY of a worker sized
	// from an offer: less holds no executor of Spark's smallest heap.
	minWorkerMemMB = 512
)

// Daemon is the task of the Master or of a Worker.
type Daemon struct {
	TaskID   string  `json:"taskId"`
	AgentID  string  `json:"agentId"`
	Hostname string  `json:"hostname"`
	Port     uint64  `json:"port"`
	UIPort   uint64  `json:"webuiPort"`
	RESTPort uint64  `json:"restPort,omitempty"`
	Cores    int     `json:"cores,omitempty"`
	MemMB    float64 `json:"memoryMB,omitempty"`
	State    string  `json:"state"`
	// Ready: the Master answers on its ports; a Worker is registered
	// with the Master (SparkID its worker ID there).
	Ready   bool   `json:"ready"`
	SparkID string `json:"sparkId,omitempty"`
	// CoresUsed are a worker's cores its executors hold, as the Master
	// last said.
	CoresUsed int       `json:"coresUsed"`
	Killed    bool      `json:"killed,omitempty"`
	Message   string    `json:"message,omitempty"`
	Launched  time.Time `json:"launched"`

	idleSince time.Time
}

func (d *Daemon) active() bool {
	switch d.State {
	case "TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_UNREACHABLE":
		return true
	}
	return false
}

// Status is the scheduler's view.
type Status struct {
	// MasterURL is spark://HOST:PORT once the Master answers ("" before).
	MasterURL string     `json:"masterUrl"`
	WebUIURL  string     `json:"webUiUrl"`
	RESTURL   string     `json:"restUrl"`
	Master    *Daemon    `json:"master"`
	Workers   []Daemon   `json:"workers"`
	Target    int        `json:"targetWorkers"`
	Apps      []AppState `json:"activeApps"`
	Unmet     int        `json:"unmetCores"`
}

// Scheduler is a running standalone cluster. Create it with New, then Run
// it.
type Scheduler struct {
	cfg  Config
	log  *slog.Logger
	http *http.Client

	mu         sync.Mutex
	sched      *scheduler.Driver
	subscribed bool
	master     *Daemon
	workers    map[string]*Daemon // by task ID
	target     int
	seq        int
	lastCores  int // of the last worker sized from an offer
	failures   map[string]int
	notBefore  map[string]time.Time // agents a worker failed on recently
	apps       []AppState
	unmet      int
	gen        uint64
	callMu     sync.Mutex
}

// New checks cfg.
func New(cfg Config) (*Scheduler, error) {
	switch {
	case len(cfg.Masters) == 0:
		return nil, errors.New("spark standalone: no master given (--master)")
	case cfg.SparkHome == "":
		return nil, errors.New("spark standalone: no Spark home (--spark_home)")
	case cfg.WorkersMin < 0 || cfg.WorkersMax < 0:
		return nil, fmt.Errorf("spark standalone: negative number of workers (--workers-min %d, --workers-max %d)", cfg.WorkersMin, cfg.WorkersMax)
	case cfg.WorkerCores < 0 || cfg.WorkerMemMB < 0:
		return nil, fmt.Errorf("spark standalone: negative worker size (--worker-cores %d, --worker-memory %g MB)", cfg.WorkerCores, cfg.WorkerMemMB)
	case cfg.WorkerMemMB > 0 && cfg.WorkerMemMB < minWorkerMemMB:
		return nil, fmt.Errorf("spark standalone: --worker-memory %g MB is less than %d MB, too little for an executor", cfg.WorkerMemMB, minWorkerMemMB)
	}
	if cfg.WorkersMax == 0 {
		cfg.WorkersMax = 4
	}
	if cfg.WorkersMin > cfg.WorkersMax {
		return nil, fmt.Errorf("spark standalone: --workers-min %d is more than --workers-max %d", cfg.WorkersMin, cfg.WorkersMax)
	}
	if cfg.Name == "" {
		cfg.Name = "Spark Standalone"
	}
	if cfg.Role == "" {
		cfg.Role = "*"
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = time.Minute
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	s := &Scheduler{cfg: cfg, log: cfg.Logger, workers: map[string]*Daemon{}, target: cfg.WorkersMin,
		failures: map[string]int{}, notBefore: map[string]time.Time{},
		http: &http.Client{Timeout: 5 * time.Second}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Subscribed reports whether the framework is subscribed.
func (s *Scheduler) Subscribed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subscribed
}

// MasterURL is the standalone Master's spark://HOST:PORT once it answers,
// else "".
func (s *Scheduler) MasterURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.masterURLLocked()
}

func (s *Scheduler) masterURLLocked() string {
	if s.master == nil || !s.master.Ready {
		return ""
	}
	return "spark://" + net.JoinHostPort(s.master.Hostname, strconv.FormatUint(s.master.Port, 10))
}

// Status is the scheduler's view (copies).
func (s *Scheduler) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{MasterURL: s.masterURLLocked(), Target: s.target, Unmet: s.unmet, Apps: append([]AppState(nil), s.apps...)}
	if m := s.master; m != nil {
		c := *m
		st.Master = &c
		if m.Ready {
			st.WebUIURL = "http://" + net.JoinHostPort(m.Hostname, strconv.FormatUint(m.UIPort, 10))
			st.RESTURL = "spark://" + net.JoinHostPort(m.Hostname, strconv.FormatUint(m.RESTPort, 10))
		}
	}
	ids := make([]string, 0, len(s.workers))
	for id := range s.workers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		st.Workers = append(st.Workers, *s.workers[id])
	}
	return st
}

// Run subscribes, launches the Master and the workers, and follows the
// Master's applications until ctx ends (it returns nil then). The
// framework is torn down as it stops, which ends its tasks.
func (s *Scheduler) Run(ctx context.Context) error {
	info := mesos.FrameworkInfo{
		Name:         s.cfg.Name,
		User:         s.cfg.User,
		Roles:        []string{s.cfg.Role},
		Capabilities: scheduler.Capabilities(mesos.FrameworkInfo_Capability_MULTI_ROLE),
	}
	sd, err := scheduler.New(scheduler.Config{Masters: s.cfg.Masters, Framework: info, Logger: s.log.With("component", "scheduler-driver")}, s.handler())
	if err != nil {
		return fmt.Errorf("spark standalone: %w", err)
	}
	s.mu.Lock()
	s.sched = sd
	s.mu.Unlock()
	s.log.Info("spark standalone starting", "spark_home", s.cfg.SparkHome, "workers_min", s.cfg.WorkersMin,
		"workers_max", s.cfg.WorkersMax, "worker_cores", s.cfg.WorkerCores, "worker_mem_mb", s.cfg.WorkerMemMB)
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
	monitorDone := make(chan struct{})
	go func() {
		defer close(monitorDone)
		s.monitor(runCtx)
	}()
	err = sd.Run(runCtx)
	stop()
	<-monitorDone
	s.mu.Lock()
	s.subscribed = false
	s.mu.Unlock()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("spark standalone: %w", err)
}
