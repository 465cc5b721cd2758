package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
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
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/frameworks/scheduler"
	"github.com/agora-cluster/agora/frameworks/state"
	"github.com/agora-cluster/agora/storm/flux"
	"github.com/agora-cluster/agora/storm/framework"
	"github.com/agora-cluster/agora/storm/multilang"
	"github.com/agora-cluster/agora/storm/native"
	nativefw "github.com/agora-cluster/agora/storm/native/framework"
)

func init() {
	stormCommands["worker"] = command{name: "worker", summary: "Run a native topology (the task of `submit --runtime=native`)",
		run: func(args []string) int { return stormWorker(args, os.Stderr) }}
}

// Native topologies run as one task each of a framework of this name,
// the task named as the topology.
const (
	nativeFramework = nativefw.Name
	nativeBundleEnv = "AGORA_STORM_TOPOLOGY"
	nativeMetrics   = "metrics.json"
)

// nativeSubmit runs the checked topology t (read from yamlPath, its text
// with the filter applied being yaml) on the
// cluster of master as topology.workers worker tasks, and waits: the
// submitting command is the topology's framework (storm/native/framework),
// so the topology runs while it does (as `agora run`); an interrupt or
// `agora storm kill --runtime native` ends it.
//
// The control port also serves the cluster's native topologies' page
// (/ui/, storm/framework's UIHandler), open to anyone; its kill acts on
// this command's own topology only.
func nativeSubmit(master, yamlPath string, yaml []byte, name string, t *flux.Topology, conf map[string]any, home string, cpus, mem float64, stdout, stderr io.Writer) int {
	return nativeSubmitPage(nativeSecurity{}, master, yamlPath, yaml, name, t, conf, home, cpus, mem, stdout, stderr)
}

// nativeSecurity is how a native topology's submitting command meets the
// master and the callers of its control port.
type nativeSecurity struct {
	// mc calls the master's endpoints (its state, the kill's TEARDOWN).
	mc state.Client
	// cred subscribes the framework, to a master with
	// --authenticate_frameworks; masterTLS verifies a master given as
	// host:port over HTTPS (nil: plain HTTP).
	cred      auth.Credential
	masterTLS *tls.Config
	// page are the credentials the topologies page, and the control's
	// changes (rebalance, activate, deactivate), ask for (nil: open).
	page *auth.Credentials
	// control serves the control port over TLS (nil: plain HTTP), also
	// accepting plain HTTP with downgrade; its URL, the framework's
	// webui_url, is then https://.
	control   *tls.Config
	downgrade bool
	// managedBy, if set, names who runs the topology (the lambda
	// pipeline of `agora lambda storm-speed`): the control port then
	// serves no topologies page or API, and its changes (rebalance,
	// activate, deactivate, kill) are refused as managed by it; /status
	// stays.
	managedBy string
}

