package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/agora-cluster/agora/lambda/bench"
)

func init() {
	benchCommands["lambda"] = command{name: "lambda", summary: "Run the page-view lambda pipeline on the embedded default: ingest rate, freshness, batch and query times",
		run: func(args []string) int {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return benchLambda(ctx, args, os.Stdout, os.Stderr)
		}}
}

func benchLambda(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora bench lambda", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: agora bench lambda [--events N] [--probes N] [--queries N] [--kafka HOST:PORT] [--cassandra HOST:PORT] [--storm [--nimbus HOST:PORT]] [--json]

Runs examples/lambda-pageviews in this process on the embedded default (the
in-process broker, the ingester, the speed layer, the batch layer and the
query API), or on real Kafka brokers with --kafka (and the batch views in Cassandra with --cassandra), and measures: events/s ingested (--events page views sent at
once, until the dataset and the speed layer hold all of them), freshness
(--probes events sent one at a time, each timed until a query counts it),
one batch recompute over the whole dataset, and --queries queries over
HTTP. The answers are checked against the events sent ("exact").

Flags:
`)
		fs.PrintDefaults()
	}
	var cfg bench.Config
	fs.IntVar(&cfg.Events, "events", 200000, "page views sent for the ingest rate")
	fs.IntVar(&cfg.Probes, "probes", 200, "events sent one at a time for freshness")
	fs.IntVar(&cfg.Queries, "queries", 2000, "queries timed")
	kafka := fs.String("kafka", "", "comma-separated Kafka bootstrap servers to run against (a topic of the run's own)\ninstead of the embedded broker")
	cassandra := fs.String("cassandra", "", "comma-separated Cassandra native-transport addresses to keep the batch views in\n(queries read them there) instead of memory")
	storm := fs.Bool("storm", false, "run the speed layer as a Storm topology on the native runtime (a Kafka spout and a\ncounting bolt, processes of this binary) and measure it")
	nimbus := fs.String("nimbus", "", "with --storm: submit the topology to the real Storm whose Nimbus is at HOST:PORT\n(its supervisors on this host) instead of the native runtime")
	dir := fs.String("work_dir", "", "where the pipeline's dataset and broker log go (default: a temporary directory, removed)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound on the whole run")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if cfg.Events < 1 || cfg.Probes < 1 || cfg.Queries < 1 {
		fmt.Fprintln(stderr, "agora bench lambda: --events, --probes and --queries must each be at least 1")
		return 2
	}
	cfg.Dir = *dir
	if *kafka != "" {
		cfg.Brokers = splitList(*kafka)
	}
	if *cassandra != "" {
		cfg.Cassandra = splitList(*cassandra)
	}
	if *nimbus != "" && !*storm {
		fmt.Fprintln(stderr, "agora bench lambda: --nimbus runs the Storm speed layer on a real Storm: give --storm too")
		return 2
	}
	cfg.Nimbus = *nimbus
	if *storm {
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(stderr, "agora bench lambda:", err)
			return 1
		}
		cfg.StormExe = exe
	}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "agora-bench-lambda-")
		if err != nil {
			fmt.Fprintln(stderr, "agora bench lambda:", err)
			return 1
		}
		defer os.RemoveAll(d)
		cfg.Dir = d
	}
	cfg.Log = stderr
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "agora bench lambda:", err)
		return 1
	}
	if *asJSON {
		if code := writeJSON(stdout, res); code != 0 {
			return code
		}
	} else {
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "broker\t%s\n", res.Broker)
		fmt.Fprintf(w, "serving\t%s\n", res.Serving)
		fmt.Fprintf(w, "speed\t%s\n", res.Speed)
		if res.SpeedStartSeconds > 0 {
			fmt.Fprintf(w, "speed_start_s\t%.2f\t(until the topology's bolt answered; not in events_per_s)\n", res.SpeedStartSeconds)
		}
		fmt.Fprintf(w, "events\t%d\t(ingested %d)\n", res.Events, res.Ingested)
		fmt.Fprintf(w, "events_per_s\t%.0f\t(%.2f s)\n", res.EventsPerSec, res.IngestSeconds)
		fmt.Fprintf(w, "freshness_ms\tp50 %.1f\tp99 %.1f\t(%d probes)\n", res.FreshnessP50ms, res.FreshnessP99ms, res.Probes)
		fmt.Fprintf(w, "batch_recompute_s\t%.3f\t(%d events, %d rows)\n", res.BatchSeconds, res.BatchEvents, res.BatchRows)
		fmt.Fprintf(w, "query_ms\tp50 %.2f\tp99 %.2f\t(%d queries)\n", res.QueryP50ms, res.QueryP99ms, res.Queries)
		fmt.Fprintf(w, "exact\t%v\n", res.Exact)
		w.Flush()
	}
	if !res.Exact {
		fmt.Fprintln(stderr, "agora bench lambda: the answers did not match the events sent")
		return 1
	}
	return 0
}
