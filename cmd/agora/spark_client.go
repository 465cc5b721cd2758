package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/tlsconf"
	"github.com/agora-cluster/agora/frameworks/sandbox"
	"github.com/agora-cluster/agora/frameworks/state"
	sparkclient "github.com/agora-cluster/agora/spark/client"
)

// sparkRequestTimeout bounds one command's calls to the dispatcher.
const sparkRequestTimeout = 30 * time.Second

func sparkDispatcherDefault() string {
	if a := os.Getenv("AGORA_SPARK_DISPATCHER"); a != "" {
		return a
	}
	return fmt.Sprintf("127.0.0.1:%d", sparkclient.DefaultPort)
}

// sparkFlags makes a client command's flag set: --dispatcher with the
// credentials and CA it is called with (--principal, --secret_file,
// --ca_file) and, with asJSON, --json.
func sparkFlags(name, usage, about string, stderr io.Writer, api *serviceAPI, asJSON *bool) *flag.FlagSet {
	fs := flag.NewFlagSet("agora spark "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	api.register(fs, "dispatcher", sparkDispatcherDefault(), "the dispatcher, HOST:PORT, mesos://HOST:PORT or https://HOST:PORT (env AGORA_SPARK_DISPATCHER)")
	if asJSON != nil {
		fs.BoolVar(asJSON, "json", false, "print JSON instead of a table")
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: agora spark %s %s\n\n%s\n\nFlags:\n", name, usage, about)
		fs.PrintDefaults()
	}
	return fs
}

// sparkClient is the command's client of the dispatcher api names, with
// its credentials and CA; mesos://HOST:PORT (as spark-submit is given it)
// is the plain HTTP HOST:PORT.
func sparkClient(api serviceAPI) (*sparkclient.Client, error) {
	api.addr = strings.TrimPrefix(strings.TrimSpace(api.addr), "mesos://")
	h, _, err := api.client()
	if err != nil {
		return nil, err
	}
	bounded := *h
	bounded.Timeout = sparkRequestTimeout
	return sparkclient.NewWithHTTP(api.base(), &bounded)
}

// sparkError adds to a refusal for want of credentials what to pass.
func sparkError(api serviceAPI, err error) error {
	if errors.Is(err, sparkclient.ErrUnauthorized) {
		return fmt.Errorf("%w%s", err, api.unauthorizedHint())
	}
	return err
}

func sparkFailure(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "agora spark %s: %v\n", cmd, err)
	return 1
}

