package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	schedcall "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/agentsim"
	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/zk"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

func init() {
	benchCommands["failover"] = command{name: "failover", summary: "kill -9 the leading master under N simulated agents × T tasks; time the new leader's recovery", run: runBenchFailover}
}

// The failover benchmark runs 2 or 3 masters (child processes of this
// binary) that elect a leader in ZooKeeper, N simulated agents
// (cluster/agentsim) in this process that follow the leader, and a
// framework that launches T long tasks on every agent. Once every task
// is RUNNING it kills the leader with SIGKILL and measures, from the
// kill: the election of another master, every agent re-registered with
// it, its first offers (and offers from every agent), the framework
// re-subscribed, and every task reconciled as RUNNING.

type failoverConfig struct {
	Bin            string
	ZK             zk.URL
	Masters        int
	Agents         int
	TasksPerAgent  int
	Dir            string        // the masters' logs
	SessionTimeout time.Duration // the masters' ZooKeeper session
	MasterArgs     []string      // more flags for every master
	Timeout        time.Duration // bound on each phase
	HTTP2          bool          // the agents multiplex over HTTP/2 (agentsim.Config.HTTP2)
	AgentCodec     api.Codec     // what the agents speak (agentsim.Config.Codec; default protobuf)
	// AgentBackoffFactor spreads the agents' registrations with a new
	// leader (agentsim.Config.RegistrationBackoffFactor).
	AgentBackoffFactor time.Duration
	PprofDir           string        // CPU profiles of the surviving masters from the kill (or the election) on, when set
	PprofFor           time.Duration // their length
	PprofFromElection  bool          // the profiles begin at the election, not at the kill
	// AgentsGOGC is this process's GOGC from the kill until every agent
	// re-registered (0: left as it is). The simulated agents stand for
	// machines of their own, but here they share two cores with the
	// masters: a collection of their heap in the middle of the failover
	// (hundreds of megabytes to gigabytes, tens of thousands of
	// goroutine stacks) can take seconds of CPU from the new leader.
	AgentsGOGC int
	Logger     *slog.Logger // progress
}

// failoverResult is what a run measured; the times are seconds from the
// kill (reregistered_after_election_s: from the election).
type failoverResult struct {
	Agents        int    `json:"agents"`
	TasksPerAgent int    `json:"tasks_per_agent"`
	Masters       int    `json:"masters"`
	AgentsHTTP2   bool   `json:"agents_http2"`
	AgentCodec    string `json:"agent_codec"`
	// AgentBackoffFactor is the agents' registration backoff factor, s.
	AgentBackoffFactor float64 `json:"agent_registration_backoff_factor_s"`
	// SetupSeconds is the time to register the agents and run every task.
	SetupSeconds      float64 `json:"setup_s"`
	ElectedSeconds    float64 `json:"elected_s"`
	LeadingSeconds    float64 `json:"leading_s"` // the new leader answers as leader
	Reregistered      float64 `json:"reregistered_s"`
	ReregisteredAfter float64 `json:"reregistered_after_election_s"`
	FirstOffer        float64 `json:"first_offer_s"`
	AllOffered        float64 `json:"all_agents_offered_s"`
	Resubscribed      float64 `json:"framework_resubscribed_s"`
	Reconciled        float64 `json:"tasks_reconciled_s"`
	OldLeaderPeakMB   float64 `json:"old_leader_peak_rss_mb"`
	NewLeaderPeakMB   float64 `json:"new_leader_peak_rss_mb"`
	AgentsProcessMB   float64 `json:"simulated_agents_process_peak_rss_mb"`
	// ListenOverflows counts the connections the kernel dropped from
	// full listen queues (TcpExtListenOverflows, for the whole network
	// namespace) from the kill until every agent re-registered: each
	// costs its agent a SYN retransmission, a second or more.
	ListenOverflows  int64          `json:"listen_overflows"`
	ZKSessionTimeout float64        `json:"zk_session_timeout_s"`
	AgentStats       agentsim.Stats `json:"agent_stats"`
	// The agents' counters from the election to every agent re-registered:
	// attempts that failed after the new leader was named.
	AgentStatsAfterElection agentsim.Stats `json:"agent_stats_after_election"`
	// AgentsLearned is when the agents learned of the new leader (from the
	// kill), and AgentsTimeline how long after that they reached each step
	// of re-registering.
	AgentsLearned  float64           `json:"agents_learned_of_new_leader_s"`
	AgentsTimeline agentsim.Timeline `json:"agents_reregistration_timeline"`
	// CPU seconds used from the election until every agent re-registered:
	// by the new leader, and by this process (the simulated agents and
	// the framework), which shares the machine's cores with it.
	NewLeaderCPU float64 `json:"new_leader_cpu_s"`
	AgentsCPU    float64 `json:"simulated_agents_process_cpu_s"`
}

