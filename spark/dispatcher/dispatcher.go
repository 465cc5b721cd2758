// Package dispatcher is agora's Spark cluster-mode dispatcher, in the manner
// of Spark's MesosClusterDispatcher: it speaks Spark's REST submission
// protocol (what `spark-submit --master mesos://HOST:7077 --deploy-mode
// cluster`, `--status` and `--kill` send) and runs each submitted driver as
// a task of its own framework on the SDK. A driver's task runs the Spark
// home's bin/spark-submit in client mode on the agent, with the
// application's jar fetched into the sandbox. With agora's Spark scheduler
// beside it (Config.ExecutorMaster), the application's executors are agora
// tasks of that scheduler; without it, the application runs with
// spark.master=local[N] inside the driver's task, N being the driver's
// cores.
//
// The queue survives a restart: each submission is a file in the work
// directory, written before the submission is acknowledged and before each
// change of its state is acted on; the framework ID is kept too, so a
// dispatcher started again within the failover timeout re-subscribes and
// reconciles the drivers that were running.
package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// Config configures a Dispatcher.
type Config struct {
	// Masters are the Mesos masters (host:port, or one zk:// URL).
	Masters []string
	// Listener serves the REST protocol (Spark's default port is 7077).
	Listener net.Listener
	// WorkDir holds the state (framework.json, drivers/).
	WorkDir string
	// SparkHome is the Spark installation on the agents whose
	// bin/spark-submit runs the drivers; a submission's
	// spark.mesos.executor.home overrides it.
	SparkHome string
	// Name is the framework's name (default "Spark Cluster").
	Name string
	// Role (default "*") and User (default: the current user) of the
	// framework.
	Role, User string
	// FailoverTimeout is how long the master keeps the drivers of a
	// dispatcher that went away (default one week).
	FailoverTimeout time.Duration
	// MaxRetryWait caps the backoff between launches of a supervised
	// driver (spark.mesos.cluster.retry.wait.max, default 60s).
	MaxRetryWait time.Duration
	// MaxDrivers bounds the drivers queued or running
	// (spark.mesos.maxDrivers, default 200); RetainedDrivers the ended
	// ones kept (spark.mesos.retainedDrivers, default 200).
	MaxDrivers, RetainedDrivers int
	// ExecutorMaster, if set, is the master URL the drivers' applications
	// run with (mesos://HOST:PORT of agora's Spark scheduler, as the
	// agents reach it), and ClusterManagerJar the jar on the agents that
	// lets Spark reach that scheduler (spark/jvm). Without both, an
	// application runs in local[N] inside its driver's task.
	ExecutorMaster, ClusterManagerJar string
	// Extra, if set, serves /v1/applications beside the REST protocol:
	// the Spark scheduler's API on the dispatcher's port, so that one
	// mesos://HOST:7077 serves cluster and client mode.
	Extra http.Handler
	// Applications, if set, are the drivers' applications as the
	// executors' scheduler records them, for the page (/ui/).
	Applications func() []Application
	// WrapPage, if set, wraps the page (/ui/) and its API (/api/v1/): an
	// auth.ServiceGuard's Wrap asks for credentials there. Spark's REST
	// protocol, the executors' API and /drivers are not wrapped: Spark's
	// clients and the cluster manager in the drivers send none.
	WrapPage func(http.Handler) http.Handler
	// WebUI is the dispatcher's address as the operators reach it
	// (http://HOST:PORT; default: the listener's address unless it is a
	// wildcard); the framework's webui_url is its page there, WebUI/ui/.
	WebUI string
	// Principal and Secret are the framework's credentials, for a master
	// with --authenticate_frameworks (also its FrameworkInfo.principal).
	Principal, Secret string
	// DriverTokens, if set, signs each driver's token (tokens.go), valid
	// for DriverTokenTTL (default DefaultDriverTokenTTL). DriverCAFile, if
	// set, is the PEM file (on the agents) of the CA that signed this
	// port's certificate: it is fetched into each driver's sandbox, and
	// EnvCAFile names it there, so that the driver calls the executors'
	// scheduler over HTTPS (a task may have a /tmp of its own, where the
	// agent's path would lead nowhere).
	DriverTokens   *auth.TokenSigner
	DriverTokenTTL time.Duration
	DriverCAFile   string
	// WrapHTTP, if set, wraps the REST server's handler: the service
	// guard that asks callers for credentials (--credentials,
	// --http_credentials). A Listener that speaks TLS serves it over TLS.
	WrapHTTP func(http.Handler) http.Handler
	Logger   *slog.Logger
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Dispatcher is a running dispatcher. Create it with New, then Run it.
type Dispatcher struct {
	cfg   Config
	log   *slog.Logger
	store *store
	sched *scheduler.Driver

	mu         sync.Mutex
	drivers    map[string]*Driver
	order      []string // submission IDs, oldest first
	seq        int      // the last submission's number
	subscribed bool
	gen        uint64     // moves with each driver that wants offers
	callMu     sync.Mutex // orders revives after declines and suppresses
	fw         frameworkState
	timers     map[string]*time.Timer // retry wake-ups

	// idleHook, if set (tests), runs when a round of offers found nothing
	// to launch, before those offers are declined and offers suppressed.
	idleHook func()
}

// New checks cfg and loads the work directory's state.
func New(cfg Config) (*Dispatcher, error) {
	switch {
	case len(cfg.Masters) == 0:
		return nil, errors.New("spark dispatcher: no master given (--master)")
	case cfg.Listener == nil:
		return nil, errors.New("spark dispatcher: no listener for the REST server")
	case cfg.SparkHome == "":
		return nil, errors.New("spark dispatcher: no Spark home for the drivers (--spark-home)")
	}
	if cfg.Name == "" {
		cfg.Name = "Spark Cluster"
	}
	if cfg.Role == "" {
		cfg.Role = "*"
	}
	if cfg.FailoverTimeout <= 0 {
		cfg.FailoverTimeout = 7 * 24 * time.Hour
	}
	if cfg.MaxRetryWait <= 0 {
		cfg.MaxRetryWait = 60 * time.Second
	}
	if cfg.MaxDrivers <= 0 {
		cfg.MaxDrivers = 200
	}
	if cfg.RetainedDrivers <= 0 {
		cfg.RetainedDrivers = 200
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	st, err := openStore(cfg.WorkDir)
	if err != nil {
		return nil, err
	}
	d := &Dispatcher{cfg: cfg, log: cfg.Logger, store: st, drivers: map[string]*Driver{}, timers: map[string]*time.Timer{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.fw, err = st.loadFramework(); err != nil {
		return nil, err
	}
	loaded, err := st.loadDrivers()
	if err != nil {
		return nil, err
	}
	for _, dr := range loaded {
		d.drivers[dr.ID] = dr
		d.order = append(d.order, dr.ID)
		d.seq = max(d.seq, submissionSeq(dr.ID))
	}
	return d, nil
}

// executors reports whether drivers' applications get executors from
// agora's Spark scheduler.
// webUI is the framework's webui_url: the page (the root is Spark's
// protocol's).
func (d *Dispatcher) webUI() *string {
	u := d.cfg.WebUI
	if u == "" {
		host, _, err := net.SplitHostPort(d.Addr())
		if ip := net.ParseIP(host); err != nil || ip == nil || ip.IsUnspecified() {
			return nil
		}
		u = "http://" + d.Addr()
	}
	u = strings.TrimSuffix(u, "/") + "/ui/"
	return &u
}

func (d *Dispatcher) executors() bool {
	return d.cfg.ExecutorMaster != "" && d.cfg.ClusterManagerJar != ""
}

// submissionSeq is the number at the end of driver-yyyyMMddHHmmss-NNNN.
func submissionSeq(id string) int {
	i := strings.LastIndexByte(id, '-')
	n, _ := strconv.Atoi(id[i+1:])
	return n
}

// Addr is the REST server's address.
func (d *Dispatcher) Addr() string { return d.cfg.Listener.Addr().String() }

// Run subscribes, serves the REST protocol and launches drivers until ctx
// ends (it returns nil then) or the master refuses the framework for good.
// It does not tear the framework down: its drivers keep running, and a
// dispatcher started again on the same work directory takes them back.
func (d *Dispatcher) Run(ctx context.Context) error {
	failover := d.cfg.FailoverTimeout.Seconds()
	info := mesos.FrameworkInfo{
		Name:            d.cfg.Name,
		User:            d.cfg.User,
		Roles:           []string{d.cfg.Role},
		FailoverTimeout: &failover,
		Capabilities:    scheduler.Capabilities(mesos.FrameworkInfo_Capability_MULTI_ROLE),
		WebUiURL:        d.webUI(),
	}
	if d.fw.FrameworkID != "" {
		info.ID = &mesos.FrameworkID{Value: d.fw.FrameworkID}
	}
	sd, err := scheduler.New(scheduler.Config{Masters: d.cfg.Masters, Framework: info,
		Principal: d.cfg.Principal, Secret: d.cfg.Secret, Logger: d.log.With("component", "scheduler-driver")}, d.handler())
	if err != nil {
		return fmt.Errorf("spark dispatcher: %w", err)
	}
	d.mu.Lock()
	d.sched = sd
	d.mu.Unlock()
	h := d.Handler()
	if d.cfg.WrapHTTP != nil {
		h = d.cfg.WrapHTTP(h)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(d.cfg.Listener)
	defer srv.Close()
	defer d.stopTimers()
	go d.watchApplications(ctx)
	d.log.Info("spark dispatcher starting", "rest", "http://"+d.Addr(), "framework_id", d.fw.FrameworkID, "work_dir", d.cfg.WorkDir, "drivers", len(d.order))
	if d.executors() {
		d.log.Info("drivers' applications get their executors as agora tasks", "master", d.cfg.ExecutorMaster, "cluster_manager", d.cfg.ClusterManagerJar)
	} else {
		d.log.Warn("no Spark scheduler for executors: each application runs in local[N] inside its driver's task")
	}
	err = sd.Run(ctx)
	d.mu.Lock()
	d.subscribed = false
	d.mu.Unlock()
	if ctx.Err() != nil {
		return nil
	}
	var me *scheduler.MasterError
	if errors.As(err, &me) {
		// The master removed the framework (its failover timeout passed):
		// the next start registers anew.
		d.mu.Lock()
		d.fw.FrameworkID = ""
		serr := d.store.saveFramework(d.fw)
		d.mu.Unlock()
		if serr != nil {
			d.log.Warn("forget the framework ID", "err", serr)
		}
	}
	return fmt.Errorf("spark dispatcher: %w", err)
}

func (d *Dispatcher) stopTimers() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, t := range d.timers {
		t.Stop()
		delete(d.timers, id)
	}
}

// Drivers are copies of every submission, oldest first.
func (d *Dispatcher) Drivers() []Driver {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Driver, 0, len(d.order))
	for _, id := range d.order {
		out = append(out, *d.drivers[id])
	}
	return out
}

// Get is a copy of one submission.
func (d *Dispatcher) Get(id string) (Driver, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dr, ok := d.drivers[id]
	if !ok {
		return Driver{}, false
	}
	return *dr, true
}

// Subscribed reports whether the framework is subscribed: submissions are
// taken only then.
func (d *Dispatcher) Subscribed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.subscribed
}

// FrameworkID is the framework's ID once subscribed (or as kept).
func (d *Dispatcher) FrameworkID() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fw.FrameworkID
}

// newDriver builds a submission's record from its request.
func (d *Dispatcher) newDriver(req *CreateSubmissionRequest) (*Driver, error) {
	p := req.SparkProperties
	cpus := 1.0
	if c := p["spark.driver.cores"]; c != "" {
		cpus, _ = strconv.ParseFloat(c, 64) // validated
	}
	heap := 1024.0
	if m := p["spark.driver.memory"]; m != "" {
		var err error
		if heap, err = MemoryMB(m); err != nil {
			return nil, err
		}
	}
	overhead := math.Max(384, math.Ceil(0.10*heap))
	for _, k := range []string{"spark.mesos.driver.memoryOverhead", "spark.driver.memoryOverhead"} {
		if v := p[k]; v != "" {
			o, err := MemoryMB(v)
			if err != nil {
				return nil, err
			}
			overhead = o
		}
	}
	supervise, _ := strconv.ParseBool(strings.ToLower(p["spark.driver.supervise"]))
	now := d.cfg.Now()
	d.seq++
	return &Driver{
		ID:        fmt.Sprintf("driver-%s-%04d", now.Format("20060102150405"), d.seq),
		Submitted: now.UTC(),
		Request:   *req,
		Name:      p["spark.app.name"],
		CPUs:      cpus,
		HeapMB:    math.Ceil(heap),
		MemMB:     math.Ceil(heap + overhead),
		Supervise: supervise,
		State:     StateQueued,
	}, nil
}

// submit queues a driver: recorded in the work directory before it is
// acknowledged. A submission the dispatcher cannot take now (not
// subscribed, the queue full, the record not written) is an ErrorResponse
// with HTTP 503: spark-submit prints an ErrorResponse's message, where it
// says nothing of a CreateSubmissionResponse that did not succeed.
func (d *Dispatcher) submit(req *CreateSubmissionRequest) (int, Response) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.subscribed {
		return http.StatusServiceUnavailable, errorResponse("Scheduler is not ready to take requests")
	}
	if d.active() >= d.cfg.MaxDrivers {
		return http.StatusServiceUnavailable, errorResponse("Already reached maximum submission size")
	}
	dr, err := d.newDriver(req)
	if err != nil {
		return http.StatusBadRequest, errorResponse("Malformed request: " + err.Error())
	}
	if err := d.store.saveDriver(dr); err != nil {
		d.seq--
		return http.StatusServiceUnavailable, errorResponse("Could not record the submission: " + err.Error())
	}
	d.drivers[dr.ID] = dr
	d.order = append(d.order, dr.ID)
	d.log.Info("driver queued", "submission", dr.ID, "app", dr.Name, "cpus", dr.CPUs, "mem", dr.MemMB)
	d.reviveLocked()
	return http.StatusOK, Response{Action: ActionCreateResponse, ServerSparkVersion: SparkVersion, Success: true,
		SubmissionID: dr.ID, Message: "Driver successfully submitted as " + dr.ID}
}

