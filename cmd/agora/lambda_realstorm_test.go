package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/agora-cluster/agora/lambda/framework"
	"github.com/agora-cluster/agora/lambda/ingest"
	"github.com/agora-cluster/agora/lambda/pipeline"
	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/stormspeed"
	stormclient "github.com/agora-cluster/agora/storm/client"
	"github.com/agora-cluster/agora/storm/stormtest"
)

// The speed layer's topology on the real engines: `agora lambda
// storm-speed --nimbus` submits it to a real Storm (Nimbus, a supervisor
// and its worker JVM), whose ShellSpout and ShellBolt run this binary's
// spout and bolt; the spout reads a real Kafka broker and the bolt keeps
// the batch views in a real Cassandra node. Every query answers exactly
// the counts computed offline before the first batch run, after it,
// across the boundary, and after kill -9 of the Storm worker JVM running
// the spout and the bolt mid-stream; when storm-speed ends the topology
// leaves Nimbus and its components end.
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
	feed := newLambdaFeed(t, spec, kb.Bootstrap, 15)
	send := feed.send
	caughtUp := func(what string) {
		t.Helper()
		// How long it took is logged, not asserted: a figure for
		// benchmarks/RESULTS.md on this machine.
		began := time.Now()
		cluster.Await(t, 2*time.Minute, what+": speed layer caught up", func() (bool, string) {
			return feed.caughtUp(status()), fmt.Sprintf("%d events sent: %+v\nstorm-speed:\n%s", feed.sent, st, lastBytes(top.out.String(), 3000))
		})
		t.Logf("%s: caught up with %d events %s after the last send", what, feed.sent, time.Since(began).Round(10*time.Millisecond))
	}
	check := func(stage string) { t.Helper(); feed.check(api(), stage) }

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

	// kill -9 of the Storm worker JVM that runs the spout and the bolt
	// while events stream in: its supervisor starts another, whose bolt
	// rebuilds the realtime view from the batch watermark (the spout
	// reading from there), and once it has caught up every answer is
	// exact again: nothing lost, nothing counted twice.
	info, err := c.TopologyInfo(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	port := 0
	for _, e := range info.Executors {
		if e.ComponentID == "count" {
			port = int(e.Port)
		}
	}
	workers := stormtest.WorkerPIDs(s.ID, port)
	if len(workers) != 1 || workers[0] != ppid(bolts[0]) {
		t.Fatalf("the worker JVMs of %s on slot %d: %v; want the bolt's parent %d", s.ID, port, workers, ppid(bolts[0]))
	}
	before := api()
	streamed := make(chan struct{})
	go func() {
		defer close(streamed)
		for i := 0; i < 6; i++ {
			send(150)
		}
	}()
	if err := syscall.Kill(workers[0], syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 of the Storm worker %d: %v", workers[0], err)
	}
	killedAt := time.Now()
	<-streamed
	cluster.Await(t, 2*time.Minute, "a new bolt serving under a new Storm worker", func() (bool, string) {
		bolts := lambdaComponents("storm-bolt")
		return api() != before && len(bolts) == 1 && ppid(bolts[0]) != workers[0], fmt.Sprintf("bolt API %q (was %q), bolts %v", api(), before, bolts)
	})
	send(400)
	caughtUp("after the Storm worker's kill -9")
	t.Logf("the Storm worker's kill -9: answers exact again %s after it", time.Since(killedAt).Round(10*time.Millisecond))
	check("real Storm: after the worker's kill -9")

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

// `agora lambda up --master --nimbus` brings the whole pipeline up in one
// command with its speed layer a topology on a real Storm: the speed task
// submits it, `lambda status` shows it as Nimbus lists it, answers are
// exact before and after a batch run; the speed task killed -9 leaves its
// topology on Nimbus, and the task launched in its place replaces it (a
// new topology, answers exact again); a topology of the same name that
// another pipeline owns is never touched; `lambda down` leaves no
// topology and no component.
func TestLambdaUpOnRealStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real Storm's JVMs; not in -short")
	}
	tier.Need(t, tier.JVM, tier.JavaErr())
	refused := clustertest.RefusedAddr(t)
	// Bad flags, and a Nimbus that does not answer, end up at once naming
	// what is wrong.
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"--nimbus", "127.0.0.1:1"}, 2, "--nimbus: the speed layer's topology is submitted by the speed task of --master HOST:PORT"},
		{[]string{"--nimbus", "127.0.0.1:1", "--master", "127.0.0.1:1", "--storm_framework"}, 2, "give --storm_framework (agora's Storm) or --nimbus (a real Storm), not both"},
		{[]string{"--nimbus", refused, "--master", "127.0.0.1:1"}, 1, "--nimbus: the Nimbus at " + refused + " does not answer"},
	} {
		args := append([]string{"up", pageviewsSpec, "--work_dir", t.TempDir(), "--broker_addr", "127.0.0.1:0", "--api", "127.0.0.1:0"}, tc.args...)
		if code, _, stderr := runLambdaCmd(t, args...); code != tc.code || !strings.Contains(stderr, tc.err) {
			t.Fatalf("lambda %v: exit %d, %q; want %d and %q", args, code, stderr, tc.code, tc.err)
		}
	}

	cluster := stormtest.Start(t, 1, 1)
	c := clustertest.Start(t, clustertest.Options{})
	spec, err := plan.Parse(pageviews.Spec)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	specPath := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(specPath, pageviews.Spec, 0o644); err != nil { // layers.speed: native; --nimbus overrides it
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work")
	up := start(t, "lambda", "up", specPath, "--master", c.MasterAddr, "--nimbus", cluster.Nimbus, "--work_dir", work,
		"--broker_addr", "127.0.0.1:0", "--api", "127.0.0.1:0", "--batch_period", "1h")
	brokers, api := upAddrs(t, up)
	var st framework.Status
	status := func() framework.Status {
		st = framework.Status{}
		lambdaCall(http.MethodGet, api, "/v1/status", &st)
		return st
	}
	// settledStatus is the status once the pipeline's API answers (a
	// loaded machine can make a read time out), which is not what a
	// one-shot check below is about.
	settledStatus := func(what string) framework.Status {
		t.Helper()
		var err error
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			st = framework.Status{}
			if err = lambdaCall(http.MethodGet, api, "/v1/status", &st); err == nil {
				return st
			}
		}
		t.Fatalf("%s: the pipeline's status for a minute: %v", what, err)
		return st
	}
	topology := func() stormspeed.Topology {
		if st.Topology == nil {
			return stormspeed.Topology{}
		}
		return *st.Topology
	}
	feed := newLambdaFeed(t, spec, brokers, 17)
	caughtUp := func(what string) {
		t.Helper()
		cluster.Await(t, 2*time.Minute, what, func() (bool, string) {
			return feed.caughtUp(status().Status) && topology().Status == "ACTIVE",
				fmt.Sprintf("%d events sent: %+v\nup: %s\nsandboxes:\n%s", feed.sent, st, lastBytes(up.out.String(), 3000), sandboxStderrs(c.Agents[0].Config.WorkDir, 3000))
		})
	}

	feed.send(2000)
	caughtUp("the topology on Nimbus caught up")
	feed.check(api, "up --nimbus: speed layer only")
	first := topology()
	if first.Name != "lambda-pageviews-speed" || first.Nimbus != cluster.Nimbus || first.ID == "" || first.Workers != 1 {
		t.Fatalf("status shows the topology as %+v", first)
	}
	if code, out, stderr := runLambdaCmd(t, "status", "--api", api); code != 0 || !strings.Contains(out, "lambda-pageviews-speed ACTIVE "+first.ID+" on Nimbus "+cluster.Nimbus) {
		t.Fatalf("lambda status: exit %d, %s %s", code, out, stderr)
	}
	if code, out, stderr := runLambdaCmd(t, "batch", "--api", api); code != 0 || !strings.Contains(out, "batch view recomputed") {
		t.Fatalf("lambda batch: exit %d, %s %s", code, out, stderr)
	}
	feed.check(api, "up --nimbus: batch and speed")

	// The speed task killed -9 cannot kill its topology: the task
	// launched in its place finds it on Nimbus, kills it and submits its
	// own, whose bolt starts over from the batch watermark.
	killLayer(t, "storm-speed")
	feed.send(600)
	cluster.Await(t, 3*time.Minute, "the topology replaced by the new speed task", func() (bool, string) {
		top := topology()
		return feed.caughtUp(status().Status) && top.Status == "ACTIVE" && top.ID != first.ID,
			fmt.Sprintf("%+v (first %s)\nsandboxes:\n%s", st, first.ID, sandboxStderrs(c.Agents[0].Config.WorkDir, 3000))
	})
	if logs := sandboxStderrs(c.Agents[0].Config.WorkDir, 1<<20); !strings.Contains(logs, "killed this pipeline's topology left running on Nimbus") {
		t.Fatalf("the new speed task did not replace the old topology:\n%s", lastBytes(logs, 3000))
	}
	feed.check(api, "up --nimbus: after the speed task's kill -9")
	second := topology()

	// Another pipeline of the same name (another work directory) is
	// refused, naming whose the topology is, and changes nothing.
	var stderr strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	other := t.TempDir()
	if code := lambdaStormSpeed(ctx, []string{specPath, "--brokers", brokers, "--work_dir", other, "--nimbus", cluster.Nimbus}, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "belongs to the pipeline in "+work+", not this one ("+other+"): it is left alone") {
		t.Fatalf("storm-speed of another pipeline: exit %d, %q", code, stderr.String())
	}
	if settledStatus("after another pipeline's refused submission"); topology().ID != second.ID || topology().Status != "ACTIVE" {
		t.Fatalf("another pipeline's storm-speed touched the topology: %+v, was %+v", topology(), second)
	}
	feed.check(api, "up --nimbus: after another pipeline's refused submission")

	// down: the topology is off Nimbus once down returns, and every
	// component has ended.
	if code, out, stderr := runLambdaCmd(t, "down", "--api", api); code != 0 || !strings.Contains(out, "pipeline pageviews is down") {
		t.Fatalf("lambda down: exit %d, %s %s", code, out, stderr)
	}
	nc, _ := stormclient.New(cluster.Nimbus, stormclient.Options{})
	defer nc.Close()
	if s, listed, err := nc.TopologyByName(ctx, "lambda-pageviews-speed"); err != nil || listed {
		t.Fatalf("after lambda down Nimbus lists %+v (%v, %v)\nup: %s", s, listed, err, lastBytes(up.out.String(), 3000))
	}
	cluster.Await(t, time.Minute, "every lambda process ended after down", func() (bool, string) {
		procs := layerProcs()
		return procs == "", procs
	})
}
