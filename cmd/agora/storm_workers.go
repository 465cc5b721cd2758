package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/frameworks/state"
	stormclient "github.com/agora-cluster/agora/storm/client"
	"github.com/agora-cluster/agora/storm/native"
	nativefw "github.com/agora-cluster/agora/storm/native/framework"
)

func init() {
	stormCommands["workers"] = command{name: "workers", summary: "List the topologies' workers: host, port, executors, uptime",
		run: func(args []string) int { return stormWorkers(args, os.Stdout, os.Stderr) }}
}

// labelExecutors is the label of a native worker task naming, by
// component, the task IDs it runs (JSON).
const labelExecutors = "agora.storm.executors"

// stormWorkerRow is one worker of a topology: a slot of a supervisor on
// Storm, a worker task of a native topology.
type stormWorkerRow struct {
	Topology string `json:"topology"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	// Executors are, by component, the executors the worker runs.
	Executors  map[string]int `json:"executors"`
	UptimeSecs int            `json:"uptime_secs"`
	// Of a native topology: the worker's index and its task.
	Worker *int   `json:"worker,omitempty"`
	TaskID string `json:"task_id,omitempty"`
}

func stormWorkers(args []string, stdout, stderr io.Writer) int {
	var nimbus stormTarget
	var asJSON bool
	fs := stormFlags("workers", "[TOPOLOGY] [--json]",
		"Lists the workers of a topology (by name or ID), or of every topology: where each runs,\n"+
			"the executors of each component in it, and its uptime.", stderr, &nimbus, &asJSON)
	runtime := fs.String("runtime", "storm", "storm (Nimbus's topologies) or native (the native topologies' worker tasks on --master's cluster)")
	name, rest := splitFirstArg(args)
	if code, done := parseFlags(fs, rest); done {
		return code
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	if fs.NArg() > 1 || (name != "" && fs.NArg() == 1 && fs.Arg(0) != name) {
		fmt.Fprintf(stderr, "agora storm workers: unexpected arguments %q\n", fs.Args())
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), stormRequestTimeout)
	defer cancel()
	var rows []stormWorkerRow
	var err error
	switch *runtime {
	case "storm":
		rows, err = stormWorkerRows(ctx, &nimbus, name)
	case "native":
		mc, ok := nimbus.nativeMaster("workers", stderr)
		if !ok {
			return 2
		}
		rows, err = nativeWorkerRows(ctx, mc, nimbus.master, name)
	default:
		fmt.Fprintf(stderr, "agora storm workers: --runtime %q: want storm or native\n", *runtime)
		return 2
	}
	if err != nil {
		return stormFailure(stderr, "workers", err)
	}
	if asJSON {
		if rows == nil {
			rows = []stormWorkerRow{}
		}
		return writeJSON(stdout, rows)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TOPOLOGY\tHOST\tPORT\tEXECUTORS\tUPTIME")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", r.Topology, r.Host, r.Port, executorList(r.Executors), secs(int32(r.UptimeSecs)))
	}
	w.Flush()
	return 0
}

// stormWorkerRows are the workers of Nimbus's topologies (or of the one
// named), from getTopologyInfo: its executors grouped by host and port.
// A worker's uptime is that of its oldest executor.
func stormWorkerRows(ctx context.Context, target *stormTarget, name string) ([]stormWorkerRow, error) {
	c, err := target.client()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var ids []string
	if name != "" {
		id := name
		if t, ok, err := c.TopologyByName(ctx, name); err != nil {
			return nil, err
		} else if ok {
			id = t.ID
		}
		ids = append(ids, id)
	} else {
		cs, err := c.ClusterInfo(ctx)
		if err != nil {
			return nil, err
		}
		for _, t := range cs.Topologies {
			ids = append(ids, t.ID)
		}
	}
	var rows []stormWorkerRow
	for _, id := range ids {
		info, err := c.TopologyInfo(ctx, id)
		if err != nil {
			return nil, err
		}
		rows = append(rows, workersOf(&info)...)
	}
	return rows, nil
}

// workersOf groups a topology's executors by the worker (host and port)
// they run in; executors not yet assigned (no port) are left out.
func workersOf(info *stormclient.TopologyInfo) []stormWorkerRow {
	byAddr := map[string]*stormWorkerRow{}
	var rows []*stormWorkerRow
	for _, e := range info.Executors {
		if e.Port == 0 {
			continue
		}
		key := e.Host + ":" + strconv.Itoa(int(e.Port))
		r := byAddr[key]
		if r == nil {
			r = &stormWorkerRow{Topology: info.Name, Host: e.Host, Port: int(e.Port), Executors: map[string]int{}}
			byAddr[key] = r
			rows = append(rows, r)
		}
		r.Executors[e.ComponentID]++
		r.UptimeSecs = max(r.UptimeSecs, int(e.UptimeSecs))
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Host != rows[j].Host {
			return rows[i].Host < rows[j].Host
		}
		return rows[i].Port < rows[j].Port
	})
	out := make([]stormWorkerRow, len(rows))
	for i, r := range rows {
		out[i] = *r
	}
	return out
}

// nativeStateTask is a task of /master/state with what the native
// framework puts on its workers.
type nativeStateTask struct {
	state.Task
	Labels []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"labels"`
}

