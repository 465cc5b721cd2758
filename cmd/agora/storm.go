package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/tlsconf"
	"github.com/agora-cluster/agora/frameworks/state"
	stormclient "github.com/agora-cluster/agora/storm/client"
)

func init() {
	register(command{name: "storm", summary: "Storm: list|info|kill over Nimbus, and the scheduler that runs it on the cluster", run: runStorm})
}

// stormCommands are the subcommands of `agora storm`.
var stormCommands = map[string]command{
	"list": {name: "list", summary: "List the supervisors, Nimbuses and topologies", run: func(args []string) int { return stormList(args, os.Stdout, os.Stderr) }},
	"info": {name: "info", summary: "Show a topology's executors and their counts", run: func(args []string) int { return stormInfo(args, os.Stdout, os.Stderr) }},
	"kill": {name: "kill", summary: "Kill a topology", run: func(args []string) int { return stormKill(args, os.Stdout, os.Stderr) }},
}

func runStorm(args []string) int {
	return dispatchTo("agora storm", "command", stormCommands, stormUsage, args)
}

func stormUsage() {
	var b strings.Builder
	b.WriteString("Usage: agora storm COMMAND [flags] [args]\n\nTalks to a Storm Nimbus over its Thrift API; `scheduler` runs Storm on the cluster.\n\nCommands:\n")
	writeCommandList(&b, stormCommands)
	b.WriteString("\nNimbus is found through --nimbus or AGORA_STORM_NIMBUS (default 127.0.0.1:6627), or with\n--master as the Nimbus task `agora storm scheduler` runs on that cluster.\n")
	fmt.Fprint(os.Stderr, b.String())
}

// stormRequestTimeout bounds one command's calls to Nimbus.
const stormRequestTimeout = 30 * time.Second

func stormNimbusDefault() string {
	if a := os.Getenv("AGORA_STORM_NIMBUS"); a != "" {
		return a
	}
	return fmt.Sprintf("127.0.0.1:%d", stormclient.DefaultPort)
}

// stormTarget is the Nimbus a command talks to: --nimbus, or the Nimbus
// task the Storm framework runs on the cluster of --master.
type stormTarget struct {
	nimbus, master, framework string
	// opts are the credentials and CA for --master's endpoints, and for
	// them only (a native topology's control takes --control_principal).
	opts clientOptions
}

// masterClient is the client of --master's endpoints, presenting the
// command's credentials and verifying the master with its CA.
func (s *stormTarget) masterClient() (state.Client, error) {
	cred, err := s.opts.credential()
	if err != nil {
		return state.Client{}, err
	}
	var tc *tls.Config
	if s.opts.caFile != "" {
		if tc, err = tlsconf.ClientConfig(s.opts.caFile); err != nil {
			return state.Client{}, fmt.Errorf("--ca_file: %w", err)
		}
	}
	return stateClient(cred, tc, auth.LeaderRedirect), nil
}

// nativeMaster is masterClient for a --runtime native command, which
// needs --master; a missing --master or bad credentials are reported
// (ok false: exit 2).
func (s *stormTarget) nativeMaster(cmd string, stderr io.Writer) (state.Client, bool) {
	if s.master == "" {
		fmt.Fprintf(stderr, "agora storm %s: --runtime native needs --master\n", cmd)
		return state.Client{}, false
	}
	mc, err := s.masterClient()
	if err != nil {
		fmt.Fprintf(stderr, "agora storm %s: %v\n", cmd, err)
		return state.Client{}, false
	}
	return mc, true
}

// nativeSecurity is what a --runtime native submission presents to the
// master (its credentials and CA, checked here) and asks of the callers
// of its control port: page's credentials, over TLS when controlTLS
// (submit's --ssl_* flags) gives a certificate. A nil controlTLS, or one
// without --ssl_cert_file/--ssl_key_file, serves the control over plain
// HTTP: LIBPROCESS_SSL_ENABLED alone (a Mesos client's environment, or
// the agent's a task inherits) does not turn it to TLS. RequireCert is
// refused: the caller clears one that came from the environment
// (controlRequireCertFromEnv).
func (s *stormTarget) nativeSecurity(page *auth.Credentials, controlTLS *tlsconf.Flags) (nativeSecurity, error) {
	cred, err := s.opts.credential()
	if err != nil {
		return nativeSecurity{}, err
	}
	ns := nativeSecurity{page: page, cred: cred}
	if s.opts.caFile != "" {
		if ns.masterTLS, err = tlsconf.ClientConfig(s.opts.caFile); err != nil {
			return nativeSecurity{}, fmt.Errorf("--ca_file: %w", err)
		}
	}
	ns.mc = stateClient(cred, ns.masterTLS, auth.LeaderRedirect)
	if controlTLS != nil && controlTLS.RequireCert {
		// agora storm rebalance, activate, deactivate and list present
		// no client certificate: such a control could not be used.
		return nativeSecurity{}, errors.New("--ssl_require_cert: the topology's control port does not ask for client certificates, " +
			"which agora storm rebalance, activate, deactivate and list do not present; protect it with --http_credentials or --credentials")
	}
	if controlTLS == nil || controlTLS.CertFile == "" && controlTLS.KeyFile == "" {
		return ns, nil
	}
	if ns.control, err = controlTLS.Server(); err != nil {
		return nativeSecurity{}, err
	}
	ns.downgrade = controlTLS.Downgrade
	return ns, nil
}

