package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/registry"
	"github.com/agora-cluster/agora/cluster/tlsconf"
	"github.com/agora-cluster/agora/cluster/zk"
)

func init() {
	register(command{name: "master", summary: "Run a master (offers agents' resources to frameworks)", run: runMaster, paced: true})
}

// masterFlags are the master's flags, shared with `agora dev`.
type masterFlags struct {
	ip, hostname, workDir, minAllocatable string
	port, maxAgentPingTimeouts            int
	allocationInterval, agentPingTimeout  time.Duration
	offerTimeout                          time.Duration
	reregisterTimeout                     mesosDuration
	removalRate                           string
	recoveryGCPercent                     int
	registryMaxAgentAge                   mesosDuration
	registryMaxAgentCount                 int
	registryMaxFrameworkAge               mesosDuration
	registryMaxFrameworkCount             int
	http                                  httpFlags // httpflags.go
	acls, rateLimits                      string    // --acls, --rate_limits: JSON or a file of it
}

func (f *masterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.ip, "ip", "127.0.0.1", "IP address to listen on and advertise")
	fs.IntVar(&f.port, "port", 5050, "port to listen on; 0 picks a free one, and the master advertises the port it bound")
	fs.StringVar(&f.hostname, "hostname", "", "hostname to advertise (default: the machine's hostname)")
	fs.StringVar(&f.workDir, "work_dir", "", "directory for the registry (required; the master's durable state)")
	fs.DurationVar(&f.allocationInterval, "allocation_interval", time.Second, "time between batch allocation cycles")
	fs.DurationVar(&f.agentPingTimeout, "agent_ping_timeout", 15*time.Second, "time between pings to each agent; an unanswered ping is a timeout")
	fs.IntVar(&f.maxAgentPingTimeouts, "max_agent_ping_timeouts", 5, "consecutive ping timeouts after which an agent is unreachable")
	fs.DurationVar(&f.offerTimeout, "offer_timeout", 0, "rescind offers not answered within this time (0: never)")
	fs.StringVar(&f.minAllocatable, "min_allocatable_resources", "cpus:0.01|mem:32", "alternatives ('|'-separated) of which an offer must contain one")
	f.reregisterTimeout = mesosDuration(10 * time.Minute)
	fs.Var(&f.reregisterTimeout, "agent_reregister_timeout", "after a restart or a failover, how long the agents in the registry have to re-register before they are marked unreachable")
	fs.IntVar(&f.recoveryGCPercent, "recovery_gc_percent", master.DefaultRecoveryGCPercent, "the garbage collector's target (as GOGC) while the agents in the registry re-register after a restart or a failover, at most a minute: their state, nearly all of it live, then grows the heap within seconds; 0 leaves the collector alone (GOGC, GOMEMLIMIT still hold)")
	fs.StringVar(&f.removalRate, "agent_removal_rate_limit", "", "at most this many agents marked unreachable for not re-registering per duration, N/DURATION (e.g. 1/20mins); empty: no limit")
	f.registryMaxAgentAge = mesosDuration(14 * 24 * time.Hour)
	fs.Var(&f.registryMaxAgentAge, "registry_max_agent_age", "how long the registry remembers an unreachable or gone agent")
	fs.IntVar(&f.registryMaxAgentCount, "registry_max_agent_count", 100*1024, "how many unreachable and gone agents the registry remembers at most (the oldest are forgotten)")
	f.registryMaxFrameworkAge = mesosDuration(14 * 24 * time.Hour)
	fs.Var(&f.registryMaxFrameworkAge, "registry_max_framework_age", "how long the registry remembers a torn-down framework (so that its ID is refused); active frameworks are always kept")
	fs.IntVar(&f.registryMaxFrameworkCount, "registry_max_framework_count", 10*1024, "how many torn-down frameworks the registry remembers at most (the oldest are forgotten, and their IDs accepted again)")
	f.http.register(fs)
	f.http.registerMaster(fs)
	fs.StringVar(&f.acls, "acls", "", "authorization: Mesos's ACL JSON, or a file of it ({\"permissive\": true, \"run_tasks\": [{\"principals\": ..., \"users\": ...}], ...}); empty: everything is allowed")
	fs.StringVar(&f.rateLimits, "rate_limits", "", "framework rate limits: Mesos's JSON, or a file of it ({\"limits\": [{\"principal\": ..., \"qps\": ..., \"capacity\": ...}], \"aggregate_default_qps\": ...}); calls over the limit get 429")
}