// nativeMasterState is what the native topologies' commands read of the
// master's state (GET /master/state): its agents, and its frameworks
// with their tasks.
type nativeMasterState struct {
	Slaves     []state.Agent          `json:"slaves"`
	Frameworks []nativeStateFramework `json:"frameworks"`
}

// readNativeState reads the master's state once.
func readNativeState(ctx context.Context, mc state.Client, master string) (*nativeMasterState, error) {
	var m nativeMasterState
	if err := mc.Get(ctx, master, "/master/state", &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// nativeWorkerRows are the running worker tasks of native topologies (or
// of the one named), from the master's state: the agent's host, the
// task's port, the executors its labels name, and the time since it was
// reported running.
func nativeWorkerRows(ctx context.Context, mc state.Client, master, name string) ([]stormWorkerRow, error) {
	m, err := readNativeState(ctx, mc, master)
	if err != nil {
		return nil, fmt.Errorf("list native workers on master %s: %w", master, err)
	}
	return m.workerRows(master, name)
}

// workerRows are nativeWorkerRows in m.
func (m *nativeMasterState) workerRows(master, name string) ([]stormWorkerRow, error) {
	hosts := map[string]string{}
	for _, a := range m.Slaves {
		hosts[a.ID] = a.Hostname
	}
	now := float64(time.Now().UnixNano()) / 1e9
	var rows []stormWorkerRow
	found := false
	for _, f := range m.Frameworks {
		if f.Name != nativefw.Name {
			continue
		}
		for _, t := range f.Tasks {
			if name != "" && t.Name != name {
				continue
			}
			found = true
			if t.State != "TASK_RUNNING" {
				continue
			}
			rows = append(rows, nativeWorkerRow(t, hosts[t.SlaveID], now))
		}
	}
	if name != "" && !found {
		return nil, fmt.Errorf("no native topology %q runs on master %s", name, master)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Topology != rows[j].Topology {
			return rows[i].Topology < rows[j].Topology
		}
		return *rows[i].Worker < *rows[j].Worker
	})
	return rows, nil
}

func nativeWorkerRow(t nativeStateTask, host string, now float64) stormWorkerRow {
	r := stormWorkerRow{Topology: t.Name, Host: host, Executors: map[string]int{}, TaskID: t.ID}
	r.Port, _ = strconv.Atoi(strings.SplitN(strings.Trim(t.Resources.Ports, "[] "), "-", 2)[0])
	worker := -1
	for _, l := range t.Labels {
		switch l.Key {
		case nativefw.LabelWorker:
			if n, err := strconv.Atoi(l.Value); err == nil {
				worker = n
			}
		case labelExecutors:
			var tasks map[string][]int
			if json.Unmarshal([]byte(l.Value), &tasks) == nil {
				for comp, ids := range tasks {
					r.Executors[comp] = len(ids)
				}
			}
		}
	}
	r.Worker = &worker
	for _, s := range t.Statuses {
		if s.State == "TASK_RUNNING" && s.Timestamp > 0 {
			r.UptimeSecs = max(0, int(now-s.Timestamp))
			break
		}
	}
	return r
}

// executorList writes executors as "component×n" in component order.
func executorList(m map[string]int) string {
	comps := make([]string, 0, len(m))
	for c := range m {
		comps = append(comps, c)
	}
	sort.Strings(comps)
	parts := make([]string, len(comps))
	for i, c := range comps {
		parts[i] = fmt.Sprintf("%s×%d", c, m[c])
	}
	return strings.Join(parts, " ")
}

// nativeInfo is `agora storm info --runtime native`: each worker's
// metrics (metrics.json in its sandbox, read through its agent's /files
// API) and their sums by component.
type nativeInfo struct {
	Topology string `json:"topology"`
	// Status is the workers' ACTIVE or INACTIVE, as their metrics say
	// (MIXED while a change reaches them).
	Status     string                    `json:"status"`
	Workers    []nativeWorkerMetrics     `json:"workers"`
	Components []native.ComponentMetrics `json:"components"`
}

type nativeWorkerMetrics struct {
	stormWorkerRow
	Metrics *native.Metrics `json:"metrics,omitempty"`
	Error   string          `json:"error,omitempty"`
}

func nativeInfoOf(ctx context.Context, mc state.Client, master, name string) (*nativeInfo, error) {
	m, err := readNativeState(ctx, mc, master)
	if err != nil {
		return nil, fmt.Errorf("list native workers on master %s: %w", master, err)
	}
	return m.info(ctx, mc, master, name)
}

// info is nativeInfoOf with m, one read of the master's state: only the
// workers' metrics are read now.
func (m *nativeMasterState) info(ctx context.Context, mc state.Client, master, name string) (*nativeInfo, error) {
	rows, err := m.workerRows(master, name)
	if err != nil {
		return nil, err
	}
	agents := map[string]state.Agent{}
	for _, a := range m.Slaves {
		agents[a.ID] = a
	}
	tasks := map[string]string{} // task → agent
	for _, f := range m.Frameworks {
		for _, t := range f.Tasks {
			tasks[t.ID] = t.SlaveID
		}
	}
	info := &nativeInfo{Topology: name}
	sums := map[string]*native.ComponentMetrics{}
	for _, r := range rows {
		wm := nativeWorkerMetrics{stormWorkerRow: r}
		met, err := workerMetrics(ctx, mc, agents[tasks[r.TaskID]], r.TaskID)
		if err != nil {
			wm.Error = err.Error()
		} else {
			wm.Metrics = met
			addMetrics(sums, met)
			switch {
			case info.Status == "":
				info.Status = met.Status
			case info.Status != met.Status:
				info.Status = "MIXED"
			}
		}
		info.Workers = append(info.Workers, wm)
	}
	for _, c := range sums {
		info.Components = append(info.Components, *c)
	}
	sort.Slice(info.Components, func(i, j int) bool { return info.Components[i].Component < info.Components[j].Component })
	return info, nil
}

// addMetrics adds a worker's counts to the sums; latencies are the
// highest of the workers' (each worker's are over its own tasks).
func addMetrics(sums map[string]*native.ComponentMetrics, m *native.Metrics) {
	for _, c := range m.Components {
		s := sums[c.Component]
		if s == nil {
			s = &native.ComponentMetrics{Component: c.Component, Type: c.Type, Tasks: c.Tasks}
			sums[c.Component] = s
		}
		s.Emitted += c.Emitted
		s.Acked += c.Acked
		s.Failed += c.Failed
		s.Executed += c.Executed
		s.Errors += c.Errors
		s.Restarts += c.Restarts
		s.CompleteLatencyP50ms = max(s.CompleteLatencyP50ms, c.CompleteLatencyP50ms)
		s.CompleteLatencyP99ms = max(s.CompleteLatencyP99ms, c.CompleteLatencyP99ms)
		s.ProcessLatencyP50ms = max(s.ProcessLatencyP50ms, c.ProcessLatencyP50ms)
		s.ProcessLatencyP99ms = max(s.ProcessLatencyP99ms, c.ProcessLatencyP99ms)
	}
}

// workerMetrics reads a worker task's metrics.json from its sandbox.
func workerMetrics(ctx context.Context, mc state.Client, agent state.Agent, taskID string) (*native.Metrics, error) {
	if agent.ID == "" {
		return nil, fmt.Errorf("task %s: its agent is not registered", taskID)
	}
	endpoint := agent.Endpoint()
	if mc.HTTPS && !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint // a cluster on HTTPS: its agents speak it too
	}
	mc = agentClient(mc, endpoint)
	as, err := mc.AgentState(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	dir := ""
	for _, f := range as.Frameworks {
		for _, e := range f.Executors {
			if e.ID == taskID {
				dir = e.Directory
			}
		}
	}
	if dir == "" {
		return nil, fmt.Errorf("task %s: agent %s lists no sandbox for it", taskID, agent.Hostname)
	}
	base, err := state.BaseURL(endpoint)
	if err != nil {
		return nil, fmt.Errorf("task %s: agent %s: %w", taskID, agent.Hostname, err)
	}
	u := base + "/files/download?path=" + url.QueryEscape(path.Join(dir, nativeMetrics))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpClientOf(mc).Do(req)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", taskID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("task %s: %s from agent %s (no metrics yet?)", taskID, resp.Status, agent.Hostname)
	}
	var m native.Metrics
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&m); err != nil {
		return nil, fmt.Errorf("task %s: %s: %w", taskID, nativeMetrics, err)
	}
	return &m, nil
}

