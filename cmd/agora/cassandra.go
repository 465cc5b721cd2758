package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/agora-cluster/agora/cassandra/framework"
	"github.com/agora-cluster/agora/cassandra/plan"
	"github.com/agora-cluster/agora/cluster/httplimit"
	"github.com/agora-cluster/agora/dist"
)

func init() {
	register(command{name: "cassandra", summary: "Cassandra: the scheduler that runs a ring on reserved resources, and its status, restart, repair, cleanup and destroy", run: runCassandra})
}

// cassandraCommands are the subcommands of `agora cassandra`.
var cassandraCommands = map[string]command{
	"scheduler": {name: "scheduler", summary: "Run a Cassandra ring on the cluster from a spec", run: func(args []string) int {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return cassandraScheduler(ctx, args, os.Stdout, os.Stderr)
	}},
	"status": {name: "status", summary: "Show the ring's nodes wanted, placed, running and up", run: func(args []string) int { return cassandraGet("status", args, os.Stdout, os.Stderr) }},
	"nodes": {name: "nodes", summary: "List the nodes (agent, ports, volume, task, host ID); `nodes add N` scales out", run: func(args []string) int {
		if len(args) > 0 && args[0] == "add" {
			return cassandraAddNodes(args[1:], os.Stdout, os.Stderr)
		}
		return cassandraGet("nodes", args, os.Stdout, os.Stderr)
	}},
	"config": {name: "config", summary: "Print the ring's spec, with the cassandra.yaml keys changed since", run: func(args []string) int {
		return cassandraGet("config", args, os.Stdout, os.Stderr)
	}},
	"restart": {name: "restart", summary: "Rolling restart, one node at a time; --set key=value changes cassandra.yaml", run: func(args []string) int {
		return cassandraRestart(args, os.Stdout, os.Stderr)
	}},
	"repair": {name: "repair", summary: "nodetool repair -pr on each node in turn, as tasks on their agents", run: func(args []string) int {
		return cassandraJob(framework.JobRepair, args, os.Stdout, os.Stderr)
	}},
	"cleanup": {name: "cleanup", summary: "nodetool cleanup on each node in turn (after a scale-out)", run: func(args []string) int {
		return cassandraJob(framework.JobCleanup, args, os.Stdout, os.Stderr)
	}},
	"destroy": {name: "destroy", summary: "Kill the nodes, destroy their volumes, unreserve their resources and end the scheduler", run: func(args []string) int {
		return cassandraDestroy(args, os.Stdout, os.Stderr)
	}},
	"probe": {name: "probe", summary: "Check one node over CQL (system.local): exit 0 if it answers and has joined (the nodes' health check)", run: func(args []string) int {
		return cassandraProbe(context.Background(), args, os.Stdout, os.Stderr)
	}},
	"endpoints": {name: "endpoints", summary: "Print the native-transport (CQL) addresses of the nodes that are up", run: func(args []string) int { return cassandraGet("endpoints", args, os.Stdout, os.Stderr) }},
}

func runCassandra(args []string) int {
	return dispatchTo("agora cassandra", "command", cassandraCommands, cassandraUsage, args)
}

func cassandraUsage() {
	var b strings.Builder
	b.WriteString("Usage: agora cassandra COMMAND [flags]\n\n`scheduler` runs a Cassandra ring on the cluster; the others ask its REST API.\n\nCommands:\n")
	writeCommandList(&b, cassandraCommands)
	b.WriteString("\nThe scheduler's API is found through --api or AGORA_CASSANDRA_API (default " + cassandraAPIDefault + ").\n")
	fmt.Fprint(os.Stderr, b.String())
}

const cassandraAPIDefault = "127.0.0.1:7080"

func cassandraAPI() string {
	if a := os.Getenv("AGORA_CASSANDRA_API"); a != "" {
		return a
	}
	return cassandraAPIDefault
}

