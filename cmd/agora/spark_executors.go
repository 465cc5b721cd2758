package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/agora-cluster/agora/spark/dispatcher"
	"github.com/agora-cluster/agora/spark/framework"
	"github.com/agora-cluster/agora/spark/jvm"
)

// sparkExecutors is agora's Spark scheduler run beside a dispatcher, in
// its process and on its port: drivers' applications (cluster mode) and
// client-mode spark-submits with --master mesos://HOST:PORT get their
// executors as agora tasks. It is one shared framework for every
// application, so it lives as long as the dispatcher.
type sparkExecutors struct {
	s    *framework.Scheduler
	done chan struct{}
}

// startSparkExecutors builds the cluster manager's jar (Maven, cached) and
// starts the scheduler, and sets cfg so that the dispatcher serves its API
// and gives drivers its master URL (advertise: how agents reach the
// dispatcher's port). If the jar cannot be built, it says so and returns
// nil: the drivers' applications then run in local[N].
func startSparkExecutors(ctx context.Context, cfg *dispatcher.Config, advertise string, appAuth *framework.Auth, logger *slog.Logger) *sparkExecutors {
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	jar, err := jvm.Jar(bctx, "", "")
	cancel()
	if err != nil {
		logger.Warn("no executors as agora tasks: applications run in local[N] inside their drivers", "err", err)
		return nil
	}
	s, err := framework.New(framework.Config{Masters: cfg.Masters, SparkHome: cfg.SparkHome,
		Roles: []string{cfg.Role}, User: cfg.User, Logger: logger.With("framework", "spark-executors"),
		Principal: cfg.Principal, Secret: cfg.Secret, // the dispatcher's credentials
		Auth: appAuth})
	if err != nil {
		logger.Warn("no executors as agora tasks: applications run in local[N] inside their drivers", "err", err)
		return nil
	}
	cfg.ExecutorMaster, cfg.ClusterManagerJar, cfg.Extra = "mesos://"+advertise, jar, s.Handler()
	cfg.Applications = s.DispatcherApps // the page's executors of each driver
	e := &sparkExecutors{s: s, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		if err := s.Run(ctx); err != nil {
			logger.Error("spark scheduler stopped", "err", err)
		}
	}()
	return e
}

// sparkDriverAuth secures the executors' scheduler API of a dispatcher
// whose REST server asks for credentials (sec's guard): each driver gets
// a token of its submission (the key in workDir) and, when the port
// speaks TLS, caFile to verify it with (dispatcher.Config.DriverCAFile); the API
// then takes a running driver's token for its own applications, or the
// guard's Basic credentials for all. The dispatcher is set into the
// returned pointer once made: until then no driver is running. Without
// a guard the API stays open (nil), as the REST server is.
func sparkDriverAuth(cfg *dispatcher.Config, sec serviceSecurity, caFile, workDir string) (*framework.Auth, *atomic.Pointer[dispatcher.Dispatcher], error) {
	var disp atomic.Pointer[dispatcher.Dispatcher]
	if sec.tls != nil {
		cfg.DriverCAFile = caFile
	}
	if sec.guard == nil {
		return nil, &disp, nil
	}
	signer, err := dispatcher.LoadTokenSigner(workDir)
	if err != nil {
		return nil, nil, err
	}
	cfg.DriverTokens = signer
	return &framework.Auth{Tokens: signer, Credentials: sec.guard.Credentials(), Active: func(id string) bool {
		d := disp.Load()
		return d != nil && d.DriverActive(id)
	}}, &disp, nil
}

// wait waits, bounded, for the scheduler to tear its framework down.
func (e *sparkExecutors) wait() {
	if e == nil {
		return
	}
	select {
	case <-e.done:
	case <-time.After(30 * time.Second):
	}
}

// advertiseAddr is how agents reach a listener bound to host: the host
// itself, or this machine's name when it is a wildcard.
func advertiseAddr(host string, ln net.Listener) string {
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}

// runSparkClusterManager builds the cluster manager's jar and prints its
// path: spark-submit --jars "$(agora spark cluster-manager)".
func runSparkClusterManager(args []string) int {
	if len(args) > 0 {
		usage := "Usage: agora spark cluster-manager\n\n" +
			"Builds (with Maven, once; cached) and prints the path of the jar that lets Spark run\n" +
			"executors as agora tasks: give it to a client-mode spark-submit with\n" +
			"  spark-submit --master mesos://DISPATCHER:7077 --jars \"$(agora spark cluster-manager)\" ...\n\n" +
			"A secured dispatcher (--credentials or --http_credentials, over TLS) wants an operator's\n" +
			"credentials from a client-mode driver; the cluster manager sends them as HTTP Basic over HTTPS:\n" +
			"  --conf " + framework.ConfPrincipal + "=NAME     the principal (else AGORA_PRINCIPAL)\n" +
			"  --conf " + framework.ConfSecretFile + "=FILE   the file holding its secret (else AGORA_SECRET, the secret)\n" +
			"  --conf " + framework.ConfCAFile + "=FILE   the CA that signed the dispatcher's certificate (else\n" +
			"                                        AGORA_SPARK_CA_FILE; else, only with credentials, AGORA_CA_FILE;\n" +
			"                                        else the JVM's trusted roots)\n" +
			"With credentials, or with " + framework.ConfCAFile + " or AGORA_SPARK_CA_FILE, the calls are HTTPS;\n" +
			"AGORA_CA_FILE alone (the master's CA) leaves them plain HTTP. Credentials are never sent over\n" +
			"plain HTTP: against an open dispatcher, unset AGORA_PRINCIPAL and AGORA_SECRET.\n"
		if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fmt.Print(usage)
			return 0
		}
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	jar, err := jvm.Jar(ctx, "", "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora spark cluster-manager:", err)
		return 1
	}
	fmt.Println(jar)
	return 0
}