// nativeSubmitPage is nativeSubmit with the master's credentials and CA,
// and the control port's credentials and certificate, of sec.
func nativeSubmitPage(ns nativeSecurity, master, yamlPath string, yaml []byte, name string, t *flux.Topology, conf map[string]any, home string, cpus, mem float64, stdout, stderr io.Writer) int {
	mc := ns.mc
	if master == "" {
		fmt.Fprintln(stderr, "agora storm submit: --runtime native needs --master (the cluster the worker task runs on)")
		return 2
	}
	if name != "" {
		t.Name = name
	}
	if t.Name == "" {
		t.Name = stormNameFromFile(yamlPath)
	}
	workers, err := native.CheckWorkers(t, conf)
	if err != nil {
		fmt.Fprintln(stderr, "agora storm submit:", err)
		return 2
	}
	py, err := multilang.FindStormPy(t.Resources, home)
	if err != nil {
		return stormFailure(stderr, "submit", err)
	}
	c := map[string]any{"topology.name": t.Name}
	for k, v := range conf {
		c[k] = v
	}
	bundle, err := native.Bundle(yaml, t, c, py)
	if err != nil {
		return stormFailure(stderr, "submit", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if running, err := nativeTopologies(ctx, mc, master); err != nil {
		return stormFailure(stderr, "submit", err)
	} else {
		for _, r := range running {
			if r.Name == t.Name {
				return stormFailure(stderr, "submit", fmt.Errorf("topology %q already runs (task %s of framework %s): kill it first or give --name", t.Name, r.TaskID, r.FrameworkID))
			}
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return stormFailure(stderr, "submit", err)
	}
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return stormFailure(stderr, "submit", fmt.Errorf("the topology's control port: %w", err))
	}
	defer ln.Close()
	control := &nativeControl{yaml: yaml, top: t, stormPy: py, conf: c, workers: workers, status: native.Status{Active: true}, ctx: ctx, managedBy: ns.managedBy}
	sec, err := newServiceSecurity(ns.page, "storm")
	if err != nil {
		return stormFailure(stderr, "submit", err)
	}
	sec.tls, sec.downgrade = ns.control, ns.downgrade
	if ns.managedBy == "" {
		// The other topologies' controls are asked for their status
		// trusting the master's CA (dev --secure signs every
		// certificate with it).
		status := controlOptions{}
		if ns.masterTLS != nil {
			status.tls = ns.masterTLS.Clone()
		}
		// The page lists the cluster's native topologies but kills only
		// this command's own: its kill acts with this command's master
		// credentials.
		src := nativeUISource{master: master, c: mc, topology: t.Name, frameworkID: func() string { return control.run.FrameworkID() }, statusHTTP: status.statusClient()}
		// The page reads the master on each request and follows the
		// master's event stream, with the same credentials and CA, to
		// know when to read again.
		feed := newNativeFeed()
		go feed.follow(ctx, clientOptions{master: master, cred: ns.cred, tls: ns.masterTLS})
		go feed.watchViews(ctx, src) // src as it is now: its reads record no view
		src.viewed = feed.view
		control.ui = sec.handler(feed.handler(src.ownKillOnly(framework.UIHandler(framework.UIConfig{Topologies: src, Changes: feed.changes, Master: masterUI(master)}))))
		// The control's changes move the topology's status on the page.
		control.guard = func(h http.Handler) http.Handler { return sec.handler(feed.bumpAfter(h)) }
	}
	// The driver's own reports are quiet: what ends the run is returned.
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError + 4}))
	run, err := nativefw.New(nativefw.Config{
		WebUI:   controlURL(master, ln, sec.scheme()),
		Masters: []string{master}, Topology: t.Name, Workers: workers, CPUs: cpus, Mem: mem, Logger: log,
		Principal: ns.cred.Principal, Secret: ns.cred.Secret, TLS: ns.masterTLS,
		Command: []string{exe, "storm", "worker"}, Env: map[string]string{nativeBundleEnv: bundle},
		Labels: executorLabels(native.Assign(t, workers)),
		OnRunning: func(launch int, peers []string) {
			fmt.Fprintf(stdout, "topology %s runs as %d worker task(s) at %s; interrupt to kill it\n", t.Name, len(peers), strings.Join(peers, ", "))
		},
		OnReplace: func(worker int, why string) {
			fmt.Fprintf(stderr, "agora storm submit: topology %s: %s; starting worker %d again\n", t.Name, why, worker)
		},
	})
	if err != nil {
		return stormFailure(stderr, "submit", err)
	}
	control.run = run
	go control.serve(ctx, sec.listener(ln))
	sigCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = run.Wait(sigCtx)
	var removed *scheduler.MasterError
	switch {
	case err == nil:
		fmt.Fprintf(stdout, "topology %s killed\n", t.Name)
		return 0
	case sigCtx.Err() != nil && ctx.Err() == nil:
		fmt.Fprintf(stderr, "agora storm submit: interrupted: topology %s killed\n", t.Name)
		return 130
	case scheduler.StatusCode(err) == http.StatusForbidden || errors.As(err, &removed):
		// `agora storm kill --runtime native` tears the framework down.
		fmt.Fprintf(stdout, "topology %s killed (its framework was torn down)\n", t.Name)
		return 0
	case errors.Is(err, nativefw.ErrStopped):
		return stormFailure(stderr, "submit", fmt.Errorf("topology %s: %w (the worker's stderr in its sandbox names the component)", t.Name, err))
	}
	return masterFailure("storm submit", master, err)
}

// executorLabels label each worker task with the task IDs it runs, by
// component (`agora storm workers --runtime native` reads them).
func executorLabels(assign []map[string][]int) func(int) map[string]string {
	return func(w int) map[string]string {
		if w < 0 || w >= len(assign) {
			return nil
		}
		b, _ := json.Marshal(assign[w])
		return map[string]string{labelExecutors: string(b)}
	}
}