func runBenchFailover(args []string) int {
	fs := flag.NewFlagSet("agora bench failover", flag.ContinueOnError)
	agents := fs.Int("agents", 1000, "simulated agents")
	tasks := fs.Int("tasks-per-agent", 10, "long tasks launched on every agent")
	zkFlag := fs.String("zk", "", "ZooKeeper URL zk://host:2181/path (required); the run uses a fresh znode below path and removes it afterwards")
	masters := fs.Int("masters", 3, "masters to run (2 or 3); the quorum is a majority")
	session := fs.Duration("zk_session_timeout", 4*time.Second, "the masters' ZooKeeper session timeout: the dead leader's znode goes after it")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound on each phase")
	workDir := fs.String("work_dir", "/var/tmp", "where the masters' logs go (a fresh directory below this one, removed afterwards unless the run fails)")
	http2 := fs.Bool("http2", false, "the simulated agents multiplex their streams over cleartext HTTP/2 connections (real agents hold one HTTP/1.1 connection each); needed for more agents than the open-file limit allows")
	backoffFactor := fs.Duration("agent_registration_backoff_factor", 0, "each simulated agent waits a random time up to this before registering with a new leader (Mesos's agent flag --registration_backoff_factor, 1s there); 0: at once")
	agentCodec := fs.String("agent_codec", "protobuf", "what the simulated agents speak to the masters: protobuf (as real agents) or json (as agents before protobuf)")
	pprofDir := fs.String("pprof_dir", "", "write a CPU profile of every surviving master and of this process (the simulated agents), from the kill on (or the election: --pprof_from), into this directory, and the new leader's heap (in use) and goroutines once every agent is back (the masters run with --enable_pprof)")
	pprofFor := fs.Duration("pprof_duration", 20*time.Second, "length of the --pprof_dir profiles")
	agentsGOGC := fs.Int("agents_gogc", 400, "GOGC of this process (the simulated agents) from the kill until every agent re-registered, after a collection just before the kill: the simulated agents stand for machines of their own, and their garbage collection should not take the new leader's CPU; 0 leaves Go's default (100); -1 collects nothing in that window unless the process nears half of the machine's memory")
	pprofFrom := fs.String("pprof_from", "kill", "when the --pprof_dir profiles begin: kill (the leader's kill: the election window, the agents' attempts against the dead leader, and what follows) or election (once ZooKeeper names the new leader: re-registration alone)")
	keepLogs := fs.Bool("keep_logs", false, "keep the masters' logs (a directory below --work_dir, named on stderr) after a run that succeeds")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	verbose := fs.Bool("verbose", false, "log progress on stderr")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: agora bench failover --zk zk://127.0.0.1:2181/agora [--agents N] [--tasks-per-agent T] [--json]\n\n"+
			"Runs --masters masters of this binary against the ZooKeeper at --zk, N simulated agents in\n"+
			"this process (they speak the master's agent protocol and follow the leader through\n"+
			"ZooKeeper; tasks are timers) and a framework that launches T long tasks on every agent.\n"+
			"When every task runs it kills the leading master with SIGKILL and measures the time until\n"+
			"another master is elected, every agent has re-registered with it, it offers again, and the\n"+
			"framework has re-subscribed and reconciled every task as RUNNING; and the new leader's\n"+
			"peak memory. scripts/bench-failover.sh starts a ZooKeeper server and runs it.\n\n"+
			"Example:\n  agora bench failover --zk zk://127.0.0.1:2181/agora --agents 10000 --tasks-per-agent 10\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	u, err := zk.ParseURL(*zkFlag)
	switch {
	case *zkFlag == "":
		fmt.Fprintln(os.Stderr, "agora bench failover: --zk is required (zk://host:2181/path; scripts/bench-failover.sh starts a server)")
		return 2
	case err != nil:
		fmt.Fprintln(os.Stderr, "agora bench failover: --zk:", err)
		return 2
	case *agents <= 0 || *tasks <= 0:
		fmt.Fprintln(os.Stderr, "agora bench failover: --agents and --tasks-per-agent must be positive")
		return 2
	case *backoffFactor < 0:
		fmt.Fprintf(os.Stderr, "agora bench failover: --agent_registration_backoff_factor=%s: want zero or more\n", *backoffFactor)
		return 2
	case *agentCodec != "protobuf" && *agentCodec != "json":
		fmt.Fprintf(os.Stderr, "agora bench failover: --agent_codec=%q: want protobuf or json\n", *agentCodec)
		return 2
	case *agentsGOGC < -1:
		fmt.Fprintf(os.Stderr, "agora bench failover: --agents_gogc=%d: want 0 (Go's default), a percentage, or -1 (off until every agent re-registered)\n", *agentsGOGC)
		return 2
	case *pprofFrom != "kill" && *pprofFrom != "election":
		fmt.Fprintf(os.Stderr, "agora bench failover: --pprof_from=%q: want kill or election\n", *pprofFrom)
		return 2
	case *masters != 2 && *masters != 3:
		fmt.Fprintf(os.Stderr, "agora bench failover: --masters=%d: run 2 or 3\n", *masters)
		return 2
	}
	codec := api.Protobuf
	if *agentCodec == "json" {
		codec = api.JSON
	}
	bin, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora bench failover: cannot find this binary:", err)
		return 1
	}
	dir, err := os.MkdirTemp(*workDir, "agora-failover-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora bench failover: --work_dir:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := benchFailover(ctx, failoverConfig{Bin: bin, ZK: u, Masters: *masters, Agents: *agents, TasksPerAgent: *tasks,
		Dir: dir, SessionTimeout: *session, Timeout: *timeout, HTTP2: *http2, AgentCodec: codec, AgentBackoffFactor: *backoffFactor, PprofDir: *pprofDir, PprofFor: *pprofFor, PprofFromElection: *pprofFrom == "election", AgentsGOGC: *agentsGOGC, Logger: benchLogger(*verbose)})
	if err != nil {
		fmt.Fprintf(os.Stderr, "agora bench failover: %v\n(masters' logs kept in %s)\n", err, dir)
		return 1
	}
	if *keepLogs {
		fmt.Fprintf(os.Stderr, "agora bench failover: masters' logs kept in %s\n", dir)
	} else {
		os.RemoveAll(dir)
	}
	if *jsonOut {
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
		return 0
	}
	printFailoverResult(res)
	return 0
}

