package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/frameworks/chronos"
)

func init() {
	register(command{
		name:    "chronos",
		summary: "Run scheduled jobs with Chronos's /v1/scheduler REST API",
		run: func(args []string) int {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return chronosCommand(ctx, args, os.Stderr)
		},
	})
}

const chronosUsage = `Usage: agora chronos --master=HOST:5050|zk://... --work_dir=DIR [--http_port=4400]

Runs the scheduled-jobs framework: Chronos's /v1/scheduler REST API on
--http_port (and a page of the jobs, their next runs and recent runs at
/ui/), and each job run as a task on the cluster. Existing Chronos
job JSON works unchanged; a five-field "cron" may replace "schedule":

  curl -X POST -H 'Content-Type: application/json' localhost:4400/v1/scheduler/iso8601 -d '{
    "name": "nightly", "command": "echo backup", "cpus": 0.1, "mem": 32,
    "schedule": "R/2026-01-01T02:00:00/P1D", "scheduleTimeZone": "Europe/Berlin"}'
  curl -X POST -H 'Content-Type: application/json' localhost:4400/v1/scheduler/dependency -d '{
    "name": "report", "command": "echo report", "parents": ["nightly"]}'
  curl -X PUT localhost:4400/v1/scheduler/job/nightly      # run now
  curl localhost:4400/v1/scheduler/job/next/nightly?n=5   # the next runs

Each scheduled instant runs at most once: a run's task is written to
--work_dir before it is launched, and a restarted framework reconciles it
instead of launching it again. An instant missed by more than the job's
epsilon (--task_epsilon by default) is recorded as missed, not run late.

With --http_credentials=user:password (or --credentials=FILE, the master's
format) every request needs HTTP Basic credentials (curl -u, agora jobs
--principal/--secret_file); --ssl_cert_file and --ssl_key_file serve the
API over HTTPS.

Not yet: async jobs, containers, constraints (refused with a 400 naming
the field).

Flags:
`

// chronosCommand runs `agora chronos` until ctx ends. Bad flags exit 2;
// a port that cannot be bound or a refused framework, 1.
func chronosCommand(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora chronos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	master := fs.String("master", masterAddrDefault(), "master to subscribe with, host:port or zk://... (env AGORA_MASTER)")
	port := fs.Int("http_port", 4400, "port of the REST API")
	hostname := fs.String("hostname", "", "host name the API is advertised at (default: this machine's)")
	workDir := fs.String("work_dir", "", "directory for the framework ID and the jobs (required)")
	name := fs.String("mesos_framework_name", "chronos", "the framework's name")
	user := fs.String("user", "", "user the jobs run as (default: the current user)")
	role := fs.String("mesos_role", "*", "the framework's role")
	epsilon := fs.Duration("task_epsilon", time.Minute, "how late a run may start before it is skipped, for jobs that set no epsilon")
	failover := fs.Duration("failover_timeout", 7*24*time.Hour, "how long the master keeps the tasks while the framework is away")
	var creds clientOptions // --principal, --secret_file
	creds.registerCredential(fs)
	var httpSec serviceHTTPFlags // --http_credentials, --credentials, --ssl_*
	httpSec.register(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), chronosUsage)
		fs.PrintDefaults()
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "agora chronos: "+format+"\n", a...)
		fmt.Fprintln(stderr, "Run `agora chronos --help` for the flags.")
		return 2
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return fail("unexpected arguments %q", fs.Args())
	case *workDir == "":
		return fail("--work_dir is required: the jobs and their runs are kept there")
	case *port < 0 || *port > 65535:
		return fail("--http_port %d is not a port", *port)
	case *epsilon <= 0:
		return fail("--task_epsilon %v must be positive", *epsilon)
	}
	cred, err := creds.credential()
	if err != nil {
		return fail("%v", err)
	}
	sec, err := httpSec.security("chronos")
	if err != nil {
		return fail("%v", err)
	}
	host := *hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintf(stderr, "agora chronos: --http_port: %v\n", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel()}))
	cfg := chronos.Config{Masters: []string{*master}, WorkDir: *workDir, Name: *name, User: *user, Role: *role,
		Epsilon: *epsilon, FailoverTimeout: *failover, Logger: log, Principal: cred.Principal, Secret: cred.Secret,
		HTTPAddress: net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)), HTTPS: sec.tls != nil}
	fmt.Fprintf(stderr, "agora chronos: REST API on %s://%s/v1/scheduler%s, subscribing with %s; interrupt to stop\n", sec.scheme(), cfg.HTTPAddress, sec.describe(), *master)
	// The line scripts and tests wait for, as `agora master` prints it.
	fmt.Fprintf(stderr, "agora chronos: listening on %s\n", cfg.HTTPAddress)
	if err := serveChronos(ctx, cfg, ln, sec); err != nil {
		fmt.Fprintf(stderr, "agora chronos: %v%s\n", err, masterCredentialsHint(*master, err))
		return 1
	}
	return 0
}