// stormNameFromFile is the topology name of a Flux file without one.
func stormNameFromFile(p string) string {
	b := filepath.Base(p)
	return b[:len(b)-len(filepath.Ext(b))]
}

// stormWorker runs the topology of $AGORA_STORM_TOPOLOGY in the current
// directory (the task's sandbox) until it is stopped, writing the metrics
// to metrics.json there every 2 s. A topology that stops on its own (a
// component broke the protocol) exits 1 with the reason.
func stormWorker(args []string, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "agora storm worker: takes no arguments (the topology comes in $%s)\n", nativeBundleEnv)
		return 2
	}
	bundle := os.Getenv(nativeBundleEnv)
	if bundle == "" {
		fmt.Fprintf(stderr, "agora storm worker: $%s is empty: this command is the task `agora storm submit --runtime=native` launches\n", nativeBundleEnv)
		return 2
	}
	dir, err := filepath.Abs("topology")
	if err != nil {
		return stormFailure(stderr, "worker", err)
	}
	t, conf, err := native.Unbundle(bundle, dir)
	if err != nil {
		return stormFailure(stderr, "worker", err)
	}
	if n, ok := conf["topology.name"].(string); ok && n != "" {
		t.Name = n
	}
	// A rebalanced topology's executor counts.
	executors, err := native.ParallelismOf(conf)
	if err == nil {
		t, err = native.WithParallelism(t, executors)
	}
	if err != nil {
		return stormFailure(stderr, "worker", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, nil))
	opts := native.Options{Conf: conf, Stderr: stderr, Logger: log}
	if v := os.Getenv(nativeStatusEnv); v != "" {
		st, err := native.ParseStatus(v)
		if err != nil {
			return stormFailure(stderr, "worker", fmt.Errorf("$%s: %w", nativeStatusEnv, err))
		}
		opts.Status = &st
	}
	if peers := os.Getenv(nativefw.EnvPeers); peers != "" {
		opts.Peers = strings.Split(peers, ",")
		if opts.Worker, err = strconv.Atoi(os.Getenv(nativefw.EnvWorker)); err != nil || opts.Worker < 0 || opts.Worker >= len(opts.Peers) {
			return stormFailure(stderr, "worker", fmt.Errorf("$%s %q does not index $%s", nativefw.EnvWorker, os.Getenv(nativefw.EnvWorker), nativefw.EnvPeers))
		}
		_, port, err := net.SplitHostPort(opts.Peers[opts.Worker])
		if err != nil {
			return stormFailure(stderr, "worker", fmt.Errorf("$%s: %w", nativefw.EnvPeers, err))
		}
		if l := os.Getenv(nativefw.EnvLaunch); l != "" {
			if opts.Launch, err = strconv.Atoi(l); err != nil || opts.Launch < 1 {
				return stormFailure(stderr, "worker", fmt.Errorf("$%s %q is not a launch number", nativefw.EnvLaunch, l))
			}
		}
		if opts.Listener, err = net.Listen("tcp", ":"+port); err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				// Another process holds the offered port: the framework
				// launches this worker again on its next offer.
				fmt.Fprintf(stderr, "agora storm worker: %v: another process holds the offered port; exiting %d to be launched again\n", err, nativefw.ExitPortTaken)
				return nativefw.ExitPortTaken
			}
			return stormFailure(stderr, "worker", err)
		}
	}
	r, err := native.Start(ctx, t, opts)
	if err != nil {
		return stormFailure(stderr, "worker", err)
	}
	defer r.Stop()
	log.Info("native storm: topology running", "topology", t.Name, "metrics", nativeMetrics)
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		writeNativeMetrics(r)
		select {
		case <-tick.C:
		case <-r.Done():
			writeNativeMetrics(r)
			if err := r.Err(); err != nil {
				return stormFailure(stderr, "worker", err)
			}
			return 0
		}
	}
}

func writeNativeMetrics(r *native.Runtime) {
	b, err := json.MarshalIndent(r.Metrics(), "", "  ")
	if err != nil {
		return
	}
	tmp := nativeMetrics + ".tmp"
	if os.WriteFile(tmp, b, 0o644) == nil {
		os.Rename(tmp, nativeMetrics)
	}
}

// nativeTopology is a native topology's worker task as the master lists it.
type nativeTopology struct {
	Name        string `json:"name"`
	TaskID      string `json:"task_id"`
	State       string `json:"state"`
	Agent       string `json:"agent"`
	FrameworkID string `json:"framework_id"`
	// Status is the topology's ACTIVE, INACTIVE or REBALANCING, as its
	// submitting command keeps it (list only; UNKNOWN when it does not
	// answer).
	Status string `json:"status,omitempty"`
}

