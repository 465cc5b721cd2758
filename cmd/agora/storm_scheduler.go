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
	"strings"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/dist"
	"github.com/agora-cluster/agora/frameworks/servicepage"
	stormclient "github.com/agora-cluster/agora/storm/client"
	"github.com/agora-cluster/agora/storm/framework"
	"github.com/agora-cluster/agora/storm/plan"
)

func init() {
	stormCommands["scheduler"] = command{
		name:    "scheduler",
		summary: "Run Storm on the cluster: Nimbus and supervisors from offers",
		run: func(args []string) int {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return stormScheduler(ctx, args, os.Stdout, os.Stderr)
		},
	}
}

const stormSchedulerUsage = `Usage: agora storm scheduler --master=HOST:5050|zk://... [--nimbus=HOST:PORT]
           [--storm_zookeeper=HOST:PORT,...] [--storm_home=DIR] [--conf=storm.yaml]
           [--constraints=attr:value;...] [-c key=value]...

Runs a real Storm cluster on agora, as mesos/storm does. With --nimbus, the
supervisors serve that Nimbus (and its ZooKeeper, unless --storm_zookeeper
says otherwise); without it, Nimbus runs as a task on a port from its offer
(storm.local.dir in its sandbox), is launched again if it ends, and its
address is printed on stdout as

  nimbus HOST:PORT

Every few seconds the scheduler asks Nimbus for its topologies; while they ask
for more workers (topology.workers) than there are slots, it launches
supervisors (bin/storm supervisor of --storm_home, installed on every agent) on
offers, at most one per agent: each gets supervisor.slots.ports from its offer's
ports, storm.local.dir in its sandbox, nimbus.seeds, storm.zookeeper.servers and
the workers' heap, and its task takes mesos.executor.{cpu,mem.mb} plus
mesos.worker.{cpu,mem.mb} per slot. A supervisor that ran no worker for
mesos.supervisor.suicide.inactive.timeout.secs is released. Offers it does not
need are declined for minutes and suppressed.

Keys (from --conf, a storm.yaml, and -c, which wins; topology.mesos.* spellings
are read too):
  mesos.worker.cpu, mesos.worker.mem.mb          per worker slot (1, 1000)
  mesos.executor.cpu, mesos.executor.mem.mb      per supervisor itself (0.1, 500)
  mesos.supervisor.suicide.inactive.timeout.secs idle supervisors go (120)
  mesos.supervisor.storm.local.dir               under the sandbox (storm-local)
  mesos.framework.{name,role,user,checkpoint}, mesos.master.failover.timeout.secs
  mesos.allowed.hosts, mesos.disallowed.hosts    host lists
  agora.storm.offer.constraints                  attr:value;... (as --constraints)
  agora.storm.supervisors.per.agent              (1)
  agora.storm.nimbus.cpu, agora.storm.nimbus.mem.mb   a launched Nimbus (1, 1024)
Any other key is Storm's own and is passed to every daemon.

With --principal and --secret_file (or AGORA_PRINCIPAL and AGORA_SECRET) the
framework registers with that credential, for masters that authenticate
frameworks (--authenticate_frameworks).

The topologies page (/ui/ on --http_port, 8080 as Storm UI's ui.port; the
framework's webui_url) shows Nimbus's topologies, their workers with links to
their supervisors' sandboxes in the master's UI, their spouts' and bolts'
counts, and kills a topology; --http_credentials or --credentials put it and
its API behind HTTP Basic credentials, the --ssl_* flags serve it over TLS.
Without credentials anyone who reaches the port (all interfaces by default,
as Storm UI) can kill topologies: the command warns so at start.

With --state_dir, the framework ID and the tasks are kept there: interrupting
the command leaves the daemons running, and starting it again with the same
directory (within the failover timeout) adopts them. Without it (or with
--teardown), interrupting the command stops them all.

Example:
  agora storm scheduler --master=127.0.0.1:5050 --storm_zookeeper=127.0.0.1:2181 \
      -c mesos.worker.mem.mb=1200

Flags:
`

