package main

import (
	"context"
	"fmt"
	"io"
	"net"
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
	hconf "github.com/agora-cluster/agora/hadoop/conf"
	hframework "github.com/agora-cluster/agora/hadoop/framework"
	"github.com/agora-cluster/agora/lambda"
	"github.com/agora-cluster/agora/lambda/framework"
	"github.com/agora-cluster/agora/lambda/ingest"
	"github.com/agora-cluster/agora/lambda/pipeline"
	"github.com/agora-cluster/agora/lambda/plan"
)

// `agora lambda up --master` runs the ingester, the speed layer and the
// batch jobs as tasks on an agora cluster (real processes of the agora
// binary). kill -9 of the speed-layer task, of the ingest task while
// events stream in, and of a batch job's attempt: each is relaunched, and
// once the pipeline has caught up every query answers exactly the counts
// computed offline — before the first batch run, after it, and after a
// batch run whose first attempt was killed.
func TestLambdaLayersAsTasksSurviveKill9(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	spec, err := plan.Parse(pageviews.Spec)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	specPath := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(specPath, pageviews.Spec, 0o644); err != nil {
		t.Fatal(err)
	}
	up := start(t, "lambda", "up", specPath, "--master", c.MasterAddr, "--work_dir", filepath.Join(dir, "work"),
		"--broker_addr", "127.0.0.1:0", "--api", "127.0.0.1:0", "--batch_period", "1h", "--batch_pause", "5s")
	sandboxes := func() string { return sandboxStderrs(c.Agents[0].Config.WorkDir, 3000) }
	brokers, api := upAddrs(t, up)

	var st framework.Status
	status := func() framework.Status {
		st = framework.Status{}
		lambdaCall(http.MethodGet, api, "/v1/status", &st)
		return st
	}
	task := func(st framework.Status, layer string) framework.TaskStatus {
		for _, ts := range st.Tasks {
			if ts.Layer == layer {
				return ts
			}
		}
		return framework.TaskStatus{}
	}
	wait := func(what string, cond func(framework.Status) bool) {
		t.Helper()
		waitShowing(t, 2*time.Minute, func() string {
			return fmt.Sprintf("%s: %+v\nup: %s\nsandboxes:\n%s", what, st, up.out.String(), sandboxes())
		},
			func() bool { return cond(status()) })
	}
	wait("ingest and speed tasks running", func(st framework.Status) bool {
		return task(st, framework.Ingest).State == "TASK_RUNNING" && task(st, framework.Speed).State == "TASK_RUNNING" && st.Topic == "pageviews"
	})

	feed := newLambdaFeed(t, spec, brokers, 7)
	send := feed.send
	check := func(stage string) { t.Helper(); feed.check(api, stage) }

	send(3000)
	wait("3000 events ingested and applied", func(st framework.Status) bool { return feed.caughtUp(st.Status) })
	check("speed layer only")
	// The pipeline's page follows the tasks too (from samples at most a
	// second old: poll until one is taken after the catch-up).
	var o lambda.Overview
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		o = lambda.Overview{}
		lambdaCall(http.MethodGet, api, "/v1/pipeline", &o)
		if len(o.Views) == len(spec.Views) && o.Speed.SinceBatch == 3000 && o.Ingest.Appended == 3000 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("/v1/pipeline with the layers as tasks: %+v; want the spec's %d views and 3000 events in the speed layer and the dataset", o, len(spec.Views))
			break
		}
	}
	if resp, err := http.Get("http://" + api + "/ui/"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /ui/: %v %v, want the page", resp, err)
	} else {
		resp.Body.Close()
	}

	// The speed-layer task killed: its successor rebuilds the realtime
	// view from the topic. (Counted from the kill: an attempt that could
	// not bind its offered port on a shared machine is relaunched too.)
	speedLaunches := func() int {
		t.Helper()
		n := task(status(), framework.Speed).Launches
		if n == 0 {
			t.Fatalf("no speed task launched before its kill: %+v", st)
		}
		return n
	}
	launches := speedLaunches()
	killLayer(t, "speed")
	wait("a new speed task", func(st framework.Status) bool {
		return task(st, framework.Speed).Launches > launches && task(st, framework.Speed).State == "TASK_RUNNING"
	})
	wait("the new speed task caught up", func(st framework.Status) bool { return feed.caughtUp(st.Status) })
	check("after the speed task's kill -9")

	// The ingest task killed while events stream in: its successor resumes
	// after the last committed chunk.
	streamed := make(chan struct{})
	go func() {
		defer close(streamed)
		for i := 0; i < 20; i++ {
			send(250)
		}
	}()
	waitShowing(t, time.Minute, func() string { return "no chunk committed mid-stream" }, func() bool { return status().Ingest.Appended > 3000 })
	killLayer(t, "ingest")
	<-streamed
	wait("a new ingest task caught up", func(st framework.Status) bool {
		return task(st, framework.Ingest).Launches == 2 && feed.caughtUp(st.Status)
	})
	check("after the ingest task's kill -9")

	// A batch job's attempt killed: the next attempt's view is swapped in.
	// Each attempt holds its finished view until the release file exists
	// (the agent in this process hands its environment to the task), so
	// the kill lands on a running attempt however quick it is; the file
	// is created once that attempt is dead, for its successor to finish.
	release := filepath.Join(dir, "release-batch")
	t.Setenv(pipeline.HoldBatchEnv, release)
	batched := make(chan int, 1)
	var batchOut, batchErr strings.Builder
	go func() { batched <- lambdaBatch([]string{"--api", api}, &batchOut, &batchErr) }()
	killLayer(t, "recompute")
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-batched:
		if code != 0 {
			t.Fatalf("lambda batch: exit %d: %s %s", code, batchOut.String(), batchErr.String())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("lambda batch did not return within 3 minutes: %+v", status())
	}
	st = status()
	if n := task(st, framework.Batch).Launches; n != 2 {
		t.Errorf("the batch run took %d attempts, want 2 (the first killed)", n)
	}
	if st.BatchWatermark[0]+st.BatchWatermark[1] < 4096 {
		t.Errorf("the batch view covers %v of %d events", st.BatchWatermark, feed.sent)
	}
	check("batch and speed, after a batch attempt's kill -9")

	// More events across the boundary, and the speed task killed once
	// more: it starts again from the batch watermark.
	send(777)
	launches = speedLaunches()
	killLayer(t, "speed")
	wait("a third speed task caught up", func(st framework.Status) bool {
		return task(st, framework.Speed).Launches > launches && feed.caughtUp(st.Status)
	})
	check("batch and speed, after the second kill of the speed task")

	// `agora lambda down`: up ends, the framework is torn down and its
	// tasks are killed; the dataset stays, and a second down finds nothing.
	var downOut, downErr strings.Builder
	if code := lambdaDown([]string{"--api", api}, &downOut, &downErr); code != 0 || !strings.Contains(downOut.String(), "pipeline pageviews is down") {
		t.Fatalf("lambda down: exit %d, %s %s", code, downOut.String(), downErr.String())
	}
	select {
	case <-up.done:
		if code := up.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("lambda up exited %d after lambda down: %s", code, up.out.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("lambda up still runs a minute after lambda down: %s", up.out.String())
	}
	waitShowing(t, time.Minute, func() string { return "layer tasks still running after lambda down: " + layerProcs() }, func() bool { return layerProcs() == "" })
	if ds, err := ingest.DatasetStats(pipeline.DatasetDir(filepath.Join(dir, "work"))); err != nil || ds.Appended != feed.sent {
		t.Errorf("after lambda down the dataset holds %+v (%v); want the %d events sent", ds, err, feed.sent)
	}
	downOut.Reset()
	downErr.Reset()
	if code := lambdaDown([]string{"--api", api}, &downOut, &downErr); code != 1 || !strings.Contains(downErr.String(), "nothing to stop") {
		t.Errorf("lambda down with nothing running: exit %d, %q; want 1 and nothing to stop", code, downErr.String())
	}
}

