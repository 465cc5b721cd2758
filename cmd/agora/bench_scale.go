package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/agentsim"
	"github.com/agora-cluster/agora/cluster/zk"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

func init() {
	benchCommands["scale"] = command{name: "scale", summary: "NSDI'11-style scale run: N simulated agents, frameworks launching short tasks; the master's CPU per task", run: runBenchScale}
}

// The scale benchmark reproduces the scalability experiment of the Mesos
// paper (NSDI'11 §6.5) on one machine: one master (a child process of
// this binary), N simulated agents (cluster/agentsim) and F frameworks in
// this process. Every framework launches one task on every offer it
// gets, each running a duration drawn from N(mean, sd). After a warm-up
// it measures, over a window: tasks launched per second, the master's
// CPU time per task (from /proc/<pid>/stat), the allocator's run time
// per round (sampled from the master's metrics) and accept→RUNNING as the
// frameworks see it.

type scaleConfig struct {
	Bin            string
	ZK             *zk.URL // nil: a master with its registry on disk
	Agents         int
	Frameworks     int
	TasksPerOffer  int
	TaskMean       time.Duration
	TaskSD         time.Duration
	Warmup, Window time.Duration
	Dir            string
	MasterArgs     []string
	Timeout        time.Duration
	HTTP2          bool // the agents multiplex over HTTP/2 (agentsim.Config.HTTP2)
	Secure         bool // TLS and credentials everywhere (benchSecurity)
	Logger         *slog.Logger
}

type scaleResult struct {
	Agents        int     `json:"agents"`
	Frameworks    int     `json:"frameworks"`
	AgentsHTTP2   bool    `json:"agents_http2"`
	Secure        bool    `json:"secure"`
	TaskMeanS     float64 `json:"task_mean_s"`
	WindowS       float64 `json:"window_s"`
	RegisterS     float64 `json:"register_all_s"`
	Launched      int     `json:"tasks_launched"`
	Finished      int     `json:"tasks_finished"`
	TasksPerSec   float64 `json:"tasks_per_s"`
	MasterCPU     float64 `json:"master_cpu_s"`
	MasterCPUPct  float64 `json:"master_cpu_percent_of_one_core"`
	CPUPerTaskMs  float64 `json:"master_cpu_ms_per_task"`
	AllocRuns     int     `json:"allocation_runs_sampled"`
	AllocP50Ms    float64 `json:"allocation_run_p50_ms"`
	AllocP99Ms    float64 `json:"allocation_run_p99_ms"`
	AllocMaxMs    float64 `json:"allocation_run_max_ms"`
	AcceptRunP50  float64 `json:"accept_to_running_p50_ms"`
	AcceptRunP99  float64 `json:"accept_to_running_p99_ms"`
	RunningAtEnd  int     `json:"tasks_running_at_end"`
	MasterPeakMB  float64 `json:"master_peak_rss_mb"`
	AgentsPeakMB  float64 `json:"simulated_agents_process_peak_rss_mb"`
	BenchCPUPct   float64 `json:"agents_and_frameworks_cpu_percent_of_one_core"`
	UpdateCalls   int64   `json:"agent_update_calls"`
	AgentFailures int64   `json:"agent_failed_registrations"`
}

