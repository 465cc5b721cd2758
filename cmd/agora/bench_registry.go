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
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/registry"
)

func init() {
	benchCommands["registry"] = command{name: "registry", summary: "Time registry-heavy master operations on a bbolt registry, and the loop's stall meanwhile", run: runBenchRegistry}
}

// The registry benchmark starts a master on a bbolt registry in a fresh
// directory on disk and drives, through its HTTP API, the operations that
// write the registry: agents registering, operator RESERVE/UNRESERVE
// calls, agents going unreachable and coming back, maintenance schedule
// updates. Agents are stand-ins that speak the master's agent protocol
// (register, answer pings) and run nothing. Meanwhile a probe sends
// GET_HEALTH — a call that touches no registry state — every few
// milliseconds: its latency is how long the master's loop made unrelated
// callers wait.

type benchRegistryConfig struct {
	agents, reserves, unreachable, schedules, concurrency int
	probeEvery                                            time.Duration
	workDir                                               string
}

// benchRegistryPhase is one phase's result.
type benchRegistryPhase struct {
	Phase      string  `json:"phase"`
	Ops        int     `json:"ops"`
	Seconds    float64 `json:"seconds"`
	OpsPerSec  float64 `json:"ops_per_second"`
	ProbeCalls int     `json:"probe_calls"`
	ProbeP50Ms float64 `json:"probe_p50_ms"`
	ProbeP99Ms float64 `json:"probe_p99_ms"`
	ProbeMaxMs float64 `json:"probe_max_ms"`
	// Commits and Changes are the registry commits the master made in
	// the phase and the changes they held (masters that report them).
	Commits float64 `json:"registry_commits"`
	Changes float64 `json:"registry_changes"`
}

func runBenchRegistry(args []string) int {
	fs := flag.NewFlagSet("bench registry", flag.ContinueOnError)
	var c benchRegistryConfig
	fs.IntVar(&c.agents, "agents", 1000, "agents that register")
	fs.IntVar(&c.reserves, "reserves", 1000, "operator RESERVE and UNRESERVE calls (half each, on distinct agents)")
	fs.IntVar(&c.unreachable, "unreachable", 500, "agents that stop answering pings, are marked unreachable, then re-register")
	fs.IntVar(&c.schedules, "schedules", 200, "maintenance schedule updates")
	fs.IntVar(&c.concurrency, "concurrency", 32, "callers issuing the calls of a phase at once")
	fs.DurationVar(&c.probeEvery, "probe-every", 5*time.Millisecond, "time between GET_HEALTH probes")
	fs.StringVar(&c.workDir, "work_dir", "/var/tmp", "where the master's registry file goes (a fresh directory below this one, removed\nafterwards); put it on the disk to measure, not on a tmpfs")
	asJSON := fs.Bool("json", false, "print one JSON object per phase instead of a table")
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, "Usage: agora bench registry [--agents N] [--reserves N] [--unreachable N] [--schedules N] [--json]\n\n"+
			"Starts a master on a bbolt registry on disk, drives registry-heavy operations through its API\n"+
			"with stand-in agents, and reports each phase's throughput and the p50/p99/max latency of a\n"+
			"GET_HEALTH probe sent meanwhile (how long the master's loop kept unrelated calls waiting).\n"+
			"Progress goes to stderr.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(os.Stderr, "\nExample:\n  agora bench registry --agents 1000 --json\n")
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if c.unreachable > c.agents || c.reserves/2 > c.agents || c.concurrency < 1 {
		fmt.Fprintln(os.Stderr, "agora bench registry: --unreachable and --reserves/2 must not exceed --agents, and --concurrency must be positive")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	phases, err := benchRegistry(ctx, c)
	if *asJSON {
		for _, p := range phases {
			b, _ := json.Marshal(p)
			fmt.Println(string(b))
		}
	} else {
		w := newTable()
		fmt.Fprintln(w, "phase\tops\tseconds\tops/s\tprobes\tprobe p50 (ms)\tprobe p99 (ms)\tprobe max (ms)\tcommits\tchanges")
		for _, p := range phases {
			fmt.Fprintf(w, "%s\t%d\t%.2f\t%.0f\t%d\t%.2f\t%.2f\t%.1f\t%.0f\t%.0f\n", p.Phase, p.Ops, p.Seconds, p.OpsPerSec, p.ProbeCalls, p.ProbeP50Ms, p.ProbeP99Ms, p.ProbeMaxMs, p.Commits, p.Changes)
		}
		w.Flush()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora bench registry:", err)
		return 1
	}
	return 0
}

// startLocalMaster runs a master in this process with cfg, on a free
// loopback port and logging only its errors (on stderr), until stop is
// called; addr is its host:port.
func startLocalMaster(ctx context.Context, cfg master.Config) (m *master.Master, addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, err
	}
	cfg.Hostname, cfg.Port = "localhost", ln.Addr().(*net.TCPAddr).Port
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	if m, err = master.New(cfg); err != nil {
		ln.Close()
		return nil, "", nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- serveMaster(ctx, m, ln, nil) }()
	return m, ln.Addr().String(), func() { cancel(); <-served }, nil
}

