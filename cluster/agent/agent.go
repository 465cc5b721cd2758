// Package agent is agora's agent: it registers with the master over the
// internal protocol of cluster/api (agentwire.go), runs tasks with Mesos
// command-executor semantics through a containerizer.Containerizer (and
// custom executors over the v1 executor API, task groups on a built-in
// default executor: executor*.go), delivers their status updates reliably (per-task ordered queues retried
// until acknowledged), checkpoints its identity, tasks and updates under
// --work_dir so a restart resumes where it stopped, and serves Mesos's
// agent endpoints (/state, /metrics/snapshot, /files/*).
//
// Several agents can run in one process: an Agent holds all of its state.
package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/containerizer"
	"github.com/agora-cluster/agora/cluster/containerizer/docker"
	"github.com/agora-cluster/agora/cluster/fetcher"
	"github.com/agora-cluster/agora/cluster/httplimit"
	"github.com/agora-cluster/agora/cluster/tlsconf"
	"github.com/agora-cluster/agora/cluster/zk"
)

// Config configures one agent. MasterAddr and WorkDir are required; every
// other field has a default.
type Config struct {
	// MasterAddr is the master's host:port, or zk://host1:2181,.../path:
	// the agent then registers with the master ZooKeeper names as the
	// leader and follows it when another is elected.
	MasterAddr string
	// WorkDir holds sandboxes (WorkDir/slaves/...) and checkpoints
	// (WorkDir/meta/...). It is created if missing.
	WorkDir string
	// Listen is the address the agent's HTTP server binds, "ip:port"
	// (default ":5051"). Ignored when Listener is set.
	Listen string
	// Listener, if set, is used instead of binding Listen.
	Listener net.Listener
	// Hostname is reported to the master (default: os.Hostname()).
	Hostname string
	// Resources in Mesos syntax ("cpus:4;mem:8192;ports:[31000-32000]").
	// Resources not named are detected.
	Resources string
	// Attributes in Mesos syntax ("rack:r1;zone:us-east").
	Attributes string

	// PingTimeout is how long the agent waits for a PING before it
	// re-registers, used when the master's REGISTERED does not say
	// (default 75s: Mesos's 15secs agent_ping_timeout × 5).
	PingTimeout time.Duration
	// RegistrationBackoff is the first delay before re-registering
	// (default 1s); it doubles up to RegistrationBackoffMax (default 30s).
	RegistrationBackoff    time.Duration
	RegistrationBackoffMax time.Duration
	// StatusUpdateRetry is how long an unacknowledged status update waits
	// before it is resent (default 10s); it doubles up to
	// StatusUpdateRetryMax (default 10min).
	StatusUpdateRetry    time.Duration
	StatusUpdateRetryMax time.Duration
	// KillGracePeriod is the time between SIGTERM and SIGKILL when a task
	// has no kill policy (default 3s, as Mesos's command executor).
	KillGracePeriod time.Duration
	// SwitchUser runs each task as its command's (or framework's) user when
	// the agent runs as root (Mesos's --switch_user). Off by default, so
	// in-process clusters run everything as the calling user.
	SwitchUser bool
	// KeepTasksOnStop leaves task processes running when Run returns; a
	// later agent on the same WorkDir adopts them. By default they are
	// killed.
	KeepTasksOnStop bool

	// ExecutorRegistrationTimeout is how long a custom executor has to
	// SUBSCRIBE before its container is destroyed and its tasks fail with
	// REASON_EXECUTOR_REGISTRATION_TIMEOUT (default 1min, Mesos's
	// --executor_registration_timeout).
	ExecutorRegistrationTimeout time.Duration
	// ExecutorShutdownGracePeriod is the time between SHUTDOWN and the
	// destruction of an executor's container, unless its ExecutorInfo says
	// otherwise (default 5s, --executor_shutdown_grace_period).
	ExecutorShutdownGracePeriod time.Duration
	// RecoveryTimeout and ExecutorReregistrationTimeout are handed to the
	// executors of checkpointing frameworks as MESOS_RECOVERY_TIMEOUT
	// (default 15min) and MESOS_SUBSCRIPTION_BACKOFF_MAX (default 2s).
	RecoveryTimeout               time.Duration
	ExecutorReregistrationTimeout time.Duration
	// Recover is Mesos's --recover: RecoverReconnect (the default) adopts
	// the checkpointed tasks and executors of checkpointing frameworks;
	// RecoverCleanup destroys them all, forgets the checkpoint (the next
	// start registers as a new agent) and makes Run return.
	Recover string

	// GCDelay is how long finished sandboxes are kept (--gc_delay, 1 week);
	// less when the disk fills, keeping GCDiskHeadroom (--gc_disk_headroom,
	// 0.1) free; checked every DiskWatchInterval (--disk_watch_interval, 1 min).
	GCDelay           time.Duration
	GCDiskHeadroom    float64
	DiskWatchInterval time.Duration
	// RecycledSandboxes is how many skeletons of finished sandboxes the
	// garbage collector puts back into the sandbox pool for new launches
	// instead of removing them (sandboxrecycle.go): 0 for
	// DefaultRecycledSandboxes, negative for none
	// (--sandbox_recycling=false).
	RecycledSandboxes int

	// MaxExecutorBacklog is how many events a subscribed executor may
	// fall behind on its stream before the agent cuts the stream (the
	// executor subscribes again, as the v1 executor API allows, and gets
	// what it missed: see executor_api.go); default
	// DefaultMaxExecutorBacklog.
	MaxExecutorBacklog int

	// Containerizer launches tasks (default containerizer.Process{}).
	Containerizer containerizer.Containerizer
	// Docker, if set, runs the tasks whose ContainerInfo is DOCKER
	// (Mesos's --containerizers=mesos,docker); without it they fail.
	Docker *docker.Containerizer
	// Fetcher fetches CommandInfo.uris into sandboxes before tasks start
	// (default: Mesos's defaults, a 2 GB cache in WORK_DIR/fetcher-cache).
	Fetcher *fetcher.Fetcher
	// Logger receives the agent's logs (default slog.Default()).
	Logger *slog.Logger
	// HTTP says which other origins' pages may read the agent's endpoints,
	// whether /debug/pprof is served (default: neither) and which requests
	// need credentials.
	HTTP api.HTTPOptions
	// ACLs (--acls), if set, authorize the /files endpoints:
	// access_sandboxes on the user of the framework whose sandbox is read
	// (files_authz.go). Nil allows everything.
	ACLs *auth.ACLs
	// Credential, if set, is presented to the master on every call
	// (--credential), for a master running with --authenticate_agents.
	Credential auth.Credential
	// TLS, if set, makes the agent's server speak HTTPS (--ssl_cert_file);
	// TLSDowngrade also accepts plain HTTP on its port
	// (LIBPROCESS_SSL_SUPPORT_DOWNGRADE).
	TLS          *tls.Config
	TLSDowngrade bool
	// TLSCAFile is the CA bundle executors verify the agent's certificate
	// with when TLS is set: their environment gets LIBPROCESS_SSL_ENABLED
	// and LIBPROCESS_SSL_CA_FILE, as libprocess hands its own to the
	// executors it starts ("": the system's roots).
	TLSCAFile string
	// TLSCertFile and TLSKeyFile are the files of the agent's certificate
	// (--ssl_cert_file, --ssl_key_file): under --ssl_require_cert native
	// executors present it to the agent (LIBPROCESS_SSL_CERT_FILE and
	// LIBPROCESS_SSL_KEY_FILE), as they would inherit it from libprocess's
	// environment.
	TLSCertFile, TLSKeyFile string
	// ExecutorSecretKey, if set, signs a token for every executor the
	// agent starts (MESOS_EXECUTOR_AUTHENTICATION_TOKEN; Mesos's
	// --jwt_secret_key), at least auth.MinSecretKey bytes.
	ExecutorSecretKey []byte
	// AuthenticateHTTPExecutors refuses the executor API calls that do not
	// carry a valid token of the executor they are made for
	// (--authenticate_http_executors); it needs ExecutorSecretKey.
	AuthenticateHTTPExecutors bool
	// MasterTLS, if set, is how the agent calls its master: over HTTPS,
	// verifying the master's certificate (and presenting the agent's to a
	// master that requires one). An https:// MasterAddr calls it over
	// HTTPS too, verified against the system's roots.
	MasterTLS *tls.Config
}

