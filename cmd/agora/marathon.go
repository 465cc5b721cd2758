package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/frameworks/marathon"
)

func init() {
	register(command{
		name:    "marathon",
		summary: "Run long-running services with Marathon's /v2 REST API",
		run: func(args []string) int {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return marathonCommand(ctx, args, os.Stderr)
		},
	})
}

const marathonUsage = `Usage: agora marathon --master=HOST:5050|zk://... --work_dir=DIR [--http_port=8080]

Runs the services framework: Marathon's /v2 REST API on --http_port, and the
apps' instances on the cluster. Existing Marathon clients and the app JSON of
Marathon's docs work unchanged, for example:

  curl -X POST -H 'Content-Type: application/json' localhost:8080/v2/apps -d '{
    "id": "basic-0", "cmd": "while true; do echo hello; sleep 5; done",
    "cpus": 0.1, "mem": 10, "instances": 1}'
  curl -X PUT localhost:8080/v2/apps/basic-0 -d '{"instances": 3}'
  curl localhost:8080/v2/queue?embed=lastUnusedOffers   # why an app waits

Apps and instances are kept in --work_dir, one file each: interrupting the
command leaves the instances running, and starting it again with the same
directory (within --failover_timeout) adopts them.

Health checks (healthChecks, every Marathon protocol) run on the agents. A
change to an app rolls out by its upgradeStrategy, counting healthy instances;
a deployment that makes no progress for --deployment_timeout (per request:
?deploymentTimeout=90s) fails with its reason and rolls back to the previous
version (unless --deployment_auto_rollback=false or ?autoRollback=false):

  curl localhost:8080/v2/deployments?embed=history      # how deployments ended
  curl -X DELETE localhost:8080/v2/deployments/ID       # roll back (?force=true: stop)
  curl localhost:8080/v2/apps/basic-0/versions

Not yet: containers (DOCKER, MESOS), readiness checks, groups and dependencies;
an app that asks for them is refused with a 422 naming the field.

Flags:
`

// marathonCommand runs `agora marathon` until ctx ends. Bad flags exit 2;
// a port that cannot be bound or a refused framework, 1.
func marathonCommand(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora marathon", flag.ContinueOnError)
	fs.SetOutput(stderr)
	master := fs.String("master", masterAddrDefault(), "master to subscribe with, host:port or zk://... (env AGORA_MASTER)")
	port := fs.Int("http_port", 8080, "port of the REST API")
	hostname := fs.String("hostname", "", "host name the API is advertised at (default: this machine's)")
	workDir := fs.String("work_dir", "", "directory for the framework ID, apps and instances (required)")
	name := fs.String("framework_name", "marathon", "the framework's name")
	user := fs.String("mesos_user", "", "user the instances run as (default: the current user)")
	role := fs.String("mesos_role", "*", "the framework's role")
	failover := fs.Duration("failover_timeout", 7*24*time.Hour, "how long the master keeps the instances while the framework is away")
	deployTimeout := fs.Duration("deployment_timeout", 10*time.Minute, "a deployment that makes no progress for this long fails (0: never)")
	autoRollback := fs.Bool("deployment_auto_rollback", true, "roll a deployment that missed its deadline back to the app's previous version")
	maxVersions := fs.Int("max_versions", 50, "versions kept per app for /v2/apps/{id}/versions")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), marathonUsage)
		fs.PrintDefaults()
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "agora marathon: "+format+"\n", a...)
		fmt.Fprintln(stderr, "Run `agora marathon --help` for the flags.")
		return 2
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return fail("unexpected arguments %q", fs.Args())
	case *workDir == "":
		return fail("--work_dir is required: the apps and instances are kept there")
	case *port < 0 || *port > 65535:
		return fail("--http_port %d is not a port", *port)
	case *deployTimeout < 0:
		return fail("--deployment_timeout %s is negative (0 means no deadline)", *deployTimeout)
	case *maxVersions < 1:
		return fail("--max_versions %d: at least the current version is kept", *maxVersions)
	}
	if *deployTimeout == 0 {
		*deployTimeout = -1 // no deadline
	}
	host := *hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintf(stderr, "agora marathon: --http_port: %v\n", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel()}))
	cfg := marathon.Config{Masters: []string{*master}, WorkDir: *workDir, Name: *name, User: *user, Role: *role,
		FailoverTimeout: *failover, Logger: log, DeploymentTimeout: *deployTimeout,
		NoAutoRollback: !*autoRollback, MaxVersions: *maxVersions,
		HTTPAddress: net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))}
	fmt.Fprintf(stderr, "agora marathon: REST API on http://%s, subscribing with %s; interrupt to stop\n", cfg.HTTPAddress, *master)
	if err := serveMarathon(ctx, cfg, ln); err != nil {
		fmt.Fprintln(stderr, "agora marathon:", err)
		return 1
	}
	return 0
}

// serveMarathon runs the services framework with cfg and serves its API on
// ln until ctx ends; `agora dev` runs it the same way.
func serveMarathon(ctx context.Context, cfg marathon.Config, ln net.Listener) error {
	fw, err := marathon.New(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: fw.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	runErr := fw.Run(ctx)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The event streams stay open until their clients go: close them.
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return errors.Join(runErr, err)
	}
	return runErr
}