func (f *masterFlags) config(logger *slog.Logger, reg registry.Registry) (master.Config, error) {
	var mins []mesos.Resources
	for _, alt := range splitNonEmpty(f.minAllocatable, "|") {
		rs, err := api.ParseResources(alt)
		if err != nil {
			return master.Config{}, fmt.Errorf("--min_allocatable_resources: %w", err)
		}
		mins = append(mins, rs)
	}
	httpOpts, err := f.http.options()
	if err != nil {
		return master.Config{}, err
	}
	rate, err := master.ParseRemovalRate(f.removalRate)
	if err != nil {
		return master.Config{}, fmt.Errorf("--agent_removal_rate_limit: %w", err)
	}
	if f.recoveryGCPercent < 0 {
		return master.Config{}, fmt.Errorf("--recovery_gc_percent=%d: want a percentage (as GOGC, e.g. %d), or 0 to leave the collector alone", f.recoveryGCPercent, master.DefaultRecoveryGCPercent)
	}
	if f.registryMaxFrameworkAge <= 0 {
		return master.Config{}, fmt.Errorf("--registry_max_framework_age: %v is not a positive duration", time.Duration(f.registryMaxFrameworkAge))
	}
	if f.registryMaxFrameworkCount <= 0 {
		return master.Config{}, fmt.Errorf("--registry_max_framework_count: %d is not a positive count", f.registryMaxFrameworkCount)
	}
	cfg := master.Config{
		AgentReregisterTimeout: time.Duration(f.reregisterTimeout), AgentRemovalRate: rate, RecoveryGCPercent: recoveryGCPercent(f.recoveryGCPercent),
		RegistryMaxAgentAge: time.Duration(f.registryMaxAgentAge), RegistryMaxAgentCount: f.registryMaxAgentCount,
		RegistryMaxFrameworkAge: time.Duration(f.registryMaxFrameworkAge), RegistryMaxFrameworkCount: f.registryMaxFrameworkCount,
		Hostname: f.hostname, IP: f.ip, Port: f.port,
		AllocationInterval: f.allocationInterval, AgentPingTimeout: f.agentPingTimeout,
		MaxAgentPingTimeouts: f.maxAgentPingTimeouts, OfferTimeout: f.offerTimeout,
		MinAllocatable: mins, Registry: reg, Logger: logger,
		Flags: map[string]string{
			"ip": f.ip, "port": strconv.Itoa(f.port), "work_dir": f.workDir,
			"allocation_interval": f.allocationInterval.String(), "agent_ping_timeout": f.agentPingTimeout.String(),
			"max_agent_ping_timeouts": strconv.Itoa(f.maxAgentPingTimeouts), "min_allocatable_resources": f.minAllocatable,
			"agent_reregister_timeout": f.reregisterTimeout.String(), "agent_removal_rate_limit": f.removalRate,
			"recovery_gc_percent":    strconv.Itoa(f.recoveryGCPercent),
			"registry_max_agent_age": f.registryMaxAgentAge.String(), "registry_max_agent_count": strconv.Itoa(f.registryMaxAgentCount),
			"registry_max_framework_age": f.registryMaxFrameworkAge.String(), "registry_max_framework_count": strconv.Itoa(f.registryMaxFrameworkCount),
		},
		HTTP: httpOpts,
	}
	f.http.flags(cfg.Flags)
	if f.http.serverTLS != nil {
		// As libprocess once SSL is on: the master calls its agents (the
		// relay of their state and sandboxes) over TLS too.
		if cfg.AgentTLS, err = f.http.tls.Client(); err != nil {
			return master.Config{}, err
		}
		cfg.AgentTLSDowngrade = f.http.tls.Downgrade
	}
	cfg.Flags["acls"], cfg.Flags["rate_limits"] = f.acls, f.rateLimits
	if f.acls != "" {
		if cfg.ACLs, err = auth.LoadACLs(f.acls); err != nil {
			return master.Config{}, fmt.Errorf("--acls: %w", err)
		}
	}
	if f.rateLimits != "" {
		if cfg.RateLimits, err = auth.LoadRateLimits(f.rateLimits); err != nil {
			return master.Config{}, fmt.Errorf("--rate_limits: %w", err)
		}
	}
	return cfg, nil
}

