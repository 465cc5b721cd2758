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
	"strings"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/containerizer"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/frameworks/bench"
)

// benchIsolation runs the same launch benchmark once per isolation mode,
// each on a throw-away in-process cluster (a master and one agent on
// loopback, state in a temporary directory), so that plain processes and
// cgroups+namespaces are compared in one run on one machine.
func benchIsolation(ctx context.Context, modes []string, workDir string, cfg bench.LaunchConfig) ([]*bench.LaunchResult, error) {
	var out []*bench.LaunchResult
	for _, mode := range modes {
		fmt.Fprintf(os.Stderr, "bench launch: isolation %s\n", mode)
		before := cpuTime()
		res, launchCPU, err := benchOnLocalCluster(ctx, mode, workDir, cfg)
		if err != nil {
			return out, fmt.Errorf("isolation %s: %w", mode, err)
		}
		if res.Tasks > 0 {
			// Everything runs in this process and its children: the
			// master, the agent, the framework, the containers' inits and
			// the tasks (reaped, so counted). The first figure is the
			// launches alone; the second adds the cluster's start and the
			// removal of its work_dir, which are not a launch's cost.
			perTask := func(d time.Duration) float64 {
				return float64(d) / float64(time.Millisecond) / float64(res.Tasks)
			}
			fmt.Fprintf(os.Stderr, "bench launch: isolation %s: %.2f ms of CPU per task for the launches (master, agent, framework, inits and tasks together); %.2f ms with the cluster's start and removal\n",
				mode, perTask(launchCPU), perTask(cpuTime()-before))
		}
		out = append(out, res)
	}
	return out, nil
}

// benchOnLocalCluster runs the benchmark on a throw-away cluster; it also
// returns the CPU time (this process and its reaped children) of the
// benchmark proper, from the first offer wanted to the last task's end.
func benchOnLocalCluster(ctx context.Context, mode, workDir string, cfg bench.LaunchConfig) (*bench.LaunchResult, time.Duration, error) {
	dir, err := os.MkdirTemp(workDir, "agora-bench-")
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
		Native: containerizer.NativeConfig{Root: "agora-bench", CgroupPool: 16, Logger: quiet}})
	if err != nil {
		return nil, 0, err
	}
	defer closeContainerizer(c, quiet)
	a, err := agent.New(agent.Config{MasterAddr: ln.Addr().String(), WorkDir: filepath.Join(dir, "agent"),
		Listen: "127.0.0.1:0", Hostname: "localhost", Containerizer: c, Logger: quiet})
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
	before := cpuTime()
	res, err := bench.Launch(ctx, cfg)
	return res, cpuTime() - before, err
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

func printIsolationResults(modes []string, rs []*bench.LaunchResult) {
	w := newTable()
	fmt.Fprintln(w, "ISOLATION\tTASKS\tFINISHED\tTASKS/S\tACCEPT→RUNNING P50 (MS)\tP99 (MS)\tACCEPT→FINISHED P99 (MS)")
	for i, r := range rs {
		fmt.Fprintf(w, "%s\t%d\t%d\t%v\t%v\t%v\t%v\n", modes[i], r.Tasks, r.Finished, r.TasksPerSecond,
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