const cassandraSchedulerUsage = `Usage: agora cassandra scheduler --master=HOST:5050|zk://... --spec=FILE
           [--cassandra_home=DIR] [--state_dir=DIR] [--api=HOST:PORT] [--teardown]
           [--health_check_agora=PATH] [--principal=NAME --secret_file=FILE]

Runs a Cassandra ring on agora from a spec (JSON):

  {"name": "ring", "nodes": 3, "seeds": 2, "cpus": 1, "mem": 2048, "disk": 2048,
   "heap": "auto", "num_tokens": 16, "role": "cassandra", "nodes_per_agent": 1,
   "yaml": {"concurrent_reads": 32}, "jvm_options": ["-Dcassandra.ring_delay_ms=5000"],
   "replace_timeout": "10m", "repair_interval": "168h",
   "health_check": {"grace": "48h", "interval": "30s", "consecutive_failures": 3}}

For each node it reserves the node's cpus, mem, disk and three ports (storage,
native transport, JMX) for the role, creates a persistent volume on the disk and
launches bin/cassandra of --cassandra_home (installed on every agent) with a
generated cassandra.yaml: data, commit log, hints and saved caches on the volume.
The heap is "heap" MB, or cassandra-env.sh's formula on mem. Seeds start first;
each further node once every node before it has joined the ring. A node that
dies is launched again on its own reservation and volume, with its data. A
node that joins a ring that may have data (a replacement, or one added with
"nodes add") waits at least 10 s to learn the ring and the schema: a shorter
-Dcassandra.ring_delay_ms in jvm_options is raised to 10000 for it until it
has joined.

The spec is refused, with nothing reserved, when a node needs more than any
agent has, the heap does not fit the task, a cassandra.yaml key is unknown to
Cassandra 5.0 or set by the framework, -Dcassandra.ring_delay_ms is not a whole
number of milliseconds (1 or more), or a ring of that name already runs.

With --state_dir the framework ID and the nodes' reservations, volumes and
host IDs are kept there: interrupting the command leaves the nodes running, and
starting it again adopts them. Without it (or with --teardown), interrupting
stops them; reservations and volumes stay.

Each node's task carries a COMMAND health check that the agent runs where the
node runs: "cassandra probe" of the agora binary --health_check_agora names (a
CQL query of system.local on the node's address), as the spec's "health_check"
says (the defaults above); once the grace period is over, or a check has
passed, that many failures in a row kill the node, which is then launched again
on its volume like any node that failed. The grace period is long because a
node opens CQL only once it has streamed its data in, which can take hours when
it joins or replaces another; a node that never comes up is replaced after
"replace_timeout". {"health_check": {"disabled": true}} or
--health_check_agora="" gives the nodes no health check. The binary should be
at the same path on every agent (one below /tmp is copied into --state_dir
first); where it is missing or cannot run, the check passes and says on stderr
that the node's health was not checked.

A node whose agent stays away from the master (not active) longer than the
spec's "replace_timeout" (default 10m) while the node is down is replaced: it
is placed on another agent with -Dcassandra.replace_address_first_boot naming
the old node; once it has joined, the framework repairs it (nodetool repair
-full on it) before it counts as replaced. The old reservation and volume are
released if that agent comes back. With "repair_interval" the ring is repaired
(repair -pr, one node at a time) that long after its last full repair.

--principal (over the spec's "principal") with --secret_file authenticates the
framework to a master that asks for credentials. --credentials (a Mesos
credentials file) or --http_credentials user:password makes the REST API ask
every caller for HTTP Basic credentials (the client commands' --principal and
--secret_file); --ssl_cert_file and --ssl_key_file serve it over TLS (the
client commands' --ca_file).

The REST API (--api) serves GET /v1/status, /v1/nodes, /v1/endpoints,
/v1/config and /v1/restart, and POST /v1/nodes/add?count=N (scale out),
/v1/restart ({"yaml": {...}}: a rolling restart or configuration change, one
node at a time), /v1/repair and /v1/cleanup (?keyspace=K; nodetool on each
node in turn, GET /v1/job follows it) and /v1/destroy?cluster=NAME (kill the nodes, destroy their
volumes, unreserve their resources, then end); its address is printed on
stdout as "api http://HOST:PORT" (https with TLS).
Keys changed by a rolling restart are kept in --state_dir over the spec's.

Flags:
`