func benchRegistry(ctx context.Context, c benchRegistryConfig) ([]benchRegistryPhase, error) {
	dir, err := os.MkdirTemp(c.workDir, "agora-bench-registry-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	reg, err := registry.OpenBolt(filepath.Join(dir, "registry.db"))
	if err != nil {
		return nil, err
	}
	defer reg.Close()
	_, addr, stopMaster, err := startLocalMaster(ctx, master.Config{
		IP: "127.0.0.1", Registry: reg,
		// Pings often enough that the unreachable phase is short, and
		// enough missed ones that a loaded master does not lose agents
		// in the other phases.
		AgentPingTimeout: time.Second, MaxAgentPingTimeouts: 3,
	})
	if err != nil {
		return nil, err
	}
	defer stopMaster()

	b := &registryBench{url: "http://" + addr, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4 * c.concurrency}}, cfg: c}
	defer b.stopAgents()
	var phases []benchRegistryPhase
	run := func(name string, ops int, f func() error) error {
		fmt.Fprintf(os.Stderr, "bench registry: %s (%d)...\n", name, ops)
		p, err := b.measure(ctx, name, ops, f)
		phases = append(phases, p)
		return err
	}
	if err := run("idle", 0, func() error { return sleepCtx(ctx, 2*time.Second) }); err != nil {
		return phases, err
	}
	if err := run("register agents", c.agents, b.registerAll); err != nil {
		return phases, err
	}
	if err := run("reserve/unreserve", c.reserves, b.reserveUnreserve); err != nil {
		return phases, err
	}
	if err := run("agents unreachable", c.unreachable, b.makeUnreachable); err != nil {
		return phases, err
	}
	if err := run("agents back", c.unreachable, b.bringBack); err != nil {
		return phases, err
	}
	if err := run("maintenance schedule", c.schedules, b.updateSchedules); err != nil {
		return phases, err
	}
	return phases, nil
}

type registryBench struct {
	url    string
	client *http.Client
	cfg    benchRegistryConfig
	agents []*standInAgent
}

// measure runs f while probing the master, and times it.
func (b *registryBench) measure(ctx context.Context, name string, ops int, f func() error) (benchRegistryPhase, error) {
	probeCtx, stopProbe := context.WithCancel(ctx)
	lat := make(chan []time.Duration, 1)
	go func() { lat <- b.probe(probeCtx) }()
	before := b.snapshot()
	start := time.Now()
	err := f()
	elapsed := time.Since(start)
	stopProbe()
	ls := <-lat
	after := b.snapshot()
	p := benchRegistryPhase{Phase: name, Ops: ops, Seconds: elapsed.Seconds(), ProbeCalls: len(ls),
		Commits: after["master/registry_commits"] - before["master/registry_commits"],
		Changes: after["master/registry_changes"] - before["master/registry_changes"]}
	if ops > 0 {
		p.OpsPerSec = float64(ops) / elapsed.Seconds()
	}
	if len(ls) > 0 {
		sort.Slice(ls, func(i, j int) bool { return ls[i] < ls[j] })
		ms := func(q float64) float64 { return float64(ls[int(q*float64(len(ls)-1))]) / 1e6 }
		p.ProbeP50Ms, p.ProbeP99Ms, p.ProbeMaxMs = ms(0.5), ms(0.99), ms(1)
	}
	return p, err
}