// agentCodecName names the simulated agents' codec in results.
func agentCodecName(c api.Codec) string {
	if c == api.JSON {
		return "json"
	}
	return "protobuf" // agentsim's default
}

// profileMasters takes a CPU profile of each master for d into dir, in
// the background; the function it returns waits for them.
func profileMasters(ctx context.Context, masters map[string]*simMaster, dir string, d time.Duration, log *slog.Logger) func() {
	var wg sync.WaitGroup
	for addr := range masters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			file := filepath.Join(dir, "master-"+strings.ReplaceAll(addr, ":", "-")+".pprof")
			if err := fetchProfile(ctx, "http://"+addr+"/debug/pprof/profile", d, file); err != nil {
				log.Warn("profiling a master", "master", addr, "err", err)
				return
			}
			log.Info("CPU profile written", "master", addr, "file", file)
		}()
	}
	return wg.Wait
}

// profileSelf writes a CPU profile of this process (the simulated agents
// and the framework) to file for d, in the background; the function it
// returns ends it early if need be and waits for the file.
func profileSelf(file string, d time.Duration, log *slog.Logger) func() {
	f, err := os.Create(file)
	if err != nil {
		log.Warn("profiling the agents' process", "err", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		log.Warn("profiling the agents' process", "err", err)
		return func() {}
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
			log.Info("CPU profile written", "process", "agents", "file", file)
		})
	}
	t := time.AfterFunc(d, stop)
	return func() { t.Stop(); stop() }
}

// actingSince is when the master logging to logPath last began to act
// as the leader, from its log's "elected leading master" line.
func actingSince(logPath string) (time.Time, bool) {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return time.Time{}, false
	}
	i := strings.LastIndex(string(b), `msg="elected leading master"`)
	if i < 0 {
		return time.Time{}, false
	}
	line := string(b[strings.LastIndexByte(string(b[:i]), '\n')+1 : i])
	ts, ok := strings.CutPrefix(strings.Fields(line + " x")[0], "time=")
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	return t, err == nil
}

// listenOverflows is the kernel's count of connections dropped because a
// listen queue was full (TcpExtListenOverflows in /proc/net/netstat), or
// 0 when it cannot be read.
func listenOverflows() int64 {
	b, err := os.ReadFile("/proc/net/netstat")
	if err != nil {
		return 0
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || names[0] != "TcpExt:" || len(values) != len(names) {
			continue
		}
		for j, n := range names {
			if n == "ListenOverflows" {
				v, _ := strconv.ParseInt(values[j], 10, 64)
				return v
			}
		}
	}
	return 0
}

// fetchProfile writes a CPU profile of d from url (a pprof endpoint) to
// file.
func fetchProfile(ctx context.Context, url string, d time.Duration, file string) error {
	return fetchSnapshot(ctx, fmt.Sprintf("%s?seconds=%d", url, int(d.Seconds())), d+30*time.Second, file)
}

// fetchSnapshot writes what url answers (a profile) to file, within
// timeout.
func fetchSnapshot(ctx context.Context, url string, timeout time.Duration, file string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}