func runBenchScale(args []string) int {
	fs := flag.NewFlagSet("agora bench scale", flag.ContinueOnError)
	var cfg scaleConfig
	fs.IntVar(&cfg.Agents, "agents", 1000, "simulated agents")
	fs.IntVar(&cfg.Frameworks, "frameworks", 20, "frameworks, each launching tasks on every offer (the paper ran 200)")
	fs.IntVar(&cfg.TasksPerOffer, "tasks-per-offer", 1, "tasks launched on each offer")
	fs.DurationVar(&cfg.TaskMean, "task-mean", 30*time.Second, "mean task duration (the paper's N(30 s, 10 s))")
	fs.DurationVar(&cfg.TaskSD, "task-sd", 10*time.Second, "standard deviation of the task duration")
	fs.DurationVar(&cfg.Warmup, "warmup", 60*time.Second, "time to run before measuring (the cluster fills up)")
	fs.DurationVar(&cfg.Window, "window", 60*time.Second, "measuring window")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Minute, "bound on the agents' registration")
	zkFlag := fs.String("zk", "", "run the master with --zk here (a fresh znode below the path, removed afterwards) instead of with a registry on disk")
	workDir := fs.String("work_dir", "/var/tmp", "where the master's registry and log go (a fresh directory below this one, removed afterwards unless the run fails)")
	fs.BoolVar(&cfg.HTTP2, "http2", false, "the simulated agents multiplex their streams over cleartext HTTP/2 connections (real agents hold one HTTP/1.1 connection each); needed for more agents than the open-file limit allows")
	fs.BoolVar(&cfg.Secure, "secure", false, "run the master as agora dev --secure does: TLS (a CA made for the run) and credentials required of\nframeworks, agents and every other caller; compare with a run without it for the cost of security")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	verbose := fs.Bool("verbose", false, "log progress on stderr")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: agora bench scale [--agents N] [--frameworks F] [--window D] [--secure] [--json]\n\n"+
			"The scalability run of the Mesos paper (NSDI'11) on one machine: a master of this binary,\n"+
			"N simulated agents in this process (the master's agent protocol; tasks are timers) and F\n"+
			"frameworks that launch one task on every offer, each running N(mean, sd). After --warmup it\n"+
			"measures over --window: tasks launched per second, the master's CPU per task (/proc), the\n"+
			"allocator's run time per round (sampled from /metrics/snapshot) and accept→RUNNING.\n\n"+
			"Example:\n  agora bench scale --agents 10000 --frameworks 200\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if cfg.Agents <= 0 || cfg.Frameworks <= 0 || cfg.TasksPerOffer <= 0 || cfg.TaskMean <= 0 || cfg.TaskSD < 0 || cfg.Window <= 0 || cfg.Warmup < 0 {
		fmt.Fprintln(os.Stderr, "agora bench scale: --agents, --frameworks, --tasks-per-offer, --task-mean and --window must be positive; --task-sd and --warmup not negative")
		return 2
	}
	if *zkFlag != "" {
		u, err := zk.ParseURL(*zkFlag)
		if err != nil {
			fmt.Fprintln(os.Stderr, "agora bench scale: --zk:", err)
			return 2
		}
		cfg.ZK = &u
	}
	bin, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora bench scale: cannot find this binary:", err)
		return 1
	}
	if cfg.Dir, err = os.MkdirTemp(*workDir, "agora-scale-"); err != nil {
		fmt.Fprintln(os.Stderr, "agora bench scale: --work_dir:", err)
		return 1
	}
	cfg.Bin = bin
	cfg.Logger = benchLogger(*verbose)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := benchScale(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "agora bench scale: %v\n(master's registry and log kept in %s)\n", err, cfg.Dir)
		return 1
	}
	os.RemoveAll(cfg.Dir)
	if *jsonOut {
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
		return 0
	}
	w := newTable()
	row := func(k string, v any) { fmt.Fprintf(w, "%s\t%v\n", k, v) }
	row("agents × frameworks", fmt.Sprintf("%d × %d", res.Agents, res.Frameworks))
	row("agents over HTTP/2", res.AgentsHTTP2)
	row("TLS and credentials", res.Secure)
	row("task duration mean s", res.TaskMeanS)
	row("all agents registered s", res.RegisterS)
	row("window s", res.WindowS)
	row("tasks launched", res.Launched)
	row("tasks finished", res.Finished)
	row("tasks/s", res.TasksPerSec)
	row("master CPU s (% of one core)", fmt.Sprintf("%v (%v%%)", res.MasterCPU, res.MasterCPUPct))
	row("master CPU per task ms", res.CPUPerTaskMs)
	row("allocation run p50 / p99 / max ms", fmt.Sprintf("%v / %v / %v (%d rounds sampled)", res.AllocP50Ms, res.AllocP99Ms, res.AllocMaxMs, res.AllocRuns))
	row("accept→RUNNING p50 / p99 ms", fmt.Sprintf("%v / %v", res.AcceptRunP50, res.AcceptRunP99))
	row("tasks running at the end", res.RunningAtEnd)
	row("master peak RSS MB", res.MasterPeakMB)
	row("agents' process peak RSS MB", res.AgentsPeakMB)
	row("agents + frameworks CPU % of one core", res.BenchCPUPct)
	w.Flush()
	return 0
}

