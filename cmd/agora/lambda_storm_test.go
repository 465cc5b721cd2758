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

	"github.com/agora-cluster/agora/cluster/clustertest"
	pageviews "github.com/agora-cluster/agora/examples/lambda-pageviews"
	"github.com/agora-cluster/agora/lambda/framework"
	"github.com/agora-cluster/agora/lambda/ingest"
	"github.com/agora-cluster/agora/lambda/pipeline"
	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/stormspeed"
)

// The speed layer as a Storm topology on the native runtime (`agora
// lambda storm-speed`: a Kafka spout and a counting bolt, processes of
// the agora binary speaking multilang): every query answers exactly the
// counts computed offline before the first batch run, after it, across
// the boundary, after kill -9 of the bolt (its successor has the spout
// read again from the batch watermark) and after kill -9 of the spout.
func TestLambdaSpeedOnNativeStorm(t *testing.T) {
	spec, err := plan.Parse(pageviews.Spec)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	specPath := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(specPath, pageviews.Spec, 0o644); err != nil {
		t.Fatal(err)
	}
	fake, err := pipeline.StartBroker(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	brokers := fake.ListenAddrs()
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

	top := start(t, "lambda", "storm-speed", specPath, "--brokers", strings.Join(brokers, ","), "--work_dir", dir)
	api := func() string { b, _ := os.ReadFile(stormspeed.AddrFile(dir)); return string(b) }
	var st pipeline.Status
	status := func() pipeline.Status {
		st = pipeline.Status{}
		lambdaCall(http.MethodGet, api(), "/v1/status", &st)
		return st
	}
	feed := newLambdaFeed(t, spec, strings.Join(brokers, ","), 11)
	send := feed.send
	caughtUp := func(what string) {
		t.Helper()
		waitShowing(t, 2*time.Minute, func() string {
			return fmt.Sprintf("%s: not caught up with %d events: %+v\ntopology:\n%s", what, feed.sent, st, lastBytes(top.out.String(), 5000))
		}, func() bool { return feed.caughtUp(status()) })
	}
	check := func(stage string) { t.Helper(); feed.check(api(), stage) }

	send(3000)
	caughtUp("speed layer only")
	check("storm speed layer only")

	b, err := pipeline.RunBatchJob(ctx, spec, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if b.Watermark[0]+b.Watermark[1] < 1024 {
		t.Fatalf("the batch run covered too little: %v", b.Watermark)
	}
	waitShowing(t, time.Minute, func() string { return fmt.Sprintf("the bolt did not swap in the batch view %v: %+v", b.Watermark, st) }, func() bool {
		return fmt.Sprint(status().BatchWatermark) == fmt.Sprint(b.Watermark)
	})
	check("storm: batch and speed")
	send(1500)
	caughtUp("across the boundary")
	check("storm: across the boundary")

	// The bolt killed: the runtime starts another, which has the spout
	// read the topic again from the batch watermark.
	before := api()
	killLayer(t, "storm-bolt")
	waitShowing(t, time.Minute, func() string { return "no new bolt serving after the kill" }, func() bool { return api() != before && api() != "" })
	send(500)
	caughtUp("after the bolt's kill -9")
	check("storm: after the bolt's kill -9")

	// The spout killed: the runtime starts another, reading from the
	// batch watermark; the bolt applies each offset once.
	killLayer(t, "storm-spout")
	send(700)
	caughtUp("after the spout's kill -9")
	check("storm: after the spout's kill -9")
}

// `agora lambda up --master` of a spec with layers.speed: storm runs the
// speed task as the topology (`agora lambda storm-speed`): answers exact
// before and after a batch run and after kill -9 of the counting bolt,
// and `agora lambda down` leaves none of its processes. Without --master
// such a spec is refused, saying why.
func TestLambdaUpStormSpeedAsTask(t *testing.T) {
	stormSpeedTask(t, nil, func() { killLayer(t, "storm-bolt") }, "the bolt's kill -9")
}

// The same with --storm_framework: the speed task submits the topology to
// agora's Storm framework, whose worker task (`agora storm worker`, the
// native runtime with the spout and the bolt) is killed -9 and launched
// again by that framework; the answers stay exact.
func TestLambdaUpStormSpeedOnStormFramework(t *testing.T) {
	stormSpeedTask(t, []string{"--storm_framework"}, func() { killStormWorker(t) }, "the Storm worker task's kill -9")
}

// killStormWorker sends SIGKILL to the running `agora storm worker`
// process of this test's binary, waiting up to a minute for it.
func killStormWorker(t *testing.T) {
	t.Helper()
	prefix := agoraBin + "\x00storm\x00worker"
	var pid int
	waitShowing(t, time.Minute, func() string { return "no running agora storm worker" }, func() bool {
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			b, err := os.ReadFile(filepath.Join(d, "cmdline"))
			if err == nil && strings.HasPrefix(string(b), prefix) {
				pid, _ = strconv.Atoi(filepath.Base(d))
				return true
			}
		}
		return false
	})
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 of agora storm worker (pid %d): %v", pid, err)
	}
	t.Logf("killed agora storm worker, pid %d", pid)
}