func printFailoverResult(r *failoverResult) {
	w := newTable()
	row := func(k string, v any) { fmt.Fprintf(w, "%s\t%v\n", k, v) }
	row("agents × tasks", fmt.Sprintf("%d × %d", r.Agents, r.TasksPerAgent))
	row("masters", r.Masters)
	row("agents over HTTP/2", r.AgentsHTTP2)
	row("agents' codec", r.AgentCodec)
	row("agents' registration backoff factor s", r.AgentBackoffFactor)
	row("setup (register, launch all) s", r.SetupSeconds)
	row("ZooKeeper session timeout s", r.ZKSessionTimeout)
	row("from kill -9 of the leader:", "")
	row("  new leader elected s", r.ElectedSeconds)
	row("  new leader acting s", r.LeadingSeconds)
	row("  every agent re-registered s", r.Reregistered)
	row("    (from the election) s", r.ReregisteredAfter)
	row("  first offer s", r.FirstOffer)
	row("  offers from every agent s", r.AllOffered)
	row("  framework re-subscribed s", r.Resubscribed)
	row("  every task reconciled RUNNING s", r.Reconciled)
	row("old leader peak RSS MB", r.OldLeaderPeakMB)
	row("new leader peak RSS MB", r.NewLeaderPeakMB)
	row("simulated agents' process peak RSS MB", r.AgentsProcessMB)
	row("listen queue overflows (kill → re-registered)", r.ListenOverflows)
	row("election → re-registered: new leader CPU s", r.NewLeaderCPU)
	row("election → re-registered: agents' process CPU s", r.AgentsCPU)
	row("agents' attempts failed (after the election)", fmt.Sprintf("%d (%d)", r.AgentStats.FailedAttempts, r.AgentStatsAfterElection.FailedAttempts))
	w.Flush()
}