// active counts the drivers queued, running or waiting to relaunch.
func (d *Dispatcher) active() int {
	n := 0
	for _, dr := range d.drivers {
		if !Terminal(dr.State) {
			n++
		}
	}
	return n
}

// status answers a SubmissionStatusRequest.
func (d *Dispatcher) status(id string) Response {
	r := Response{Action: ActionStatusResponse, ServerSparkVersion: SparkVersion, SubmissionID: id}
	d.mu.Lock()
	defer d.mu.Unlock()
	dr, ok := d.drivers[id]
	if !ok {
		r.DriverState = StateNotFound
		return r
	}
	r.Success, r.DriverState = true, dr.State
	// spark-submit logs a status's message as an error (the exception of
	// a failed driver), so only a failure carries one; /drivers has the
	// last task status of every driver.
	switch dr.State {
	case StateFailed, StateError, StateRelaunching:
		r.Message = dr.Message
	}
	return r
}

// kill answers a KillSubmissionRequest with the Mesos dispatcher's
// messages. A running driver's task is killed; it ends KILLED when the
// agent says so.
func (d *Dispatcher) kill(ctx context.Context, id string) Response {
	r := Response{Action: ActionKillResponse, ServerSparkVersion: SparkVersion, SubmissionID: id}
	d.mu.Lock()
	defer d.mu.Unlock()
	dr, ok := d.drivers[id]
	switch {
	case !ok:
		r.Message = "Cannot find driver"
		return r
	case Terminal(dr.State):
		r.Message = "Driver already terminated"
		return r
	case dr.State == StateQueued, dr.State == StateRelaunching:
		r.Message = "Removed driver while it's still pending"
		if dr.State == StateRelaunching {
			r.Message = "Removed driver while it's being retried"
		}
		if err := d.end(dr, StateKilled, "killed before it was launched"); err != nil {
			r.Message = err.Error()
			return r
		}
		r.Success = true
		return r
	}
	dr.KillRequested = true
	if err := d.store.saveDriver(dr); err != nil {
		dr.KillRequested = false
		r.Message = "Could not record the kill: " + err.Error()
		return r
	}
	if d.subscribed {
		if err := d.sched.Kill(ctx, dr.TaskID, dr.AgentID); err != nil {
			d.log.Warn("kill driver task", "submission", id, "task", dr.TaskID, "err", err)
		}
	}
	r.Success, r.Message = true, "Killing running driver"
	return r
}

// end moves dr to a terminal state, recorded, and drops the oldest ended
// drivers beyond RetainedDrivers.
func (d *Dispatcher) end(dr *Driver, state, msg string) error {
	prev := *dr
	dr.State, dr.Finished = state, d.cfg.Now().UTC()
	if msg != "" {
		dr.Message = msg
	}
	if err := d.store.saveDriver(dr); err != nil {
		*dr = prev
		return fmt.Errorf("could not record the driver's end: %w", err)
	}
	if t := d.timers[dr.ID]; t != nil {
		t.Stop()
		delete(d.timers, dr.ID)
	}
	d.log.Info("driver ended", "submission", dr.ID, "state", state, "message", dr.Message)
	d.pruneLocked()
	return nil
}

func (d *Dispatcher) pruneLocked() {
	ended := 0
	for _, id := range d.order {
		if Terminal(d.drivers[id].State) {
			ended++
		}
	}
	keep := d.order[:0]
	for _, id := range d.order {
		if ended > d.cfg.RetainedDrivers && Terminal(d.drivers[id].State) {
			if err := d.store.removeDriver(id); err == nil {
				delete(d.drivers, id)
				ended--
				continue
			}
		}
		keep = append(keep, id)
	}
	d.order = keep
}