// benchScale runs the benchmark once.
func benchScale(ctx context.Context, cfg scaleConfig) (*scaleResult, error) {
	log := cfg.Logger
	if err := fleetFiles(cfg.Agents, cfg.HTTP2, log); err != nil {
		return nil, err
	}
	args := []string{"master", "--ip=127.0.0.1"}
	var sec benchSecurity
	if cfg.Secure {
		var err error
		if sec, err = newBenchSecurity(cfg.Dir); err != nil {
			return nil, err
		}
		args = append(args, sec.masterArgs...)
	}
	agentsMaster := "" // the master's address once it listens
	if cfg.ZK != nil {
		root := fmt.Sprintf("%s/bench-scale-%d", cfg.ZK.Path, time.Now().UnixNano())
		zkURL := zkURLAt(*cfg.ZK, root)
		defer deleteZKTree(*cfg.ZK, root)
		args = append(args, "--zk="+zkURL, "--quorum=1")
		agentsMaster = zkURL
	} else {
		args = append(args, "--work_dir="+filepath.Join(cfg.Dir, "master"))
	}
	m, err := startSimMaster(cfg.Bin, filepath.Join(cfg.Dir, "master.log"), append(args, cfg.MasterArgs...))
	if err != nil {
		return nil, err
	}
	defer m.stop()
	addr := m.addr
	if agentsMaster == "" {
		agentsMaster = addr
	}
	if err := waitCond(ctx, time.Minute, "the master to lead", func() (bool, string) {
		if m.exited() {
			return false, "the master exited; see " + m.log
		}
		s, err := sec.metrics(addr)
		return err == nil && s["master/elected"] == 1, fmt.Sprint(err)
	}); err != nil {
		return nil, err
	}

	if err := sec.check(addr); err != nil {
		return nil, err
	}
	res := &scaleResult{Agents: cfg.Agents, Frameworks: cfg.Frameworks, AgentsHTTP2: cfg.HTTP2, Secure: cfg.Secure, TaskMeanS: cfg.TaskMean.Seconds(), WindowS: cfg.Window.Seconds()}
	start := time.Now()
	fleet, stopFleet, err := startFleet(ctx, agentsim.Config{Master: agentsMaster, Agents: cfg.Agents, HTTP2: cfg.HTTP2, Logger: log,
		TLS: sec.tls, Principal: sec.principal, Secret: sec.secret}, cfg.Timeout)
	defer stopFleet()
	if err != nil {
		return nil, err
	}
	res.RegisterS = round3(time.Since(start).Seconds())
	log.Info("every agent registered", "s", res.RegisterS)

	lat := &scaleLatencies{}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	// One connection pool for every framework's calls: 200 frameworks
	// with a pool each would run this process out of file descriptors
	// next to the agents' connections.
	callsTransport := &http.Transport{MaxConnsPerHost: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second}
	if sec.tls != nil {
		// HTTP/1.1, as the scheduler's own client speaks to masters.
		callsTransport.TLSClientConfig = sec.tls.Clone()
		callsTransport.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	calls := &http.Client{Transport: callsTransport}
	for i := 0; i < cfg.Frameworks; i++ {
		fw := &scaleFramework{cfg: cfg, lat: lat, log: log, accepted: map[string]time.Time{},
			rng: rand.New(rand.NewPCG(uint64(i), 7)), queue: make(chan failoverLaunch, 4096)}
		d, err := scheduler.New(scheduler.Config{Masters: []string{agentsMaster}, Logger: log, HTTPClient: calls,
			Framework: mesos.FrameworkInfo{Name: fmt.Sprintf("bench-scale-%d", i), User: "root"},
			TLS:       sec.tls, Principal: sec.principal, Secret: sec.secret,
			Backoff: scheduler.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}},
			scheduler.Funcs{OnOffers: fw.offers, OnUpdate: fw.update})
		if err != nil {
			return nil, err
		}
		fw.d = d
		fw.launchers(runCtx, 8)
		wg.Add(1)
		go func() { defer wg.Done(); d.Run(runCtx) }()
	}

	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(cfg.Warmup):
	}
	before, err := sec.metrics(addr)
	if err != nil {
		return nil, err
	}
	cpu0, err := procCPUSeconds(m.pid())
	if err != nil {
		return nil, err
	}
	self0, _ := procCPUSeconds(os.Getpid())
	lat.start()
	t0 := time.Now()
	var allocs []float64
	lastRuns := before["allocator/mesos/allocation_runs"]
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for time.Since(t0) < cfg.Window {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		s, err := sec.metrics(addr)
		if err != nil {
			continue
		}
		// The master keeps the last round's run time: a sample of the
		// rounds, one per poll that saw a new round.
		if runs := s["allocator/mesos/allocation_runs"]; runs != lastRuns {
			lastRuns = runs
			allocs = append(allocs, s["allocator/mesos/allocation_run_ms"])
		}
	}
	window := time.Since(t0).Seconds()
	cpu1, err := procCPUSeconds(m.pid())
	if err != nil {
		return nil, err
	}
	self1, _ := procCPUSeconds(os.Getpid())
	after, err := sec.metrics(addr)
	if err != nil {
		return nil, err
	}
	lat.stop()
	launched := after["master/messages_launch_tasks"] - before["master/messages_launch_tasks"]
	res.WindowS = round3(window)
	res.Launched = int(launched)
	res.Finished = int(after["master/tasks_finished"] - before["master/tasks_finished"])
	res.TasksPerSec = round3(launched / window)
	res.MasterCPU = round3(cpu1 - cpu0)
	res.MasterCPUPct = round3(100 * (cpu1 - cpu0) / window)
	if launched > 0 {
		res.CPUPerTaskMs = round3(1000 * (cpu1 - cpu0) / launched)
	}
	sort.Float64s(allocs)
	res.AllocRuns = len(allocs)
	res.AllocP50Ms, res.AllocP99Ms = round3(percentile(allocs, 50)), round3(percentile(allocs, 99))
	if len(allocs) > 0 {
		res.AllocMaxMs = round3(allocs[len(allocs)-1])
	}
	p50, p99 := lat.percentiles()
	res.AcceptRunP50, res.AcceptRunP99 = round3(p50), round3(p99)
	res.RunningAtEnd = int(after["master/tasks_running"])
	res.MasterPeakMB = round3(procStatusMB(m.pid(), "VmHWM"))
	res.AgentsPeakMB = round3(procStatusMB(0, "VmHWM"))
	res.BenchCPUPct = round3(100 * (self1 - self0) / window)
	st := fleet.Stats()
	res.UpdateCalls, res.AgentFailures = st.UpdateCalls, st.FailedAttempts
	if err := fleet.Err(); err != nil {
		log.Warn("the simulated agents met a protocol error", "err", err)
	}
	return res, nil
}

