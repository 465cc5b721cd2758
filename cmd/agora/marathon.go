package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/cluster/agentsim"
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

Runs the services framework: Marathon's /v2 REST API on --http_port (and a
live page of the apps and deployments at /ui/), and the apps' instances on
the cluster. Existing Marathon clients and the app JSON of
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

Groups (/v2/groups) are the app tree; an app's dependencies (on apps or
groups) launch first and must run healthy before it starts; a cycle is refused.

readinessChecks (HTTP, on a named port) are polled by the framework on each
new instance until it answers ready; only then does it count towards a
deployment, and /v2/deployments shows the results.

With --http_credentials=user:password (or --credentials=FILE, the master's
format) every request but /ping needs HTTP Basic credentials (curl -u,
agora apps --principal/--secret_file); --ssl_cert_file and --ssl_key_file
serve the API over HTTPS.

Not yet: containers (DOCKER, MESOS); an app that asks for them is refused
with a 422 naming the field.

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
	var creds clientOptions // --principal, --secret_file
	creds.registerCredential(fs)
	var httpSec serviceHTTPFlags // --http_credentials, --credentials, --ssl_*
	httpSec.register(fs)
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
	cred, err := creds.credential()
	if err != nil {
		return fail("%v", err)
	}
	sec, err := httpSec.security("marathon")
	if err != nil {
		return fail("%v", err)
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
		NoAutoRollback: !*autoRollback, MaxVersions: *maxVersions, Principal: cred.Principal, Secret: cred.Secret,
		HTTPAddress: net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)), HTTPS: sec.tls != nil}
	fmt.Fprintf(stderr, "agora marathon: REST API on %s://%s%s, subscribing with %s; interrupt to stop\n", sec.scheme(), cfg.HTTPAddress, sec.describe(), *master)
	// The line scripts and tests wait for, as `agora master` prints it.
	fmt.Fprintf(stderr, "agora marathon: listening on %s\n", cfg.HTTPAddress)
	if err := serveMarathon(ctx, cfg, ln, sec); err != nil {
		fmt.Fprintf(stderr, "agora marathon: %v%s\n", err, masterCredentialsHint(*master, err))
		return 1
	}
	return 0
}

