package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sort"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/frameworks/bench"
)

func init() {
	benchCommands["launch"] = command{name: "launch", summary: "Launch N short tasks as fast as offers allow and time them", run: runBenchLaunch, paced: true}
}

func runBenchLaunch(args []string) (code int) {
	var o clientOptions
	cfg := bench.LaunchConfig{}
	fs := newClientFlags("bench launch", "[--tasks N] [--max-in-flight N] [--cpus C] [--mem M] [--cmd CMD] [--json]",
		"Subscribes a benchmark framework that launches N command tasks, packing as many into\n"+
			"each offer as fit, and reports throughput and accept→running / accept→finished latency.\n"+
			"Without --max-in-flight it runs twice and reports both: saturated (every task an offer\n"+
			"holds launched at once: throughput, with latencies that mostly measure queueing), then\n"+
			"with at most 8 tasks launched but not yet RUNNING (latency at a stated load).\n"+
			"--max-in-flight N runs once with that window (0: saturated only).\n"+
			"The phase breakdown uses the agents' update timestamps: meaningful only when the\n"+
			"agents' clocks agree with this machine's (agora dev).\n"+
			"CPU per task (per task that ended): the busy time of all of this machine's CPUs over the\n"+
			"run (with agora dev: master, agent, the tasks themselves and this framework; against a\n"+
			"remote master only what runs here) and this process's own.\n"+
			"Progress goes to stderr; the exit status is non-zero if any task did not finish.",
		"agora bench launch --tasks 1000 --max-in-flight 8 --json", &o, true)
	fs.IntVar(&cfg.Tasks, "tasks", 1000, "how many tasks to launch")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", 0, "most tasks launched but not yet RUNNING at any moment (0: no limit, launch all an offer holds)")
	fs.Float64Var(&cfg.CPUs, "cpus", 0.01, "CPUs per task")
	fs.Float64Var(&cfg.Mem, "mem", 32, "memory per task, in MB")
	fs.StringVar(&cfg.Command, "cmd", "true", "shell command each task runs")
	fs.StringVar(&cfg.Role, "role", "*", "role to take resources from")
	fs.BoolVar(&o.verbose, "verbose", false, "print per-offer diagnostics on stderr")
	isolation := fs.String("isolation", "", "compare isolation modes (e.g. posix,cgroups): the same run on a throw-away\nlocal cluster (one master, one agent) per mode, instead of on --master")
	var local localCluster // bench_isolation.go
	fs.IntVar(&local.rounds, "rounds", 1, "with --isolation: run the benchmark this many times on the same throw-away\ncluster, each round after the collector has taken the previous round's sandboxes\n(give a short --gc_delay and --disk_watch_interval), as a long-running agent does")
	local.gc.register(fs)
	workDir := fs.String("work_dir", "/var/tmp", "with --isolation: where the throw-away cluster keeps its state and sandboxes\n(a fresh directory below this one, removed afterwards). Not below /tmp: tasks get\na private /tmp, and sandboxes under it cost every container extra mounts")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process to this file (with --isolation: the master,\nagent and framework, which all run in it)")
	tracePath := fs.String("trace", "", "write each task's times to this file when the run ends, to find where the slow\nlaunches behind a p99 spent their time: a header, then one tab-separated line per\ntask with its ACCEPT, the agent's STARTING and RUNNING stamps, when this framework\ngot them and its end, in ms from the start of the run (accept→running is\nframework_running_ms − accepted_ms)")
	memProfile := fs.String("memprofile", "", "write an allocation profile of this process to this file at the end (pprof's\nalloc_space and alloc_objects: what the run allocated, every allocation sampled)")
	if code, done := o.parse(fs, args); done {
		return code
	}
	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "agora bench launch: --cpuprofile:", err)
			return 2
		}
		defer stopProfile()
	}
	if *memProfile != "" {
		// Sample every allocation: the profile should say where a
		// launch's garbage comes from, not guess it from a few samples.
		runtime.MemProfileRate = 1
		defer writeAllocProfile(*memProfile)
	}
	if cfg.MaxInFlight < 0 {
		fmt.Fprintf(os.Stderr, "agora bench launch: --max-in-flight=%d: give a positive number, or 0 for no limit\n", cfg.MaxInFlight)
		return 2
	}
	if *tracePath != "" {
		f, err := os.Create(*tracePath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "agora bench launch: --trace:", err)
			return 2
		}
		w := bufio.NewWriter(f)
		defer func() {
			err := w.Flush()
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "agora bench launch: --trace:", err)
				if code == 0 {
					code = 1
				}
			}
		}()
		w.WriteString(bench.TraceHeader)
		cfg.Trace = w
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg.Masters = []string{o.master}
	cfg.MaxConnectFailures = 3
	cfg.Principal, cfg.Secret = o.cred.Principal, o.cred.Secret
	cfg.TLS = o.tls

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *isolation != "" {
		modes, err := parseIsolationModes(*isolation)
		if err != nil {
			fmt.Fprintln(os.Stderr, "agora bench launch:", err)
			return 2
		}
		if local.rounds < 1 {
			fmt.Fprintf(os.Stderr, "agora bench launch: --rounds=%d: give 1 or more\n", local.rounds)
			return 2
		}
		if local.rounds > 1 && time.Duration(local.gc.delay) > 10*time.Minute {
			fmt.Fprintf(os.Stderr, "agora bench launch: --rounds=%d waits for the garbage collector between rounds: give a --gc_delay of minutes at most (and a --disk_watch_interval of seconds)\n", local.rounds)
			return 2
		}
		local.workDir = *workDir
		rs, err := benchIsolation(ctx, modes, local, cfg)
		if o.json {
			b, _ := json.Marshal(rs)
			fmt.Println(string(b))
		} else {
			printIsolationResults(modes, local.rounds, rs)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "agora bench launch:", err)
			return 1
		}
		return 0
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "max-in-flight" })
	if !explicit {
		return launchBoth(ctx, cfg, o)
	}
	res, err := bench.Launch(ctx, cfg)
	if res == nil {
		return masterFailure("bench launch", o.master, err)
	}
	if o.json {
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
	} else {
		printLaunchResult(res)
	}
	return launchExit(o, res, err)
}

