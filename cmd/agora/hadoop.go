package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/agora-cluster/agora/cluster/tlsconf"
	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/executor"
	"github.com/agora-cluster/agora/hadoop/framework"
	"github.com/agora-cluster/agora/hadoop/umbilical"
)

func init() {
	register(command{name: "hadoop", summary: "Run Hadoop Streaming jobs on the cluster (hadoop streaming, jobs, status, ...)", run: runHadoop})
}

// hadoopCommands are the subcommands of `agora hadoop`; each file adds its
// own.
var hadoopCommands = map[string]command{
	"scheduler":   {name: "scheduler", summary: "Run the Hadoop framework (the JobTracker) against a master", run: runHadoopScheduler},
	"tasktracker": {name: "tasktracker", summary: "The TaskTracker executor (started by the framework on agents)", run: runHadoopTaskTracker, hidden: true},
}

// defaultHadoopAddr is where client commands find the framework: the one
// `agora dev` runs.
var defaultHadoopAddr = "127.0.0.1:" + strconv.Itoa(client.DefaultPort)

func runHadoop(args []string) int {
	return dispatchTo("agora hadoop", "command", hadoopCommands, hadoopUsage, args)
}

func hadoopUsage() {
	var b strings.Builder
	b.WriteString("Usage: agora hadoop COMMAND [flags] [args]\n\nRuns Hadoop Streaming jobs (mappers and reducers in any language) on the cluster.\n\nCommands:\n")
	writeCommandList(&b, hadoopCommands)
	b.WriteString("\n`agora dev` runs the framework; elsewhere start it with `agora hadoop scheduler --master=HOST:5050`.\n")
	b.WriteString("Client commands find it through --hadoop or AGORA_HADOOP (default " + defaultHadoopAddr + ").\n\n")
	b.WriteString("Example:\n  agora hadoop streaming -input in -output out -mapper mapper.py -reducer reducer.py \\\n      -file mapper.py -file reducer.py\n")
	fmt.Fprint(os.Stderr, b.String())
}

// hadoopAddr is the framework's address from --hadoop, AGORA_HADOOP or
// the default.
func hadoopAddrDefault() string {
	if a := os.Getenv("AGORA_HADOOP"); a != "" {
		return a
	}
	return defaultHadoopAddr
}

// hadoopAddrFlag registers --hadoop, the framework's address, into addr.
func hadoopAddrFlag(fs *flag.FlagSet, addr *string) {
	fs.StringVar(addr, "hadoop", hadoopAddrDefault(), "the Hadoop framework, host:port (env AGORA_HADOOP)")
}

// propsFlag collects repeated -D key=value flags.
type propsFlag struct{ c conf.Conf }

func (p propsFlag) String() string { return "" }

func (p propsFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("%q is not of the form key=value", s)
	}
	p.c.Set(strings.TrimSpace(k), v)
	return nil
}

