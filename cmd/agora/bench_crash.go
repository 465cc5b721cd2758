package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/frameworks/bench"
)

func init() {
	benchCommands["crash"] = command{name: "crash", summary: "Soak: kill -9 the master and the agent at seeded moments of a task workload; check nothing is lost", run: runBenchCrash}
}

// crashPoint is one planned crash: after the workload has seen After
// distinct (task, state) updates, kill -9 Kind ("agent", "master", "both").
type crashPoint struct {
	After int    `json:"after_updates"`
	Kind  string `json:"kind"`
}

func (p crashPoint) String() string { return fmt.Sprintf("%s@%d", p.Kind, p.After) }

// crashKinds are what a crash kills.
var crashKinds = []string{"agent", "master", "both"}

// crashSchedule picks k crash moments for a workload of n tasks from seed:
// progress counts (not times, so that the schedule does not depend on the
// machine's speed), spread over the 3 updates each task gets (STARTING,
// RUNNING, its end) between 5% and 85% of the way, at distinct counts, each
// killing one of kinds.
func crashSchedule(seed uint64, n, k int, kinds []string) []crashPoint {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	lo, hi := 3*n*5/100+1, 3*n*85/100
	used := map[int]bool{}
	var ps []crashPoint
	for len(ps) < k && len(used) < hi-lo+1 {
		at := lo + rng.IntN(hi-lo+1)
		kind := kinds[rng.IntN(len(kinds))]
		if used[at] {
			continue
		}
		used[at] = true
		ps = append(ps, crashPoint{After: at, Kind: kind})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].After < ps[j].After })
	return ps
}

// crashRoundConfig configures one crash round.
type crashRoundConfig struct {
	Bin         string // the agora binary run as master and agent
	Dir         string // work directories and logs; tasks' markers go to MarkerDir
	MarkerDir   string // not under /tmp: tasks get a private /tmp
	Seed        uint64
	Tasks       int
	Crashes     int
	Kinds       []string // what the crashes may kill; nil: crashKinds
	MaxInFlight int
	Timeout     time.Duration // bound on the whole workload
	Stall       time.Duration // bound on a time with no new update
	Logger      *slog.Logger
}

// crashRoundResult is what a round did and found.
type crashRoundResult struct {
	Seed        uint64             `json:"seed"`
	Schedule    []crashPoint       `json:"schedule"`
	Crashes     int                `json:"crashes_done"`
	AgentID     string             `json:"agent_id"`
	FrameworkID string             `json:"framework_id"`
	Seconds     float64            `json:"seconds"`
	Verdict     bench.CrashVerdict `json:"verdict"`
	// Cluster lists broken promises beyond single tasks: the agent's ID,
	// recovery, the master's view against the framework's.
	Cluster []string `json:"cluster_violations,omitempty"`
	// Forgotten counts tasks the master no longer lists after its restarts.
	Forgotten int               `json:"forgotten_by_master"`
	Tasks     []bench.CrashTask `json:"-"`
}

// Violations is the number of broken promises found.
func (r *crashRoundResult) Violations() int { return len(r.Verdict.Violations) + len(r.Cluster) }

// crashTaskCommand is task i's command and the state it implies: a short,
// varied sleep, a marker that the command ran to its end, and exit status 1
// for every third task.
func crashTaskCommand(markerDir string) func(i int) (string, mesos.TaskState) {
	return func(i int) (string, mesos.TaskState) {
		code, want := 0, mesos.TASK_FINISHED
		if i%3 == 0 {
			code, want = 1, mesos.TASK_FAILED
		}
		return fmt.Sprintf("sleep 0.%d; touch %s; exit %d", i%7, crashMarker(markerDir, i), code), want
	}
}

func crashMarker(dir string, i int) string { return filepath.Join(dir, fmt.Sprintf("ran-%04d", i)) }