// layerProcs lists the running `agora lambda` task processes of this
// test's binary ("" when none).
func layerProcs() string {
	var found []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !strings.HasPrefix(string(b), agoraBin+"\x00lambda\x00") {
			continue
		}
		if args := strings.Split(string(b), "\x00"); len(args) > 2 && args[2] != "up" {
			found = append(found, filepath.Base(d)+" "+args[2])
		}
	}
	return strings.Join(found, ", ")
}

// killLayer sends SIGKILL to the running `agora lambda LAYER` task process
// of this test's binary, waiting up to a minute for it to appear.
func killLayer(t *testing.T, layer string) {
	t.Helper()
	prefix := agoraBin + "\x00lambda\x00" + layer + "\x00"
	var pid int
	waitShowing(t, time.Minute, func() string { return "no running agora lambda " + layer + " task" }, func() bool {
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
		t.Fatalf("kill -9 of agora lambda %s (pid %d): %v", layer, pid, err)
	}
	t.Logf("killed agora lambda %s, pid %d", layer, pid)
}

// A master that cannot be reached ends `up --master` with an error naming
// it, and a layer task started without its flags says what it needs.
func TestLambdaUpTasksBadInput(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	dir := t.TempDir()
	up := start(t, "lambda", "up", pageviewsSpec, "--master", dead, "--work_dir", dir, "--broker_addr", "127.0.0.1:0", "--api", "127.0.0.1:0")
	select {
	case <-up.done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("lambda up with an unreachable master still runs after 3 minutes: %s", up.out.String())
	}
	if code := up.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(up.out.String(), "cannot subscribe with master "+dead) {
		t.Errorf("lambda up with an unreachable master: exit %d, %s", code, up.out.String())
	}
	for _, layer := range []string{"ingest", "speed", "recompute"} {
		var stderr strings.Builder
		run := map[string]func(context.Context, []string, io.Writer) int{"ingest": lambdaIngestTask, "speed": lambdaSpeedTask, "recompute": lambdaRecomputeTask}[layer]
		if code := run(context.Background(), []string{pageviewsSpec}, &stderr); code != 2 || !strings.Contains(stderr.String(), "--work_dir") {
			t.Errorf("lambda %s without --work_dir: exit %d, %q", layer, code, stderr.String())
		}
	}
}

// `agora lambda up --master --hadoop`: the batch job is a Streaming job
// (`agora lambda map` and `reduce`) on agora's Hadoop framework, and the
// merged answers are exact before and after it.
func TestLambdaBatchOnHadoopFramework(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	props := hconf.New()
	props.Set(hframework.KeyIdleInterval, "1")
	fw, err := hframework.New(hframework.Config{Masters: []string{c.MasterAddr}, Listener: ln, StateDir: t.TempDir(), Conf: props,
		ExecutorBinary: agoraBin, ExecutorEnv: map[string]string{"AGORA_HADOOP_REPORT_INTERVAL": "200ms"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fwDone := make(chan error, 1)
	go func() { fwDone <- fw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-fwDone:
		case <-time.After(time.Minute):
			t.Error("the Hadoop framework did not stop within a minute")
		}
	})

	spec, _ := plan.Parse(pageviews.Spec)
	dir := t.TempDir()
	specPath := filepath.Join(dir, "pipeline.yaml")
	os.WriteFile(specPath, pageviews.Spec, 0o644)
	up := start(t, "lambda", "up", specPath, "--master", c.MasterAddr, "--hadoop", fw.URL(), "--work_dir", filepath.Join(dir, "work"),
		"--broker_addr", "127.0.0.1:0", "--api", "127.0.0.1:0", "--batch_period", "1h")
	brokers, api := upAddrs(t, up)
	var st framework.Status
	waitShowing(t, 2*time.Minute, func() string { return fmt.Sprintf("not caught up: %+v\n%s", st, up.out.String()) }, func() bool {
		st = framework.Status{}
		lambdaCall(http.MethodGet, api, "/v1/status", &st)
		return st.Topic == "pageviews"
	})

	feed := newLambdaFeed(t, spec, brokers, 9)
	feed.send(5000)
	waitShowing(t, 2*time.Minute, func() string { return fmt.Sprintf("not caught up: %+v\n%s", st, up.out.String()) }, func() bool {
		st = framework.Status{}
		lambdaCall(http.MethodGet, api, "/v1/status", &st)
		return st.Ingest.Appended == 5000 && st.SpeedNext[0]+st.SpeedNext[1] == 5000
	})
	feed.check(api, "speed layer only")
	var out, errb strings.Builder
	if code := lambdaBatch([]string{"--api", api}, &out, &errb); code != 0 {
		t.Fatalf("lambda batch: exit %d: %s %s\nup: %s\nsandboxes:\n%s", code, out.String(), errb.String(), up.out.String(), sandboxStderrs(c.Agents[0].Config.WorkDir, 3000))
	}
	if !strings.Contains(sandboxStderrs(c.Agents[0].Config.WorkDir, 100000), "Hadoop job") {
		t.Errorf("the batch task did not run a Hadoop job:\n%s", sandboxStderrs(c.Agents[0].Config.WorkDir, 3000))
	}
	st = framework.Status{}
	lambdaCall(http.MethodGet, api, "/v1/status", &st)
	if st.BatchWatermark[0]+st.BatchWatermark[1] < 2048 {
		t.Errorf("the batch view covers %v of 5000 events", st.BatchWatermark)
	}
	feed.check(api, "batch on Hadoop and speed")
}