// controlRequireCertFromEnv clears a RequireCert that fs's
// --ssl_require_cert took from LIBPROCESS_SSL_REQUIRE_CERT rather than
// from the command line: a command task inherits its agent's environment,
// and on an agent that asks its own clients for certificates the task's
// control would otherwise be refused. It returns the warning to print
// when the control then serves TLS without asking for client
// certificates ("" when there is nothing to say).
func controlRequireCertFromEnv(fs *flag.FlagSet, controlTLS *tlsconf.Flags) string {
	if !controlTLS.RequireCert {
		return ""
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "ssl_require_cert" })
	if given {
		return ""
	}
	controlTLS.RequireCert = false
	if controlTLS.CertFile == "" && controlTLS.KeyFile == "" {
		return "" // a plain control, which asks for nothing anyway
	}
	return fmt.Sprintf("WARNING: %s is set, but the topology's control port does not ask for client certificates "+
		"(agora storm rebalance, activate, deactivate and list present none); it serves TLS without them, behind --http_credentials or --credentials", tlsconf.EnvRequireCert)
}

// client connects to the target's Nimbus, finding it through the master
// first when --master is given.
func (s *stormTarget) client() (*stormclient.Client, error) {
	addr := s.nimbus
	if s.master != "" {
		ctx, cancel := context.WithTimeout(context.Background(), stormRequestTimeout)
		defer cancel()
		var err error
		mc, err := s.masterClient()
		if err != nil {
			return nil, err
		}
		if addr, err = nimbusFromMaster(ctx, mc, s.master, s.framework); err != nil {
			return nil, err
		}
	}
	return stormclient.New(addr, stormclient.Options{CallTimeout: stormRequestTimeout})
}

// stormFlags makes a command's flag set: --nimbus, --master,
// --framework_name and, with asJSON, --json.
func stormFlags(name, usage, about string, stderr io.Writer, target *stormTarget, asJSON *bool) *flag.FlagSet {
	fs := flag.NewFlagSet("agora storm "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&target.nimbus, "nimbus", stormNimbusDefault(), "Nimbus's Thrift address, HOST:PORT")
	fs.StringVar(&target.master, "master", "", "find Nimbus as the running Nimbus task of `agora storm scheduler` on this master (host:port or zk://...) instead of --nimbus")
	fs.StringVar(&target.framework, "framework_name", "", "with --master: the Storm framework's name (mesos.framework.name; default: any)")
	target.opts.registerCredential(fs)
	fs.StringVar(&target.opts.caFile, "ca_file", os.Getenv("AGORA_CA_FILE"), "with --master: PEM file of the CA that signed the master's certificate (env AGORA_CA_FILE);\n"+
		"with --runtime native it also verifies the topology's control port (submit's --ssl_cert_file)")
	if asJSON != nil {
		fs.BoolVar(asJSON, "json", false, "print JSON instead of a table")
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: agora storm %s %s\n\n%s\n\nFlags:\n", name, usage, about)
		fs.PrintDefaults()
	}
	return fs
}

// stormFailure prints why a storm command failed and returns exit code
// 1. Many of them read --master first (to find Nimbus, or the native
// topologies): a 401 there says which flags carry credentials; the
// message already names the master.
func stormFailure(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "agora storm %s: %v%s\n", cmd, err, masterCredentialsHint("", err))
	return 1
}

