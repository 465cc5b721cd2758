package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/cluster/allocator"
)

func init() {
	benchCommands["allocator"] = command{name: "allocator", summary: "Run the Mesos allocator benchmark scenarios against agora's allocator", run: runBenchAllocator}
}

func runBenchAllocator(args []string) int {
	fs := flag.NewFlagSet("bench allocator", flag.ContinueOnError)
	scenario := fs.String("scenario", "all", "scenario to run, a prefix such as NonQuotaVsQuota, or all")
	agents := fs.String("agents", "", "agents, or a comma-separated list (default: the scenario's)")
	frameworks := fs.String("frameworks", "", "frameworks (roles or clients where the scenario says so), or a comma-separated list")
	rounds := fs.Int("rounds", 0, "timed rounds (0: the scenario's default; -1: Mesos's 2×frameworks for DeclineOffers and ResourceLabels)")
	asJSON := fs.Bool("json", false, "print one JSON object per scenario and size instead of a table")
	explain := fs.Int("explain-cycles", 0, "cycles the allocator keeps for Explain (0: default, -1: off, to measure its cost)")
	clock := fs.String("clock", "wall", "what to time with: wall (as Mesos does), or thread (the benchmark thread's CPU time, steadier on a shared machine)")
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, "Usage: agora bench allocator [--scenario NAME|all] [--agents A] [--frameworks F] [--rounds R] [--json]\n\n"+
			"Reproduces Apache Mesos's allocator benchmarks (DeclineOffers, SuppressOffers, quota, ...)\n"+
			"in-process against agora's allocator and reports each scenario's timed allocation rounds,\n"+
			"its setup time (adding agents and frameworks) and the process's peak RSS. Lists of sizes\n"+
			"run every combination. Progress goes to stderr.\n\nScenarios:\n")
		for _, s := range allocator.Scenarios() {
			fmt.Fprintf(os.Stderr, "  %-38s %s\n", s.Name, s.Summary)
			fmt.Fprintf(os.Stderr, "  %-38s default %d agents, %d frameworks, %d rounds\n", "", s.Agents, s.Frameworks, s.Rounds)
		}
		fmt.Fprint(os.Stderr, "\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(os.Stderr, "\nExample:\n  agora bench allocator --scenario DeclineOffers --agents 10000,20000 --frameworks 1000,2000 --json\n")
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "agora bench allocator: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var clockFn func() time.Duration
	switch *clock {
	case "wall":
	case "thread":
		runtime.LockOSThread() // the scenarios run on this goroutine
		defer runtime.UnlockOSThread()
		clockFn = threadCPUTime
	default:
		fmt.Fprintf(os.Stderr, "agora bench allocator: --clock=%s: give wall or thread\n", *clock)
		return 2
	}
	scenarios := allocator.FindScenarios(*scenario)
	if len(scenarios) == 0 {
		fmt.Fprintf(os.Stderr, "agora bench allocator: no scenario %q (see --help)\n", *scenario)
		return 2
	}
	as, err := sizes("agents", *agents)
	if err != nil {
		fmt.Fprintf(os.Stderr, "agora bench allocator: %v\n", err)
		return 2
	}
	fws, err := sizes("frameworks", *frameworks)
	if err != nil {
		fmt.Fprintf(os.Stderr, "agora bench allocator: %v\n", err)
		return 2
	}
	var results []benchAllocatorRow
	for _, s := range scenarios {
		for _, a := range as {
			for _, f := range fws {
				p := allocator.ScenarioParams{Agents: a, Frameworks: f, Rounds: *rounds, ExplainCycles: *explain, Clock: clockFn}
				p.Progress = func(line string) { fmt.Fprintf(os.Stderr, "%s: %s\n", s.Name, line) }
				runtime.GC()
				debug.FreeOSMemory()
				resetPeakRSS()
				start := time.Now()
				r := s.RunScenario(p)
				row := newBenchAllocatorRow(r, time.Since(start), peakRSSMB())
				if *asJSON {
					b, _ := json.Marshal(row)
					fmt.Println(string(b))
				} else {
					results = append(results, row)
				}
			}
		}
	}
	if !*asJSON {
		printBenchAllocator(results)
	}
	return 0
}

