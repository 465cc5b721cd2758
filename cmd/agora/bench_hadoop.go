package main

import (
	"path/filepath"

	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/agora-cluster/agora/dist"
	"github.com/agora-cluster/agora/hadoop/hdfscluster"

	"github.com/agora-cluster/agora/hadoop/bench"
	"github.com/agora-cluster/agora/hadoop/terasort"
)

func init() {
	benchCommands["hadoop"] = command{name: "hadoop", summary: "Run Hadoop wordcount or TeraSort on the cluster against a local baseline", run: runBenchHadoop}
}

func runBenchHadoop(args []string) int {
	which, args := splitFirstArg(args)
	fs := flag.NewFlagSet("agora bench hadoop", flag.ContinueOnError)
	var cfg bench.Config
	hadoopAddrFlag(fs, &cfg.Hadoop)
	size := fs.String("size", "", "input size: bytes, or with KB/MB/GB or KiB/MiB/GiB (default: 1GiB for wordcount, 1GB for terasort)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	fs.StringVar(&cfg.Dir, "dir", "", "where to make the directory for the data and outputs; the agents must see it (default: ~/.agora/bench)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the data and outputs")
	fs.IntVar(&cfg.Reduces, "reduces", 2, "reduce tasks")
	rowsFlag := fs.String("rows", "10m", "terachain: rows to generate (k, m, b, t suffixes)")
	maps := fs.Int("maps", 0, "terachain: TeraGen's map tasks (default: one per CPU)")
	startHDFS := fs.Bool("hdfs", false, "terachain: put the data on a real HDFS (a NameNode and a DataNode of `agora dist install hdfs`) started for the run")
	fs.StringVar(&cfg.HDFS, "hdfs_dir", "", "terachain: put the data under this hdfs://NAMENODE:PORT/DIR instead of --dir")
	props := propsFlag{c: map[string]string{}}
	fs.Var(props, "D", "job property key=value (repeatable), e.g. -D mapreduce.input.fileinputformat.split.maxsize=134217728")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: agora bench hadoop wordcount|terasort [--size BYTES] [--json] [flags]\n"+
			"       agora bench hadoop terachain [--rows N] [--maps N] [--hdfs | --hdfs_dir URI] [--json] [flags]\n\n"+
			"Runs a job on the Hadoop framework (`agora dev` runs one) and, on the same machine with\n"+
			"the same data, its baseline, and reports both:\n"+
			"  wordcount  the example Streaming scripts over a generated corpus, against\n"+
			"             cat | mapper.py | LC_ALL=C sort | reducer.py\n"+
			"  terasort   TeraGen's records (TeraGen on the cluster) sorted by TeraSort, against\n"+
			"             LC_ALL=C sort --parallel=<cpus> of the same rows in gensort's ASCII form\n"+
			"  terachain  TeraGen, TeraSort and TeraValidate on the cluster, each timed (no baseline)\n"+
			"Outputs are checked (the counts must agree; TeraValidate must pass).\n\n"+
			"Example:\n  agora bench hadoop terasort --size 1GB --json\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if which == "terachain" {
		if *startHDFS {
			if cfg.HDFS != "" {
				fmt.Fprintln(os.Stderr, "agora bench hadoop: give --hdfs (start one) or --hdfs_dir (use yours), not both")
				return 2
			}
			c, stop, err := benchHDFS(cfg.Dir, cfg.Keep)
			if err != nil {
				fmt.Fprintln(os.Stderr, "agora bench hadoop:", err)
				return 1
			}
			defer stop()
			cfg.HDFS = c.URI("/bench")
		}
		return runBenchTeraChain(cfg, props.c, *rowsFlag, *maps, *asJSON)
	}
	if which != "wordcount" && which != "terasort" {
		fs.Usage()
		return 2
	}
	if *size == "" {
		*size = map[string]string{"wordcount": "1GiB", "terasort": "1GB"}[which]
	}
	var err error
	if cfg.Size, err = bench.ParseSize(*size); err != nil {
		fmt.Fprintln(os.Stderr, "agora bench hadoop: --size:", err)
		return 2
	}
	cfg.Props = props.c
	cfg.Log = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	run := bench.WordCount
	if which == "terasort" {
		run = bench.TeraSort
	}
	res, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora bench hadoop:", err)
		return 1
	}
	if *asJSON {
		return printJSON(res)
	}
	w := newTable()
	fmt.Fprintf(w, "job\t%s (%s)\n", res.Job, res.JobID)
	fmt.Fprintf(w, "bytes\t%d\n", res.Bytes)
	fmt.Fprintf(w, "maps/reduces\t%d/%d\n", res.Maps, res.Reduces)
	fmt.Fprintf(w, "seconds\t%.2f\n", res.Seconds)
	fmt.Fprintf(w, "mb_per_s\t%.1f\n", res.MBPerS)
	fmt.Fprintf(w, "baseline_seconds\t%.2f\t(%s)\n", res.BaselineSeconds, res.Baseline)
	fmt.Fprintf(w, "baseline_mb_per_s\t%.1f\n", res.BaselineMBPerS)
	fmt.Fprintf(w, "speedup\t%.2fx\t(baseline_seconds / seconds)\n", res.Speedup)
	fmt.Fprintf(w, "valid\t%v\n", res.Valid)
	w.Flush()
	return 0
}