// scaleLatencies collects accept→RUNNING of tasks launched in the window.
type scaleLatencies struct {
	mu   sync.Mutex
	on   bool
	msec []float64
}

func (l *scaleLatencies) start() { l.mu.Lock(); l.on = true; l.mu.Unlock() }
func (l *scaleLatencies) stop()  { l.mu.Lock(); l.on = false; l.mu.Unlock() }

func (l *scaleLatencies) add(d time.Duration) {
	l.mu.Lock()
	if l.on {
		l.msec = append(l.msec, float64(d.Microseconds())/1000)
	}
	l.mu.Unlock()
}

func (l *scaleLatencies) percentiles() (p50, p99 float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sort.Float64s(l.msec)
	return percentile(l.msec, 50), percentile(l.msec, 99)
}

// scaleFramework launches TasksPerOffer tasks on every offer, each with a
// random duration, and lets the rest of the offer go back at once.
type scaleFramework struct {
	d     *scheduler.Driver
	cfg   scaleConfig
	lat   *scaleLatencies
	log   *slog.Logger
	rng   *rand.Rand
	queue chan failoverLaunch

	mu       sync.Mutex
	next     int
	accepted map[string]time.Time // task ID → when its ACCEPT was sent
}

func (f *scaleFramework) offers(ctx context.Context, offers []mesos.Offer) {
	for _, o := range offers {
		tasks := make([]mesos.TaskInfo, 0, f.cfg.TasksPerOffer)
		f.mu.Lock()
		for i := 0; i < f.cfg.TasksPerOffer; i++ {
			d := time.Duration(f.rng.NormFloat64()*float64(f.cfg.TaskSD)) + f.cfg.TaskMean
			d = max(d, 10*time.Millisecond)
			f.next++
			id := fmt.Sprintf("t%d", f.next)
			label := d.Round(time.Millisecond).String()
			tasks = append(tasks, mesos.TaskInfo{Name: "sleep", TaskID: mesos.TaskID{Value: id}, AgentID: o.AgentID,
				Resources: failoverTaskResources, Command: &mesos.CommandInfo{Value: failoverTaskCommand},
				Labels: &mesos.Labels{Labels: []mesos.Label{{Key: agentsim.DurationLabel, Value: &label}}}})
		}
		f.mu.Unlock()
		// The ACCEPTs go out from workers, so that the event stream is
		// read on (a framework that falls far behind is cut off).
		select {
		case f.queue <- failoverLaunch{o.ID, tasks}:
		default:
			go f.d.Decline(ctx, []mesos.OfferID{o.ID}, time.Second)
		}
	}
}

// launchers answers the queued offers, n at a time, until ctx ends; the
// rest of each offer is offered again in the next round.
func (f *scaleFramework) launchers(ctx context.Context, n int) {
	launchWorkers(ctx, n, f.queue, func(l failoverLaunch) {
		f.mu.Lock()
		now := time.Now()
		for _, t := range l.tasks {
			f.accepted[t.TaskID.Value] = now
		}
		f.mu.Unlock()
		if err := f.d.Launch(ctx, []mesos.OfferID{l.offer}, l.tasks, scheduler.RefuseFor(0)); err != nil && ctx.Err() == nil {
			f.log.Warn("launch", "err", err)
		}
	})
}

func (f *scaleFramework) update(_ context.Context, st mesos.TaskStatus) {
	id := st.TaskID.Value
	f.mu.Lock()
	at, ok := f.accepted[id]
	switch st.GetState() {
	case mesos.TASK_RUNNING:
		delete(f.accepted, id)
	case mesos.TASK_STARTING, mesos.TASK_STAGING:
		ok = false
	default:
		delete(f.accepted, id)
		ok = false
	}
	f.mu.Unlock()
	if ok {
		f.lat.add(time.Since(at))
	}
}