// openRegistry opens the master's bbolt registry at path and makes its
// config from the flags. On failure it says why on stderr, prefixed with
// cmd, and returns the exit code: 1 when the registry does not open, 2 for
// a bad flag. On success the caller closes the registry.
func (f *masterFlags) openRegistry(cmd, path string, logger *slog.Logger) (master.Config, *registry.Bolt, int) {
	reg, err := registry.OpenBolt(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", cmd, err)
		return master.Config{}, nil, 1
	}
	cfg, err := f.config(logger, reg)
	if err != nil {
		reg.Close()
		fmt.Fprintf(os.Stderr, "%s: %v\n", cmd, err)
		return master.Config{}, nil, 2
	}
	return cfg, reg, 0
}

func runMaster(args []string) int {
	fs := flag.NewFlagSet("agora master", flag.ContinueOnError)
	var mf masterFlags
	mf.register(fs)
	var zkURL string
	var quorum int
	zkSession := mesosDuration(zk.DefaultSessionTimeout)
	fs.StringVar(&zkURL, "zk", "", "ZooKeeper URL zk://[user:pass@]host1:2181,host2:2181/path: stand for election there and keep the registry there (high availability; --work_dir is then not needed)")
	fs.IntVar(&quorum, "quorum", 1, "with --zk: how many masters must stand for election before the elected one acts (a majority of the masters you run)")
	fs.Var(&zkSession, "zk_session_timeout", "with --zk: the ZooKeeper session timeout (Mesos's units, 10secs, or Go's, 10s); a leader cut off from ZooKeeper stops acting within half of it")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: agora master --work_dir=DIR [flags]\n"+
			"       agora master --zk=zk://h1:2181,h2:2181,h3:2181/agora --quorum=2 [flags]\n\n"+
			"Runs a master: agents register with it, frameworks subscribe to /api/v1/scheduler.\n"+
			"With --zk, several masters elect a leader in ZooKeeper (Mesos's json.info_ znodes);\n"+
			"the others redirect every call to it (307, or 503 while none leads).\n\n"+
			"Once bound, it prints the line 'agora master: listening on HOST:PORT' on stderr;\n"+
			"with --port=0 the system picks the port, and that is the one the master advertises.\n\n"+
			"Examples:\n  agora master --work_dir=/var/lib/agora/master --ip=10.0.0.5 --port=5050\n"+
			"  agora master --zk=zk://10.0.0.1:2181,10.0.0.2:2181,10.0.0.3:2181/agora --quorum=2 --ip=10.0.0.5\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if zkURL != "" {
		return runHAMaster(mf, zkURL, quorum, time.Duration(zkSession))
	}
	if mf.workDir == "" {
		fmt.Fprintln(os.Stderr, "agora master: --work_dir is required (the master keeps its registry there), or --zk for masters that elect a leader")
		return 2
	}
	cfg, reg, code := mf.openRegistry("agora master", filepath.Join(mf.workDir, "registry.db"), newLogger())
	if code != 0 {
		return code
	}
	defer reg.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := mf.listen("agora master", &cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora master:", err)
		return 1
	}
	m, err := master.New(cfg)
	if err != nil {
		ln.Close()
		fmt.Fprintln(os.Stderr, "agora master:", err)
		return 1
	}
	if err := serveMaster(ctx, m, ln, nil); err != nil {
		fmt.Fprintln(os.Stderr, "agora master:", err)
		return 1
	}
	return 0
}