// benchFailover runs the benchmark once.
func benchFailover(ctx context.Context, cfg failoverConfig) (*failoverResult, error) {
	log := cfg.Logger
	if err := fleetFiles(cfg.Agents, cfg.HTTP2, log); err != nil {
		return nil, err
	}
	root := fmt.Sprintf("%s/bench-failover-%d", cfg.ZK.Path, time.Now().UnixNano())
	zkURL := zkURLAt(cfg.ZK, root)
	defer func() {
		if err := deleteZKTree(cfg.ZK, root); err != nil {
			log.Warn("removing the benchmark's znodes", "root", root, "err", err)
		}
	}()
	res := &failoverResult{Agents: cfg.Agents, TasksPerAgent: cfg.TasksPerAgent, Masters: cfg.Masters, AgentsHTTP2: cfg.HTTP2, AgentCodec: agentCodecName(cfg.AgentCodec), AgentBackoffFactor: cfg.AgentBackoffFactor.Seconds(), ZKSessionTimeout: cfg.SessionTimeout.Seconds()}

	// The masters.
	if cfg.PprofDir != "" {
		if err := os.MkdirAll(cfg.PprofDir, 0o755); err != nil {
			return nil, fmt.Errorf("--pprof_dir: %w", err)
		}
		cfg.MasterArgs = append(cfg.MasterArgs, "--enable_pprof")
	}
	masters := map[string]*simMaster{}
	defer func() {
		for _, m := range masters {
			m.stop()
		}
	}()
	for i := 0; i < cfg.Masters; i++ {
		args := append([]string{"master", "--zk=" + zkURL, fmt.Sprintf("--quorum=%d", (cfg.Masters+1)/2),
			"--zk_session_timeout=" + cfg.SessionTimeout.String(), "--ip=127.0.0.1"}, cfg.MasterArgs...)
		m, err := startSimMaster(cfg.Bin, filepath.Join(cfg.Dir, fmt.Sprintf("master-%d.log", i)), args)
		if err != nil {
			return nil, err
		}
		masters[m.addr] = m
	}
	follower := zk.NewGroup(mustParseZK(zkURL), zk.Options{})
	gctx, stopGroup := context.WithCancel(ctx)
	groupDone := make(chan struct{})
	go func() { defer close(groupDone); follower.Run(gctx) }()
	defer func() { stopGroup(); <-groupDone }()
	leader, _, err := awaitLeading(ctx, follower, masters, "", cfg.Timeout)
	if err != nil {
		return nil, err
	}
	log.Info("a master leads", "master", leader)

	// The agents and the framework.
	setup := time.Now()
	fleet, stopFleet, err := startFleet(ctx, agentsim.Config{Master: zkURL, Agents: cfg.Agents, HTTP2: cfg.HTTP2, Codec: cfg.AgentCodec,
		RegistrationBackoffFactor: cfg.AgentBackoffFactor, Logger: log}, cfg.Timeout)
	defer stopFleet()
	if err != nil {
		return nil, err
	}
	log.Info("every agent registered", "agents", cfg.Agents, "s", time.Since(setup).Seconds())
	fw := newFailoverFramework(cfg.Agents, cfg.TasksPerAgent, log)
	driver, err := scheduler.New(scheduler.Config{Masters: []string{zkURL}, Logger: log,
		Framework: mesos.FrameworkInfo{Name: "bench-failover", User: "root", Checkpoint: boolPtr(true), FailoverTimeout: floatPtr(3600),
			Capabilities: []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_PARTITION_AWARE}}},
		Backoff: scheduler.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second},
	}, fw)
	if err != nil {
		return nil, err
	}
	fw.d = driver
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	fw.launchers(runCtx, 32)
	driverDone := make(chan error, 1)
	go func() { driverDone <- driver.Run(runCtx) }()
	defer func() { cancel(); <-driverDone }()
	total := cfg.Agents * cfg.TasksPerAgent
	if err := waitCond(ctx, cfg.Timeout, "every task to run", func() (bool, string) {
		n := fw.runningCount()
		return n == total, fmt.Sprintf("%d of %d tasks RUNNING", n, total)
	}); err != nil {
		return nil, err
	}
	res.SetupSeconds = round3(time.Since(setup).Seconds())
	log.Info("every task runs", "tasks", total, "s", res.SetupSeconds)

	// kill -9 the leader.
	old := masters[leader]
	res.OldLeaderPeakMB = round3(procStatusMB(old.pid(), "VmHWM"))
	overflows := listenOverflows()
	restoreGC := func() {}
	if cfg.AgentsGOGC != 0 {
		// Collect now, so that the agents' next collection is a whole
		// heap's growth away, and make that growth longer for the
		// failover's duration (with -1, no collection at all unless the
		// heap nears the memory limit set meanwhile).
		runtime.GC()
		prev := debug.SetGCPercent(cfg.AgentsGOGC)
		prevLimit := int64(-1)
		if cfg.AgentsGOGC < 0 {
			if half := memTotalBytes() / 2; half > 0 {
				prevLimit = debug.SetMemoryLimit(min(half, debug.SetMemoryLimit(-1)))
			}
		}
		restoreGC = sync.OnceFunc(func() {
			debug.SetGCPercent(prev)
			if prevLimit >= 0 {
				debug.SetMemoryLimit(prevLimit)
			}
		})
		defer restoreGC()
	}
	killed := time.Now()
	fw.markKill(killed)
	if err := old.kill9(); err != nil {
		return nil, err
	}
	delete(masters, leader)
	since := func(t time.Time) float64 { return round3(t.Sub(killed).Seconds()) }
	stopProfiles := func() {}
	profile := func() {
		profiled := profileMasters(ctx, masters, cfg.PprofDir, cfg.PprofFor, log)
		stopSelf := profileSelf(filepath.Join(cfg.PprofDir, "agents.pprof"), cfg.PprofFor, log)
		stopProfiles = func() { stopSelf(); profiled() }
	}
	defer func() { stopProfiles() }()
	if cfg.PprofDir != "" && !cfg.PprofFromElection {
		profile()
	}

	next, masterID, err := awaitElected(ctx, follower, leader, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	elected := time.Now()
	atElection := fleet.Stats()
	var newPid int
	if nm := masters[next]; nm != nil {
		newPid = nm.pid()
	}
	leaderCPU, _ := procCPUSeconds(newPid)
	agentsCPU, _ := procCPUSeconds(os.Getpid())
	if cfg.PprofDir != "" && cfg.PprofFromElection {
		profile()
	}
	res.ElectedSeconds = since(elected)
	log.Info("another master is elected", "master", next, "s", res.ElectedSeconds)
	var wg sync.WaitGroup
	var leadingAt, reregAt time.Time
	var leadErr, reregErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, leadingAt, leadErr = awaitLeading(ctx, follower, masters, leader, cfg.Timeout)
	}()
	go func() {
		defer wg.Done()
		reregErr = waitCond(ctx, cfg.Timeout, "every agent to re-register with the new leader", func() (bool, string) {
			n := fleet.RegisteredWith(masterID)
			return n == cfg.Agents, fmt.Sprintf("%d of %d re-registered", n, cfg.Agents)
		})
		reregAt = time.Now()
	}()
	wg.Wait()
	if err := errors.Join(leadErr, reregErr); err != nil {
		return nil, err
	}
	res.ListenOverflows = listenOverflows() - overflows
	res.AgentStatsAfterElection = fleet.Stats().Sub(atElection)
	if c, err := procCPUSeconds(newPid); err == nil && newPid > 0 {
		res.NewLeaderCPU = round3(c - leaderCPU)
	}
	if c, err := procCPUSeconds(os.Getpid()); err == nil {
		res.AgentsCPU = round3(c - agentsCPU)
	}
	restoreGC()
	res.AgentsTimeline = fleet.Timeline()
	res.AgentsLearned = since(res.AgentsTimeline.Began)
	if nm := masters[next]; nm != nil {
		if at, ok := actingSince(nm.log); ok {
			leadingAt = at // to the millisecond, from its own log
		}
	}
	res.LeadingSeconds, res.Reregistered = since(leadingAt), since(reregAt)
	res.ReregisteredAfter = round3(reregAt.Sub(elected).Seconds())
	log.Info("every agent re-registered", "s", res.Reregistered)
	if cfg.PprofDir != "" {
		// What the new leader holds once its agents are back: its heap
		// (in use, after a collection) and its goroutines.
		// heap?debug=1 is the same heap as text, ending with the
		// runtime's memory statistics (its stacks among them).
		for p, name := range map[string]string{"heap?gc=1": "heap.pprof", "goroutine": "goroutine.pprof", "heap?debug=1": "memstats.txt"} {
			file := filepath.Join(cfg.PprofDir, "new-leader-"+name)
			if err := fetchSnapshot(ctx, "http://"+next+"/debug/pprof/"+p, time.Minute, file); err != nil {
				log.Warn("profiling the new leader", "profile", p, "err", err)
			}
		}
	}
	if err := waitCond(ctx, cfg.Timeout, "offers from every agent and every task reconciled", func() (bool, string) {
		offered, reconciled, _ := fw.after()
		return offered == cfg.Agents && reconciled == total,
			fmt.Sprintf("offers from %d of %d agents, %d of %d tasks reconciled", offered, cfg.Agents, reconciled, total)
	}); err != nil {
		return nil, err
	}
	t := fw.times()
	res.FirstOffer, res.AllOffered, res.Resubscribed, res.Reconciled = since(t.firstOffer), since(t.allOffered), since(t.resubscribed), since(t.reconciled)
	if nm := masters[next]; nm != nil {
		res.NewLeaderPeakMB = round3(procStatusMB(nm.pid(), "VmHWM"))
	}
	res.AgentsProcessMB = round3(procStatusMB(0, "VmHWM"))
	res.AgentStats = fleet.Stats()
	if err := fleet.Err(); err != nil {
		log.Warn("the simulated agents met a protocol error", "err", err)
	}
	return res, nil
}