// DefaultMaxExecutorBacklog bounds the events queued for one executor
// that does not read them. An executor gets a few events per task
// (launch, kill, acknowledgements) and the framework's messages, so a
// healthy one is never near it.
const DefaultMaxExecutorBacklog = 10000

// Values of Config.Recover.
const (
	RecoverReconnect = "reconnect"
	RecoverCleanup   = "cleanup"
)

func (c *Config) setDefaults() {
	if c.Recover == "" {
		c.Recover = RecoverReconnect
	}
	if c.Listen == "" {
		c.Listen = ":5051"
	}
	if c.GCDelay <= 0 {
		c.GCDelay = 7 * 24 * time.Hour
	}
	if c.GCDiskHeadroom <= 0 || c.GCDiskHeadroom >= 1 {
		c.GCDiskHeadroom = 0.1
	}
	if c.DiskWatchInterval <= 0 {
		c.DiskWatchInterval = time.Minute
	}
	if c.RecycledSandboxes == 0 {
		c.RecycledSandboxes = DefaultRecycledSandboxes
	}
	if c.MaxExecutorBacklog <= 0 {
		c.MaxExecutorBacklog = DefaultMaxExecutorBacklog
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = 75 * time.Second
	}
	if c.RegistrationBackoff <= 0 {
		c.RegistrationBackoff = time.Second
	}
	if c.RegistrationBackoffMax < c.RegistrationBackoff {
		c.RegistrationBackoffMax = max(30*time.Second, c.RegistrationBackoff)
	}
	if c.StatusUpdateRetry <= 0 {
		c.StatusUpdateRetry = 10 * time.Second
	}
	if c.StatusUpdateRetryMax < c.StatusUpdateRetry {
		c.StatusUpdateRetryMax = max(10*time.Minute, c.StatusUpdateRetry)
	}
	if c.KillGracePeriod <= 0 {
		c.KillGracePeriod = 3 * time.Second
	}
	if c.ExecutorRegistrationTimeout <= 0 {
		c.ExecutorRegistrationTimeout = time.Minute
	}
	if c.ExecutorShutdownGracePeriod <= 0 {
		c.ExecutorShutdownGracePeriod = 5 * time.Second
	}
	if c.RecoveryTimeout <= 0 {
		c.RecoveryTimeout = 15 * time.Minute
	}
	if c.ExecutorReregistrationTimeout <= 0 {
		c.ExecutorReregistrationTimeout = 2 * time.Second
	}
	if c.Containerizer == nil {
		c.Containerizer = containerizer.Process{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Agent is one agora agent. Create it with New and start it with Run.
//
// # Who owns what
//
// The agent's state has a few owners, each a lock or a goroutine, with
// explicit hand-offs between them (the master instead has one event loop;
// here the tasks, executors and their runner goroutines already hand work
// to each other through small critical sections, so keeping those and
// making them short was the smaller change that makes the rule below true,
// where an event loop would have rewritten every runner):
//
//   - mu owns the agent's books: agentID, registered, tasks and completed,
//     counters, executors, and the fields of task and executor marked
//     "guarded by Agent.mu" (a task's state and statuses, an executor's
//     state, queues, connection and container).
//   - task.updMu (tasks.go) orders one task's status updates: the
//     checkpoint append and the queueing happen under it, in order, while
//     mu is taken only around the bookkeeping (executor_status.go).
//   - executor.resMu (executor.go) orders the updates of a custom
//     executor's container limits, and owns the limits last set.
//   - updates.mu (statusupdates.go) owns the status update streams; the
//     update manager's goroutine sends them, holding no lock.
//   - execConn.mu (executor_api.go) owns one executor stream's queue of
//     events; the stream's handler goroutine is the only writer to the
//     executor's socket.
//   - A custom or default executor's launcher goroutine (runLaunches,
//     executor.go) owns the checkpoint writes of the launches on it, one
//     at a time and in order. A launch registers its tasks as launching
//     under mu and hands them to the launcher, which writes their
//     checkpoint holding no lock, then takes mu to settle the launch:
//     queue or start it, or refuse it and undo what it wrote. Whatever
//     came for a launching task meanwhile (a kill, the executor
//     subscribing or terminating, the agent stopping) found it marked
//     launching and is applied when the launch settles.
//
// Lock order: task.updMu, then executor.resMu, then mu; updates.mu and
// execConn.mu are leaves (taken under mu or alone, never holding another).
//
// The rule: while mu is held there is no I/O to a client (HTTP handlers
// copy what they need under mu into plain values, unlock, then marshal
// and write), no disk I/O (no fsync, write, rename or RemoveAll: the
// locked part decides what to write or remove and the caller does it
// after unlocking, before anything is acknowledged that depends on it),
// and no blocking channel send (execConn.send and task.requestKill never
// block; an executor that stops reading is cut off at
// Config.MaxExecutorBacklog events instead of growing its queue).
type Agent struct {
	cfg        Config
	log        *slog.Logger
	ln         net.Listener
	httpLn     atomic.Pointer[httplimit.Listener] // ln, bounded, once Run serves it
	port       int32
	workDir    string // absolute
	resources  mesos.Resources
	attributes []mesos.Attribute
	warnings   []string
	client     *http.Client
	masterURL  string    // with a host:port master
	zk         *zk.Group // with a zk:// master: the masters' election
	leaderURL  atomic.Pointer[string]
	jsonOnly   atomic.Bool // the master refused a protobuf call (415): speak JSON to it
	handler    http.Handler
	startTime  time.Time
	updates    *updateManager
	journal    *journal // the checkpoint (journal.go), open while Run runs
	sandboxes  *sandboxPool
	started    atomic.Bool
	// panics counts calls that panicked (slave/handler_panics); fatal
	// carries the first one to Run, which stops the agent (guard).
	panics     atomic.Int64
	fatal      chan error
	recovered  atomic.Bool   // checkpointed state is recovered; executors may call
	recoveredC chan struct{} // closed when recovered is set

	mu          sync.Mutex
	agentID     string
	registered  bool
	tasks       map[taskKey]*task
	completed   []*task // forgotten tasks, oldest first, for /state
	counters    map[string]float64
	runners     sync.WaitGroup // task runner goroutines
	runnerCtx   context.Context
	stopRunners context.CancelFunc

	// Custom and default executors (executor.go); guarded by mu.
	executors map[execKey]*executor
	// tokens signs and checks executors' tokens (nil: no
	// ExecutorSecretKey); executor_auth.go.
	tokens *auth.TokenSigner
	// diskUsage measures the used fraction of work_dir's file system (the
	// garbage collector's input; tests pin it).
	diskUsage func(dir string) float64
}

// maxCompletedTasks bounds the completed tasks /state remembers.
const maxCompletedTasks = 1000

// New checks cfg, detects resources, creates the work directory and binds
// the HTTP listener (so Addr is known before Run). Nothing runs until Run.
func New(cfg Config) (*Agent, error) {
	cfg.setDefaults()
	if err := checkMasterAddr(cfg.MasterAddr); err != nil {
		return nil, err
	}
	if cfg.WorkDir == "" {
		return nil, errors.New("agent: a work directory is required (--work_dir)")
	}
	if cfg.Recover != RecoverReconnect && cfg.Recover != RecoverCleanup {
		return nil, fmt.Errorf("agent: --recover=%s: want %s or %s", cfg.Recover, RecoverReconnect, RecoverCleanup)
	}
	workDir, err := filepath.Abs(cfg.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("agent: work directory %q: %w", cfg.WorkDir, err)
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return nil, fmt.Errorf("agent: create work directory: %w", err)
	}
	resources, err := DetectResources(cfg.Resources, workDir)
	if err != nil {
		return nil, fmt.Errorf("agent: --resources: %w", err)
	}
	attributes, err := api.ParseAttributes(cfg.Attributes)
	if err != nil {
		return nil, fmt.Errorf("agent: --attributes: %w", err)
	}
	if cfg.Hostname == "" {
		if cfg.Hostname, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("agent: hostname: %w (set --hostname)", err)
		}
	}
	tokens, err := executorTokens(cfg) // executor_auth.go
	if err != nil {
		return nil, err
	}
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("agent: listen on %s: %w", cfg.Listen, err)
		}
	}
	port := 0
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
		port = tcp.Port
	}
	ln = tlsconf.Listener(ln, cfg.TLS, cfg.TLSDowngrade)
	a := &Agent{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "agent"),
		ln:         ln,
		port:       int32(port),
		workDir:    workDir,
		resources:  resources,
		attributes: attributes,
		client:     &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 30 * time.Second, MaxIdleConnsPerHost: 4, TLSClientConfig: cfg.MasterTLS}},
		masterURL:  masterScheme(cfg) + "://" + trimScheme(cfg.MasterAddr) + api.AgentPath,
		startTime:  time.Now(),
		tasks:      map[taskKey]*task{},
		counters:   map[string]float64{},
		executors:  map[execKey]*executor{},
		recoveredC: make(chan struct{}),
		tokens:     tokens,
	}
	if w, ok := cfg.Containerizer.(interface{ Warnings() []string }); ok {
		a.warnings = w.Warnings()
	}
	if a.cfg.Fetcher == nil {
		if a.cfg.Fetcher, err = newDefaultFetcher(workDir, cfg.Logger); err != nil { // fetch.go
			ln.Close()
			return nil, err
		}
	}
	a.sandboxes = newSandboxPool(workDir, a.log) // sandboxpool.go
	a.sandboxes.recycleCap = max(cfg.RecycledSandboxes, 0)
	a.runnerCtx, a.stopRunners = context.WithCancel(context.Background())
	a.updates = newUpdateManager(cfg.StatusUpdateRetry, cfg.StatusUpdateRetryMax, a.sendUpdates, a.log)
	a.fatal = make(chan error, 1)
	a.handler = cfg.HTTP.Wrap(a.guard(a.routes()))
	if cfg.Credential.Principal != "" {
		a.client.Transport = &auth.Transport{Base: a.client.Transport, Credential: cfg.Credential}
	}
	if zk.IsURL(cfg.MasterAddr) {
		u, _ := zk.ParseURL(cfg.MasterAddr) // checked above
		a.zk = zk.NewGroup(u, zk.Options{Log: a.log})
		a.masterURL = ""
	}
	return a, nil
}