func runHadoopScheduler(args []string) int {
	fs := flag.NewFlagSet("agora hadoop scheduler", flag.ContinueOnError)
	master := masterAddrDefault()
	home, _ := os.UserHomeDir()
	props := propsFlag{c: conf.New()}
	fs.StringVar(&master, "master", master, "master to subscribe with, host:port (env AGORA_MASTER)")
	ip := fs.String("ip", "0.0.0.0", "IP address to serve the API and the umbilical on")
	port := fs.Int("port", client.DefaultPort, "port to serve the API and the umbilical on")
	advertise := fs.String("advertise", "", "host or IP executors and clients reach this scheduler at\n(default: 127.0.0.1 for a master on loopback, else this machine's address towards the master)")
	stateDir := fs.String("state_dir", filepath.Join(home, ".agora", "hadoop"), "directory keeping submitted jobs and the framework ID across restarts")
	exe := fs.String("executor", "", "the agora binary agents run as the TaskTracker (default: this binary)")
	serve := fs.Bool("serve_executor", false, "serve the executor binary over HTTP and have agents fetch it (agents on other machines)")
	name := fs.String("name", "Hadoop", "framework name")
	user := fs.String("user", "", "user to run tasks as (default: the current user)")
	var creds clientOptions // --principal, --secret_file
	creds.registerCredential(fs)
	var httpSec serviceHTTPFlags // the API's --http_credentials, --credentials, --ssl_*
	httpSec.register(fs)
	fs.Var(props, "D", "scheduler property key=value (repeatable), e.g. -D mapred.mesos.slot.cpus=1:\n"+
		"mapred.mesos.{slot,tasktracker}.{cpus,mem,disk}, mapred.tasktracker.{map,reduce}.tasks.maximum,\n"+
		"mapred.mesos.total.{map,reduce}.slots.minimum, mapred.mesos.scheduler.policy.fixed,\n"+
		"mapred.mesos.tracker.idle.{interval,checks}, mapred.mesos.role, mapred.mesos.checkpoint,\n"+
		"agora.hadoop.executors.{minimum,maximum}, agora.hadoop.failover.timeout (seconds)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: agora hadoop scheduler --master=HOST:5050 [flags]\n\n"+
			"Runs the Hadoop framework: subscribes with the master, accepts jobs over its REST API\n"+
			"(`agora hadoop streaming` submits there) and runs them on TaskTracker executors sized\n"+
			"from offers. Restarted on the same --state_dir, it takes its framework back and runs\n"+
			"unfinished jobs again.\n\nExample:\n  agora hadoop scheduler --master=10.0.0.1:5050 --advertise=10.0.0.2\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	cred, err := creds.credential()
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora hadoop scheduler:", err)
		return 2
	}
	sec, err := httpSec.security("hadoop", hadoopOpenPaths...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora hadoop scheduler:", err)
		return 2
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(*ip, strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "agora hadoop scheduler: cannot listen on %s:%d: %v (try --port)\n", *ip, *port, err)
		return 1
	}
	adv := *advertise
	if adv == "" {
		adv = advertiseTowards(master, *ip)
	}
	logger := newLogger()
	fw, err := framework.New(framework.Config{
		Masters: []string{master}, Listener: ln,
		Advertise: sec.scheme() + "://" + net.JoinHostPort(adv, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)),
		StateDir:  *stateDir, Conf: props.c, Name: *name, User: *user,
		ExecutorBinary: *exe, ServeExecutor: *serve, Logger: logger,
		Principal: cred.Principal, Secret: cred.Secret,
		TLS: sec.tls, TLSDowngrade: sec.downgrade, WrapHTTP: sec.handler, ExecutorEnv: hadoopExecutorEnv(sec, httpSec.tls.CAFile),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora hadoop scheduler:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "agora hadoop scheduler: API at %s%s (export AGORA_HADOOP=%s)\n", fw.URL(), sec.describe(), fw.URL())
	if err := fw.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "agora hadoop scheduler: %v%s\n", err, masterCredentialsHint(master, err))
		return 1
	}
	return 0
}

// hadoopOpenPaths are served without the API's credentials: the
// TaskTrackers call the umbilical with their own token instead (the
// framework checks it), and agents fetch the executor binary with none.
var hadoopOpenPaths = []string{umbilical.CommitPath, umbilical.CompletionsPath, umbilical.FetchFailedPath, "/executor/"}

// hadoopExecutorEnv makes the TaskTrackers trust caFile when the
// framework speaks TLS: they call its umbilical over HTTPS (libprocess's
// LIBPROCESS_SSL_CA_FILE, which every agora command reads).
func hadoopExecutorEnv(sec serviceSecurity, caFile string) map[string]string {
	if sec.tls == nil || caFile == "" {
		return nil
	}
	return map[string]string{tlsconf.EnvCAFile: caFile}
}

// advertiseTowards picks the address executors reach the scheduler at: the
// listen IP if it is specific, loopback for a master on loopback, else the
// local address the route to the master uses.
func advertiseTowards(master, listenIP string) string {
	if ip := net.ParseIP(listenIP); ip != nil && !ip.IsUnspecified() {
		return listenIP
	}
	host := master
	if h, _, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(master, "http://"), "https://")); err == nil {
		host = h
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return "127.0.0.1"
	}
	conn, err := net.Dial("udp", net.JoinHostPort(host, "5050"))
	if err != nil {
		return "127.0.0.1"
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).IP.String()
}

func runHadoopTaskTracker(args []string) int {
	if len(args) > 0 {
		fmt.Fprintln(os.Stderr, "agora hadoop tasktracker: takes no arguments; the Hadoop framework starts it as an executor")
		return 2
	}
	cfg, err := executor.FromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora hadoop tasktracker:", err)
		return 2
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := executor.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "agora hadoop tasktracker:", err)
		return 1
	}
	return 0
}
