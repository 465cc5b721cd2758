package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/agora-cluster/agora/frameworks/bench"
)

func init() {
	benchCommands["launch"] = command{name: "launch", summary: "Launch N short tasks as fast as offers allow and time them", run: runBenchLaunch}
}

func runBenchLaunch(args []string) int {
	var o clientOptions
	cfg := bench.LaunchConfig{}
	fs := newClientFlags("bench launch", "[--tasks N] [--cpus C] [--mem M] [--cmd CMD] [--json]",
		"Subscribes a benchmark framework that launches N command tasks, packing as many into\n"+
			"each offer as fit, and reports throughput and accept→running / accept→finished latency.\n"+
			"Progress goes to stderr; the exit status is non-zero if any task did not finish.",
		"agora bench launch --tasks 1000 --cpus 0.01 --mem 32 --json", &o, true)
	fs.IntVar(&cfg.Tasks, "tasks", 1000, "how many tasks to launch")
	fs.Float64Var(&cfg.CPUs, "cpus", 0.01, "CPUs per task")
	fs.Float64Var(&cfg.Mem, "mem", 32, "memory per task, in MB")
	fs.StringVar(&cfg.Command, "cmd", "true", "shell command each task runs")
	fs.StringVar(&cfg.Role, "role", "*", "role to take resources from")
	fs.BoolVar(&o.verbose, "verbose", false, "print per-offer diagnostics on stderr")
	if code, done := parseClientFlags(fs, args); done {
		return code
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg.Masters = []string{o.master}
	cfg.MaxConnectFailures = 3

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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
	row("offers used", r.Offers)
	row("agents", r.Agents)
	w.Flush()
}