func checkMasterAddr(addr string) error {
	switch {
	case addr == "":
		return errors.New("agent: the master's address is required (--master=HOST:5050)")
	case zk.IsURL(addr):
		if _, err := zk.ParseURL(addr); err != nil {
			return fmt.Errorf("agent: --master: %w", err)
		}
		return nil
	case strings.HasPrefix(addr, "file://"):
		return fmt.Errorf("agent: --master=%s: give host:port or zk://host1:2181,host2:2181/path", addr)
	}
	if _, _, err := net.SplitHostPort(trimScheme(addr)); err != nil {
		return fmt.Errorf("agent: --master=%s is not host:port: %w", addr, err)
	}
	return nil
}

// masterScheme is how the agent calls its master: https with MasterTLS or
// an https:// address, http otherwise.
func masterScheme(cfg Config) string {
	if cfg.MasterTLS != nil || strings.HasPrefix(cfg.MasterAddr, "https://") {
		return "https"
	}
	return "http"
}

// trimScheme is a master address without its http:// or https://.
func trimScheme(addr string) string {
	return strings.TrimPrefix(strings.TrimPrefix(addr, "http://"), "https://")
}

// ID is the agent ID the master gave this agent ("" before registration).
func (a *Agent) ID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.agentID
}

// Registered reports whether the agent is registered with the master now.
func (a *Agent) Registered() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.registered
}

