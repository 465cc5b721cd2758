package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/agora-cluster/agora/cluster/tlsconf"
	"github.com/agora-cluster/agora/frameworks/state"
	stormclient "github.com/agora-cluster/agora/storm/client"
	"github.com/agora-cluster/agora/storm/flux"
	"github.com/agora-cluster/agora/storm/submit"
)

func init() {
	stormCommands["submit"] = command{name: "submit", summary: "Submit a Flux topology of multilang components, or a topology JAR",
		run: func(args []string) int { return stormSubmit(args, os.Stdout, os.Stderr) }}
	stormCommands["rebalance"] = command{name: "rebalance", summary: "Change a topology's workers and executors",
		run: func(args []string) int { return stormRebalance(args, os.Stdout, os.Stderr) }}
	stormCommands["activate"] = command{name: "activate", summary: "Let a topology's spouts emit again",
		run: func(args []string) int { return stormActivation(true, args, os.Stdout, os.Stderr) }}
	stormCommands["deactivate"] = command{name: "deactivate", summary: "Stop a topology's spouts emitting",
		run: func(args []string) int { return stormActivation(false, args, os.Stdout, os.Stderr) }}
}

// stormSubmitTimeout bounds a submission: the jar upload and the calls
// around it.
const stormSubmitTimeout = 2 * time.Minute

// stormConf are -c key=value options: a value that reads as JSON (a
// number, true, a list) is taken as such, any other as a string, as
// Storm's -c reads YAML values.
type stormConf map[string]any

func (p stormConf) String() string { return "" }

func (p stormConf) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if k = strings.TrimSpace(k); !ok || k == "" {
		return fmt.Errorf("%q is not of the form key=value", s)
	}
	var val any
	if err := json.Unmarshal([]byte(v), &val); err != nil {
		val = v
	}
	p[k] = val
	return nil
}