// agentClient is mc for the agent at endpoint: the command's credentials
// go to an agent only over HTTPS or on this host's loopback, never in
// clear text across the network (an agent that asks for them then
// answers 401).
func agentClient(mc state.Client, endpoint string) state.Client {
	base, err := state.BaseURL(endpoint)
	if err != nil {
		return withoutCredentials(mc)
	}
	u, err := url.Parse(base)
	if err == nil && (u.Scheme == "https" || loopbackHost(u.Hostname())) {
		return mc
	}
	return withoutCredentials(mc)
}

// withoutCredentials is mc with its client presenting no credentials
// (its TLS set-up kept).
func withoutCredentials(mc state.Client) state.Client {
	if mc.HTTP == nil {
		return mc
	}
	t, ok := mc.HTTP.Transport.(*auth.Transport)
	if !ok {
		return mc
	}
	c := *mc.HTTP
	c.Transport = t.Base
	mc.HTTP = &c
	return mc
}

func nativeInfoCmd(mc state.Client, master, name string, asJSON bool, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), stormRequestTimeout)
	defer cancel()
	info, err := nativeInfoOf(ctx, mc, master, name)
	if err != nil {
		return stormFailure(stderr, "info", err)
	}
	if asJSON {
		return writeJSON(stdout, info)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Topology:\t%s (native, %d worker(s))\nStatus:\t%s\n\n", name, len(info.Workers), info.Status)
	fmt.Fprintln(w, "COMPONENT\tTYPE\tTASKS\tEMITTED\tEXECUTED\tACKED\tFAILED\tRESTARTS\tLATENCY p50/p99 ms")
	for _, c := range info.Components {
		p50, p99 := c.ProcessLatencyP50ms, c.ProcessLatencyP99ms
		if c.Type == "spout" {
			p50, p99 = c.CompleteLatencyP50ms, c.CompleteLatencyP99ms
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f/%.1f\n", c.Component, c.Type, c.Tasks, c.Emitted, c.Executed, c.Acked, c.Failed, c.Restarts, p50, p99)
	}
	for _, wm := range info.Workers {
		if wm.Error != "" {
			fmt.Fprintf(w, "worker %d\t%s\n", *wm.Worker, wm.Error)
		}
	}
	w.Flush()
	return 0
}