// probe sends GET_HEALTH every probeEvery until ctx ends and returns the
// latencies.
func (b *registryBench) probe(ctx context.Context) []time.Duration {
	var out []time.Duration
	t := time.NewTicker(b.cfg.probeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
		start := time.Now()
		if _, err := b.operator(ctx, `{"type":"GET_HEALTH"}`); err != nil {
			if ctx.Err() != nil {
				return out
			}
			continue
		}
		out = append(out, time.Since(start))
	}
}

func (b *registryBench) operator(ctx context.Context, call string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.url+"/api/v1", bytes.NewBufferString(call))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", api.MediaJSON)
	req.Header.Set("Accept", api.MediaJSON)
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s: %s %s", call, resp.Status, body)
	}
	return body, nil
}

// parallel runs f(0..n-1) on the configured number of callers and
// returns the first error.
func (b *registryBench) parallel(n int, f func(i int) error) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		first error
		mu    sync.Mutex
	)
	for w := 0; w < b.cfg.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func (b *registryBench) registerAll() error {
	b.agents = make([]*standInAgent, b.cfg.agents)
	for i := range b.agents {
		b.agents[i] = &standInAgent{url: b.url, client: b.client, hostname: fmt.Sprintf("bench-agent-%04d", i)}
	}
	return b.parallel(len(b.agents), func(i int) error { return b.agents[i].register() })
}

func (b *registryBench) reserveUnreserve() error {
	res := `[{"name":"cpus","type":"SCALAR","scalar":{"value":1},"reservations":[{"type":"DYNAMIC","role":"eng","principal":"ops"}]}]`
	return b.parallel(b.cfg.reserves/2, func(i int) error {
		id := b.agents[i].id
		for _, kind := range []string{"reserve_resources", "unreserve_resources"} {
			typ := map[string]string{"reserve_resources": "RESERVE_RESOURCES", "unreserve_resources": "UNRESERVE_RESOURCES"}[kind]
			call := fmt.Sprintf(`{"type":%q,%q:{"agent_id":{"value":%q},"resources":%s}}`, typ, kind, id, res)
			if _, err := b.operator(context.Background(), call); err != nil {
				return err
			}
		}
		return nil
	})
}

// makeUnreachable stops the last agents and waits until the master has
// marked them all unreachable.
func (b *registryBench) makeUnreachable() error {
	gone := b.agents[len(b.agents)-b.cfg.unreachable:]
	for _, a := range gone {
		a.stop()
	}
	return b.waitMetric("master/slaves_unreachable", float64(len(gone)), 5*time.Minute)
}

func (b *registryBench) bringBack() error {
	gone := b.agents[len(b.agents)-b.cfg.unreachable:]
	if err := b.parallel(len(gone), func(i int) error { return gone[i].register() }); err != nil {
		return err
	}
	return b.waitMetric("master/slaves_unreachable", 0, time.Minute)
}

func (b *registryBench) updateSchedules() error {
	return b.parallel(b.cfg.schedules, func(i int) error {
		// Each schedule names a different few machines, so that every
		// update changes what is stored.
		var ids []string
		for j := 0; j < 4; j++ {
			ids = append(ids, fmt.Sprintf(`{"hostname":%q}`, b.agents[(i*4+j)%len(b.agents)].hostname))
		}
		start := time.Now().Add(time.Hour).UnixNano()
		call := fmt.Sprintf(`{"type":"UPDATE_MAINTENANCE_SCHEDULE","update_maintenance_schedule":{"schedule":{"windows":[{"machine_ids":[%s],"unavailability":{"start":{"nanoseconds":%d}}}]}}}`,
			join(ids), start)
		_, err := b.operator(context.Background(), call)
		return err
	})
}