func stormSubmit(args []string, stdout, stderr io.Writer) int {
	var nimbus stormTarget
	var asJSON bool
	fs := stormFlags("submit", "TOPOLOGY.yaml [--name NAME] [-c key=value]... [--resources DIR]\n       agora storm submit TOPOLOGY.jar --class MAIN [-c key=value]... [ARGS...]",
		"Submits a Flux topology whose spouts and bolts are multilang scripts (FluxShellSpout,\n"+
			"FluxShellBolt): the scripts of the resources directory (default: resources/ beside the\n"+
			"file, else the file's directory) and Storm's storm.py go into the topology jar's\n"+
			"resources/, the jar is uploaded to Nimbus, and the topology is submitted. The file is\n"+
			"checked first: nothing is sent for a topology Storm could not run.\n\n"+
			"A JAR's main class is run as Storm's `storm jar` runs it: java with the Storm home's\n"+
			"lib/ and the JAR on the class path, -Dstorm.jar=JAR and Nimbus's address in\n"+
			"storm.options, so that its StormSubmitter uploads the JAR and submits the topology.\n\n"+
			"With --runtime native this command is the topology's framework: it subscribes to --master\n"+
			"with --principal and --secret_file (verifying it with --ca_file), and serves the topology's\n"+
			"control port (the framework's webui_url: the topologies page, rebalance, activate and\n"+
			"deactivate) behind --http_credentials or --credentials, over HTTPS with --ssl_cert_file and\n"+
			"--ssl_key_file (LIBPROCESS_SSL_CERT_FILE, LIBPROCESS_SSL_KEY_FILE); the other commands\n"+
			"verify that certificate with their --ca_file. Without a certificate the port speaks plain\n"+
			"HTTP, LIBPROCESS_SSL_ENABLED or not. --ssl_require_cert is refused (the other commands\n"+
			"present no client certificate); LIBPROCESS_SSL_REQUIRE_CERT, which a task inherits from\n"+
			"its agent, is warned of and not applied. The --ssl_* flags without --runtime native are refused.", stderr, &nimbus, &asJSON)
	name := fs.String("name", "", "the topology's name (default: the file's name:)")
	resources := fs.String("resources", "", "the directory of the components' scripts")
	home := fs.String("storm_home", defaultStormHome(), "a Storm home with storm.py (agora dist install storm)")
	conf := stormConf{}
	fs.Var(conf, "c", "key=value (repeatable): topology configuration over the file's config")
	runtime := fs.String("runtime", "", "storm (submit to Nimbus) or native (agora runs the topology as a task of --master's cluster, no JVM; the command stays attached to it);\n"+
		"default: storm when --nimbus is given or a Storm distribution is installed (agora dist install storm, --storm_home), else native")
	cpus := fs.Float64("cpus", 1, "with --runtime native: the worker task's CPUs")
	mem := fs.Float64("mem", 512, "with --runtime native: the worker task's memory, MB")
	pageCreds := fs.String("credentials", "", "with --runtime native: JSON file of the principals and secrets the topologies page (/ui/ of the\nframework's webui_url) and its API (/api/v1/) accept (the master's --credentials format)")
	pageUser := fs.String("http_credentials", "", "with --runtime native: user:password the topologies page and its API accept (instead of --credentials);\n"+
		"agora storm rebalance, activate and deactivate present them as --control_principal and --control_secret_file")
	var controlTLS tlsconf.Flags
	controlTLS.Register(fs)
	filterFile := fs.String("filter", "", "a Java properties file: replace ${key} in the topology file with its values, as Flux's --filter")
	envFilter := fs.Bool("env-filter", false, "replace ${ENV-NAME} in the topology file with the environment variable NAME, as Flux's --env-filter")
	class := fs.String("class", "", "with a JAR: its `MAIN` class, which builds the topology and calls StormSubmitter (as Storm's storm jar JAR MAIN)")
	path, code, done := parseWithID(fs, args)
	if done {
		return code
	}
	// The --ssl_* flags given on the command line serve the native
	// control port; Storm's own submission has none (their
	// LIBPROCESS_SSL_* defaults, a Mesos client's environment, are not
	// refused).
	var sslGiven []string
	fs.Visit(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "ssl_") {
			sslGiven = append(sslGiven, "--"+f.Name)
		}
	})
	sslOnStorm := func(why string) int {
		fmt.Fprintf(stderr, "agora storm submit: %s: %s has no control port to serve over TLS (the --ssl_* flags apply with --runtime native only)\n", strings.Join(sslGiven, ", "), why)
		return 2
	}
	if strings.HasSuffix(strings.ToLower(path), ".jar") {
		mainArgs := fs.Args()
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			mainArgs = mainArgs[1:] // the JAR came after the flags
		}
		switch {
		case *runtime == "native":
			fmt.Fprintln(stderr, "agora storm submit: a JAR runs on Storm only (--runtime native runs a Flux topology file)")
			return 2
		case *name != "":
			fmt.Fprintln(stderr, "agora storm submit: --name does not apply to a JAR: its main class names the topology")
			return 2
		case len(sslGiven) > 0:
			return sslOnStorm("a JAR runs on Storm, whose submission")
		}
		return stormSubmitJarCmd(stormJar{jar: path, class: *class, args: mainArgs, home: *home, conf: conf}, nimbus, asJSON, stdout, stderr)
	}
	if *class != "" {
		fmt.Fprintln(stderr, "agora storm submit: --class applies to a JAR only")
		return 2
	}
	if fs.NArg() > 1 || (fs.NArg() == 1 && fs.Arg(0) != path) {
		fmt.Fprintf(stderr, "agora storm submit: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *runtime == "" {
		named := os.Getenv("AGORA_STORM_NIMBUS") != ""
		fs.Visit(func(f *flag.Flag) { named = named || f.Name == "nimbus" })
		master := nimbus.master
		if master == "" {
			master = masterAddrDefault()
		}
		var why string
		if *runtime, why = stormRuntimeDefault(named, *home, master); why != "" {
			nimbus.master = master
			fmt.Fprintln(stderr, "agora storm submit:", why)
		}
	}
	if *runtime != "storm" && *runtime != "native" {
		fmt.Fprintf(stderr, "agora storm submit: --runtime %q: want storm or native\n", *runtime)
		return 2
	}
	if *runtime == "storm" && len(sslGiven) > 0 {
		return sslOnStorm("--runtime storm submits to Nimbus, which")
	}
	filter := flux.Filter{Env: *envFilter}
	if *filterFile != "" {
		props, err := flux.ReadProperties(*filterFile)
		if err != nil {
			return stormFailure(stderr, "submit", err)
		}
		filter.Properties = props
	}
	t, yaml, err := flux.LoadFiltered(path, *resources, filter)
	if err != nil {
		return stormFailure(stderr, "submit", err)
	}
	if *runtime == "native" {
		page, err := serviceCredentials(*pageCreds, *pageUser)
		if err != nil {
			fmt.Fprintln(stderr, "agora storm submit:", err)
			return 2
		}
		if warning := controlRequireCertFromEnv(fs, &controlTLS); warning != "" {
			fmt.Fprintln(stderr, "agora storm submit:", warning)
		}
		ns, err := nimbus.nativeSecurity(page, &controlTLS)
		if err != nil {
			fmt.Fprintln(stderr, "agora storm submit:", err)
			return 2
		}
		switch {
		case page == nil:
			fmt.Fprintln(stderr, "agora storm submit: WARNING: the topology's control port serves the topologies page, which kills, rebalances and deactivates topologies, to anyone who reaches it: give --http_credentials or --credentials")
		case ns.control == nil:
			fmt.Fprintln(stderr, "agora storm submit: WARNING: the topology's control port speaks plain HTTP, so the page's credentials cross the network in clear: give --ssl_cert_file and --ssl_key_file")
		case ns.downgrade:
			fmt.Fprintln(stderr, "agora storm submit: WARNING: --ssl_support_downgrade: the topology's control port also takes plain HTTP, over which the page's credentials cross the network in clear")
		}
		return nativeSubmitPage(ns, nimbus.master, path, yaml, *name, t, conf, *home, *cpus, *mem, stdout, stderr)
	}
	p, err := submit.Prepare(t, submit.Options{Name: *name, Conf: conf, StormHome: *home})
	if err != nil {
		return stormFailure(stderr, "submit", err)
	}
	c, err := nimbus.client()
	if err != nil {
		return stormFailure(stderr, "submit", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), stormSubmitTimeout)
	defer cancel()
	id, err := p.Submit(ctx, c)
	if err != nil {
		return stormFailure(stderr, "submit", err)
	}
	if asJSON {
		return writeJSON(stdout, map[string]string{"name": p.Name, "id": id, "nimbus": c.Addr()})
	}
	fmt.Fprintf(stdout, "submitted %s (%s) to %s\n", p.Name, id, c.Addr())
	return 0
}