// cassandraScheduler runs `agora cassandra scheduler` until ctx ends. Bad
// input exits 2; a refused spec or framework, 1.
func cassandraScheduler(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora cassandra scheduler", flag.ContinueOnError)
	fs.SetOutput(stderr)
	master := fs.String("master", masterAddrDefault(), "master to subscribe with, host:port or zk://... (env AGORA_MASTER)")
	specFile := fs.String("spec", "", "the ring's spec, a JSON file")
	home := fs.String("cassandra_home", defaultCassandraHome(), "the Cassandra home installed on every agent (agora dist install cassandra)")
	stateDir := fs.String("state_dir", "", "keep the framework ID and the nodes' placement here, for restarts")
	teardown := fs.Bool("teardown", false, "with --state_dir: stop the nodes when interrupted all the same")
	api := fs.String("api", cassandraAPI(), "serve the REST API here, HOST:PORT (\"\" for none)")
	agora := fs.String("health_check_agora", agoraPath(), "the agora binary, at this path on every agent, that runs the nodes' health checks (\"\": none)")
	var creds clientOptions // --principal (over the spec's), --secret_file
	creds.registerCredential(fs)
	var httpSec serviceHTTPFlags // the API's --http_credentials, --credentials, --ssl_*
	httpSec.register(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), cassandraSchedulerUsage)
		fs.PrintDefaults()
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "agora cassandra scheduler: "+format+"\n", a...)
		return 2
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return fail("unexpected arguments %q", fs.Args())
	}
	if *specFile == "" {
		return fail("no spec: give --spec=FILE (see --help)")
	}
	b, err := os.ReadFile(*specFile)
	if err != nil {
		return fail("--spec: %v", err)
	}
	spec, err := plan.Parse(b)
	if err != nil {
		return fail("--spec %s: %v", *specFile, err)
	}
	cred, err := creds.credential()
	if err != nil {
		return fail("%v", err)
	}
	if cred.Principal != "" {
		spec.Principal = cred.Principal
	}
	if *home == "" {
		return fail("no Cassandra home: give --cassandra_home=DIR (installed on every agent; `agora dist install cassandra` makes one)")
	}
	sec, err := httpSec.security("cassandra")
	if err != nil {
		return fail("%v", err)
	}
	if *agora != "" && !filepath.IsAbs(*agora) {
		return fail("--health_check_agora %q: give an absolute path (the agents run it from the nodes' sandboxes)", *agora)
	}
	var ln net.Listener
	webUI := "" // the webui_url: the API's page
	if *api != "" {
		if ln, err = net.Listen("tcp", *api); err != nil {
			return fail("--api: %v", err)
		}
		defer ln.Close()
		host, _, _ := net.SplitHostPort(*api)
		webUI = sec.scheme() + "://" + advertiseAddr(host, ln)
	}
	fw, err := framework.New(framework.Config{Masters: []string{*master}, Spec: spec, Home: *home, StateDir: *stateDir, Teardown: *teardown,
		Agora: *agora, Secret: cred.Secret, WebUIURL: webUI, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel()}))})
	if err != nil {
		return fail("%v", err)
	}
	if ln != nil {
		defer serveCassandraAPI(fw.Handler(), ln, sec).Close()
		fmt.Fprintf(stdout, "api %s://%s\n", sec.scheme(), ln.Addr())
		fmt.Fprintf(stderr, "agora cassandra scheduler: REST API on %s://%s%s, the ring's page at %s/ui/\n", sec.scheme(), ln.Addr(), sec.describe(), webUI)
	}
	fmt.Fprintf(stderr, "agora cassandra scheduler: ring %q (%d nodes) from %s on %s; interrupt to stop\n", spec.Name, spec.Nodes, *home, *master)
	if err := fw.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "agora cassandra scheduler: %v%s\n", err, masterCredentialsHint(*master, err))
		return 1
	}
	select {
	case <-fw.Destroyed():
		fmt.Fprintf(stderr, "agora cassandra scheduler: ring %q destroyed: its volumes and reservations are gone, and so is its state\n", spec.Name)
	default:
	}
	return 0
}

// serveCassandraAPI serves h, the framework's REST API, on ln behind sec's
// guard and over its TLS; `agora dev` serves it the same way.
func serveCassandraAPI(h http.Handler, ln net.Listener, sec serviceSecurity) *http.Server {
	srv := &http.Server{Handler: sec.handler(h), ReadHeaderTimeout: 10 * time.Second}
	go httplimit.Serve(srv, sec.listener(ln), httplimit.Config{Name: "cassandra"})
	return srv
}