func stormSpeedTask(t *testing.T, upArgs []string, kill func(), killed string) {
	stormSpeedTaskOn(t, func() (string, string, []string) {
		c := clustertest.Start(t, clustertest.Options{})
		return c.MasterAddr, c.Agents[0].Config.WorkDir, upArgs
	}, kill, killed)
}

// The same with --storm_framework on a master that asks every caller for
// credentials (frameworks and HTTP) and speaks TLS: `up` given
// --principal, --secret_file and --ca_file subscribes its framework with
// them, and the speed task's topology, a framework of its own, gets them
// through the work directory (readable by this user only) and answers
// exact before and after a batch run.
func TestLambdaUpStormSpeedOnASecureMaster(t *testing.T) {
	stormSpeedTaskOn(t, func() (string, string, []string) {
		c := startSecureNativeCluster(t)
		return c.master, filepath.Join(c.dir, "agent"), []string{"--storm_framework", "--principal", "ops", "--secret_file", c.secret, "--ca_file", c.masterCA.CA}
	}, nil, "")
}

// stormSpeedTaskOn is stormSpeedTask on the cluster that cluster starts:
// its master, its agent's work directory and the flags `up` takes for it.
// Without kill nothing is killed between the batch run and `down`.
func stormSpeedTaskOn(t *testing.T, cluster func() (master, agentDir string, upArgs []string), kill func(), killed string) {
	dir := t.TempDir()
	specPath := filepath.Join(dir, "pipeline.yaml")
	stormSpec := strings.Replace(string(pageviews.Spec), "speed: native", "speed: storm", 1)
	if err := os.WriteFile(specPath, []byte(stormSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := plan.Parse([]byte(stormSpec))
	if err != nil || spec.Layers.Speed != "storm" {
		t.Fatalf("the storm spec: %v, %+v", err, spec)
	}
	if code, _, stderr := runLambdaCmd(t, "up", specPath, "--work_dir", t.TempDir(), "--broker_addr", "127.0.0.1:0", "--api", "127.0.0.1:0"); code != 2 || !strings.Contains(stderr, "layers.speed is storm: the topology runs as the speed task of --master") {
		t.Fatalf("up of a storm spec without --master: exit %d, %q", code, stderr)
	}

	master, agentDir, upArgs := cluster()
	up := start(t, append([]string{"lambda", "up", specPath, "--master", master, "--work_dir", filepath.Join(dir, "work"),
		"--broker_addr", "127.0.0.1:0", "--api", "127.0.0.1:0", "--batch_period", "1h"}, upArgs...)...)
	brokers, api := upAddrs(t, up)
	var st framework.Status
	status := func() framework.Status {
		st = framework.Status{}
		lambdaCall(http.MethodGet, api, "/v1/status", &st)
		return st
	}
	feed := newLambdaFeed(t, spec, brokers, 13)
	send := feed.send
	caughtUp := func(what string) {
		t.Helper()
		waitShowing(t, 2*time.Minute, func() string {
			return fmt.Sprintf("%s: not caught up with %d events: %+v\nup: %s\nsandboxes:\n%s", what, feed.sent, st, lastBytes(up.out.String(), 3000), sandboxStderrs(agentDir, 3000))
		}, func() bool { return feed.caughtUp(status().Status) })
	}
	check := func(stage string) { t.Helper(); feed.check(api, stage) }

	send(2500)
	caughtUp("speed topology only")
	check("storm task: speed layer only")
	if code, out, stderr := runLambdaCmd(t, "batch", "--api", api); code != 0 || !strings.Contains(out, "batch view recomputed") {
		t.Fatalf("lambda batch: exit %d, %s %s", code, out, stderr)
	}
	check("storm task: batch and speed")
	if kill != nil {
		kill()
		send(600)
		caughtUp("after " + killed)
		check("storm task: after " + killed)
	}

	if fi, err := os.Stat(filepath.Join(dir, "work", lambdaSecureDir, lambdaSecretFile)); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("the speed task's secret file has mode %v, want 0600", fi.Mode().Perm())
	}
	if code, out, stderr := runLambdaCmd(t, "down", "--api", api); code != 0 || !strings.Contains(out, "pipeline pageviews is down") {
		t.Fatalf("lambda down: exit %d, %s %s", code, out, stderr)
	}
	waitShowing(t, time.Minute, func() string { return "lambda processes still running after lambda down: " + layerProcs() }, func() bool { return layerProcs() == "" })
	waitShowing(t, time.Minute, func() string { return "a Storm worker still runs after lambda down" }, func() bool {
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			if b, err := os.ReadFile(filepath.Join(d, "cmdline")); err == nil && strings.HasPrefix(string(b), agoraBin+"\x00storm\x00worker") {
				return false
			}
		}
		return true
	})
}