// nativeTopologies are the worker tasks of running native topologies.
func nativeTopologies(ctx context.Context, mc state.Client, master string) ([]nativeTopology, error) {
	m, err := mc.Master(ctx, master)
	if err != nil {
		return nil, fmt.Errorf("list native topologies on master %s: %w", master, err)
	}
	hosts := map[string]string{}
	for _, a := range m.Slaves {
		hosts[a.ID] = a.Hostname
	}
	var out []nativeTopology
	for _, f := range m.Frameworks {
		if f.Name != nativeFramework {
			continue
		}
		for _, t := range f.Tasks {
			out = append(out, nativeTopology{Name: t.Name, TaskID: t.ID, State: t.State, Agent: hosts[t.SlaveID], FrameworkID: f.ID})
		}
	}
	return out, nil
}

// nativeList lists the native topologies of master's cluster, asking
// each one's submitting command for its status with statusHTTP. A
// control whose certificate statusHTTP does not verify is listed UNKNOWN
// and named on stderr, and the exit is then 1.
func nativeList(mc state.Client, statusHTTP *http.Client, master string, asJSON bool, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), stormRequestTimeout)
	defer cancel()
	ts, err := nativeTopologies(ctx, mc, master)
	if err != nil {
		return stormFailure(stderr, "list", err)
	}
	statuses := map[string]string{} // framework → status
	code := 0
	for i, t := range ts {
		st, ok := statuses[t.FrameworkID]
		if !ok {
			st = "UNKNOWN"
			if base, err := nativeControlURL(ctx, mc, master, t.Name); err == nil {
				s, err := nativeStatusOf(ctx, statusHTTP, base)
				switch verr := controlVerifyError(t.Name, base, err); {
				case err == nil:
					st = s
				case verr != nil:
					// Listed all the same, UNKNOWN; the exit says
					// a control was not trusted.
					fmt.Fprintln(stderr, "agora storm list:", verr)
					code = 1
				}
			}
			statuses[t.FrameworkID] = st
		}
		ts[i].Status = st
	}
	if asJSON {
		if ts == nil {
			ts = []nativeTopology{}
		}
		if c := writeJSON(stdout, ts); c != 0 {
			return c
		}
		return code
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TOPOLOGY\tSTATUS\tTASK\tSTATE\tAGENT\tFRAMEWORK")
	for _, t := range ts {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Status, t.TaskID, t.State, t.Agent, t.FrameworkID)
	}
	w.Flush()
	return code
}

// nativeKill tears down the framework that runs the topology: its worker
// task is killed and the submitting command returns.
func nativeKill(mc state.Client, master, name string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), stormRequestTimeout)
	defer cancel()
	ts, err := nativeTopologies(ctx, mc, master)
	if err != nil {
		return stormFailure(stderr, "kill", err)
	}
	for _, t := range ts {
		if t.Name != name {
			continue
		}
		if err := teardownFramework(ctx, mc, master, t.FrameworkID); err != nil {
			return stormFailure(stderr, "kill", err)
		}
		fmt.Fprintf(stdout, "killing %s\n", name)
		return 0
	}
	return stormFailure(stderr, "kill", fmt.Errorf("no native topology %q runs on master %s", name, master))
}

// teardownFramework sends the operator API's TEARDOWN for framework id,
// with mc's credentials.
func teardownFramework(ctx context.Context, mc state.Client, master, id string) error {
	addr := master
	if mc.HTTPS && !strings.Contains(addr, "://") {
		addr = "https://" + strings.TrimSpace(addr)
	}
	base, err := state.BaseURL(addr)
	if err != nil {
		return err
	}
	call, _ := json.Marshal(map[string]any{"type": "TEARDOWN", "teardown": map[string]any{"framework_id": map[string]string{"value": id}}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1", bytes.NewReader(call))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClientOf(mc).Do(req)
	if err != nil {
		return fmt.Errorf("teardown of framework %s at master %s: %w", id, master, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("teardown of framework %s at master %s: %s: %s", id, master, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// httpClientOf is mc's HTTP client (the default one when it has none).
func httpClientOf(mc state.Client) *http.Client {
	if mc.HTTP != nil {
		return mc.HTTP
	}
	return http.DefaultClient
}
