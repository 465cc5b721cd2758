package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/dist"
	"github.com/agora-cluster/agora/spark/dispatcher"
)

func init() {
	register(command{name: "spark", summary: "Spark on agora: spark dispatcher|standalone|cluster-manager|pyspark|submit|drivers|status|kill|logs", run: runSpark})
}

// sparkOpenPaths are the dispatcher's paths the service guard lets
// through: the executors' scheduler API, which checks drivers' tokens and
// the operators' credentials itself (framework.Auth).
var sparkOpenPaths = []string{"/v1/applications", "/v1/applications/"}

// sparkCommands are the subcommands of `agora spark`.
var sparkCommands = map[string]command{
	"dispatcher":      {name: "dispatcher", summary: "Run the cluster-mode dispatcher (Spark's REST submission protocol) and the executors' scheduler against a master", run: runSparkDispatcher},
	"cluster-manager": {name: "cluster-manager", summary: "Build and print the path of the jar Spark needs for executors as agora tasks", run: runSparkClusterManager},
	"pyspark":         {name: "pyspark", summary: "Add PySpark to the Spark home (for .py applications) and print the home", run: runSparkPySpark},
	"submit":          {name: "submit", summary: "Submit a driver in cluster mode, with the credentials a secured dispatcher asks for", run: func(args []string) int { return sparkSubmit(args, os.Stdout, os.Stderr) }},
	"drivers":         {name: "drivers", summary: "List the dispatcher's drivers", run: func(args []string) int { return sparkDrivers(args, os.Stdout, os.Stderr) }},
	"status":          {name: "status", summary: "Show one driver", run: func(args []string) int { return sparkStatus(args, os.Stdout, os.Stderr) }},
	"kill":            {name: "kill", summary: "Kill a driver (queued, relaunching or running)", run: func(args []string) int { return sparkKill(args, os.Stdout, os.Stderr) }},
	"logs":            {name: "logs", summary: "Print a driver's stdout or stderr from its sandbox", run: func(args []string) int { return sparkLogs(args, os.Stdout, os.Stderr) }},
}

func runSpark(args []string) int {
	return dispatchTo("agora spark", "command", sparkCommands, sparkUsage, args)
}

func sparkUsage() {
	var b strings.Builder
	b.WriteString("Usage: agora spark COMMAND [flags] [args]\n\nRuns Spark applications on agora.\n\nCommands:\n")
	writeCommandList(&b, sparkCommands)
	b.WriteString("\nThe client commands find the dispatcher through --dispatcher or AGORA_SPARK_DISPATCHER\n(default 127.0.0.1:7077), and a secured one's credentials through --principal and --secret_file\n(or AGORA_PRINCIPAL and AGORA_SECRET), its CA through --ca_file.\n")
	fmt.Fprint(os.Stderr, b.String())
}

