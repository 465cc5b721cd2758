package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/containerizer"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/frameworks/bench"
)

// localCluster is how --isolation runs its throw-away cluster.
type localCluster struct {
	workDir string
	// rounds runs the benchmark this many times on the same agent, each
	// round once the collector has taken the previous one's sandboxes.
	rounds int
	gc     gcFlags // the agent's --gc_delay, --disk_watch_interval, --sandbox_recycling
}

// benchIsolation runs the same launch benchmark once per isolation mode
// (lc.rounds times), each on a throw-away in-process cluster (a master and
// one agent on loopback, state in a temporary directory), so that plain
// processes and cgroups+namespaces are compared in one run on one machine.
func benchIsolation(ctx context.Context, modes []string, lc localCluster, cfg bench.LaunchConfig) ([]*bench.LaunchResult, error) {
	var out []*bench.LaunchResult
	warnNoJournalExt4(lc.workDir) // bench_disk.go
	for _, mode := range modes {
		fmt.Fprintf(os.Stderr, "bench launch: isolation %s\n", mode)
		before := cpuTime()
		rs, launchCPU, err := benchOnLocalCluster(ctx, mode, lc, cfg)
		out = append(out, rs...)
		if err != nil {
			return out, fmt.Errorf("isolation %s: %w", mode, err)
		}
		tasks := 0
		for _, r := range rs {
			tasks += r.Tasks
		}
		if tasks > 0 {
			// Everything runs in this process and its children: the
			// master, the agent, the framework, the containers' inits and
			// the tasks (reaped, so counted). The first figure is the
			// launches alone; the second adds the cluster's start and the
			// removal of its work_dir, which are not a launch's cost.
			perTask := func(d time.Duration) float64 {
				return float64(d) / float64(time.Millisecond) / float64(tasks)
			}
			fmt.Fprintf(os.Stderr, "bench launch: isolation %s: %.2f ms of CPU per task for the launches (master, agent, framework, inits and tasks together); %.2f ms with the cluster's start and removal\n",
				mode, perTask(launchCPU), perTask(cpuTime()-before))
		}
	}
	return out, nil
}

// benchOnLocalCluster runs the benchmark lc.rounds times on a throw-away
// cluster; it also returns the CPU time (this process and its reaped
// children) of the rounds proper, from the first offer wanted to the last
// task's end (with more than one round, to the collection of its
// sandboxes).
func benchOnLocalCluster(ctx context.Context, mode string, lc localCluster, cfg bench.LaunchConfig) ([]*bench.LaunchResult, time.Duration, error) {
	dir, err := os.MkdirTemp(lc.workDir, "agora-bench-")
	if err != nil {
		return nil, 0, fmt.Errorf("--work_dir: %w", err)
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	m, err := master.New(master.Config{Hostname: "localhost", Port: port, Logger: quiet})
	if err != nil {
		return nil, 0, err
	}
	srv := &http.Server{Handler: m.Handler(nil)}
	go m.Run(ctx)
	go srv.Serve(ln)
	defer srv.Close()

	c, err := containerizer.New(containerizer.Options{Isolation: mode,
		Native: containerizer.NativeConfig{Root: "agora-bench", CgroupPool: 16, FavorDynMods: true,
			RootCPUShares: containerizer.DefaultRootCPUShares(float64(runtime.NumCPU())), Logger: quiet}}) // an agent's defaults
	if err != nil {
		return nil, 0, err
	}
	defer closeContainerizer(c, quiet)
	acfg := agent.Config{MasterAddr: ln.Addr().String(), WorkDir: filepath.Join(dir, "agent"),
		Listen: "127.0.0.1:0", Hostname: "localhost", Containerizer: c, Logger: quiet}
	lc.gc.apply(&acfg) // agent_gc.go
	a, err := agent.New(acfg)
	if err != nil {
		return nil, 0, err
	}
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(ctx) }()
	defer func() { cancel(); <-agentDone }()
	for deadline := time.Now().Add(30 * time.Second); !a.Registered(); {
		if time.Now().After(deadline) {
			return nil, 0, fmt.Errorf("the agent did not register")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cfg.Masters = []string{ln.Addr().String()}
	var (
		out   []*bench.LaunchResult
		total time.Duration
	)
	for round := 1; round <= lc.rounds; round++ {
		before := cpuTime()
		cfg.TraceRun = fmt.Sprintf("isolation=%s round=%d max_in_flight=%d", mode, round, cfg.MaxInFlight)
		res, err := bench.Launch(ctx, cfg)
		if res != nil {
			out = append(out, res)
		}
		if err != nil {
			return out, total, err
		}
		if lc.rounds > 1 {
			if err := waitCollected(ctx, acfg, lc); err != nil {
				return out, total, fmt.Errorf("round %d: %w", round, err)
			}
		}
		cpu := cpuTime() - before
		total += cpu
		if lc.rounds > 1 && res.Tasks > 0 {
			fmt.Fprintf(os.Stderr, "bench launch: isolation %s, round %d: %.2f ms of CPU per task for the launches and the collection of their sandboxes; %.0f tasks/s, accept→running p50 %v ms, p99 %v ms\n",
				mode, round, float64(cpu)/float64(time.Millisecond)/float64(res.Tasks), res.TasksPerSecond, res.AcceptToRunningP50, res.AcceptToRunningP99)
		}
	}
	return out, total, nil
}

// waitCollected waits until the agent's garbage collector has taken every
// finished sandbox (none is left below its work_dir's slaves/), for at
// most gc_delay and three sweeps more than a minute.
func waitCollected(ctx context.Context, acfg agent.Config, lc localCluster) error {
	limit := time.Duration(lc.gc.delay) + 3*time.Duration(lc.gc.watch) + time.Minute
	pattern := filepath.Join(acfg.WorkDir, "slaves", "*", "frameworks", "*", "executors", "*", "runs", "*")
	for deadline := time.Now().Add(limit); ; {
		runs, _ := filepath.Glob(pattern)
		if len(runs) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d sandboxes were not garbage-collected within %v: give a short --gc_delay and --disk_watch_interval", len(runs), limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// cpuTime is the CPU time, user and system, of this process and of its
// children that have ended and been waited for.
func cpuTime() time.Duration {
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	var total time.Duration
	for _, ru := range []syscall.Rusage{self, children} {
		total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return total
}

func printIsolationResults(modes []string, rounds int, rs []*bench.LaunchResult) {
	w := newTable()
	fmt.Fprintln(w, "ISOLATION\tROUND\tTASKS\tFINISHED\tTASKS/S\tACCEPT→RUNNING P50 (MS)\tP99 (MS)\tACCEPT→FINISHED P99 (MS)")
	for i, r := range rs {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%v\t%v\t%v\t%v\n", modes[min(i/rounds, len(modes)-1)], i%rounds+1, r.Tasks, r.Finished, r.TasksPerSecond,
			r.AcceptToRunningP50, r.AcceptToRunningP99, r.AcceptToFinishedP99)
	}
	w.Flush()
}

func parseIsolationModes(s string) ([]string, error) {
	var modes []string
	for _, m := range strings.Split(s, ",") {
		switch m = strings.TrimSpace(m); m {
		case "posix", "cgroups":
			modes = append(modes, m)
		case "":
		default:
			return nil, fmt.Errorf("--isolation: %q is not a mode (posix, cgroups)", m)
		}
	}
	return modes, nil
}