// serveMarathon runs the services framework with cfg and serves its API on
// ln, secured by sec, until ctx ends; `agora dev` runs it the same way.
func serveMarathon(ctx context.Context, cfg marathon.Config, ln net.Listener, sec serviceSecurity) error {
	fw, err := marathon.New(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	return serveService(ctx, "marathon", fw.Handler(), fw.Run, ln, sec)
}

func init() {
	benchCommands["marathon"] = command{name: "marathon",
		summary: "Scale a Marathon app from 0 to N instances on simulated agents: time and overshoot",
		run:     runBenchMarathon}
}

const benchMarathonAbout = `Scales one app of the services framework from 0 to each of --instances
through its /v2 API (PUT /v2/apps/ID {"instances": N}), on a master of this
binary and --agents simulated agents in this process (the master's agent
protocol; an instance is a timer that runs until killed). Reports the time
from the PUT until N instances run and the deployment has ended, and the
overshoot (Marathon's users saw apps scale past their target): the most
instances running at once beyond N, from the /v2/events stream, and the
instances launched beyond N. The framework keeps its state on disk as it
does in production (one fsynced file per instance).`

// benchMarathonResult is one scale-up.
type benchMarathonResult struct {
	Instances     int     `json:"instances"`
	Agents        int     `json:"agents"`
	Seconds       float64 `json:"seconds"`
	FirstRunningS float64 `json:"first_running_s"`
	PeakRunning   int     `json:"peak_running"`
	Launched      int     `json:"launched"`
	Overshoot     int     `json:"overshoot"`
	MasterRunning int     `json:"master_running_after"`
	InstancesPerS float64 `json:"instances_per_s"`
}

func runBenchMarathon(args []string) int {
	fs := flag.NewFlagSet("agora bench marathon", flag.ContinueOnError)
	sizesFlag := fs.String("instances", "1000,5000", "comma-separated instance counts to scale to, one run each")
	agents := fs.Int("agents", 50, "simulated agents (each cpus:20;mem:10240;ports:[31000-32999])")
	workDir := fs.String("work_dir", "/var/tmp", "where the master's registry and the framework's state go (a fresh directory below this one, removed afterwards unless the run fails)")
	timeout := fs.Duration("timeout", 15*time.Minute, "bound on each scale-up")
	jsonOut := fs.Bool("json", false, "print the results as JSON")
	verbose := fs.Bool("verbose", false, "log progress on stderr")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: agora bench marathon [--instances 1000,5000] [--agents N] [--json]\n\n%s\n\nFlags:\n", benchMarathonAbout)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	ns, err := sizes("instances", *sizesFlag)
	if err != nil || *agents < 1 || ns[0] < 1 {
		fmt.Fprintf(os.Stderr, "agora bench marathon: --instances must list positive counts and --agents be positive (%v)\n", err)
		return 2
	}
	bin, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora bench marathon: cannot find this binary:", err)
		return 1
	}
	dir, err := os.MkdirTemp(*workDir, "agora-bench-marathon-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora bench marathon: --work_dir:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := benchMarathon(ctx, bin, dir, *agents, ns, *timeout, benchLogger(*verbose))
	if err != nil {
		fmt.Fprintf(os.Stderr, "agora bench marathon: %v\n(state and logs kept in %s)\n", err, dir)
		return 1
	}
	os.RemoveAll(dir)
	if *jsonOut {
		return writeJSON(os.Stdout, res)
	}
	w := newTable()
	fmt.Fprintln(w, "INSTANCES\tAGENTS\tSECONDS\tFIRST RUNNING S\tINSTANCES/S\tPEAK RUNNING\tLAUNCHED\tOVERSHOOT\tMASTER RUNNING AFTER")
	for _, r := range res {
		fmt.Fprintf(w, "%d\t%d\t%.2f\t%.2f\t%.0f\t%d\t%d\t%d\t%d\n", r.Instances, r.Agents, r.Seconds, r.FirstRunningS,
			r.InstancesPerS, r.PeakRunning, r.Launched, r.Overshoot, r.MasterRunning)
	}
	w.Flush()
	return 0
}

// benchMarathon starts a master, the agents and the framework, and scales
// one app per size.
func benchMarathon(ctx context.Context, bin, dir string, agents int, ns []int, timeout time.Duration, log *slog.Logger) ([]benchMarathonResult, error) {
	if err := fleetFiles(agents, false, log); err != nil {
		return nil, err
	}
	m, err := startSimMaster(bin, filepath.Join(dir, "master.log"),
		[]string{"master", "--ip=127.0.0.1", "--work_dir=" + filepath.Join(dir, "master")})
	if err != nil {
		return nil, err
	}
	defer m.stop()
	if err := waitCond(ctx, time.Minute, "the master to lead", func() (bool, string) {
		s, err := masterMetrics(m.addr)
		return err == nil && s["master/elected"] == 1, fmt.Sprint(err)
	}); err != nil {
		return nil, err
	}
	_, stopFleet, err := startFleet(ctx, agentsim.Config{Master: m.addr, Agents: agents,
		Resources: "cpus:20;mem:10240;ports:[31000-32999]", Logger: log}, 5*time.Minute)
	defer stopFleet()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cfg := marathon.Config{Masters: []string{m.addr}, WorkDir: filepath.Join(dir, "marathon"), User: "root",
		HTTPAddress: ln.Addr().String(), Logger: log}
	fctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- serveMarathon(fctx, cfg, ln, serviceSecurity{}) }()
	defer func() { cancel(); <-served }()
	api := "http://" + cfg.HTTPAddress
	if err := waitCond(ctx, time.Minute, "the framework to subscribe", func() (bool, string) {
		var info struct{ FrameworkID string }
		err := benchMarathonCall(ctx, "GET", api+"/v2/info", "", &info)
		return err == nil && info.FrameworkID != "", fmt.Sprint(err)
	}); err != nil {
		return nil, err
	}
	var out []benchMarathonResult
	for _, n := range ns {
		r, err := benchMarathonScale(ctx, api, m.addr, n, timeout, log)
		if err != nil {
			return out, fmt.Errorf("%d instances: %w", n, err)
		}
		r.Agents = agents
		out = append(out, r)
	}
	return out, nil
}