// Addr is the address the agent's HTTP server listens on.
func (a *Agent) Addr() string { return a.ln.Addr().String() }

// Resources are the agent's total resources (given and detected).
func (a *Agent) Resources() mesos.Resources { return a.resources.Clone() }

// WorkDir is the agent's absolute work directory.
func (a *Agent) WorkDir() string { return a.workDir }

// Handler serves the agent's HTTP endpoints; Run serves it on the listener.
func (a *Agent) Handler() http.Handler { return a.handler }

// Run recovers checkpointed state, serves HTTP, registers with the master
// and stays registered (re-registering when the connection breaks) until
// ctx is done. Then it kills its tasks (unless Config.KeepTasksOnStop) and
// returns. Run may be called once.
func (a *Agent) Run(ctx context.Context) error {
	if !a.started.CompareAndSwap(false, true) {
		return errors.New("agent: Run called twice")
	}
	defer a.client.CloseIdleConnections()
	// The checkpoint journal closes last: after the HTTP server, whose
	// handlers write to it, has stopped.
	if err := a.openCheckpoint(); err != nil { // checkpoint.go
		return err
	}
	defer a.journal.close()
	srv := &http.Server{Handler: a.handler, ReadTimeout: readTimeout}
	// The metrics read this listener's counters, not StatsOf("agent"): a
	// process may run several agents (agora dev --agents N).
	hl := httplimit.Limit(a.ln, httplimit.Config{Name: "agent"})
	a.httpLn.Store(hl)
	served := make(chan error, 1)
	go func() { served <- hl.Serve(srv) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	// Runners stop when Run's ctx ends, not before.
	stop := context.AfterFunc(ctx, a.stopRunners)
	defer stop()
	defer a.stopRunners()

	if err := a.recover(ctx); err != nil {
		a.stopRunners()
		a.runners.Wait()
		return err
	}
	if a.cfg.Recover == RecoverCleanup {
		a.stopRunners()
		a.runners.Wait()
		return a.forgetCheckpoint() // checkpoint.go
	}
	a.cleanupOrphanContainers() // isolation.go
	a.cleanupDockerOrphans(ctx) // docker.go
	a.recovered.Store(true)
	close(a.recoveredC)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var loops sync.WaitGroup
	loops.Add(2)
	go func() { defer loops.Done(); a.updates.run(ctx) }()
	go func() { defer loops.Done(); a.registrationLoop(ctx) }()
	if a.zk != nil {
		loops.Add(1)
		go func() { defer loops.Done(); a.zk.Run(ctx) }()
	}
	loops.Add(1)
	go func() { defer loops.Done(); a.gcLoop(ctx) }()
	loops.Add(1)
	go func() { defer loops.Done(); a.sandboxes.run(ctx) }() // sandboxpool.go

	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
		err = fmt.Errorf("agent: HTTP server: %w", err)
	case err = <-a.fatal:
	case <-a.journal.brokenC:
		// Nothing more can be acknowledged: stop, so that a restart
		// replays what is on disk (Mesos's agent aborts on a failed
		// checkpoint too).
		err = fmt.Errorf("agent: %w", a.journal.brokenErr())
		a.log.Error("the checkpoint journal cannot be written any more; the agent stops so that a restart recovers from what is on disk", "err", err)
	}
	cancel()
	a.stopRunners()
	loops.Wait()     // no new runners after this
	a.runners.Wait() // tasks killed (or left running) and their updates checkpointed
	a.log.Info("agent stopped", "agent_id", a.ID())
	return err
}