func runSparkDispatcher(args []string) int {
	fs := flag.NewFlagSet("agora spark dispatcher", flag.ContinueOnError)
	master := masterAddrDefault()
	home, _ := os.UserHomeDir()
	fs.StringVar(&master, "master", master, "master to subscribe with: host:port, mesos://host:port or zk://... (env AGORA_MASTER)")
	host := fs.String("host", "0.0.0.0", "address to serve the REST submission protocol on")
	port := fs.Int("port", 7077, "port to serve the REST submission protocol on")
	workDir := fs.String("work_dir", filepath.Join(home, ".agora", "spark-dispatcher"), "directory keeping the submissions and the framework ID across restarts")
	sparkHome := fs.String("spark_home", "", "the Spark home on the agents whose bin/spark-submit runs the drivers\n(default: the `agora dist install spark` home, installed if missing)")
	name := fs.String("name", "Spark Cluster", "framework name")
	role := fs.String("role", "*", "role to take the drivers' resources from")
	user := fs.String("user", "", "user to run the drivers as (default: the current user)")
	retryMax := fs.Duration("retry_wait_max", 60*time.Second, "longest wait before a supervised driver is launched again (spark.mesos.cluster.retry.wait.max)")
	maxDrivers := fs.Int("max_drivers", 200, "drivers queued or running at most (spark.mesos.maxDrivers)")
	retained := fs.Int("retained_drivers", 200, "ended drivers kept (spark.mesos.retainedDrivers)")
	failover := fs.Duration("failover_timeout", 7*24*time.Hour, "how long the master keeps the drivers of a dispatcher that went away")
	var creds clientOptions // --principal, --secret_file
	creds.registerCredential(fs)
	var httpSec serviceHTTPFlags // the REST server's --http_credentials, --credentials, --ssl_*
	httpSec.register(fs)
	executors := fs.Bool("executors", true, "run agora's Spark scheduler too, its API on the same port: applications (drivers launched here,\nand client-mode spark-submit --master mesos://HOST:PORT) get executors as agora tasks; false runs\neach application in local[N] inside its driver")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: agora spark dispatcher --master=HOST:5050 [--port 7077] [flags]\n\n"+
			"Runs Spark's cluster-mode dispatcher: an unchanged spark-submit submits to it with\n"+
			"--master mesos://HOST:7077 --deploy-mode cluster (and --status ID, --kill ID), and each\n"+
			"driver runs as an agora task sized by spark.driver.cores and spark.driver.memory.\n"+
			"The applications' executors are agora tasks too, launched by the Spark scheduler served\n"+
			"on the same port (see --executors). Restarted on the same --work_dir, it keeps its queue and takes its\n"+
			"running drivers back.\n\n"+
			"With --credentials or --http_credentials every request but /ping needs HTTP Basic credentials,\n"+
			"which spark-submit cannot send: submit with `agora spark submit --principal NAME --secret_file FILE`.\n"+
			"The executors' scheduler (/v1/applications) then takes the token each driver launched here is\n"+
			"given for its own applications (or those credentials for any). With --ssl_cert_file it serves\n"+
			"TLS; drivers verify it with --ssl_ca_file, a path that must hold the CA on the agents.\n\nExample:\n  agora spark dispatcher --master=10.0.0.1:5050 --port 7077\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "agora spark dispatcher: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cred, err := creds.credential()
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora spark dispatcher:", err)
		return 2
	}
	sec, err := httpSec.security("spark", sparkOpenPaths...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora spark dispatcher:", err)
		return 2
	}
	master = strings.TrimPrefix(master, "mesos://")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *sparkHome == "" {
		d, _ := dist.Resolve("spark")
		h, err := dist.Installer{Log: os.Stderr}.Install(ctx, d)
		if err != nil {
			fmt.Fprintf(os.Stderr, "agora spark dispatcher: no --spark_home, and %v\n", err)
			return 1
		}
		*sparkHome = h
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "agora spark dispatcher: cannot listen on %s:%d: %v (try --port)\n", *host, *port, err)
		return 1
	}
	logger := newLogger()
	cfg := dispatcher.Config{
		Masters: []string{master}, Listener: ln, WorkDir: *workDir, SparkHome: *sparkHome,
		Name: *name, Role: *role, User: *user, FailoverTimeout: *failover, MaxRetryWait: *retryMax,
		MaxDrivers: *maxDrivers, RetainedDrivers: *retained, Logger: logger,
		Principal: cred.Principal, Secret: cred.Secret, WrapHTTP: sec.handler,
		WebUI: sec.scheme() + "://" + advertiseAddr(*host, ln),
	}
	cfg.Listener = sec.listener(ln)
	var ex *sparkExecutors
	appAuth, disp, err := sparkDriverAuth(&cfg, sec, httpSec.tls.CAFile, *workDir)
	if err != nil {
		ln.Close()
		fmt.Fprintln(os.Stderr, "agora spark dispatcher:", err)
		return 1
	}
	if *executors {
		if sec.tls != nil && !sec.downgrade && httpSec.tls.CAFile == "" {
			logger.Warn("drivers verify the dispatcher's certificate with --ssl_ca_file, which is not given: their applications cannot reach the executors' scheduler")
		}
		ex = startSparkExecutors(ctx, &cfg, advertiseAddr(*host, ln), appAuth, logger)
	}
	defer ex.wait()
	d, err := dispatcher.New(cfg)
	if err != nil {
		ln.Close()
		stop()
		fmt.Fprintln(os.Stderr, "agora spark dispatcher:", err)
		return 2
	}
	disp.Store(d)
	if sec.guard != nil || sec.tls != nil {
		fmt.Fprintf(os.Stderr, "agora spark dispatcher: the REST server%s: submit with agora spark submit --dispatcher %s://%s --principal NAME --secret_file FILE\n", sec.describe(), sec.scheme(), d.Addr())
	} else {
		fmt.Fprintf(os.Stderr, "agora spark dispatcher: submit with spark-submit --master mesos://%s --deploy-mode cluster\n", d.Addr())
	}
	fmt.Fprintf(os.Stderr, "agora spark dispatcher: drivers' page at %s/ui/\n", cfg.WebUI)
	if ex != nil {
		fmt.Fprintf(os.Stderr, "agora spark dispatcher: client mode: spark-submit --master %s --jars %s\n", cfg.ExecutorMaster, cfg.ClusterManagerJar)
	}
	if err := d.Run(ctx); err != nil {
		stop()
		fmt.Fprintf(os.Stderr, "agora spark dispatcher: %v%s\n", err, masterCredentialsHint(master, err))
		return 1
	}
	return 0
}