// startCPUProfile profiles this process's CPU into path until the
// returned function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "agora bench launch: --cpuprofile:", err)
		}
	}, nil
}

// writeAllocProfile writes the allocations made so far to path.
func writeAllocProfile(path string) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora bench launch: --memprofile:", err)
	}
}

// defaultWindow is the in-flight window of the default run's second pass.
const defaultWindow = 8

// launchBoth is the default run: saturated, then with at most
// defaultWindow tasks in flight, so a first run shows the throughput and
// the latency at a stated load rather than only a queueing artefact.
// --json prints both results as an array, in that order.
func launchBoth(ctx context.Context, cfg bench.LaunchConfig, o clientOptions) int {
	var results []*bench.LaunchResult
	for i, window := range []int{0, defaultWindow} {
		c := cfg
		c.MaxInFlight = window
		if i > 0 {
			fmt.Fprintf(os.Stderr, "agora bench launch: again with at most %d tasks in flight\n", window)
		}
		res, err := bench.Launch(ctx, c)
		if res == nil {
			return masterFailure("bench launch", o.master, err)
		}
		results = append(results, res)
		if !o.json {
			if i > 0 {
				fmt.Println()
			}
			if window == 0 {
				fmt.Println("saturated (every task an offer holds launched at once):")
			} else {
				fmt.Printf("at most %d tasks in flight:\n", window)
			}
			printLaunchResult(res)
		}
		if code := launchExit(o, res, err); code != 0 {
			if o.json {
				b, _ := json.Marshal(results)
				fmt.Println(string(b))
			}
			return code
		}
	}
	if o.json {
		b, _ := json.Marshal(results)
		fmt.Println(string(b))
	}
	return 0
}

// launchExit is the exit status of a run: its error, or tasks that did
// not finish.
func launchExit(o clientOptions, res *bench.LaunchResult, err error) int {
	if err != nil {
		return masterFailure("bench launch", o.master, err)
	}
	if res.Finished != res.Tasks {
		fmt.Fprintf(os.Stderr, "agora bench launch: %d of %d tasks did not finish\n", res.Tasks-res.Finished, res.Tasks)
		return 1
	}
	return 0
}

func printLaunchResult(r *bench.LaunchResult) {
	w := newTable()
	row := func(k string, v any) { fmt.Fprintf(w, "%s\t%v\n", k, v) }
	row("tasks", r.Tasks)
	inFlight := "no limit"
	if r.MaxInFlight > 0 {
		inFlight = fmt.Sprint(r.MaxInFlight)
	}
	row("max in flight", inFlight)
	row("peak in flight", r.PeakInFlight)
	row("finished", r.Finished)
	row("failed", r.Failed)
	var states []string
	for s := range r.FailedStates {
		states = append(states, s)
	}
	sort.Strings(states)
	for _, s := range states {
		row("  "+s, r.FailedStates[s])
	}
	row("unfinished", r.Unfinished)
	row("seconds", r.Seconds)
	row("tasks/s", r.TasksPerSecond)
	row("accept→running p50 (ms)", r.AcceptToRunningP50)
	row("accept→running p99 (ms)", r.AcceptToRunningP99)
	row("accept→finished p50 (ms)", r.AcceptToFinishedP50)
	row("accept→finished p99 (ms)", r.AcceptToFinishedP99)
	if p := r.Phases; p != nil {
		phase := func(k string, v bench.Percentiles) { row(k+" p50/p99 (ms)", fmt.Sprintf("%v / %v", v.P50, v.P99)) }
		phase("  accept→agent STARTING", p.AcceptToStarting)
		phase("  agent→framework STARTING", p.StartingDelivery)
		phase("  framework STARTING→RUNNING", p.StartingToRunning)
		phase("  (agent STARTING→RUNNING)", p.AgentStartingToRunning)
	}
	if c := r.CPU; c != nil {
		row("CPU per task, this machine (ms)", fmt.Sprintf("%v (%v%% of %d CPUs busy)", c.Machine, c.BusyPercent, c.CPUs))
		row("CPU per task, this framework (ms)", c.Framework)
	}
	row("offers used", r.Offers)
	row("agents", r.Agents)
	w.Flush()
}