// stormScheduler runs `agora storm scheduler` until ctx ends. Bad input
// exits 2; an unreachable Nimbus or a refused framework, 1.
func stormScheduler(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora storm scheduler", flag.ContinueOnError)
	fs.SetOutput(stderr)
	master := fs.String("master", masterAddrDefault(), "master to subscribe with, host:port or zk://... (env AGORA_MASTER)")
	nimbus := fs.String("nimbus", "", "the Nimbus to serve, HOST:PORT (default: launch one as a task)")
	zk := fs.String("storm_zookeeper", "", "ZooKeeper servers, HOST:PORT,... (storm.zookeeper.servers; default with --nimbus: Nimbus's)")
	home := fs.String("storm_home", defaultStormHome(), "the Storm home installed on every agent (agora dist install storm)")
	conf := fs.String("conf", "", "a storm.yaml with mesos.* sizing keys and Storm keys")
	constraints := fs.String("constraints", "", "agent attributes a supervisor needs, attr:value;... ("+plan.KeyConstraints+")")
	stateDir := fs.String("state_dir", "", "keep the framework ID and tasks here, for restarts")
	teardown := fs.Bool("teardown", false, "with --state_dir: stop the daemons when interrupted all the same")
	ip := fs.String("ip", "0.0.0.0", "IP address to serve the topologies page (/ui/) and its API on")
	httpPort := fs.Int("http_port", 8080, "port of the topologies page and its API (Storm UI's ui.port); the framework's webui_url; -1: none")
	advertise := fs.String("advertise", "", "host or IP operators reach the page at (default: this machine's address towards the master)")
	var httpSec serviceHTTPFlags // the page's --http_credentials, --credentials, --ssl_*
	httpSec.register(fs)
	props := rawProps{}
	fs.Var(props, "c", "key=value (repeatable): a mesos.* key or a Storm key")
	var creds clientOptions // --principal, --secret_file: the framework's credential
	creds.registerCredential(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), stormSchedulerUsage)
		fs.PrintDefaults()
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "agora storm scheduler: "+format+"\n", a...)
		fmt.Fprintln(stderr, "Run `agora storm scheduler --help` for the flags.")
		return 2
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return fail("unexpected arguments %q", fs.Args())
	}
	keys := map[string]string{}
	if *conf != "" {
		b, err := os.ReadFile(*conf)
		if err != nil {
			return fail("--conf: %v", err)
		}
		if keys, err = plan.ParseYAML(b); err != nil {
			return fail("--conf %s: %v", *conf, err)
		}
	}
	for k, v := range props {
		keys[k] = v
	}
	if *constraints != "" {
		keys[plan.KeyConstraints] = *constraints
	}
	settings, err := plan.From(keys)
	if err != nil {
		return fail("%v", err)
	}
	if *home == "" {
		return fail("no Storm home: give --storm_home=DIR (installed on every agent; `agora dist install storm` makes one)")
	}
	cred, err := creds.credential()
	if err != nil {
		return fail("%v", err)
	}
	sec, err := httpSec.security("storm")
	if err != nil {
		return fail("%v", err)
	}
	if *httpPort >= 0 && sec.guard == nil {
		fmt.Fprintf(stderr, "agora storm scheduler: WARNING: the topologies page on %s:%d kills topologies for anyone who reaches it: give --http_credentials or --credentials (or --ip 127.0.0.1, or --http_port -1 for no page)\n", *ip, *httpPort)
	}
	var zks []string
	if *zk != "" {
		zks = strings.Split(*zk, ",")
	}
	fw, err := framework.New(framework.Config{
		Masters: []string{*master}, Settings: settings, Home: *home, Nimbus: *nimbus, ZooKeeper: zks,
		StateDir: *stateDir, Teardown: *teardown, Principal: cred.Principal, Secret: cred.Secret,
		OnNimbus: func(addr string) { fmt.Fprintf(stdout, "nimbus %s\n", addr) },
		Logger:   slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel()})),
	})
	if err != nil {
		return fail("%s", strings.TrimPrefix(err.Error(), "storm framework: "))
	}
	if *nimbus != "" {
		// The user's Nimbus must answer before anything is launched for it.
		c, err := stormclient.New(*nimbus, stormclient.Options{CallTimeout: stormRequestTimeout, ConnectTimeout: 5 * time.Second})
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, stormRequestTimeout)
			_, err = c.ClusterInfo(cctx)
			cancel()
			c.Close()
		}
		if err != nil {
			fmt.Fprintf(stderr, "agora storm scheduler: %v\n", err)
			return 1
		}
	}
	// The page's port, whose address is the webui_url.
	var ui net.Listener
	var webUI string
	if *httpPort >= 0 {
		if ui, err = net.Listen("tcp", net.JoinHostPort(*ip, strconv.Itoa(*httpPort))); err != nil {
			fmt.Fprintf(stderr, "agora storm scheduler: cannot listen on %s:%d for the topologies page: %v (try --http_port)\n", *ip, *httpPort, err)
			return 1
		}
		defer ui.Close()
		adv := *advertise
		if adv == "" {
			adv = advertiseTowards(*master, *ip)
		}
		webUI = sec.scheme() + "://" + net.JoinHostPort(adv, strconv.Itoa(ui.Addr().(*net.TCPAddr).Port))
	}
	fw.SetWebUI(webUI)
	if ui != nil {
		// One reader of Nimbus for every viewer; the pages follow its changes.
		shared := &framework.SharedTopologies{Source: nimbusUISource{fw: fw}, Changes: servicepage.NewChanges()}
		go shared.Run(ctx)
		h := sec.handler(framework.UIHandler(framework.UIConfig{Topologies: shared, Changes: shared.Changes, Master: masterUI(*master),
			Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel()}))}))
		go serveStormUI(ctx, sec.listener(ui), h)
		fmt.Fprintf(stderr, "agora storm scheduler: topologies page at %s/ui/%s\n", webUI, sec.describe())
	}
	fmt.Fprintf(stderr, "agora storm scheduler: Storm from %s on %s; interrupt to stop\n", *home, *master)
	if err := fw.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "agora storm scheduler: %v%s\n", err, masterCredentialsHint(*master, err))
		return 1
	}
	return 0
}

// defaultStormHome is the Storm home `agora dist install storm` made on
// this machine, if any.
func defaultStormHome() string {
	d, err := dist.Resolve("storm")
	if err != nil {
		return ""
	}
	home := filepath.Join(dist.DefaultDir(), d.Dir())
	if _, err := os.Stat(filepath.Join(home, "bin", "storm")); err != nil {
		return ""
	}
	return home
}