// agoraPath is this agora binary as it was invoked (found on $PATH, made
// absolute), not os.Executable's resolved path: symlinks are kept, so a
// /usr/local/bin/agora that an upgrade repoints still names the binary,
// where the versioned file behind it may be gone.
func agoraPath() string {
	if p, err := exec.LookPath(os.Args[0]); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	p, _ := os.Executable()
	return p
}

// defaultCassandraHome is the home `agora dist install cassandra` made on
// this machine, if any.
func defaultCassandraHome() string {
	d, err := dist.Resolve("cassandra")
	if err != nil {
		return ""
	}
	home := filepath.Join(dist.DefaultDir(), d.Dir())
	if _, err := os.Stat(filepath.Join(home, "bin", "cassandra")); err != nil {
		return ""
	}
	return home
}

// cassandraGet runs status, nodes or endpoints: GET /v1/WHAT of the
// scheduler's API, as a table or (--json) as it came.
func cassandraGet(what string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora cassandra "+what, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var api serviceAPI
	cassandraAPIFlag(fs, &api)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agora cassandra %s: unexpected arguments %q\n", what, fs.Args())
		return 2
	}
	body, err := cassandraCall(api, http.MethodGet, "/v1/"+what, nil, http.StatusOK)
	if err != nil {
		fmt.Fprintf(stderr, "agora cassandra %s: %v\n", what, err)
		return 1
	}
	if *asJSON {
		stdout.Write(body)
		return 0
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer w.Flush()
	bad := func(err error) int {
		fmt.Fprintf(stderr, "agora cassandra %s: the API's answer: %v\n", what, err)
		return 1
	}
	switch what {
	case "status":
		var s framework.Status
		if err := json.Unmarshal(body, &s); err != nil {
			return bad(err)
		}
		fmt.Fprintln(w, "CLUSTER\tFRAMEWORK\tROLE\tNODES\tPLACED\tRUNNING\tUP\tHEAP")
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%dM\n", s.Cluster, s.FrameworkID, s.Role, s.Nodes, s.Placed, s.Running, s.Up, s.HeapMB)
	case "nodes":
		var ns []framework.Node
		if err := json.Unmarshal(body, &ns); err != nil {
			return bad(err)
		}
		fmt.Fprintln(w, "NODE\tSEED\tHOST\tNATIVE\tSTORAGE\tJMX\tSTATE\tUP\tHEALTHY\tHOST ID\tVOLUME")
		for _, n := range ns {
			healthy := "-" // no health check result yet
			if n.Healthy != nil {
				healthy = strconv.FormatBool(*n.Healthy)
			}
			fmt.Fprintf(w, "%s\t%v\t%s\t%d\t%d\t%d\t%s\t%v\t%s\t%s\t%s\n", n.Name, n.Seed, dash(n.Host), n.NativePort, n.StoragePort, n.JMXPort,
				dash(strings.TrimPrefix(n.State, "TASK_")), n.Up, healthy, dash(n.HostID), dash(n.VolumeID))
		}
	case "config":
		w.Write(body) // the spec is JSON already
	case "endpoints":
		var e framework.Endpoints
		if err := json.Unmarshal(body, &e); err != nil {
			return bad(err)
		}
		for _, a := range e.Native {
			fmt.Fprintln(w, a)
		}
	}
	return 0
}

// cassandraAPIFlag adds --api, with the credentials and CA flags the API
// may ask for, to a client command's flags.
func cassandraAPIFlag(fs *flag.FlagSet, api *serviceAPI) {
	api.register(fs, "api", cassandraAPI(), "the scheduler's REST API, HOST:PORT or http(s)://HOST:PORT (env AGORA_CASSANDRA_API)")
}

// apiUnreachable is a request that got no answer from the API.
type apiUnreachable struct {
	api serviceAPI
	err error
}

func (e *apiUnreachable) Error() string {
	return fmt.Sprintf("the scheduler's API at %s: %v", e.api, e.err)
}

func (e *apiUnreachable) Unwrap() error { return e.err }

