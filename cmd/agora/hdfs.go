package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/dist"
	"github.com/agora-cluster/agora/hadoop/hdfscluster"
)

func init() {
	register(command{name: "hdfs", summary: "Run a real HDFS on this machine: hdfs up", run: runHDFS})
}

var hdfsCommands = map[string]command{
	"up": {name: "up", summary: "Start a NameNode and DataNodes here and keep them running", run: func(args []string) int {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
		defer stop()
		return hdfsUp(ctx, args, os.Stdout, os.Stderr)
	}},
}

func runHDFS(args []string) int {
	return dispatchTo("agora hdfs", "command", hdfsCommands, func() {
		fmt.Fprint(os.Stderr, "Usage: agora hdfs up [--datanodes N] [flags]\n\nRuns a real HDFS (`agora dist install hdfs`) on this machine.\n")
	}, args)
}

const hdfsUpUsage = `Usage: agora hdfs up [--datanodes N] [--hosts H1,H2,...] [--dir DIR] [flags]

Starts a real HDFS on this machine — a NameNode and N DataNodes of the HDFS
distribution (installed from Maven Central by ` + "`agora dist install hdfs`" + ` if missing) —
as local processes, and keeps them running until interrupted. When the NameNode is
out of safe mode with every DataNode live it prints

  namenode HOST:PORT http://HOST:PORT conf DIR

on stdout: use hdfs://HOST:PORT/ paths in jobs and URIs, the web address for JMX and
WebHDFS, and DIR as HADOOP_CONF_DIR for Hadoop's own tools. Each DataNode registers
under a host name of its own (--hosts; default: the address), so block locations
name DataNodes apart and map tasks can be placed on agents with those host names.
The file system is formatted anew each time, in --dir (kept) or in a new directory
under /var/tmp (removed on exit unless --keep). A daemon that dies ends the command
with status 1 and the end of its log.

Example:
  agora hdfs up --datanodes 2 --hosts 127.0.0.1,127.0.0.2 &
  agora hadoop streaming -input hdfs://127.0.0.1:PORT/in -output hdfs://127.0.0.1:PORT/out ...

Flags:
`

func hdfsUp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora hdfs up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("datanodes", 1, "DataNodes to run")
	hosts := fs.String("hosts", "", "comma-separated host names the DataNodes register under, one each (default: --addr)")
	addr := fs.String("addr", "127.0.0.1", "address the daemons listen on")
	dir := fs.String("dir", "", "directory for the file system and logs (default: a new one under /var/tmp)")
	keep := fs.Bool("keep", false, "keep the directory made for the file system when stopping (a --dir given is always kept)")
	replication := fs.Int("replication", 1, "dfs.replication")
	blockSize := fs.Int64("block_size", 0, "dfs.blocksize in bytes (default HDFS's 128 MiB)")
	distDir := fs.String("dist_dir", dist.DefaultDir(), "the cache of distributions (env AGORA_DIST_DIR)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), hdfsUpUsage)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "agora hdfs up: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return fail("unexpected arguments %q", fs.Args())
	}
	var hostList []string
	if *hosts != "" {
		hostList = strings.Split(*hosts, ",")
		if *n != 1 && *n != len(hostList) {
			return fail("--datanodes=%d but --hosts names %d", *n, len(hostList))
		}
	}
	if *n < 1 || *replication < 1 || *replication > max(*n, len(hostList)) {
		return fail("need at least one DataNode and a replication between 1 and the DataNodes (%d)", max(*n, len(hostList)))
	}
	d, _ := dist.Resolve("hdfs")
	home, err := dist.Installer{Dir: *distDir, Log: stderr}.Install(ctx, d)
	if err != nil {
		fmt.Fprintln(stderr, "agora hdfs up:", err)
		return 1
	}
	if *dir == "" {
		if *dir, err = os.MkdirTemp("/var/tmp", "agora-hdfs-"); err != nil {
			fmt.Fprintln(stderr, "agora hdfs up:", err)
			return 1
		}
		if !*keep {
			defer os.RemoveAll(*dir)
		}
	} else if *dir, err = filepath.Abs(*dir); err != nil {
		return fail("--dir: %v", err)
	}
	fmt.Fprintf(stderr, "agora hdfs up: starting %s in %s\n", d, *dir)
	c, err := hdfscluster.Start(ctx, hdfscluster.Config{Home: home, Dir: *dir, Addr: *addr, DataNodes: *n,
		DataNodeHosts: hostList, Replication: *replication, BlockSize: *blockSize})
	if err != nil {
		fmt.Fprintln(stderr, "agora hdfs up:", err)
		return 1
	}
	defer c.Stop()
	fmt.Fprintf(stdout, "namenode %s http://%s conf %s\n", c.NameNode, c.HTTP, c.ConfDir())
	fmt.Fprintf(stderr, "agora hdfs up: %d DataNode(s) live; interrupt to stop\n", len(c.DataNodes))
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(stderr, "agora hdfs up: stopping")
			return 0
		case <-time.After(time.Second):
		}
		if err := c.Exited(); err != nil {
			fmt.Fprintln(stderr, "agora hdfs up:", err)
			return 1
		}
	}
}
