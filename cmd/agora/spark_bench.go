package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/dist"
	"github.com/agora-cluster/agora/spark/bench"
	"github.com/agora-cluster/agora/spark/jvm"
	"github.com/agora-cluster/agora/spark/pyspark"
)

func init() {
	benchCommands["spark"] = command{name: "spark", summary: "Run SparkPi or the PySpark word count with executors as agora tasks against local[2]", run: runBenchSpark}
}

func runBenchSpark(args []string) int {
	fs := flag.NewFlagSet("agora bench spark", flag.ContinueOnError)
	var cfg bench.Config
	master := os.Getenv("AGORA_SPARK_DISPATCHER")
	if master == "" {
		master = "127.0.0.1:7077"
	}
	fs.StringVar(&master, "dispatcher", master, "the Spark dispatcher serving the executors' scheduler (agora spark dispatcher, agora dev --spark_port)")
	fs.IntVar(&cfg.Executors, "executors", 2, "executors of one core each (spark.cores.max)")
	fs.IntVar(&cfg.Slices, "slices", 50, "SparkPi's slices (tasks; the driver holds 100,000 integers per slice)")
	fs.StringVar(&cfg.ExecutorMemory, "executor_memory", "512m", "spark.executor.memory")
	fs.StringVar(&cfg.Job, "job", "pi", "the job: pi (the Java SparkPi) or wordcount (examples/spark-wordcount, PySpark; --slices partitions)")
	fs.IntVar(&cfg.Lines, "lines", 200000, "the word count's input, in lines")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: agora bench spark [--dispatcher HOST:7077] [--job pi|wordcount] [--executors N] [--slices N] [--json]\n\n"+
			"Runs SparkPi (or the PySpark word count, its counts checked) with an unchanged client-mode spark-submit --master mesos://DISPATCHER, its\n"+
			"executors agora tasks, then the same job in local[2] on this machine, and reports the\n"+
			"job's wall time for both and the executors' launch latency (the application's\n"+
			"registration with the scheduler to each executor's registration with the driver).\n\n"+
			"Example:\n  agora dev --agents 2 --spark_port 7077 &\n  agora bench spark --json\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "agora bench spark: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg.Master = strings.TrimPrefix(master, "mesos://")
	cfg.Log = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, _ := dist.Resolve("spark")
	home, err := dist.Installer{Log: os.Stderr}.Install(ctx, d)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora bench spark:", err)
		return 1
	}
	cfg.SparkHome = home
	if cfg.Job == "wordcount" {
		if err := pyspark.Install(ctx, home, pyspark.Config{Log: os.Stderr}); err != nil {
			fmt.Fprintln(os.Stderr, "agora bench spark:", err)
			return 1
		}
	}
	jctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	cfg.ClusterManagerJar, err = jvm.Jar(jctx, "", "")
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora bench spark:", err)
		return 1
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora bench spark:", err)
		return 1
	}
	if *asJSON {
		return printJSON(res)
	}
	w := newTable()
	fmt.Fprintf(w, "job\t%s, %d slices\n", res.Job, res.Slices)
	if res.Pi != "" {
		fmt.Fprintf(w, "agora_seconds\t%.2f\t(%d executors of 1 core; pi %s)\n", res.Seconds, res.Executors, res.Pi)
	} else {
		fmt.Fprintf(w, "agora_seconds\t%.2f\t(%d executors of 1 core; %d words, %d distinct, exact in both runs)\n", res.Seconds, res.Executors, res.Total, res.Words)
	}
	fmt.Fprintf(w, "executors_registered\t%d\n", res.Registered)
	fmt.Fprintf(w, "launch_p50_seconds\t%.2f\t(registration with the scheduler → with the driver)\n", res.LaunchP50)
	fmt.Fprintf(w, "launch_p99_seconds\t%.2f\n", res.LaunchP99)
	if res.LocalPi != "" {
		fmt.Fprintf(w, "local2_seconds\t%.2f\t(pi %s)\n", res.LocalSeconds, res.LocalPi)
	} else {
		fmt.Fprintf(w, "local2_seconds\t%.2f\n", res.LocalSeconds)
	}
	fmt.Fprintf(w, "agora_vs_local2\t%.2fx\t(local2_seconds / agora_seconds)\n", res.LocalSpeedup)
	w.Flush()
	return 0
}