// executorCounts are -e component=N options.
type executorCounts map[string]int32

func (e executorCounts) String() string { return "" }

func (e executorCounts) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if k = strings.TrimSpace(k); !ok || k == "" || err != nil || n < 1 {
		return fmt.Errorf("%q is not of the form component=N with N at least 1", s)
	}
	e[k] = int32(n)
	return nil
}

func stormRebalance(args []string, stdout, stderr io.Writer) int {
	var nimbus stormTarget
	fs := stormFlags("rebalance", "TOPOLOGY [-n WORKERS] [-e component=N]... [--wait SECONDS]",
		"Has Nimbus spread a topology's executors again, with new worker and executor counts.", stderr, &nimbus, nil)
	workers := fs.Int("n", 0, "the topology's new number of workers")
	execs := executorCounts{}
	fs.Var(execs, "e", "component=N (repeatable): a component's new number of executors")
	wait := fs.Int("wait", -1, "seconds the topology is deactivated first (default: topology.message.timeout.secs; with --runtime native: 0)")
	runtime := fs.String("runtime", "storm", "storm (rebalance through Nimbus) or native (the native topology on --master's cluster is launched again with the new counts)")
	var ctl controlOptions
	ctl.register(fs)
	name, code, done := parseWithID(fs, args)
	if done {
		return code
	}
	if err := ctl.check(); err != nil {
		fmt.Fprintf(stderr, "agora storm rebalance: %v\n", err)
		return 2
	}
	if err := ctl.trust(nimbus.opts.caFile); err != nil {
		fmt.Fprintf(stderr, "agora storm rebalance: %v\n", err)
		return 2
	}
	if *workers < 0 {
		fmt.Fprintf(stderr, "agora storm rebalance: -n %d: the number of workers must be at least 1\n", *workers)
		return 2
	}
	if *runtime == "native" {
		mc, ok := nimbus.nativeMaster("rebalance", stderr)
		if !ok {
			return 2
		}
		req := nativeRebalance{Workers: *workers, Executors: map[string]int{}, WaitSecs: max(0, *wait)}
		for k, v := range execs {
			req.Executors[k] = int(v)
		}
		return nativeRebalanceCmd(mc, ctl, nimbus.master, name, req, stdout, stderr)
	}
	c, err := nimbus.client()
	if err != nil {
		return stormFailure(stderr, "rebalance", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), stormRequestTimeout)
	defer cancel()
	r := stormclient.Rebalance{Wait: -1, Workers: int32(*workers), Executors: execs}
	if *wait >= 0 {
		r.Wait = time.Duration(*wait) * time.Second
	}
	if err := c.Rebalance(ctx, name, r); err != nil {
		return stormFailure(stderr, "rebalance", err)
	}
	fmt.Fprintf(stdout, "rebalancing %s\n", name)
	return 0
}