// runCrashRound starts a master and an agent, runs the crash workload on
// them while crashing them at the scheduled moments, then checks every
// task's outcome and the master's view. An error means the round could not
// be run (or was cut short); broken promises are in the result.
func runCrashRound(ctx context.Context, cfg crashRoundConfig) (*crashRoundResult, error) {
	log := cfg.Logger
	kinds := cfg.Kinds
	if len(kinds) == 0 {
		kinds = crashKinds
	}
	res := &crashRoundResult{Seed: cfg.Seed, Schedule: crashSchedule(cfg.Seed, cfg.Tasks, cfg.Crashes, kinds)}
	log.Info("crash round", "seed", cfg.Seed, "tasks", cfg.Tasks, "schedule", fmt.Sprint(res.Schedule))
	cl, err := newCrashCluster(cfg.Bin, cfg.Dir)
	if err != nil {
		return res, err
	}
	defer cl.stop()
	if err := cl.startMaster(); err != nil {
		return res, err
	}
	if err := cl.startAgent(); err != nil {
		return res, err
	}
	v, err := cl.waitAgent(ctx, 60*time.Second)
	if err != nil {
		return res, err
	}
	res.AgentID = v.AgentID
	log.Info("agent registered", "agent_id", res.AgentID)

	ctrl := &crashController{cl: cl, log: log, res: res, schedule: res.Schedule,
		fire: make(chan crashPoint), killed: make(chan struct{}, 1), exited: make(chan struct{})}
	w, err := bench.NewCrashWorkload(bench.CrashConfig{
		Masters: []string{cl.masterAddr()}, Logger: log, Tasks: cfg.Tasks, MaxInFlight: cfg.MaxInFlight,
		Task: crashTaskCommand(cfg.MarkerDir), Progress: ctrl.progress,
	})
	if err != nil {
		return res, err
	}
	start := time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ctrlDone := make(chan struct{})
	go func() { defer close(ctrlDone); ctrl.run(runCtx) }()
	runDone := make(chan error, 1)
	go func() { runDone <- w.Run(runCtx) }()
	finish := func() {
		cancel()
		<-runDone
		<-ctrlDone
	}

	runErr := waitWorkload(ctx, w, runDone, cfg)
	if runErr != nil {
		log.Error("workload cut short", "err", runErr)
	}
	res.Seconds = time.Since(start).Seconds()
	res.FrameworkID = w.FrameworkID()
	// No crash happens from here on; what is left of the schedule (progress
	// ran out before it) is reported, not run.
	ctrl.stopCrashing()
	var after []string
	if ctx.Err() == nil {
		after = checkAfterRound(ctx, cl, w, res)
	}
	finish()
	res.Cluster = append(res.Cluster, after...)
	res.Crashes = ctrl.done
	res.Tasks = w.Tasks()
	res.Verdict = bench.CheckCrashTasks(res.Tasks, func(i int) bool {
		_, err := os.Stat(crashMarker(cfg.MarkerDir, i))
		return err == nil
	})
	return res, runErr
}

