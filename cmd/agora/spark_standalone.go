package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/dist"
	"github.com/agora-cluster/agora/spark/dispatcher"
	"github.com/agora-cluster/agora/spark/standalone"
)

func init() {
	sparkCommands["standalone"] = command{name: "standalone", summary: "Run Spark's standalone Master and Workers as agora tasks, workers added while applications wait",
		run: func(args []string) int { return runSparkStandalone(args, os.Stderr) }}
}

// runSparkStandalone runs Spark's standalone cluster manager on a master
// until interrupted, and says where its Master is once it answers.
func runSparkStandalone(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora spark standalone", flag.ContinueOnError)
	fs.SetOutput(stderr)
	master := masterAddrDefault()
	fs.StringVar(&master, "master", master, "master to subscribe with: host:port, mesos://host:port or zk://... (env AGORA_MASTER)")
	sparkHome := fs.String("spark_home", "", "the Spark home on the agents whose bin/spark-class runs the Master and Workers\n(default: the `agora dist install spark` home, installed if missing)")
	minW := fs.Int("workers-min", 0, "workers kept running even when idle")
	maxW := fs.Int("workers-max", 4, "workers at most, added while applications wait for cores")
	cores := fs.Int("worker-cores", 0, "cores of each worker (SPARK_WORKER_CORES); 0 takes the offer's whole cpus")
	mem := fs.String("worker-memory", "", "memory of each worker's executors (SPARK_WORKER_MEMORY, e.g. 2g); empty takes the\noffer's memory less the worker daemon's 384 MB")
	idle := fs.Duration("idle-timeout", time.Minute, "how long a worker runs no executor before it is released (down to --workers-min)")
	name := fs.String("name", "Spark Standalone", "framework name")
	role := fs.String("role", "*", "role to take the daemons' resources from")
	user := fs.String("user", "", "user to run the daemons as (default: the current user)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: agora spark standalone --master=HOST:5050 [--workers-max N] [--worker-cores C --worker-memory M] [flags]\n\n"+
			"Runs Spark's standalone cluster manager as agora tasks: a Master (RPC, web UI and REST\n"+
			"submission ports from the offer) and Workers sized from the offers. An unchanged\n"+
			"spark-submit --master spark://HOST:PORT runs on it; workers are added while its\n"+
			"applications wait for cores and released when idle.\n\n"+
			"Example:\n  agora spark standalone --master=10.0.0.1:5050 --workers-max 4 --worker-cores 2 --worker-memory 2g\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agora spark standalone: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var memMB float64
	if *mem != "" {
		var err error
		if memMB, err = dispatcher.MemoryMB(*mem); err != nil {
			fmt.Fprintf(stderr, "agora spark standalone: --worker-memory: %v\n", err)
			return 2
		}
	}
	cfg := standalone.Config{Masters: []string{strings.TrimPrefix(master, "mesos://")}, SparkHome: *sparkHome,
		Name: *name, Role: *role, User: *user, WorkersMin: *minW, WorkersMax: *maxW,
		WorkerCores: *cores, WorkerMemMB: memMB, IdleTimeout: *idle}
	if *maxW <= 0 {
		fmt.Fprintf(stderr, "agora spark standalone: --workers-max %d: want at least 1\n", *maxW)
		return 2
	}
	// The configuration is checked before the home is installed.
	check := cfg
	check.SparkHome = "-"
	if _, err := standalone.New(check); err != nil {
		fmt.Fprintln(stderr, "agora spark standalone:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.SparkHome == "" {
		d, _ := dist.Resolve("spark")
		h, err := dist.Installer{Log: stderr}.Install(ctx, d)
		if err != nil {
			fmt.Fprintf(stderr, "agora spark standalone: no --spark_home, and %v\n", err)
			return 1
		}
		cfg.SparkHome = h
	}
	cfg.Logger = newLogger()
	s, err := standalone.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "agora spark standalone:", err)
		return 2
	}
	go func() {
		for ctx.Err() == nil {
			if st := s.Status(); st.MasterURL != "" {
				fmt.Fprintf(stderr, "agora spark standalone: submit with spark-submit --master %s (web UI %s, REST %s)\n", st.MasterURL, st.WebUIURL, st.RESTURL)
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	if err := s.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "agora spark standalone: %v%s\n", err, masterCredentialsHint(master, err))
		return 1
	}
	return 0
}