func sparkDrivers(args []string, stdout, stderr io.Writer) int {
	var api serviceAPI
	var asJSON bool
	fs := sparkFlags("drivers", "[--json]", "Lists the dispatcher's drivers, oldest first: queued, running, relaunching and ended.", stderr, &api, &asJSON)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	c, err := sparkClient(api)
	if err != nil {
		return sparkFailure(stderr, "drivers", sparkError(api, err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), sparkRequestTimeout)
	defer cancel()
	ds, err := c.Drivers(ctx)
	if err != nil {
		return sparkFailure(stderr, "drivers", sparkError(api, err))
	}
	if asJSON {
		return writeJSON(stdout, ds)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SUBMISSION\tNAME\tSTATE\tCPUS\tMEM\tRETRIES\tHOST\tSUBMITTED")
	for _, d := range ds {
		fmt.Fprintf(w, "%s\t%s\t%s\t%g\t%g\t%d\t%s\t%s\n", d.ID, d.Name, d.State, d.CPUs, d.MemMB, d.Retries,
			orDash(d.Hostname), d.Submitted.Local().Format(time.DateTime))
	}
	w.Flush()
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sparkStatus(args []string, stdout, stderr io.Writer) int {
	var api serviceAPI
	var asJSON bool
	fs := sparkFlags("status", "SUBMISSION [--json]", "Shows one driver: its state, its task and the last status of it.", stderr, &api, &asJSON)
	id, code, done := parseWithID(fs, args)
	if done {
		return code
	}
	c, err := sparkClient(api)
	if err != nil {
		return sparkFailure(stderr, "status", sparkError(api, err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), sparkRequestTimeout)
	defer cancel()
	d, err := c.Driver(ctx, id)
	if err != nil {
		return sparkFailure(stderr, "status", sparkError(api, err))
	}
	if asJSON {
		return writeJSON(stdout, d)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(w, "%s\t%s\n", k, v) }
	row("Submission:", d.ID)
	row("Name:", d.Name)
	row("State:", d.State)
	row("Main class:", d.Request.MainClass)
	row("Application:", strings.TrimSpace(d.Request.AppResource+" "+strings.Join(d.Request.AppArgs, " ")))
	row("Resources:", fmt.Sprintf("%g cpus, %g MB (heap %g MB)", d.CPUs, d.MemMB, d.HeapMB))
	row("Supervise:", fmt.Sprint(d.Supervise))
	row("Submitted:", d.Submitted.Local().Format(time.DateTime))
	if d.TaskID != "" {
		row("Task:", fmt.Sprintf("%s on %s (%s)", d.TaskID, orDash(d.Hostname), orDash(d.TaskState)))
	}
	if d.Retries > 0 {
		row("Retries:", fmt.Sprint(d.Retries))
	}
	if !d.RetryAt.IsZero() && d.State == sparkclient.StateRelaunching {
		row("Next launch:", d.RetryAt.Local().Format(time.DateTime))
	}
	if !d.Finished.IsZero() {
		row("Ended:", d.Finished.Local().Format(time.DateTime))
	}
	if d.Message != "" {
		row("Message:", d.Message)
	}
	w.Flush()
	return 0
}

func sparkKill(args []string, stdout, stderr io.Writer) int {
	var api serviceAPI
	fs := sparkFlags("kill", "SUBMISSION", "Kills a driver: a queued or relaunching one is removed, a running one's task is killed.", stderr, &api, nil)
	id, code, done := parseWithID(fs, args)
	if done {
		return code
	}
	c, err := sparkClient(api)
	if err != nil {
		return sparkFailure(stderr, "kill", sparkError(api, err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), sparkRequestTimeout)
	defer cancel()
	r, err := c.Kill(ctx, id)
	if err != nil {
		return sparkFailure(stderr, "kill", fmt.Errorf("%s: %w", id, sparkError(api, err)))
	}
	fmt.Fprintf(stdout, "%s: %s\n", id, r.Message)
	return 0
}

func sparkLogs(args []string, stdout, stderr io.Writer) int {
	var api serviceAPI
	fs := sparkFlags("logs", "SUBMISSION [--stderr] [--master HOST:PORT]", "Prints the stdout (or stderr) of a driver's latest task from its sandbox on the agent.", stderr, &api, nil)
	master := fs.String("master", masterAddrDefault(), "the master the dispatcher runs against (env AGORA_MASTER)")
	errFile := fs.Bool("stderr", false, "print stderr (the driver's log) instead of stdout")
	id, code, done := parseWithID(fs, args)
	if done {
		return code
	}
	c, err := sparkClient(api)
	if err != nil {
		return sparkFailure(stderr, "logs", sparkError(api, err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), sparkRequestTimeout)
	defer cancel()
	d, err := c.Driver(ctx, id)
	if err != nil {
		return sparkFailure(stderr, "logs", sparkError(api, err))
	}
	if d.TaskID == "" || d.AgentID == "" {
		return sparkFailure(stderr, "logs", fmt.Errorf("%s is %s and has not been launched yet", id, d.State))
	}
	sc, err := sparkStateClient(api)
	if err != nil {
		return sparkFailure(stderr, "logs", err)
	}
	agent, err := sc.Agent(ctx, *master, d.AgentID)
	if err != nil {
		return sparkFailure(stderr, "logs", fmt.Errorf("%s: the agent of task %s: %w", id, d.TaskID, err))
	}
	endpoint := agent.Endpoint()
	if sc.HTTPS && !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint // a cluster on HTTPS: its agents speak it too
	}
	dir, err := sandbox.Locate(ctx, sc, endpoint, d.FrameworkID, d.TaskID, 5*time.Second)
	if err != nil {
		return sparkFailure(stderr, "logs", sparkError(api, err))
	}
	file := "stdout"
	if *errFile {
		file = "stderr"
	}
	f := &sandbox.Follower{Agent: endpoint, Path: dir + "/" + file, W: stdout, HTTP: sc.HTTP}
	if _, err := f.Poll(ctx); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
		return sparkFailure(stderr, "logs", sparkError(api, err))
	}
	return 0
}

// sparkStateClient reads the master and the driver's agent with the
// credentials and CA the command presents to the dispatcher: a secured
// dispatcher runs beside a secured cluster (agora dev --secure gives
// both the same principals and certificate). The CA is --ca_file, else
// AGORA_CA_FILE, as the master's client commands take it; with one the
// master and the agents are called over HTTPS.
func sparkStateClient(api serviceAPI) (state.Client, error) {
	cred, err := api.opts.credential()
	if err != nil && (api.given("principal") || api.given("secret_file")) {
		return state.Client{}, err
	} else if err != nil {
		cred = auth.Credential{} // half of it in the environment: the dispatcher's call said so
	}
	caFile, flag := api.opts.caFile, "--ca_file"
	if caFile == "" {
		caFile, flag = os.Getenv("AGORA_CA_FILE"), "AGORA_CA_FILE"
	}
	var cfg *tls.Config
	if caFile != "" {
		if cfg, err = tlsconf.ClientConfig(caFile); err != nil {
			return state.Client{}, fmt.Errorf("%s: %w", flag, err)
		}
	}
	return stateClient(cred, cfg, auth.LeaderRedirect), nil
}