// waitWorkload waits until every task of w ended, or the workload stalls
// (no new update for cfg.Stall: a task is stuck, and the checks that follow
// say which) or runs out of time.
func waitWorkload(ctx context.Context, w *bench.CrashWorkload, runDone chan error, cfg crashRoundConfig) error {
	deadline := time.After(cfg.Timeout)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, lastChange := -1, time.Now()
	for {
		select {
		case <-w.Done():
			return nil
		case err := <-runDone:
			runDone <- err
			return fmt.Errorf("the framework stopped: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			reported, ended, inFlight := w.Progress()
			return fmt.Errorf("the workload did not end within %s: %d updates seen, %d of %d tasks ended, %d in flight",
				cfg.Timeout, reported, ended, cfg.Tasks, inFlight)
		case <-tick.C:
			reported, ended, inFlight := w.Progress()
			if reported != last {
				last, lastChange = reported, time.Now()
			} else if time.Since(lastChange) > cfg.Stall {
				return fmt.Errorf("the workload stalled: no new update for %s; %d updates seen, %d of %d tasks ended, %d in flight",
					cfg.Stall, reported, ended, cfg.Tasks, inFlight)
			}
		}
	}
}

// checkAfterRound checks, once every task ended and no more crashes come,
// that the agent is still the one it was, that the master's /master/state
// agrees with what the framework saw, and that the master answers a
// reconciliation of every task.
func checkAfterRound(ctx context.Context, cl *crashCluster, w *bench.CrashWorkload, res *crashRoundResult) []string {
	var out []string
	if v, err := cl.waitAgent(ctx, 60*time.Second); err != nil {
		out = append(out, err.Error())
	} else if v.MasterIDs[0] != res.AgentID || v.AgentID != res.AgentID {
		out = append(out, fmt.Sprintf("agent ID changed: was %s, master lists %s, agent says %s", res.AgentID, v.MasterIDs[0], v.AgentID))
	}
	final := map[string]string{}
	for _, t := range w.Tasks() {
		if o, ok := t.Outcome(); ok {
			final[t.ID] = o.State.String()
		}
	}
	var disagree []string
	var listed map[string]string
	for deadline := time.Now().Add(30 * time.Second); ; {
		var err error
		listed, err = cl.frameworkTasks(res.FrameworkID)
		disagree = disagree[:0]
		if err != nil {
			disagree = append(disagree, "GET /master/state: "+err.Error())
		}
		for id, st := range listed {
			if final[id] != st {
				disagree = append(disagree, fmt.Sprintf("%s: master %s, framework %s", id, st, orNone(final[id])))
			}
		}
		if len(disagree) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	sort.Strings(disagree)
	for _, d := range disagree {
		out = append(out, "master state disagrees with the framework: "+d)
	}
	res.Forgotten = len(final) - len(listed)
	missing, err := w.ReconcileAll(ctx, 20*time.Second)
	if err != nil {
		out = append(out, err.Error())
	} else if len(missing) > 0 {
		out = append(out, fmt.Sprintf("no reconciliation answer for %d tasks: %s", len(missing), strings.Join(first(missing, 10), ", ")))
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "no terminal state"
	}
	return s
}

func first(ss []string, n int) []string {
	if len(ss) > n {
		return append(ss[:n:n], fmt.Sprintf("… (%d more)", len(ss)-n))
	}
	return ss
}

// crashController crashes the cluster at the scheduled progress counts. The
// workload's event goroutine calls progress; at a crash point it hands the
// crash over and waits until the processes are dead (so the crash lands
// right after that update), while the controller restarts them and waits
// for the agent to be back before the next crash.
type crashController struct {
	cl       *crashCluster
	log      *slog.Logger
	res      *crashRoundResult
	schedule []crashPoint
	fire     chan crashPoint
	killed   chan struct{}
	exited   chan struct{} // closed when run returns

	mu      sync.Mutex
	next    int
	stopped bool
	done    int // crashes carried out (only the controller writes it)
}

func (c *crashController) progress(n int) {
	c.mu.Lock()
	if c.stopped || c.next >= len(c.schedule) || n < c.schedule[c.next].After {
		c.mu.Unlock()
		return
	}
	p := c.schedule[c.next]
	c.next++
	c.mu.Unlock()
	select {
	case c.fire <- p:
	case <-c.exited:
		return
	}
	select {
	case <-c.killed:
	case <-c.exited:
	}
}

func (c *crashController) stopCrashing() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
}

func (c *crashController) run(ctx context.Context) {
	defer close(c.exited)
	for {
		var p crashPoint
		select {
		case <-ctx.Done():
			return
		case p = <-c.fire:
		}
		c.log.Info("crash", "n", c.done+1, "kill", p.Kind, "after_updates", p.After)
		err := c.cl.kill(p.Kind)
		c.killed <- struct{}{}
		if err == nil {
			err = c.cl.restart(p.Kind)
		}
		if err != nil {
			c.fail(fmt.Sprintf("crash %d (%s): %v", c.done+1, p, err))
			return
		}
		c.done++
		v, err := c.cl.waitAgent(ctx, 60*time.Second)
		switch {
		case err != nil:
			c.fail(fmt.Sprintf("after crash %d (%s): %v", c.done, p, err))
			return
		case v.MasterIDs[0] != c.res.AgentID || v.AgentID != c.res.AgentID:
			c.fail(fmt.Sprintf("after crash %d (%s): agent ID changed: was %s, master lists %s, agent says %s",
				c.done, p, c.res.AgentID, v.MasterIDs[0], v.AgentID))
		}
		c.log.Info("recovered", "n", c.done, "agent_id", v.AgentID)
	}
}

// fail records a cluster violation and crashes no more; the progress calls
// still waiting are released.
func (c *crashController) fail(msg string) {
	c.log.Error(msg)
	c.mu.Lock()
	c.res.Cluster = append(c.res.Cluster, msg)
	c.stopped = true
	c.mu.Unlock()
}

// describeRound is one line about a round, with its seed.
func describeRound(r *crashRoundResult) string {
	var unknowable []string
	n := 0
	for k, v := range r.Verdict.Unknowable {
		unknowable = append(unknowable, fmt.Sprintf("%s×%d", k, v))
		n += v
	}
	sort.Strings(unknowable)
	s := fmt.Sprintf("seed %d: %d tasks, %d/%d crashes %v, exact %d, unknowable %d %v, forgotten by master %d, violations %d, %.1f s",
		r.Seed, r.Verdict.Tasks, r.Crashes, len(r.Schedule), r.Schedule, r.Verdict.Exact, n, unknowable, r.Forgotten, r.Violations(), r.Seconds)
	return s
}

// describeViolations lists a round's violations, at most max of them.
func describeViolations(r *crashRoundResult, max int) string {
	var b strings.Builder
	for _, c := range r.Cluster {
		fmt.Fprintf(&b, "  cluster: %s\n", c)
	}
	for i, v := range r.Verdict.Violations {
		if i == max {
			fmt.Fprintf(&b, "  … and %d more\n", len(r.Verdict.Violations)-max)
			break
		}
		fmt.Fprintf(&b, "  %s\n", v)
	}
	return b.String()
}

func runBenchCrash(args []string) int {
	fs := flag.NewFlagSet("agora bench crash", flag.ContinueOnError)
	seed := fs.Uint64("seed", 1, "seed of the first round; round r uses seed+r")
	rounds := fs.Int("rounds", 5, "how many rounds, each on a fresh master and agent")
	tasks := fs.Int("tasks", 200, "tasks per round")
	crashes := fs.Int("crashes", 8, "crashes per round (kill -9 of the agent, the master or both)")
	inFlight := fs.Int("max-in-flight", 8, "most tasks launched and not yet ended")
	kindList := fs.String("kill", "agent,master,both", "what the crashes may kill: agent, master, both (comma-separated)")
	timeout := fs.Duration("timeout", 5*time.Minute, "bound on each round's workload")
	stall := fs.Duration("stall", 30*time.Second, "end a round that has seen no new update for this long (a task is stuck)")
	workDir := fs.String("work_dir", "/var/tmp", "where each round keeps its state (a fresh directory below this one,\nremoved afterwards unless the round found a violation)")
	jsonOut := fs.Bool("json", false, "print the summary as JSON")
	verbose := fs.Bool("verbose", false, "log the workload's progress on stderr")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: agora bench crash [--seed N] [--rounds N] [--tasks N] [--crashes N] [--json]\n\n"+
			"Runs this binary as a master and an agent (as separate processes, the agent with its\n"+
			"default isolation: run as root for cgroups), launches a workload of short command tasks\n"+
			"whose outcome is known in advance (every third exits 1) through a checkpointing framework,\n"+
			"and kills the master, the agent or both with SIGKILL at moments a seeded RNG picks among\n"+
			"the workload's updates, restarting each at once on its work_dir. It then checks that every\n"+
			"task ended as its command implies (or lost for a reason that says a crash hid its outcome),\n"+
			"that no update contradicts an earlier terminal one, that the agent kept its ID and that the\n"+
			"master's state agrees with the framework's. The same seed gives the same crash schedule.\n"+
			"Prints one line per round and a summary; exits 1 if any round found a violation.\n\n"+
			"Example:\n  agora bench crash --seed 100 --rounds 10 --crashes 8\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *rounds <= 0 || *tasks <= 0 || *crashes < 0 || *inFlight <= 0 {
		fmt.Fprintln(os.Stderr, "agora bench crash: --rounds, --tasks and --max-in-flight must be positive, --crashes not negative")
		return 2
	}
	var kinds []string
	for _, k := range strings.Split(*kindList, ",") {
		if k = strings.TrimSpace(k); !slices.Contains(crashKinds, k) {
			fmt.Fprintf(os.Stderr, "agora bench crash: --kill: %q is not agent, master or both\n", k)
			return 2
		}
		kinds = append(kinds, k)
	}
	bin, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora bench crash: cannot find this binary:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var sum struct {
		Rounds     int                 `json:"rounds"`
		Crashes    int                 `json:"crashes"`
		Tasks      int                 `json:"tasks"`
		Exact      int                 `json:"exact"`
		Unknowable int                 `json:"unknowable"`
		Violations int                 `json:"violations"`
		Failed     []uint64            `json:"failed_seeds,omitempty"`
		Results    []*crashRoundResult `json:"rounds_detail"`
	}
	for r := 0; r < *rounds && ctx.Err() == nil; r++ {
		res, err := benchCrashRound(ctx, bin, *workDir, crashRoundConfig{Seed: *seed + uint64(r), Tasks: *tasks,
			Crashes: *crashes, Kinds: kinds, MaxInFlight: *inFlight, Timeout: *timeout, Stall: *stall}, *verbose)
		if res == nil {
			fmt.Fprintln(os.Stderr, "agora bench crash:", err)
			return 1
		}
		sum.Rounds++
		sum.Crashes += res.Crashes
		sum.Tasks += res.Verdict.Tasks
		sum.Exact += res.Verdict.Exact
		for _, n := range res.Verdict.Unknowable {
			sum.Unknowable += n
		}
		sum.Violations += res.Violations()
		sum.Results = append(sum.Results, res)
		line := fmt.Sprintf("round %d %s", r+1, describeRound(res))
		if err != nil {
			line += " — round cut short: " + err.Error()
		}
		fmt.Fprintln(os.Stderr, line)
		if res.Violations() > 0 || err != nil {
			sum.Failed = append(sum.Failed, res.Seed)
			fmt.Fprint(os.Stderr, describeViolations(res, 20))
		}
	}
	if *jsonOut {
		b, _ := json.Marshal(sum)
		fmt.Println(string(b))
	} else {
		w := newTable()
		fmt.Fprintf(w, "rounds\t%d\ncrashes\t%d\ntasks\t%d\nexact outcome\t%d\nunknowable (crash)\t%d\nviolations\t%d\nfailed seeds\t%v\n",
			sum.Rounds, sum.Crashes, sum.Tasks, sum.Exact, sum.Unknowable, sum.Violations, sum.Failed)
		w.Flush()
	}
	if len(sum.Failed) > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}

// benchCrashRound runs one soak round in a fresh directory below workDir,
// kept when the round found something (its logs say what happened).
func benchCrashRound(ctx context.Context, bin, workDir string, cfg crashRoundConfig, verbose bool) (*crashRoundResult, error) {
	dir, err := os.MkdirTemp(workDir, fmt.Sprintf("agora-crash-%d-", cfg.Seed))
	if err != nil {
		return nil, fmt.Errorf("--work_dir: %w", err)
	}
	markers := filepath.Join(dir, "markers")
	if err := os.Mkdir(markers, 0o777); err != nil {
		return nil, err
	}
	cfg.Bin, cfg.Dir, cfg.MarkerDir = bin, dir, markers
	cfg.Logger = benchLogger(verbose)
	res, err := runCrashRound(ctx, cfg)
	if res.Violations() == 0 && err == nil {
		os.RemoveAll(dir)
	} else {
		fmt.Fprintf(os.Stderr, "round with seed %d kept in %s (logs/master.log, logs/agent.log)\n", cfg.Seed, dir)
	}
	return res, err
}