func mustParseZK(s string) zk.URL {
	u, err := zk.ParseURL(s)
	if err != nil {
		panic(err)
	}
	return u
}

func boolPtr(b bool) *bool        { return &b }
func floatPtr(f float64) *float64 { return &f }

// waitCond polls cond until it holds, ctx ends or limit passes; the error
// names what was awaited and how far it got.
func waitCond(ctx context.Context, limit time.Duration, what string, cond func() (bool, string)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, progress := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s: %s", limit, what, progress)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (%s)", what, ctx.Err(), progress)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// awaitElected waits until ZooKeeper names a leader other than old, and
// returns its address and master ID.
func awaitElected(ctx context.Context, g *zk.Group, old string, limit time.Duration) (string, string, error) {
	var addr, id string
	err := waitCond(ctx, limit, "another master to be elected", func() (bool, string) {
		l, ok := g.Leader()
		if !ok {
			return false, "no leader"
		}
		a, err := l.Address()
		if err != nil || a == old {
			return false, "the old leader still holds its znode"
		}
		var info struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(l.Data, &info); err != nil {
			return false, err.Error()
		}
		addr, id = a, info.ID
		return true, ""
	})
	return addr, id, err
}

// awaitLeading waits until one of masters other than skip answers as the
// elected leader (master/elected in its own metrics), and returns it and
// when it began to lead.
func awaitLeading(ctx context.Context, g *zk.Group, masters map[string]*simMaster, skip string, limit time.Duration) (string, time.Time, error) {
	var leader string
	var at time.Time
	err := waitCond(ctx, limit, "a master to lead", func() (bool, string) {
		l, ok := g.Leader()
		if !ok {
			return false, "no master elected (is ZooKeeper up?)"
		}
		addr, err := l.Address()
		if err != nil || masters[addr] == nil || addr == skip {
			return false, fmt.Sprintf("leader %q is not one of ours", addr)
		}
		if masters[addr].exited() {
			return false, "the elected master exited; see " + masters[addr].log
		}
		m, err := masterMetrics(addr)
		if err != nil || m["master/elected"] != 1 {
			return false, fmt.Sprintf("%s elected, not yet acting", addr)
		}
		// The answer of a master busy with thousands of agents comes
		// late; its uptime says when it began to act.
		leader, at = addr, time.Now()
		if up := m["master/uptime_secs"]; up > 0 {
			at = at.Add(-time.Duration(up * float64(time.Second)))
		}
		return true, ""
	})
	return leader, at, err
}