// serveChronos runs the scheduled-jobs framework with cfg and serves its
// API on ln, secured by sec, until ctx ends; `agora dev` runs it the same
// way.
func serveChronos(ctx context.Context, cfg chronos.Config, ln net.Listener, sec serviceSecurity) error {
	fw, err := chronos.New(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	return serveService(ctx, "chronos", fw.Handler(), fw.Run, ln, sec)
}

// devChronos runs the Chronos-compatible scheduled-jobs framework inside
// `agora dev`, its REST API on Chronos's port (4400) unless --chronos_port
// says otherwise; when the default port is taken the cluster comes up
// without it and says so.
type devChronos struct {
	port     int
	explicit bool // --chronos_port was given: a port in use is an error
}

func (d *devChronos) register(fs *flag.FlagSet) {
	fs.IntVar(&d.port, "chronos_port", 4400, "port of the Chronos-compatible scheduled-jobs API (/v1/scheduler); 0 runs none")
}

// start starts the framework and returns the banner line that says where
// its API is ("" when disabled), a warning ("" when none) and a channel
// closed once it has stopped.
func (d *devChronos) start(ctx context.Context, fs *flag.FlagSet, masterAddr, ip, workDir string, cred auth.Credential, svc devServiceSecurity, logger *slog.Logger) (line, warning string, done <-chan struct{}, err error) {
	fs.Visit(func(f *flag.Flag) { d.explicit = d.explicit || f.Name == "chronos_port" })
	stopped := make(chan struct{})
	if d.port == 0 {
		close(stopped)
		return "", "", stopped, nil
	}
	sec, err := svc.security("chronos")
	if err != nil {
		close(stopped)
		return "", "", nil, fmt.Errorf("chronos: %w", err)
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(d.port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		close(stopped)
		if d.explicit {
			return "", "", nil, fmt.Errorf("chronos: cannot listen on %s: %v (try another --chronos_port, or 0 to run none)", addr, err)
		}
		return "", fmt.Sprintf("the scheduled-jobs API (Chronos) is not running: %v; pick a free port with --chronos_port", err), stopped, nil
	}
	cfg := chronos.Config{
		Masters:     []string{masterAddr},
		WorkDir:     filepath.Join(workDir, "chronos"),
		HTTPAddress: ln.Addr().String(),
		Logger:      logger.With("framework", "chronos"),
		Principal:   cred.Principal,
		Secret:      cred.Secret,
		HTTPS:       sec.tls != nil,
	}
	go func() {
		defer close(stopped)
		if err := serveChronos(ctx, cfg, ln, sec); err != nil && ctx.Err() == nil {
			logger.Error("the scheduled-jobs framework (Chronos) stopped", "err", err)
		}
	}()
	return fmt.Sprintf("  chronos     %s://%s/v1/scheduler/jobs   (Chronos's REST API: curl -X POST -d @job.json .../iso8601; jobs at /ui/)", sec.scheme(), cfg.HTTPAddress), "", stopped, nil
}