// benchMarathonScale scales a fresh app from 0 to n, then deletes it.
func benchMarathonScale(ctx context.Context, api, master string, n int, timeout time.Duration, log *slog.Logger) (benchMarathonResult, error) {
	r := benchMarathonResult{Instances: n}
	id := fmt.Sprintf("/bench-%d", n)
	if err := benchMarathonCall(ctx, "POST", api+"/v2/apps", fmt.Sprintf(
		`{"id":%q,"cmd":"sleep 3600","cpus":0.01,"mem":1,"instances":0}`, id), nil); err != nil {
		return r, err
	}
	if err := waitCond(ctx, time.Minute, "the app's creation to end", func() (bool, string) {
		var ds []json.RawMessage
		err := benchMarathonCall(ctx, "GET", api+"/v2/deployments", "", &ds)
		return err == nil && len(ds) == 0, fmt.Sprint(len(ds), " deployments ", err)
	}); err != nil {
		return r, err
	}
	ev, err := watchMarathon(ctx, api, id)
	if err != nil {
		return r, err
	}
	defer ev.stop()
	start := time.Now()
	if err := benchMarathonCall(ctx, "PUT", api+"/v2/apps"+id, fmt.Sprintf(`{"instances":%d}`, n), nil); err != nil {
		return r, err
	}
	err = waitCond(ctx, timeout, fmt.Sprintf("%d instances to run", n), func() (bool, string) {
		running, _, _, _ := ev.counts()
		if running < n {
			return false, fmt.Sprintf("%d running", running)
		}
		var ds []json.RawMessage
		if err := benchMarathonCall(ctx, "GET", api+"/v2/deployments", "", &ds); err != nil || len(ds) > 0 {
			return false, fmt.Sprintf("%d running, deployment in progress (%v)", running, err)
		}
		return true, ""
	})
	if err != nil {
		return r, err
	}
	r.Seconds = round3(time.Since(start).Seconds())
	r.InstancesPerS = float64(int(float64(n) / r.Seconds))
	// A moment more for any late launch to show.
	time.Sleep(2 * time.Second)
	running, peak, launched, first := ev.counts()
	r.PeakRunning, r.Launched = peak, launched
	r.FirstRunningS = round3(first.Sub(start).Seconds())
	r.Overshoot = max(0, peak-n, launched-n, running-n)
	if s, err := masterMetrics(master); err == nil {
		r.MasterRunning = int(s["master/tasks_running"])
	}
	log.Info("scaled", "instances", n, "s", r.Seconds, "peak", peak, "launched", launched)
	if err := benchMarathonCall(ctx, "DELETE", api+"/v2/apps"+id, "", nil); err != nil {
		return r, err
	}
	err = waitCond(ctx, timeout, "the app's instances to end", func() (bool, string) {
		s, err := masterMetrics(master)
		return err == nil && s["master/tasks_running"] == 0, fmt.Sprint(s["master/tasks_running"], err)
	})
	return r, err
}

func benchMarathonCall(ctx context.Context, method, url, body string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s %s", method, url, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// marathonWatch follows /v2/events for one app: the instances running now, the most
// at once, those ever launched (seen in any state), and the first
// running.
type marathonWatch struct {
	mu      sync.Mutex
	running map[string]bool
	seen    map[string]bool
	peak    int
	first   time.Time
	stop    func()
}

func watchMarathon(ctx context.Context, api, appID string) (*marathonWatch, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, _ := http.NewRequestWithContext(ctx, "GET", api+"/v2/events?event_type=status_update_event", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	w := &marathonWatch{running: map[string]bool{}, seen: map[string]bool{}}
	done := make(chan struct{})
	w.stop = func() { cancel(); <-done }
	go func() {
		defer close(done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var ev struct{ AppID, TaskID, TaskStatus string }
			if json.Unmarshal([]byte(data), &ev) != nil || ev.TaskID == "" || ev.AppID != appID {
				continue
			}
			w.mu.Lock()
			w.seen[ev.TaskID] = true
			switch ev.TaskStatus {
			case "TASK_RUNNING":
				w.running[ev.TaskID] = true
				if w.first.IsZero() {
					w.first = time.Now()
				}
			case "TASK_STAGING", "TASK_STARTING", "TASK_KILLING":
			default:
				delete(w.running, ev.TaskID)
			}
			w.peak = max(w.peak, len(w.running))
			w.mu.Unlock()
		}
	}()
	return w, nil
}

func (w *marathonWatch) counts() (running, peak, launched int, first time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.running), w.peak, len(w.seen), w.first
}
