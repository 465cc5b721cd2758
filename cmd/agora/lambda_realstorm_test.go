package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cassandra/cassandratest"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	pageviews "github.com/agora-cluster/agora/examples/lambda-pageviews"
	"github.com/agora-cluster/agora/kafka/kafkatest"
	"github.com/agora-cluster/agora/lambda/ingest"
	"github.com/agora-cluster/agora/lambda/pipeline"
	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/stormspeed"
	"github.com/agora-cluster/agora/lambda/view"
	stormclient "github.com/agora-cluster/agora/storm/client"
	"github.com/agora-cluster/agora/storm/stormtest"
)

// The speed layer's topology on the real engines: `agora lambda
// storm-speed --nimbus` submits it to a real Storm (Nimbus, a supervisor
// and its worker JVM), whose ShellSpout and ShellBolt run this binary's
// spout and bolt; the spout reads a real Kafka broker and the bolt keeps
// the batch views in a real Cassandra node. Every query answers exactly
// the counts computed offline before the first batch run, after it and
// across the boundary; when storm-speed ends the topology leaves Nimbus
// and its components end.
func TestLambdaSpeedOnRealStorm(t *testing.T) {
	tier.Need(t, tier.JVM, tier.JavaErr())
	spec, err := plan.Parse(pageviews.Spec)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	specPath := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(specPath, pageviews.Spec, 0o644); err != nil {
		t.Fatal(err)
	}
	// A Nimbus that is not there fails the submission naming it; both
	// targets at once are refused.
	refused := clustertest.RefusedAddr(t)
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"--nimbus", refused}, 1, "submitting lambda-pageviews-speed to Nimbus " + refused},
		{[]string{"--nimbus", refused, "--storm_master", refused}, 2, "give --storm_master or --nimbus, not both"},
	} {
		var stderr strings.Builder
		args := append([]string{specPath, "--brokers", "127.0.0.1:1", "--work_dir", t.TempDir()}, tc.args...)
		if code := lambdaStormSpeed(context.Background(), args, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.err) {
			t.Fatalf("storm-speed %v: exit %d, %q; want %d and %q", tc.args, code, stderr.String(), tc.code, tc.err)
		}
	}

	cluster := stormtest.Start(t, 1, 1)
	kb := kafkatest.Start(t)
	cn := cassandratest.StartNode(t, cassandratest.Home(t), "127.0.0.19", 512)
	brokers := []string{kb.Bootstrap}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := ingest.EnsureTopics(ctx, brokers, spec); err != nil {
		t.Fatal(err)
	}
	ictx, stopIngest := context.WithCancel(ctx)
	ingested := make(chan error, 1)
	go func() {
		ingested <- pipeline.RunIngest(ictx, spec, brokers, dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	defer func() { stopIngest(); <-ingested }()

	top := start(t, "lambda", "storm-speed", specPath, "--brokers", kb.Bootstrap, "--work_dir", dir,
		"--nimbus", cluster.Nimbus, "--bolt_api", "127.0.0.1:0", "--cassandra", cn.Addr)
	api := func() string { b, _ := os.ReadFile(stormspeed.AddrFile(dir)); return string(b) }
	var st pipeline.Status
	status := func() pipeline.Status {
		st = pipeline.Status{}
		lambdaCall(http.MethodGet, api(), "/v1/status", &st)
		return st
	}
	g := pageviews.Generator{R: rand.New(rand.NewPCG(15, 16)), Start: time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC), Span: 5 * time.Hour, Pages: 3, Users: 30}
	truth := view.Table{}
	var sent int64
	send := func(n int) {
		t.Helper()
		lines := make([]string, n)
		for i := range lines {
			lines[i] = g.Event()
			ev, _ := spec.ParseEvent([]byte(lines[i]))
			truth.Apply(spec, ev)
		}
		if code := lambdaSend([]string{"--brokers", kb.Bootstrap, "--topic", "pageviews"}, strings.NewReader(strings.Join(lines, "\n")), io.Discard, io.Discard); code != 0 {
			t.Fatalf("lambda send: exit %d", code)
		}
		sent += int64(n)
	}
	caughtUp := func(what string) {
		t.Helper()
		// How long it took is logged, not asserted: a figure for
		// benchmarks/RESULTS.md on this machine.
		began := time.Now()
		cluster.Await(t, 2*time.Minute, what+": speed layer caught up", func() (bool, string) {
			st := status()
			return st.Ingest.Appended == sent && st.SpeedNext[0]+st.SpeedNext[1] == sent,
				fmt.Sprintf("%d events sent: %+v\nstorm-speed:\n%s", sent, st, lastBytes(top.out.String(), 3000))
		})
		t.Logf("%s: caught up with %d events %s after the last send", what, sent, time.Since(began).Round(10*time.Millisecond))
	}
	check := func(stage string) { t.Helper(); checkLambdaAnswers(t, api(), spec, truth, stage) }

	send(2500)
	caughtUp("speed layer only")
	check("real Storm: speed layer only")

	// The bolt answering is a child of the real Storm's worker JVM.
	c, _ := stormclient.New(cluster.Nimbus, stormclient.Options{})
	defer c.Close()
	s, ok, err := c.TopologyByName(ctx, "lambda-pageviews-speed")
	if err != nil || !ok || s.Status != "ACTIVE" {
		t.Fatalf("Nimbus lists the topology as %+v (listed %v, %v)", s, ok, err)
	}
	bolts := lambdaComponents("storm-bolt")
	if len(bolts) != 1 {
		t.Fatalf("storm-bolt processes: %v; want one", bolts)
	}
	if parent := cmdline(ppid(bolts[0])); !strings.Contains(parent, "org.apache.storm.daemon.worker.Worker") {
		t.Fatalf("the bolt (pid %d) runs under %q, not a Storm worker", bolts[0], lastBytes(parent, 300))
	}

	b, err := pipeline.RunBatchJob(ctx, spec, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if b.Watermark[0]+b.Watermark[1] < 1024 {
		t.Fatalf("the batch run covered too little: %v", b.Watermark)
	}
	cluster.Await(t, time.Minute, "batch view swapped in by the bolt", func() (bool, string) {
		return fmt.Sprint(status().BatchWatermark) == fmt.Sprint(b.Watermark), fmt.Sprintf("want %v: %+v", b.Watermark, st)
	})
	check("real Storm: batch view from Cassandra and speed")
	send(1200)
	caughtUp("across the boundary")
	check("real Storm: across the boundary")

	// storm-speed ending kills the topology on Nimbus, and with it the
	// components.
	top.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-top.done:
	case <-time.After(time.Minute):
		t.Fatalf("storm-speed still runs a minute after SIGTERM:\n%s", lastBytes(top.out.String(), 3000))
	}
	if !strings.Contains(top.out.String(), "storm speed topology killed") {
		t.Fatalf("storm-speed did not kill its topology:\n%s", lastBytes(top.out.String(), 3000))
	}
	cluster.Await(t, 2*time.Minute, "the topology gone and its components ended", func() (bool, string) {
		_, listed, err := c.TopologyByName(ctx, "lambda-pageviews-speed")
		procs := append(lambdaComponents("storm-spout"), lambdaComponents("storm-bolt")...)
		return err == nil && !listed && len(procs) == 0, fmt.Sprintf("listed %v (%v), components %v", listed, err, procs)
	})
}

// lambdaComponents are the pids of this test binary's `agora lambda NAME`
// processes.
func lambdaComponents(name string) []int {
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err == nil && strings.HasPrefix(string(b), agoraBin+"\x00lambda\x00"+name+"\x00") {
			pid, _ := strconv.Atoi(filepath.Base(d))
			pids = append(pids, pid)
		}
	}
	return pids
}

func ppid(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	// The fields after the command's closing parenthesis: state, ppid.
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 {
		if f := strings.Fields(string(b[i+1:])); len(f) > 1 {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(b), "\x00", " ")
}