// failoverFramework launches T tasks on every agent, then, once the
// leader is killed, records when the new one offers and when every task
// is reconciled as RUNNING.
type failoverFramework struct {
	scheduler.Funcs
	d              *scheduler.Driver
	agents, perAgt int
	log            *slog.Logger
	launches       chan failoverLaunch // to the workers that send the ACCEPTs

	mu         sync.Mutex
	agentOf    map[string]string
	running    map[string]bool
	killed     time.Time
	resubbed   bool
	offered    map[string]bool // agents offered since the re-subscription
	reconc     map[string]bool // tasks heard RUNNING since the re-subscription
	lastAnswer time.Time       // when the last update after the re-subscription came
	answers    int             // updates since the re-subscription
	t          failoverTimes
}

type failoverTimes struct{ resubscribed, firstOffer, allOffered, reconciled time.Time }

func newFailoverFramework(agents, perAgent int, log *slog.Logger) *failoverFramework {
	f := &failoverFramework{agents: agents, perAgt: perAgent, log: log, launches: make(chan failoverLaunch, agents),
		agentOf: map[string]string{}, running: map[string]bool{},
		offered: map[string]bool{}, reconc: map[string]bool{}}
	f.Funcs = scheduler.Funcs{OnSubscribed: f.subscribed, OnOffers: f.offers, OnUpdate: f.update}
	return f
}

type failoverLaunch struct {
	offer mesos.OfferID
	tasks []mesos.TaskInfo
}

// launchers sends the queued ACCEPTs, n at a time, until ctx ends.
func (f *failoverFramework) launchers(ctx context.Context, n int) {
	launchWorkers(ctx, n, f.launches, func(l failoverLaunch) {
		if err := f.d.Launch(ctx, []mesos.OfferID{l.offer}, l.tasks, scheduler.RefuseFor(time.Hour)); err != nil && ctx.Err() == nil {
			f.log.Warn("launch failed; the agent's tasks are launched again on its next offer", "agent", l.tasks[0].AgentID.Value, "err", err)
			f.relaunch(ctx, l.tasks...)
		}
	})
}

// relaunch forgets tasks whose ACCEPT failed, so that their agent's next
// offer launches them, and revives the offers its declines filtered.
func (f *failoverFramework) relaunch(ctx context.Context, tasks ...mesos.TaskInfo) {
	f.mu.Lock()
	for _, t := range tasks {
		delete(f.agentOf, t.TaskID.Value)
	}
	f.mu.Unlock()
	_ = f.d.Revive(ctx)
}

func (f *failoverFramework) markKill(at time.Time) {
	f.mu.Lock()
	f.killed = at
	f.mu.Unlock()
}

func (f *failoverFramework) runningCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.running)
}

func (f *failoverFramework) after() (offered, reconciled int, resubscribed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.offered), len(f.reconc), f.resubbed
}

func (f *failoverFramework) times() failoverTimes {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *failoverFramework) subscribed(ctx context.Context, _ *schedcall.Event_Subscribed) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.killed.IsZero() || f.resubbed {
		return
	}
	f.resubbed, f.t.resubscribed = true, time.Now()
	go f.reconcileAll(ctx)
}

// reconcileAll asks the new leader, in rounds, for every task not yet
// heard RUNNING, until all are. The master answers a task only once its
// agent has re-registered (before that it does not know the task's
// state), so a round asks first for the tasks of agents the new leader
// has offered — each of those asks is answered, and the asks are paced
// by the answers — and, at most once a second, for the others, whose
// asks mostly go unanswered. Pacing every ask by its answer, as this
// once did, made each unanswered chunk wait for answers that never came:
// at 40,000 agents one round took longer than re-registration itself,
// and the tasks of agents that came back meanwhile waited for the next.
func (f *failoverFramework) reconcileAll(ctx context.Context) {
	var lastAway time.Time
	for ctx.Err() == nil {
		back, away := f.dueReconciliation()
		if len(back) == 0 && len(away) == 0 {
			return
		}
		if time.Since(lastAway) < time.Second {
			away = nil
		} else if len(away) > 0 {
			lastAway = time.Now()
		}
		f.askReconcile(ctx, back, true)
		f.askReconcile(ctx, away, false)
		select {
		case <-ctx.Done():
		case <-time.After(failoverReconcileRound):
		}
	}
}

// failoverReconcileRound is the pause between reconciliation rounds.
const failoverReconcileRound = 250 * time.Millisecond

