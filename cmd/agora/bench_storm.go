package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	wordcount "github.com/agora-cluster/agora/examples/storm-wordcount"
	"github.com/agora-cluster/agora/storm/bench"
	"github.com/agora-cluster/agora/storm/flux"
	"github.com/agora-cluster/agora/storm/multilang"
	"github.com/agora-cluster/agora/storm/submit"
)

func init() {
	benchCommands["storm"] = command{name: "storm", summary: "Run the Storm word count on a real Storm or the native runtime against a local pipeline",
		run: func(args []string) int { return benchStorm(args, os.Stdout, os.Stderr) }}
}

const benchStormAbout = `Runs the example word count (examples/storm-wordcount: Python spout, split
and count bolts over the multilang protocol) on a real Storm (--runtime storm)
or on agora's native runtime in this process (--runtime native: no JVM, no
Nimbus), or both one after the other (--runtime both), then, in the same run, its baseline: the same scripts chained as one local pipeline (the spout's
next sentence to split, its words to count, the ack back to the spout, one
tuple at a time, no Storm in between). The spout emits its sentences
--repeat times, each with its own message ID, and times each one from emit to
ack (complete latency). Prints tuples per second (sentences and words the
bolts took, first emit to last ack), complete latency p50/p99, Storm's own
average complete latency (getTopologyInfo, when Nimbus reports one), tuples
replayed, and whether the counts came out exact. The workers write into a
local temporary directory: run it with supervisors on this machine. storm.py
comes from --storm_home's multilang-python jar, else from the jar in the local
Maven repository.`

func benchStorm(args []string, stdout, stderr io.Writer) int {
	var nimbus stormTarget
	var asJSON bool
	fs := stormFlags("bench", "[--runtime storm|native|both] [--repeat N] [--workers N] [--json]", benchStormAbout, stderr, &nimbus, &asJSON)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: agora bench storm [--runtime storm|native|both] [--nimbus HOST:PORT | --master ...] [--repeat N] [--json]\n\n%s\n\nFlags:\n", benchStormAbout)
		fs.PrintDefaults()
	}
	runtime := fs.String("runtime", "storm", "where the topology runs: storm (a real Storm's Nimbus), native (agora's multilang runtime, in this process) or both, one after the other")
	repeat := fs.Int("repeat", 200, "times the spout emits its 10 sentences")
	workers := fs.Int("workers", 1, "topology.workers")
	home := fs.String("storm_home", defaultStormHome(), "a Storm home with storm.py (agora dist install storm)")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound on the whole run")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *runtime != "storm" && *runtime != "native" && *runtime != "both" {
		fmt.Fprintf(stderr, "agora bench storm: --runtime %q: want storm, native or both\n", *runtime)
		return 2
	}
	if *runtime != "storm" && *workers != 1 {
		fmt.Fprintln(stderr, "agora bench storm: the native runtime runs one worker: --workers must be 1")
		return 2
	}
	if *repeat < 1 || *workers < 1 {
		fmt.Fprintln(stderr, "agora bench storm: --repeat and --workers must be at least 1")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	results, err := benchStormRun(ctx, *runtime, nimbus, *home, *repeat, *workers)
	if err != nil {
		return stormFailure(stderr, "bench", err)
	}
	if asJSON {
		return writeJSON(stdout, results)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RUNTIME\tSENTENCES\tWORDS\tSECONDS\tTUPLES/S\tP50 MS\tP99 MS\tSTORM AVG MS\tREPLAYED\tVALID")
	for _, r := range results {
		fmt.Fprintf(w, "%s\t%d\t%d\t%.2f\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t%v\n", r.Runtime, r.Sentences, r.Words, r.Seconds,
			r.TuplesPerSec, r.LatencyP50ms, r.LatencyP99ms, r.StormCompleteAvgMs, r.Replayed, r.Valid)
	}
	w.Flush()
	return 0
}

// benchStormRun runs the word count on Storm, the native runtime or both
// (in that order), then the local pipeline.
func benchStormRun(ctx context.Context, runtime string, nimbus stormTarget, home string, repeat, workers int) ([]bench.Result, error) {
	dir, err := os.MkdirTemp("", "agora-bench-storm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path, err := wordcount.WriteTo(dir)
	if err != nil {
		return nil, err
	}
	resources := filepath.Join(dir, "resources")
	py, err := multilang.FindStormPy(resources, home)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(resources, submit.StormPy), py, 0o644); err != nil {
		return nil, err
	}
	want := map[string]int{}
	for w, n := range wordcount.Counts() {
		want[w] = n * repeat
	}
	sentences := len(wordcount.Sentences()) * repeat

	top, err := flux.Load(path, "")
	if err != nil {
		return nil, err
	}
	runtimes := []string{runtime}
	if runtime == "both" {
		runtimes = []string{"storm", "native"}
	}
	var results []bench.Result
	for _, rt := range runtimes {
		out := filepath.Join(dir, rt+"-out")
		if err := os.Mkdir(out, 0o777); err != nil {
			return nil, err
		}
		var r bench.Result
		if rt == "native" {
			r, err = bench.Native(ctx, top, map[string]any{bench.Repeat: repeat}, out, sentences, want)
		} else {
			r, err = benchOnStorm(ctx, top, nimbus, home, out, repeat, workers, sentences, want)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rt, err)
		}
		results = append(results, r)
	}
	localOut := filepath.Join(dir, "local-out")
	if err := os.Mkdir(localOut, 0o777); err != nil {
		return nil, err
	}
	conf := map[string]any{}
	for k, v := range top.Config {
		conf[k] = v
	}
	conf[bench.OutputDir], conf[bench.Repeat] = localOut, repeat
	local, err := bench.Local(ctx, resources, conf, want)
	if err != nil {
		return nil, fmt.Errorf("local pipeline: %w", err)
	}
	return append(results, local), nil
}

// benchOnStorm submits the word count to a real Storm and measures it.
func benchOnStorm(ctx context.Context, top *flux.Topology, nimbus stormTarget, home, out string, repeat, workers, sentences int, want map[string]int) (bench.Result, error) {
	name := fmt.Sprintf("wordcount-bench-%d", time.Now().Unix())
	p, err := submit.Prepare(top, submit.Options{Name: name, StormHome: home, Conf: map[string]any{
		bench.OutputDir: out, bench.Repeat: repeat, "topology.workers": workers,
	}})
	if err != nil {
		return bench.Result{}, err
	}
	c, err := nimbus.client()
	if err != nil {
		return bench.Result{}, err
	}
	defer c.Close()
	return bench.Storm(ctx, c, p, out, sentences, want)
}