func join(parts []string) string {
	var buf bytes.Buffer
	for i, p := range parts {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(p)
	}
	return buf.String()
}

func (b *registryBench) snapshot() map[string]float64 {
	var snap map[string]float64
	resp, err := b.client.Get(b.url + "/metrics/snapshot")
	if err != nil {
		return snap
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&snap)
	return snap
}

func (b *registryBench) waitMetric(name string, want float64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := b.client.Get(b.url + "/metrics/snapshot")
		if err == nil {
			var snap map[string]float64
			err = json.NewDecoder(resp.Body).Decode(&snap)
			resp.Body.Close()
			if err == nil && snap[name] == want {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not reach %v within %v", name, want, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (b *registryBench) stopAgents() {
	for _, a := range b.agents {
		if a != nil {
			a.stop()
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// standInAgent speaks the master's agent protocol: it registers (again
// under its ID once it has one), answers pings, and runs nothing.
type standInAgent struct {
	url, hostname, id string
	client            *http.Client
	cancel            context.CancelFunc
	done              chan struct{}
}

// register (re-)registers the agent, retrying refusals a master may
// answer while the registry is busy, and keeps its stream in the
// background.
func (a *standInAgent) register() error {
	info := mesos.AgentInfo{Hostname: a.hostname, Port: int32Ptr(5051)}
	rs, err := api.ParseResources("cpus:4;mem:4096;disk:10000")
	if err != nil {
		return err
	}
	info.Resources = rs
	if a.id != "" {
		info.ID = &mesos.AgentID{Value: a.id}
	}
	body, err := json.Marshal(api.AgentCall{Type: api.AgentRegister, Register: &api.RegisterAgent{Info: &info, Version: "bench"}})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.url+api.AgentPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", api.MediaJSON)
		resp, err := a.client.Do(req)
		if err == nil && resp.StatusCode == http.StatusOK {
			rr := api.NewRecordReader(resp.Body)
			rec, err := rr.ReadRecord()
			var ev api.AgentEvent
			if err == nil {
				err = json.Unmarshal(rec, &ev)
			}
			if err == nil && ev.Registered != nil {
				a.id = ev.Registered.AgentID
				a.cancel, a.done = cancel, make(chan struct{})
				go a.serve(ctx, resp.Body, rr)
				return nil
			}
			cancel()
			return fmt.Errorf("agent %s: no REGISTERED event: %v", a.hostname, err)
		}
		why := fmt.Sprint(err)
		if err == nil {
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			why = resp.Status + " " + string(msg)
		}
		cancel()
		if time.Now().After(deadline) {
			return fmt.Errorf("agent %s: registration refused for 2 minutes: %s", a.hostname, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func int32Ptr(v int32) *int32 { return &v }

// serve answers the master's pings until the stream ends.
func (a *standInAgent) serve(ctx context.Context, body io.ReadCloser, rr *api.RecordReader) {
	defer close(a.done)
	defer body.Close()
	for {
		rec, err := rr.ReadRecord()
		if err != nil {
			return
		}
		var ev api.AgentEvent
		if json.Unmarshal(rec, &ev) != nil || ev.Ping == nil {
			continue
		}
		pong, _ := json.Marshal(api.AgentCall{Type: api.AgentPong, AgentID: a.id, Pong: &api.Pong{Seq: ev.Ping.Seq}})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.url+api.AgentPath, bytes.NewReader(pong))
		req.Header.Set("Content-Type", api.MediaJSON)
		if resp, err := a.client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		} else if errors.Is(ctx.Err(), context.Canceled) {
			return
		}
	}
}

// stop ends the agent's stream and its pongs.
func (a *standInAgent) stop() {
	if a.cancel != nil {
		a.cancel()
		<-a.done
		a.cancel = nil
	}
}