// dueReconciliation is the tasks not yet heard RUNNING since the
// re-subscription: those of agents offered since, and the others.
func (f *failoverFramework) dueReconciliation() (back, away []schedcall.Call_Reconcile_Task) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, agent := range f.agentOf {
		switch {
		case f.reconc[id]:
		case f.offered[agent]:
			back = append(back, scheduler.ReconcileTask(id, agent))
		default:
			away = append(away, scheduler.ReconcileTask(id, agent))
		}
	}
	return back, away
}

// askReconcile asks for tasks in chunks. With paced, no more than
// failoverMaxInFlight of them go unanswered at a time (see
// failoverMaxInFlight); answers that stop coming end each wait too.
func (f *failoverFramework) askReconcile(ctx context.Context, tasks []schedcall.Call_Reconcile_Task, paced bool) {
	f.mu.Lock()
	base := f.answers
	f.mu.Unlock()
	asked := 0
	for len(tasks) > 0 && ctx.Err() == nil {
		chunk := tasks[:min(len(tasks), 5000)]
		tasks = tasks[len(chunk):]
		if err := f.d.Reconcile(ctx, chunk); err != nil {
			f.log.Warn("reconcile", "tasks", len(chunk), "err", err)
		}
		asked += len(chunk)
		if !paced {
			continue
		}
		waitCond(ctx, 5*time.Second, "reconciliation answers", func() (bool, string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return asked-(f.answers-base) < failoverMaxInFlight || time.Since(f.lastAnswer) > 200*time.Millisecond, ""
		})
	}
}

func (f *failoverFramework) offers(ctx context.Context, offers []mesos.Offer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var decline, later []mesos.OfferID
	for _, o := range offers {
		aid := o.AgentID.Value
		if f.resubbed {
			if f.t.firstOffer.IsZero() {
				f.t.firstOffer = time.Now()
			}
			if !f.offered[aid] {
				if f.offered[aid] = true; len(f.offered) == f.agents {
					f.t.allOffered = time.Now()
				}
			}
		}
		// The agent's tasks not launched yet, or launched again after a
		// failed ACCEPT or a task that ended before the kill.
		var missing []string
		if f.killed.IsZero() {
			for i := 0; i < f.perAgt; i++ {
				if id := fmt.Sprintf("%s-%d", aid, i); f.agentOf[id] == "" {
					missing = append(missing, id)
				}
			}
		}
		if len(missing) == 0 {
			decline = append(decline, o.ID)
			continue
		}
		// Launch at a pace the framework keeps up with: the master cuts
		// a subscriber that falls too many events behind.
		if len(f.agentOf)-len(f.running)+len(missing) > failoverMaxInFlight {
			later = append(later, o.ID)
			continue
		}
		tasks := make([]mesos.TaskInfo, len(missing))
		for i, id := range missing {
			f.agentOf[id] = aid
			tasks[i] = mesos.TaskInfo{Name: "long", TaskID: mesos.TaskID{Value: id}, AgentID: o.AgentID, Resources: failoverTaskResources,
				Command: &mesos.CommandInfo{Value: failoverTaskCommand}}
		}
		f.launches <- failoverLaunch{o.ID, tasks} // never blocks: one launch per agent at a time
	}
	if len(decline) > 0 {
		go f.d.Decline(ctx, decline, time.Hour)
	}
	if len(later) > 0 {
		go f.d.Decline(ctx, later, 0)
	}
}

// failoverMaxInFlight bounds the tasks launched and not yet RUNNING.
const failoverMaxInFlight = 10000

// failoverTaskResources are each task's, as in Mesos's failover benchmark.
var failoverTaskResources = func() []mesos.Resource {
	rs, err := api.ParseResources("cpus:0.1;mem:5")
	if err != nil {
		panic(err)
	}
	return rs
}()

func (f *failoverFramework) update(ctx context.Context, st mesos.TaskStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.resubbed {
		f.answers++
		f.lastAnswer = time.Now()
	}
	id := st.TaskID.Value
	if st.GetState() != mesos.TASK_RUNNING {
		if f.killed.IsZero() && f.agentOf[id] != "" && scheduler.IsTerminal(st.GetState()) {
			// Lost before the kill (an offer rescinded under the
			// ACCEPT, an agent that dropped it): launched again.
			delete(f.running, id)
			delete(f.agentOf, id)
			go f.d.Revive(context.WithoutCancel(ctx))
		}
		return
	}
	if f.killed.IsZero() {
		f.running[id] = true
		return
	}
	if f.resubbed && !f.reconc[id] {
		if f.reconc[id] = true; len(f.reconc) == len(f.agentOf) {
			f.t.reconciled = time.Now()
		}
	}
}

// failoverTaskCommand is what the tasks would run on a real agent.
var failoverTaskCommand = func() *string { s := "sleep 1000000"; return &s }()