// cassandraCall sends one request (a JSON body, or none) to the
// scheduler's API, presenting the command's credentials, and returns the
// answer's body when its status is want; another status is an error with
// the API's message (and, for a 401, how to give credentials).
func cassandraCall(api serviceAPI, method, path string, body []byte, want int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, api.base()+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := api.do(req)
	if err != nil {
		return nil, &apiUnreachable{api: api, err: err}
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("the scheduler's API at %s: %s: %v", api, resp.Status, err)
	}
	if resp.StatusCode != want {
		msg := fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(answer)))
		if resp.StatusCode == http.StatusUnauthorized {
			msg += api.unauthorizedHint()
		}
		return nil, errors.New(msg)
	}
	return answer, nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cassandraAddNodes runs `agora cassandra nodes add N`: POST
// /v1/nodes/add?count=N; the scheduler places them one at a time.
func cassandraAddNodes(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora cassandra nodes add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var api serviceAPI
	cassandraAPIFlag(fs, &api)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: agora cassandra nodes add [--api HOST:PORT] N\n\nAdds N nodes to the ring; each joins once the nodes before it have.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	n, err := strconv.Atoi(fs.Arg(0))
	if fs.NArg() != 1 || err != nil || n < 1 {
		fmt.Fprintf(stderr, "agora cassandra nodes add: give how many nodes to add, a number of at least 1 (got %q)\n", strings.Join(fs.Args(), " "))
		return 2
	}
	body, err := cassandraCall(api, http.MethodPost, "/v1/nodes/add?count="+strconv.Itoa(n), nil, http.StatusOK)
	if err != nil {
		fmt.Fprintf(stderr, "agora cassandra nodes add: %v\n", err)
		return 1
	}
	var ns []framework.Node
	if err := json.Unmarshal(body, &ns); err != nil {
		fmt.Fprintf(stderr, "agora cassandra nodes add: the API's answer: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "ring of %d nodes; the new ones join one at a time (agora cassandra nodes)\n", len(ns))
	return 0
}

// cassandraRestart runs `agora cassandra restart [--set key=value]...`:
// POST /v1/restart, then (with --wait) polls GET /v1/restart until done.
func cassandraRestart(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora cassandra restart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var api serviceAPI
	cassandraAPIFlag(fs, &api)
	wait := fs.Duration("wait", 0, "wait this long for the restart to finish, printing its progress (0: do not wait)")
	set := rawProps{}
	fs.Var(set, "set", "key=value (repeatable): a cassandra.yaml key and its value (JSON or a bare word)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: agora cassandra restart [--set key=value]... [--wait 10m]\n\n"+
			"Restarts the nodes one at a time, each while every node is up, the next once it is up\n"+
			"again; with --set, each comes back with those cassandra.yaml keys changed.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agora cassandra restart: unexpected arguments %q\n", fs.Args())
		return 2
	}
	yaml := map[string]json.RawMessage{}
	for k, v := range set {
		if !json.Valid([]byte(v)) {
			b, _ := json.Marshal(v)
			v = string(b)
		}
		yaml[k] = json.RawMessage(v)
	}
	body, _ := json.Marshal(map[string]any{"yaml": yaml})
	answer, err := cassandraCall(api, http.MethodPost, "/v1/restart", body, http.StatusAccepted)
	if err != nil {
		fmt.Fprintf(stderr, "agora cassandra restart: %v\n", err)
		return 1
	}
	var st framework.Rolling
	json.Unmarshal(answer, &st)
	fmt.Fprintf(stdout, "rolling restart of %s\n", strings.Join(st.Pending, ", "))
	for deadline := time.Now().Add(*wait); *wait > 0; {
		if st.Done() {
			fmt.Fprintf(stdout, "done: %s restarted\n", strings.Join(st.Restarted, ", "))
			return 0
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(stderr, "agora cassandra restart: not done after %v (restarting %q, %d to go); it goes on\n", *wait, st.Current, len(st.Pending))
			return 1
		}
		time.Sleep(2 * time.Second)
		if b, err := cassandraCall(api, http.MethodGet, "/v1/restart", nil, http.StatusOK); err == nil {
			json.Unmarshal(b, &st)
		}
	}
	return 0
}

// cassandraDestroy runs `agora cassandra destroy --cluster NAME`: POST
// /v1/destroy, then (with --wait) polls GET /v1/status until the ring is
// destroyed or the scheduler, done, stops answering.
func cassandraDestroy(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora cassandra destroy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var api serviceAPI
	cassandraAPIFlag(fs, &api)
	cluster := fs.String("cluster", "", "the ring's name, to confirm which ring's data goes")
	wait := fs.Duration("wait", 0, "wait this long for the destruction to end (0: do not wait)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: agora cassandra destroy --cluster NAME [--wait 5m]\n\n"+
			"Kills the ring's nodes, destroys their persistent volumes (their data) and unreserves\n"+
			"their resources; then the scheduler tears its framework down and forgets the ring.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agora cassandra destroy: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *cluster == "" {
		fmt.Fprintln(stderr, "agora cassandra destroy: name the ring to destroy with --cluster NAME (its data goes with it)")
		return 2
	}
	if _, err := cassandraCall(api, http.MethodPost, "/v1/destroy?cluster="+url.QueryEscape(*cluster), nil, http.StatusAccepted); err != nil {
		fmt.Fprintf(stderr, "agora cassandra destroy: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "destroying ring %s\n", *cluster)
	for deadline := time.Now().Add(*wait); *wait > 0; time.Sleep(2 * time.Second) {
		var st framework.Status
		b, err := cassandraCall(api, http.MethodGet, "/v1/status", nil, http.StatusOK)
		var unreachable *apiUnreachable
		if errors.As(err, &unreachable) {
			// The scheduler ends once the ring is destroyed.
			fmt.Fprintln(stdout, "done: the scheduler has ended")
			return 0
		}
		json.Unmarshal(b, &st)
		if st.Destroyed {
			fmt.Fprintln(stdout, "done: destroyed")
			return 0
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(stderr, "agora cassandra destroy: not done after %v (%d nodes placed, %d placements to release); it goes on\n", *wait, st.Placed, st.Retired)
			return 1
		}
	}
	return 0
}

// cassandraJob runs `agora cassandra repair|cleanup [--keyspace K]`: POST
// /v1/KIND, then (with --wait) polls GET /v1/job until it ends.
func cassandraJob(kind string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora cassandra "+kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var api serviceAPI
	cassandraAPIFlag(fs, &api)
	keyspace := fs.String("keyspace", "", "only this keyspace (default: all)")
	wait := fs.Duration("wait", 0, "wait this long for it to end, printing its progress (0: do not wait)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: agora cassandra %s [--keyspace K] [--wait 30m]\n\n"+
			"Runs nodetool %s on each node in turn, as a task on the node's agent; the next node\n"+
			"once the previous one has finished. A failure stops it.\n\nFlags:\n", kind, kind)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agora cassandra %s: unexpected arguments %q\n", kind, fs.Args())
		return 2
	}
	answer, err := cassandraCall(api, http.MethodPost, "/v1/"+kind+"?keyspace="+url.QueryEscape(*keyspace), nil, http.StatusAccepted)
	if err != nil {
		fmt.Fprintf(stderr, "agora cassandra %s: %v\n", kind, err)
		return 1
	}
	var j framework.Job
	json.Unmarshal(answer, &j)
	nodes := slices.Clone(j.Pending)
	if j.Current != "" {
		nodes = append([]string{j.Current}, nodes...)
	}
	fmt.Fprintf(stdout, "%s of %s, one at a time\n", kind, strings.Join(nodes, ", "))
	for deadline := time.Now().Add(*wait); *wait > 0; {
		if j.Ended() {
			if j.Failed != "" {
				fmt.Fprintf(stderr, "agora cassandra %s: failed on %s (done: %s)\n", kind, j.Failed, strings.Join(j.Done, ", "))
				return 1
			}
			fmt.Fprintf(stdout, "done: %s\n", strings.Join(j.Done, ", "))
			return 0
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(stderr, "agora cassandra %s: not done after %v (on %q, %d to go); it goes on\n", kind, *wait, j.Current, len(j.Pending))
			return 1
		}
		time.Sleep(2 * time.Second)
		if b, err := cassandraCall(api, http.MethodGet, "/v1/job", nil, http.StatusOK); err == nil {
			json.Unmarshal(b, &j)
		}
	}
	return 0
}