// benchHDFS starts a NameNode and a DataNode of the installed HDFS
// distribution (installing it if needed) with their storage under dir,
// removed when stopped unless keep.
func benchHDFS(dir string, keep bool) (*hdfscluster.Cluster, func(), error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, _ := dist.Resolve("hdfs")
	home, err := dist.Installer{Log: os.Stderr}.Install(ctx, d)
	if err != nil {
		return nil, nil, err
	}
	if dir == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return nil, nil, err
		}
		dir = filepath.Join(h, ".agora", "bench")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	work, err := os.MkdirTemp(dir, "hdfs-")
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(os.Stderr, "bench hadoop: starting HDFS %s in %s\n", d, work)
	c, err := hdfscluster.Start(ctx, hdfscluster.Config{Home: home, Dir: work, DataNodeHeapMB: 256, NameNodeHeapMB: 256})
	if err != nil {
		os.RemoveAll(work)
		return nil, nil, err
	}
	fmt.Fprintf(os.Stderr, "bench hadoop: HDFS NameNode at %s\n", c.NameNode)
	return c, func() {
		c.Stop()
		if keep {
			fmt.Fprintf(os.Stderr, "bench hadoop: kept the HDFS storage in %s (start a NameNode on it to read it)\n", work)
			return
		}
		os.RemoveAll(work)
	}, nil
}

func runBenchTeraChain(cfg bench.Config, props map[string]string, rowsArg string, maps int, asJSON bool) int {
	rows, err := terasort.ParseRows(rowsArg)
	if err != nil || rows == 0 {
		fmt.Fprintln(os.Stderr, "agora bench hadoop: --rows:", err)
		return 2
	}
	cfg.Props = props
	cfg.Log = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.TeraChain(ctx, cfg, rows, maps)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora bench hadoop:", err)
		return 1
	}
	if asJSON {
		return printJSON(res)
	}
	w := newTable()
	fmt.Fprintf(w, "rows\t%d\n", res.Rows)
	fmt.Fprintf(w, "bytes\t%d\n", res.Bytes)
	fmt.Fprintf(w, "teragen_seconds\t%.2f\t(%d maps)\n", res.GenSeconds, res.GenMaps)
	fmt.Fprintf(w, "terasort_seconds\t%.2f\t(%d maps, %d reduces)\n", res.SortSeconds, res.SortMaps, res.Reduces)
	fmt.Fprintf(w, "teravalidate_seconds\t%.2f\n", res.ValidateSeconds)
	fmt.Fprintf(w, "total_seconds\t%.2f\n", res.TotalSeconds)
	fmt.Fprintf(w, "checksum\t%s\n", res.Checksum)
	fmt.Fprintf(w, "valid\t%v\n", res.Valid)
	fmt.Fprintf(w, "dir\t%s\n", res.Dir)
	w.Flush()
	return 0
}