// runHAMaster is `agora master --zk=...`.
func runHAMaster(mf masterFlags, zkURL string, quorum int, session time.Duration) int {
	u, err := zk.ParseURL(zkURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora master: --zk:", err)
		return 2
	}
	logger := newLogger()
	cfg, err := mf.config(logger, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora master:", err)
		return 2
	}
	cfg.Flags["zk"], cfg.Flags["quorum"], cfg.Flags["zk_session_timeout"] = u.String(), strconv.Itoa(quorum), session.String()
	if quorum < 1 { // before binding: a bad flag is exit 2, whatever the port
		fmt.Fprintf(os.Stderr, "agora master: --quorum must be at least 1, not %d\n", quorum)
		return 2
	}
	// Bound before the MasterInfo is made: the one in ZooKeeper names
	// the port actually bound (--port=0).
	ln, err := mf.listen("agora master", &cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora master:", err)
		return 1
	}
	h, err := newHAMaster(u, quorum, session, cfg, nil, logger)
	if err != nil {
		ln.Close()
		fmt.Fprintln(os.Stderr, "agora master:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := h.serve(ctx, ln); err != nil {
		fmt.Fprintln(os.Stderr, "agora master:", err)
		return 1
	}
	return 0
}

// listen binds --ip and --port, speaking TLS with --ssl_cert_file. With --port=0 the system picks a free
// port, and cfg is updated to advertise the one bound (MasterInfo, its
// pid, /master/state and /master/flags). Either way the address is printed
// on stderr as the line "CMD: listening on HOST:PORT", the documented way
// for scripts and tests to learn it; nothing is printed before it that
// could be mistaken for it.
func (f *masterFlags) listen(cmd string, cfg *master.Config) (net.Listener, error) {
	addr := net.JoinHostPort(f.ip, strconv.Itoa(f.port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	cfg.Port = ln.Addr().(*net.TCPAddr).Port
	cfg.Flags["port"] = strconv.Itoa(cfg.Port)
	fmt.Fprintf(os.Stderr, "%s: listening on %s\n", cmd, net.JoinHostPort(f.ip, strconv.Itoa(cfg.Port)))
	return tlsconf.Listener(ln, f.http.serverTLS, f.http.tls.Downgrade), nil
}

// serveMaster runs a master and its HTTP server until ctx ends (or the
// server fails), then stops the server and waits for the master's loop to
// end, so that the caller may close the registry under nothing.
func serveMaster(ctx context.Context, m *master.Master, ln net.Listener, ui http.Handler) error {
	srv := m.Server(ui)          // with the timeouts explained at master.ReadTimeout
	srv.Protocols.SetHTTP2(true) // over TLS (ALPN h2) when listen wrapped ln in it
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- m.Run(runCtx) }()
	serveErr := make(chan error, 1)
	go func() { serveErr <- master.Serve(srv, ln) }() // bounded connections (--http_max_connections)
	var err error
	select {
	case <-ctx.Done():
	case err = <-runDone:
		runDone <- err
	case err = <-serveErr:
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
	}
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancelShutdown()
	srv.Shutdown(shutdownCtx)
	cancel()
	select {
	case runErr := <-runDone:
		if err == nil && runErr != nil && !errors.Is(runErr, context.Canceled) {
			err = runErr
		}
	case <-time.After(30 * time.Second):
		if err == nil {
			err = errors.New("the master's loop did not stop within 30 s")
		}
	}
	return err
}

func newLogger() *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("AGORA_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func splitNonEmpty(s, sep string) []string {
	var out []string
	for _, p := range strings.Split(s, sep) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// recoveryGCPercent is --recovery_gc_percent as the master's
// RecoveryGCPercent, whose zero is the default: the flag's 0 (leave the
// collector alone) is negative there.
func recoveryGCPercent(flag int) int {
	if flag == 0 {
		return -1
	}
	return flag
}