func stormList(args []string, stdout, stderr io.Writer) int {
	var nimbus stormTarget
	var asJSON bool
	fs := stormFlags("list", "[--json]", "Lists Nimbus's supervisors (with their slots), Nimbuses and topologies.", stderr, &nimbus, &asJSON)
	runtime := fs.String("runtime", "storm", "storm (Nimbus's topologies) or native (the native topologies' tasks on --master's cluster)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *runtime == "native" {
		mc, ok := nimbus.nativeMaster("list", stderr)
		if !ok {
			return 2
		}
		var ctl controlOptions
		if err := ctl.trust(nimbus.opts.caFile); err != nil {
			fmt.Fprintln(stderr, "agora storm list:", err)
			return 2
		}
		return nativeList(mc, ctl.statusClient(), nimbus.master, asJSON, stdout, stderr)
	}
	c, err := nimbus.client()
	if err != nil {
		return stormFailure(stderr, "list", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), stormRequestTimeout)
	defer cancel()
	cs, err := c.ClusterInfo(ctx)
	if err != nil {
		return stormFailure(stderr, "list", err)
	}
	if asJSON {
		return writeJSON(stdout, cs)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TOPOLOGY\tID\tSTATUS\tWORKERS\tEXECUTORS\tTASKS\tUPTIME")
	for _, t := range cs.Topologies {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", t.Name, t.ID, t.Status, t.NumWorkers, t.NumExecutors, t.NumTasks, secs(t.UptimeSecs))
	}
	fmt.Fprintln(w, "\nSUPERVISOR\tHOST\tSLOTS\tUSED\tUPTIME")
	for _, s := range cs.Supervisors {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\n", s.ID, s.Host, s.NumWorkers, s.NumUsedWorkers, secs(s.UptimeSecs))
	}
	fmt.Fprintln(w, "\nNIMBUS\tLEADER\tVERSION\tUPTIME")
	for _, n := range cs.Nimbuses {
		fmt.Fprintf(w, "%s:%d\t%v\t%s\t%s\n", n.Host, n.Port, n.IsLeader, n.Version, secs(n.UptimeSecs))
	}
	w.Flush()
	return 0
}

func stormInfo(args []string, stdout, stderr io.Writer) int {
	var nimbus stormTarget
	var asJSON bool
	fs := stormFlags("info", "TOPOLOGY [--json]", "Shows a topology (by name or ID): its executors, where they run, and their all-time counts.", stderr, &nimbus, &asJSON)
	runtime := fs.String("runtime", "storm", "storm (Nimbus's topology) or native (the native topology's workers' metrics on --master's cluster)")
	name, code, done := parseWithID(fs, args)
	if done {
		return code
	}
	if *runtime == "native" {
		mc, ok := nimbus.nativeMaster("info", stderr)
		if !ok {
			return 2
		}
		return nativeInfoCmd(mc, nimbus.master, name, asJSON, stdout, stderr)
	}
	c, err := nimbus.client()
	if err != nil {
		return stormFailure(stderr, "info", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), stormRequestTimeout)
	defer cancel()
	id := name
	if t, ok, err := c.TopologyByName(ctx, name); err != nil {
		return stormFailure(stderr, "info", err)
	} else if ok {
		id = t.ID
	}
	info, err := c.TopologyInfo(ctx, id)
	if err != nil {
		return stormFailure(stderr, "info", err)
	}
	if asJSON {
		return writeJSON(stdout, info)
	}
	sort.Slice(info.Executors, func(i, j int) bool { return info.Executors[i].TaskStart < info.Executors[j].TaskStart })
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Topology:\t%s (%s)\nStatus:\t%s\nUptime:\t%s\n\n", info.Name, info.ID, info.Status, secs(info.UptimeSecs))
	fmt.Fprintln(w, "COMPONENT\tTASKS\tHOST:PORT\tEMITTED\tEXECUTED\tACKED\tFAILED")
	for _, e := range info.Executors {
		var emitted, executed, acked, failed int64
		if s := e.Stats; s != nil {
			emitted = stormclient.Total(s.Emitted, stormclient.AllTime)
			executed = stormclient.Total(s.Executed, stormclient.AllTime)
			acked = stormclient.Total(s.Acked, stormclient.AllTime)
			failed = stormclient.Total(s.Failed, stormclient.AllTime)
		}
		fmt.Fprintf(w, "%s\t%d-%d\t%s:%d\t%d\t%d\t%d\t%d\n", e.ComponentID, e.TaskStart, e.TaskEnd, e.Host, e.Port, emitted, executed, acked, failed)
	}
	for _, comp := range sortedErrorKeys(info.Errors) {
		for _, e := range info.Errors[comp] {
			fmt.Fprintf(w, "error\t%s\t%s\n", comp, firstLine(e.Error))
		}
	}
	w.Flush()
	return 0
}

func stormKill(args []string, stdout, stderr io.Writer) int {
	var nimbus stormTarget
	fs := stormFlags("kill", "TOPOLOGY [--wait SECONDS]", "Kills a topology by name: Nimbus deactivates it, waits, and removes it.", stderr, &nimbus, nil)
	wait := fs.Int("wait", -1, "seconds Nimbus waits between deactivating and removing (default: topology.message.timeout.secs)")
	runtime := fs.String("runtime", "storm", "storm (kill through Nimbus) or native (tear down the native topology's framework on --master's cluster)")
	name, code, done := parseWithID(fs, args)
	if done {
		return code
	}
	if *runtime == "native" {
		mc, ok := nimbus.nativeMaster("kill", stderr)
		if !ok {
			return 2
		}
		return nativeKill(mc, nimbus.master, name, stdout, stderr)
	}
	c, err := nimbus.client()
	if err != nil {
		return stormFailure(stderr, "kill", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), stormRequestTimeout)
	defer cancel()
	d := time.Duration(-1)
	if *wait >= 0 {
		d = time.Duration(*wait) * time.Second
	}
	if err := c.Kill(ctx, name, d); err != nil {
		return stormFailure(stderr, "kill", err)
	}
	fmt.Fprintf(stdout, "killing %s\n", name)
	return 0
}

func secs(s int32) string { return (time.Duration(s) * time.Second).String() }

func sortedErrorKeys(m map[string][]stormclient.ErrorInfo) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