// sizes parses a comma-separated list of positive sizes; "" is one
// default (0).
func sizes(what, s string) ([]int, error) {
	if s == "" {
		return []int{0}, nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--%s=%s: give positive numbers separated by commas", what, s)
		}
		out = append(out, n)
	}
	return out, nil
}

// benchAllocatorRow is one scenario and size, as printed with --json.
type benchAllocatorRow struct {
	Scenario     string             `json:"scenario"`
	Agents       int                `json:"agents"`
	Frameworks   int                `json:"frameworks"`
	Roles        int                `json:"roles"`
	Rounds       int                `json:"rounds"`
	RoundP50MS   float64            `json:"round_p50_ms"`
	RoundMaxMS   float64            `json:"round_max_ms"`
	RoundTotalMS float64            `json:"round_total_ms"`
	RoundMS      []float64          `json:"round_ms"`
	Offers       []int              `json:"offers"`
	SetupMS      float64            `json:"setup_ms"`
	StepsMS      map[string]float64 `json:"steps_ms,omitempty"`
	Counts       map[string]int     `json:"counts,omitempty"`
	Notes        []string           `json:"notes,omitempty"`
	PeakRSSMB    float64            `json:"peak_rss_mb"`
	WallMS       float64            `json:"wall_ms"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func newBenchAllocatorRow(r allocator.ScenarioResult, wall time.Duration, rss float64) benchAllocatorRow {
	row := benchAllocatorRow{
		Scenario: r.Scenario, Agents: r.Agents, Frameworks: r.Frameworks, Roles: r.Roles,
		Rounds: len(r.Rounds), RoundP50MS: ms(r.RoundQuantile(0.5)), RoundMaxMS: ms(r.RoundQuantile(1)),
		RoundTotalMS: ms(r.RoundTotal()), SetupMS: ms(r.Setup), Counts: r.Counts, Notes: r.Notes,
		PeakRSSMB: rss, WallMS: ms(wall), StepsMS: map[string]float64{},
	}
	for _, x := range r.Rounds {
		row.RoundMS = append(row.RoundMS, ms(x.Allocate))
		row.Offers = append(row.Offers, x.Offers)
	}
	for _, s := range r.Steps {
		row.StepsMS[s.Name] = ms(s.Took)
	}
	return row
}

func printBenchAllocator(rows []benchAllocatorRow) {
	w := newTable()
	fmt.Fprintln(w, "SCENARIO\tAGENTS\tFRAMEWORKS\tROUNDS\tROUND P50\tROUND MAX\tROUNDS TOTAL\tSETUP\tPEAK RSS\tDETAILS")
	for _, r := range rows {
		var details []string
		for _, k := range sortedStringKeys(r.StepsMS) {
			details = append(details, fmt.Sprintf("%s %.1f ms", k, r.StepsMS[k]))
		}
		for _, k := range sortedStringKeys(r.Counts) {
			details = append(details, fmt.Sprintf("%s %d", k, r.Counts[k]))
		}
		if len(r.Offers) > 0 {
			details = append(details, fmt.Sprintf("offers/round %d…%d", r.Offers[0], r.Offers[len(r.Offers)-1]))
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%.2f ms\t%.2f ms\t%.1f ms\t%.1f ms\t%.0f MB\t%s\n",
			r.Scenario, r.Agents, r.Frameworks, r.Rounds, r.RoundP50MS, r.RoundMaxMS, r.RoundTotalMS, r.SetupMS, r.PeakRSSMB, strings.Join(details, "; "))
	}
	w.Flush()
}

func sortedStringKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// threadCPUTime is the calling OS thread's user and system CPU time.
func threadCPUTime() time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resetPeakRSS resets the kernel's peak-RSS mark (VmHWM) so that each
// scenario reports its own; without permission the peak stays
// process-wide.
func resetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSSMB reads VmHWM from /proc/self/status, in MiB (0 if unknown).
func peakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				kb, err := strconv.ParseFloat(fields[0], 64)
				if err == nil {
					return kb / 1024
				}
			}
		}
	}
	return 0
}
