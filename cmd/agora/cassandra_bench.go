package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gocql/gocql"

	"github.com/agora-cluster/agora/cassandra/cql"
	"github.com/agora-cluster/agora/cassandra/framework"
	"github.com/agora-cluster/agora/cassandra/local"
	"github.com/agora-cluster/agora/cassandra/plan"
	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/containerizer"
	"github.com/agora-cluster/agora/cluster/master"
)

func init() {
	benchCommands["cassandra"] = command{name: "cassandra", summary: "gocql writes and reads against an agora-run Cassandra ring and a node started by hand",
		run: func(args []string) int {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return benchCassandra(ctx, args, os.Stdout, os.Stderr)
		}}
}

// cassandraBenchResult is one run of `agora bench cassandra`.
type cassandraBenchResult struct {
	Nodes  int `json:"nodes"`
	HeapMB int `json:"heap_mb"`
	// UpSeconds is from the framework's start to every node up (joined,
	// answering CQL), on a fresh cluster.
	UpSeconds float64      `json:"up_seconds"`
	Agora     []cql.Result `json:"agora"`
	RF        int          `json:"agora_replication_factor"`
	// ByHand is the same workload against one node started by hand with
	// the same heap (replication factor 1).
	ByHand         []cql.Result `json:"by_hand"`
	ByHandUpSecond float64      `json:"by_hand_up_seconds"`
}

const cassandraBenchAbout = `Runs a throw-away agora cluster (a master and one agent per node, on 127.0.0.1,
127.0.0.2, ..., posix isolation, state under --work_dir), lets the Cassandra
framework bring a ring of --nodes up (timed), and measures gocql writes, then
reads, at QUORUM into a keyspace of replication factor min(3, nodes). Then it
stops the ring and runs the same workload against one node started by hand from
the same home with the same heap (replication factor 1). Both use the fast-start
JVM options (-Dcassandra.ring_delay_ms=1000, skip_wait_for_gossip_to_settle=0).`