// guard applies the agent's panic policy, the master's (cluster/master,
// step): a call validates before it mutates, so one refused for a reason
// leaves nothing half-done; a panic is a bug that may strike in the middle
// of a change spanning tasks, executors and checkpoints, so the agent's
// memory cannot be trusted after it. The panic is recovered, logged with
// its stack, counted (slave/handler_panics), the call answered 500, and
// the agent stops: Run returns the error, `agora agent` exits non-zero
// for its supervisor to restart it, and the restarted agent recovers from
// its checkpoint — which holds everything it acknowledged — and adopts the
// tasks still running. (The panicking request's locks were released by
// their deferred unlocks; the count is atomic so that one held without a
// defer cannot block it.)
func (a *Agent) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p) // net/http's own way to end a response
			}
			a.panics.Add(1)
			a.log.Error("a call panicked; the agent stops so that a restart recovers a consistent state from its checkpoint",
				"method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			http.Error(w, "internal error: the agent stops and recovers from its checkpoint", http.StatusInternalServerError)
			select {
			case a.fatal <- fmt.Errorf("agent: a call to %s panicked: %v", r.URL.Path, p):
			default:
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// The HTTP server's read timeout: readTimeout for a whole request with
// its body (the largest, an executor's call, is maxExecutorCall: 16 MB,
// well within a minute on any network an agent and its executors share),
// so a client that trickles a request cannot hold a connection and its
// goroutine forever. The long-lived executor event stream is not cut by
// it: net/http clears the read deadline once a request's body has been
// read whole (as a SUBSCRIBE call is, before its stream starts), and the
// operator API has no streaming calls on the agent. The header timeout,
// the idle timeout, the header size and the number of connections are
// httplimit's (the --http_* flags). There is no write timeout: it would
// cut the event streams; a stalled reader of one is cut off by its
// backlog instead (execConn).
var readTimeout = time.Minute

func (a *Agent) count(name string, delta float64) {
	a.mu.Lock()
	a.counters[name] += delta
	a.mu.Unlock()
}

func (a *Agent) pid() string {
	return "slave(1)@" + a.cfg.Hostname + ":" + strconv.Itoa(int(a.port))
}

// Warnings lists what this agent cannot do as configured (for example,
// isolation disabled when not running as root); they are also reported to
// the master and shown in /state.
func (a *Agent) Warnings() []string { return append([]string(nil), a.warnings...) }