func stormActivation(activate bool, args []string, stdout, stderr io.Writer) int {
	cmd, about := "deactivate", "Stops a topology's spouts emitting (tuples in flight are still processed)."
	if activate {
		cmd, about = "activate", "Lets a deactivated topology's spouts emit again."
	}
	var nimbus stormTarget
	fs := stormFlags(cmd, "TOPOLOGY", about, stderr, &nimbus, nil)
	runtime := fs.String("runtime", "storm", "storm (through Nimbus) or native (the native topology on --master's cluster, through its submitting command)")
	var ctl controlOptions
	ctl.register(fs)
	name, code, done := parseWithID(fs, args)
	if done {
		return code
	}
	if err := ctl.check(); err != nil {
		fmt.Fprintf(stderr, "agora storm %s: %v\n", cmd, err)
		return 2
	}
	if err := ctl.trust(nimbus.opts.caFile); err != nil {
		fmt.Fprintf(stderr, "agora storm %s: %v\n", cmd, err)
		return 2
	}
	if *runtime == "native" {
		mc, ok := nimbus.nativeMaster(cmd, stderr)
		if !ok {
			return 2
		}
		return nativeActivationCmd(mc, ctl, nimbus.master, name, activate, stdout, stderr)
	}
	c, err := nimbus.client()
	if err != nil {
		return stormFailure(stderr, cmd, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), stormRequestTimeout)
	defer cancel()
	call := c.Deactivate
	if activate {
		call = c.Activate
	}
	if err := call(ctx, name); err != nil {
		return stormFailure(stderr, cmd, err)
	}
	fmt.Fprintf(stdout, "%sd %s\n", cmd, name)
	return 0
}

// nimbusFromMaster finds the Nimbus that `agora storm scheduler` runs as a
// task ("NAME | nimbus") on the master's cluster: the agent's hostname and
// the one port the task took. framework, if given, is the framework's name.
func nimbusFromMaster(ctx context.Context, mc state.Client, master, framework string) (string, error) {
	m, err := mc.Master(ctx, master)
	if err != nil {
		return "", fmt.Errorf("find Nimbus through master %s: %w", master, err)
	}
	hosts := map[string]string{}
	for _, a := range m.Slaves {
		hosts[a.ID] = a.Hostname
	}
	var found []string
	for _, f := range m.Frameworks {
		if framework != "" && f.Name != framework {
			continue
		}
		for _, t := range f.Tasks {
			if t.Name != f.Name+" | nimbus" || t.State != "TASK_RUNNING" {
				continue
			}
			port, _, _ := strings.Cut(strings.Trim(t.Resources.Ports, "[] "), "-")
			if port == "" || hosts[t.SlaveID] == "" {
				continue
			}
			found = append(found, net.JoinHostPort(hosts[t.SlaveID], port))
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("master %s runs no Nimbus task of a Storm framework%s (start `agora storm scheduler`, or give --nimbus)", master, frameworkNamed(framework))
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("master %s runs %d Nimbus tasks (%s): pick one with --framework_name or --nimbus", master, len(found), strings.Join(found, ", "))
}

func frameworkNamed(name string) string {
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" named %q", name)
}