func benchCassandra(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora bench cassandra", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodes := fs.Int("nodes", 3, "nodes in the agora-run ring")
	heap := fs.Int("heap", 512, "each node's heap, MB (its task gets twice that)")
	ops := fs.Int("ops", 20000, "operations per pass (writes, then as many reads)")
	conc := fs.Int("concurrency", 16, "requests in flight")
	home := fs.String("cassandra_home", defaultCassandraHome(), "the Cassandra home (agora dist install cassandra)")
	workDir := fs.String("work_dir", "/var/tmp", "where the throw-away cluster keeps its state, sandboxes and volumes\n(a fresh directory below this one, removed afterwards)")
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: agora bench cassandra [--nodes N] [--heap MB] [--ops N] [--concurrency N] [--json]\n\n%s\n\nFlags:\n", cassandraBenchAbout)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	switch {
	case *nodes < 1 || *nodes > 9:
		fmt.Fprintf(stderr, "agora bench cassandra: --nodes=%d: between 1 and 9\n", *nodes)
		return 2
	case *heap < 256:
		fmt.Fprintf(stderr, "agora bench cassandra: --heap=%d: at least 256 MB\n", *heap)
		return 2
	case *ops < 1 || *conc < 1:
		fmt.Fprintln(stderr, "agora bench cassandra: --ops and --concurrency: at least 1")
		return 2
	case *home == "":
		fmt.Fprintln(stderr, "agora bench cassandra: no Cassandra home: `agora dist install cassandra`, or --cassandra_home")
		return 2
	}
	dir, err := os.MkdirTemp(*workDir, "agora-bench-cassandra-")
	if err != nil {
		fmt.Fprintln(stderr, "agora bench cassandra: --work_dir:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel()}))
	res := cassandraBenchResult{Nodes: *nodes, HeapMB: *heap, RF: min(3, *nodes)}
	err = benchAgoraRing(ctx, &res, dir, *home, *ops, *conc, log)
	// No node of the ring may outlive its cluster, nor compete with the
	// node by hand.
	killLeftovers(dir, log)
	if err == nil {
		err = benchByHand(ctx, &res, dir, *home, *ops, *conc, log)
	}
	if *asJSON {
		writeJSON(stdout, res)
	} else {
		printCassandraBench(stdout, res)
	}
	if err != nil {
		fmt.Fprintln(stderr, "agora bench cassandra:", err)
		return 1
	}
	return 0
}

// benchAgoraRing runs the ring on a throw-away cluster and its workload.
func benchAgoraRing(ctx context.Context, res *cassandraBenchResult, dir, home string, ops, conc int, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	m, err := master.New(master.Config{Hostname: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, Logger: quiet})
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: m.Handler(nil)}
	go m.Run(ctx)
	go srv.Serve(ln)
	defer srv.Close()
	c, err := containerizer.New(containerizer.Options{Isolation: "posix"})
	if err != nil {
		return err
	}
	defer closeContainerizer(c, quiet)
	var agentsDone []chan error
	defer func() {
		cancel()
		for _, d := range agentsDone {
			<-d
		}
	}()
	var agents []*agent.Agent
	for i := range res.Nodes {
		first := 10000 + rand.IntN(20000)
		a, err := agent.New(agent.Config{MasterAddr: ln.Addr().String(), WorkDir: filepath.Join(dir, "agent"+strconv.Itoa(i)),
			Listen: "127.0.0.1:0", Hostname: fmt.Sprintf("127.0.0.%d", i+1), Containerizer: c, Logger: quiet,
			Resources: fmt.Sprintf("cpus:1;mem:%d;disk:2000;ports:[%d-%d]", res.HeapMB*2+100, first, first+9)})
		if err != nil {
			return err
		}
		d := make(chan error, 1)
		go func() { d <- a.Run(ctx) }()
		agents, agentsDone = append(agents, a), append(agentsDone, d)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		all := true
		for _, a := range agents {
			all = all && a.Registered()
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the agents did not register")
		}
		time.Sleep(20 * time.Millisecond)
	}
	opts, _ := json.Marshal(fastStart)
	spec, err := plan.Parse([]byte(fmt.Sprintf(`{"name":"bench","nodes":%d,"cpus":1,"mem":%d,"disk":1000,"heap":%d,"jvm_options":%s}`,
		res.Nodes, res.HeapMB*2, res.HeapMB, opts)))
	if err != nil {
		return err
	}
	fw, err := framework.New(framework.Config{Masters: []string{ln.Addr().String()}, Spec: spec, Home: home, Probe: 500 * time.Millisecond,
		Logger: log.With("component", "cassandra-framework")})
	if err != nil {
		return err
	}
	fctx, fcancel := context.WithCancel(ctx)
	fdone := make(chan error, 1)
	start := time.Now()
	go func() { fdone <- fw.Run(fctx) }()
	defer func() { fcancel(); <-fdone }()
	for up := 0; up < res.Nodes; {
		select {
		case err := <-fdone:
			return fmt.Errorf("the framework ended: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Since(start) > 10*time.Minute {
			return fmt.Errorf("the ring did not come up within 10 minutes: %+v", fw.Nodes())
		}
		up = fw.Status().Up
	}
	res.UpSeconds = round2(time.Since(start).Seconds())
	fmt.Fprintf(os.Stderr, "agora bench cassandra: %d nodes up in %.1f s\n", res.Nodes, res.UpSeconds)
	res.Agora, err = cassandraWorkload(ctx, fw.Endpoints().Native, res.RF, ops, conc)
	return err
}

// fastStart are the JVM options of the bench's nodes (cassandratest's).
var fastStart = []string{"-Dcassandra.ring_delay_ms=1000", "-Dcassandra.skip_wait_for_gossip_to_settle=0"}

// benchByHand runs one node by hand with the same heap and its workload.
func benchByHand(ctx context.Context, res *cassandraBenchResult, dir, home string, ops, conc int, log *slog.Logger) error {
	first := 10000 + rand.IntN(20000)
	n := plan.Node{Host: "127.0.0.100", StoragePort: uint64(first), NativePort: uint64(first + 1), JMXPort: uint64(first + 2)}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	node, err := local.Start(sctx, home, filepath.Join(dir, "by-hand"), "by-hand", n, res.HeapMB, fastStart)
	if err != nil {
		return err
	}
	defer node.Stop()
	res.ByHandUpSecond = round2(time.Since(start).Seconds())
	res.ByHand, err = cassandraWorkload(ctx, []string{node.Addr}, 1, ops, conc)
	return err
}

// cassandraWorkload writes, then reads, ops keys at QUORUM.
func cassandraWorkload(ctx context.Context, addrs []string, rf, ops, conc int) ([]cql.Result, error) {
	cc, err := cql.Cluster(addrs, 20*time.Second)
	if err != nil {
		return nil, err
	}
	cc.NumConns = 2
	s, err := cc.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("gocql session on %v: %w", addrs, err)
	}
	defer s.Close()
	if err := cql.Prepare(s, "bench", rf); err != nil {
		return nil, err
	}
	var out []cql.Result
	for _, op := range []string{"write", "read"} {
		r, err := cql.Run(ctx, s, "bench", op, ops, conc, gocql.Quorum)
		out = append(out, r)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// killLeftovers ends any Cassandra JVM whose command line names dir
// (this run's sandboxes), waiting for the framework's teardown first.
func killLeftovers(dir string, log *slog.Logger) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids := local.DaemonPIDs(dir)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range pids {
				log.Warn("killing a node the teardown left", "pid", p)
				syscall.Kill(p, syscall.SIGKILL)
			}
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func printCassandraBench(w io.Writer, r cassandraBenchResult) {
	fmt.Fprintf(w, "agora ring: %d nodes of %d MB heap up in %.1f s (RF %d); by hand: 1 node up in %.1f s (RF 1)\n",
		r.Nodes, r.HeapMB, r.UpSeconds, r.RF, r.ByHandUpSecond)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tOP\tCL\tOPS\tERRORS\tOPS/S\tP50 MS\tP99 MS")
	for _, x := range []struct {
		name string
		rs   []cql.Result
	}{{"agora", r.Agora}, {"by hand", r.ByHand}} {
		for _, c := range x.rs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.0f\t%.2f\t%.2f\n", x.name, c.Op, c.Consistency, c.Ops, c.Errors, c.OpsPerSec, c.P50Ms, c.P99Ms)
		}
	}
	tw.Flush()
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
