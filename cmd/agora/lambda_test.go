package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cassandra/cassandratest"
	"github.com/agora-cluster/agora/cluster/clustertest"
	pageviews "github.com/agora-cluster/agora/examples/lambda-pageviews"
	"github.com/agora-cluster/agora/kafka/kafkatest"
	"github.com/agora-cluster/agora/lambda/bench"
	"github.com/agora-cluster/agora/lambda/framework"
	"github.com/agora-cluster/agora/lambda/ingest"
	"github.com/agora-cluster/agora/lambda/pipeline"
	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/serve"
	"github.com/agora-cluster/agora/lambda/view"
)

const pageviewsSpec = "../../examples/lambda-pageviews/pipeline.yaml"

// lambdaUpInBackground runs `agora lambda up` until the test ends and
// returns the brokers and query API it printed, a stop that interrupts it
// and returns its exit code, and its exit code when it ends by itself.
func lambdaUpInBackground(t *testing.T, dir string, extra ...string) (brokers, api string, stop func() int, exited <-chan int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var stderr strings.Builder
	go func() {
		args := append([]string{pageviewsSpec, "--work_dir", dir, "--broker_addr", "127.0.0.1:0", "--api", "127.0.0.1:0", "--batch_period", "1h"}, extra...)
		code := lambdaUp(ctx, args, pw, &stderr)
		pw.Close()
		done <- code
	}()
	sc := bufio.NewScanner(pr)
	topicRE := regexp.MustCompile(`topic pageviews on (\S+)`)
	queryRE := regexp.MustCompile(`query:\s+http://(\S+)/v1/query`)
	for sc.Scan() && (brokers == "" || api == "") {
		if m := topicRE.FindStringSubmatch(sc.Text()); m != nil {
			brokers = m[1]
		}
		if m := queryRE.FindStringSubmatch(sc.Text()); m != nil {
			api = m[1]
		}
	}
	go io.Copy(io.Discard, pr)
	if brokers == "" || api == "" {
		cancel()
		t.Fatalf("lambda up printed no addresses; exit %d: %s", <-done, stderr.String())
	}
	var stopped bool
	exitc := make(chan int, 1)
	go func() { code := <-done; exitc <- code; close(exitc) }()
	stop = func() int {
		if stopped {
			return 0
		}
		stopped = true
		cancel()
		select {
		case code := <-exitc:
			return code
		case <-time.After(time.Minute):
			t.Fatal("lambda up did not stop within a minute of its interrupt")
			return -1
		}
	}
	t.Cleanup(func() { stop() })
	return brokers, api, stop, exitc
}

// `agora lambda up` on the embedded broker: events sent with `agora
// lambda send` are answered exactly by `agora lambda query` before and
// after a batch run, bad events are counted as dead letters, and a
// restart on the same work_dir keeps every answer.
func TestLambdaUpSendQuery(t *testing.T) {
	if code, _, stderr := runLambdaCmd(t, "up", "../../examples/lambda-pageviews/nosuch.yaml"); code != 2 || !strings.Contains(stderr, "no such file") {
		t.Fatalf("up with a missing spec: exit %d, %q", code, stderr)
	}
	bad := t.TempDir() + "/bad.yaml"
	os.WriteFile(bad, []byte("name: p\ninput: {topic: t, schema: {time: {field: ts}}}\nviews: [{name: c, type: median, bucket: 1h}]\n"), 0o644)
	if code, _, stderr := runLambdaCmd(t, "up", bad); code != 2 || !strings.Contains(stderr, `unknown type "median"`) {
		t.Fatalf("up with a bad spec: exit %d, %q", code, stderr)
	}

	// A Cassandra that does not answer ends up with an error naming it.
	code, _, stderr := runLambdaCmd(t, "up", pageviewsSpec, "--work_dir", t.TempDir(), "--broker_addr", "127.0.0.1:0", "--api", "127.0.0.1:0", "--cassandra", "127.0.0.1:1")
	if code != 1 || !strings.Contains(stderr, "Cassandra at [127.0.0.1:1]") {
		t.Fatalf("up with an unreachable Cassandra: exit %d, %q", code, stderr)
	}

	data, _ := os.ReadFile(pageviewsSpec)
	spec, err := plan.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	brokers, api, stop, _ := lambdaUpInBackground(t, dir)

	// 2000 events and two that do not match the schema.
	feed := newLambdaFeed(t, spec, brokers, 5)
	feed.sendLines(append(feed.events(2000), `{"ts":"soon","url":"/p0"}`, `not json`))

	status := func() pipeline.Status {
		code, out, stderr := runLambdaCmd(t, "status", "--api", api, "--json")
		var st pipeline.Status
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
			t.Fatalf("lambda status: exit %d, %s %s", code, out, stderr)
		}
		return st
	}
	waitFor := func(what string, cond func(pipeline.Status) bool) {
		t.Helper()
		var st pipeline.Status
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if st = status(); cond(st) {
				return
			}
		}
		t.Fatalf("no %s within 2 minutes: %+v", what, st)
	}
	speedTotal := func(st pipeline.Status) int64 { return st.SpeedNext[0] + st.SpeedNext[1] }
	waitFor("ingest and speed layer caught up", func(st pipeline.Status) bool {
		return st.Ingest.Appended == 2000 && st.Ingest.DeadLetter == 2 && speedTotal(st) == 2002
	})

	check := func(stage string) { t.Helper(); feed.check(api, stage) }
	check("speed layer only")
	if code, out, stderr := runLambdaCmd(t, "batch", "--api", api); code != 0 || !strings.Contains(out, "batch view recomputed") {
		t.Fatalf("lambda batch: exit %d, %s %s", code, out, stderr)
	}
	if st := status(); st.BatchWatermark[0]+st.BatchWatermark[1] == 0 {
		t.Fatalf("the batch run covered nothing: %+v", st)
	}
	check("batch and speed")
	if code, _, stderr := runLambdaCmd(t, "query", "--api", api, "--view", "nosuch"); code != 1 || !strings.Contains(stderr, `unknown view "nosuch"`) {
		t.Fatalf("query of an unknown view: exit %d, %q", code, stderr)
	}
	if code := stop(); code != 0 {
		t.Fatalf("lambda up exited %d after its interrupt", code)
	}

	// Up again on the same work_dir: the dataset and the broker's log are
	// kept, the batch view is recomputed at start, and the speed layer
	// reads on from its watermark.
	_, api, _, exited := lambdaUpInBackground(t, dir)
	waitFor("the restarted speed layer caught up", func(st pipeline.Status) bool { return speedTotal(st) == 2002 })
	check("after a restart")

	// `agora lambda down` ends up (exit 0) and keeps the data; a second
	// down finds nothing to stop.
	code, out, stderr := runLambdaCmd(t, "down", "--api", api)
	if code != 0 || !strings.Contains(out, "pipeline pageviews is down; its data stays in "+dir) {
		t.Fatalf("lambda down: exit %d, %s %s", code, out, stderr)
	}
	select {
	case code := <-exited:
		if code != 0 {
			t.Fatalf("lambda up exited %d after lambda down", code)
		}
	case <-time.After(time.Minute):
		t.Fatal("lambda up still runs a minute after lambda down")
	}
	if ds, err := ingest.DatasetStats(filepath.Join(dir, "dataset")); err != nil || ds.Appended != 2000 {
		t.Errorf("after lambda down the dataset holds %+v (%v); want the 2000 events", ds, err)
	}
	if code, _, stderr := runLambdaCmd(t, "down", "--api", api); code != 1 || !strings.Contains(stderr, "no pipeline is running with its query API at "+api+": nothing to stop") {
		t.Errorf("lambda down with nothing running: exit %d, %q", code, stderr)
	}
}

// The embedded default in one process (`agora lambda up` without
// --master: the broker, the ingester, the speed and the batch layers all
// in it) killed -9 right after a burst of events was acknowledged, so the
// ingester and the speed layer are mid-way: up again on the same
// work_dir reads back the broker's log, the dataset and its watermark,
// and once it has caught up every answer is exact — nothing lost,
// nothing counted twice — and stays so for events sent after.
func TestLambdaUpSurvivesKill9(t *testing.T) {
	spec, err := plan.Parse(pageviews.Spec)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	args := []string{"lambda", "up", pageviewsSpec, "--work_dir", dir, "--broker_addr", "127.0.0.1:0", "--api", "127.0.0.1:0", "--batch_period", "1h"}
	up := start(t, args...)
	brokers, api := upAddrs(t, up)
	var st pipeline.Status
	caughtUp := func(feed *lambdaFeed, what string) {
		t.Helper()
		waitShowing(t, 2*time.Minute, func() string { return fmt.Sprintf("%s: %d sent: %+v", what, feed.sent, st) }, func() bool {
			st = pipeline.Status{}
			lambdaCall(http.MethodGet, api, "/v1/status", &st)
			return feed.caughtUp(st)
		})
	}
	feed := newLambdaFeed(t, spec, brokers, 19)
	feed.send(3000)
	caughtUp(feed, "before the kill")
	if code, out, stderr := runLambdaCmd(t, "batch", "--api", api); code != 0 || !strings.Contains(out, "batch view recomputed") {
		t.Fatalf("lambda batch: exit %d, %s %s", code, out, stderr)
	}
	feed.check(api, "before the kill")
	feed.send(4000)
	up.kill9(t)

	up = start(t, args...)
	brokers, api = upAddrs(t, up)
	feed.brokers = brokers
	caughtUp(feed, "after up's kill -9")
	feed.check(api, "after up's kill -9")
	feed.send(500)
	caughtUp(feed, "events after the restart")
	feed.check(api, "events after the restart")
}

// The same page-view file on the real engines: `agora lambda up --kafka
// --cassandra` against a real Kafka broker and a real Cassandra node
// answers every query exactly before the first batch run, after it (the
// batch view read from Cassandra), and across the boundary; `down` ends
// it. A spec whose serving layer is cassandra needs --cassandra. Then
// `agora bench lambda` measures the same engines, and `up --master` runs
// the layers as tasks of an agora cluster on them, exact as well.
func TestLambdaUpOnKafkaAndCassandra(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Kafka's and Cassandra's JVMs; not in -short")
	}
	cspec := filepath.Join(t.TempDir(), "pipeline.yaml")
	data, _ := os.ReadFile(pageviewsSpec)
	os.WriteFile(cspec, []byte(strings.Replace(string(data), "serving: embedded", "serving: cassandra", 1)), 0o644)
	if code, _, stderr := runLambdaCmd(t, "up", cspec); code != 2 || !strings.Contains(stderr, "layers.serving is cassandra: give the ring's addresses with --cassandra") {
		t.Fatalf("up of a cassandra-served spec without --cassandra: exit %d, %q", code, stderr)
	}

	kb := kafkatest.Start(t)
	cn := cassandratest.StartNode(t, cassandratest.Home(t), "127.0.0.18", 512)
	spec, err := plan.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	brokers, api, _, exited := lambdaUpInBackground(t, dir, "--kafka", kb.Bootstrap, "--cassandra", cn.Addr)
	if brokers != kb.Bootstrap {
		t.Fatalf("up sends events to %s, not to the Kafka broker %s", brokers, kb.Bootstrap)
	}
	feed := newLambdaFeed(t, spec, brokers, 9)
	send := feed.send
	caughtUp := func(n int64) {
		t.Helper()
		var st pipeline.Status
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			code, out, _ := runLambdaCmd(t, "status", "--api", api, "--json")
			st = pipeline.Status{}
			if code == 0 && json.Unmarshal([]byte(out), &st) == nil && st.Ingest.Appended == n && st.SpeedNext[0]+st.SpeedNext[1] == n {
				return
			}
		}
		t.Fatalf("the pipeline did not catch up with %d events in 2 minutes: %+v", n, st)
	}
	check := func(stage string) { t.Helper(); feed.check(api, stage) }

	send(2500)
	caughtUp(2500)
	check("speed layer only")
	if code, out, stderr := runLambdaCmd(t, "batch", "--api", api); code != 0 || !strings.Contains(out, "batch view recomputed") {
		t.Fatalf("lambda batch: exit %d, %s %s", code, out, stderr)
	}
	var st pipeline.Status
	if code, out, _ := runLambdaCmd(t, "status", "--api", api, "--json"); code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.BatchWatermark[0]+st.BatchWatermark[1] < 1024 {
		t.Fatalf("the batch run covered too little: %s", out)
	}
	check("batch view from Cassandra and speed")
	send(1200)
	caughtUp(3700)
	check("across the boundary")
	if code, out, stderr := runLambdaCmd(t, "batch", "--api", api); code != 0 || !strings.Contains(out, "batch view recomputed") {
		t.Fatalf("second lambda batch: exit %d, %s %s", code, out, stderr)
	}
	check("a second batch view from Cassandra")
	if code, out, stderr := runLambdaCmd(t, "down", "--api", api); code != 0 || !strings.Contains(out, "pipeline pageviews is down") {
		t.Fatalf("lambda down: exit %d, %s %s", code, out, stderr)
	}
	select {
	case code := <-exited:
		if code != 0 {
			t.Fatalf("lambda up exited %d after lambda down", code)
		}
	case <-time.After(time.Minute):
		t.Fatal("lambda up still runs a minute after lambda down")
	}

	// `agora bench lambda` on the same Kafka broker and Cassandra node
	// (one ring for the test binary): exact, its numbers logged for
	// benchmarks/RESULTS.md.
	var out, berr strings.Builder
	code := benchLambda(context.Background(), []string{"--kafka", kb.Bootstrap, "--cassandra", cn.Addr, "--events", "20000", "--probes", "50", "--queries", "200",
		"--json", "--work_dir", t.TempDir(), "--timeout", "5m"}, &out, &berr)
	var res bench.Result
	if code != 0 || json.Unmarshal([]byte(out.String()), &res) != nil {
		t.Fatalf("bench lambda --kafka --cassandra: exit %d\n%s\n%s", code, out.String(), berr.String())
	}
	if res.Broker != kb.Bootstrap || res.Serving != cn.Addr || res.Ingested != 20000 || !res.Exact || res.BatchRows == 0 {
		t.Errorf("bench result: %+v", res)
	}
	t.Logf("real Kafka and Cassandra: %s", out.String())

	// The layers as tasks of an agora cluster on the same engines: the
	// speed task keeps the batch views in Cassandra and answers from it.
	c := clustertest.Start(t, clustertest.Options{})
	work := filepath.Join(t.TempDir(), "work")
	up := start(t, "lambda", "up", pageviewsSpec, "--master", c.MasterAddr, "--work_dir", work, "--kafka", kb.Bootstrap,
		"--cassandra", cn.Addr, "--api", "127.0.0.1:0", "--batch_period", "1h")
	queryRE := regexp.MustCompile(`query:\s+http://(\S+)/v1/query`)
	waitShowing(t, time.Minute, func() string { return "no query address printed by lambda up --master: " + up.out.String() }, func() bool {
		m := queryRE.FindStringSubmatch(up.out.String())
		if m != nil {
			api = m[1]
		}
		return m != nil
	})
	// The topic holds the 3,700 events sent above: the tasks start from
	// an empty dataset and catch up with all of them.
	var fst framework.Status
	waitShowing(t, 2*time.Minute, func() string {
		return fmt.Sprintf("tasks not caught up with 3700 events: %+v\n%s", fst, up.out.String())
	}, func() bool {
		fst = framework.Status{}
		lambdaCall(http.MethodGet, api, "/v1/status", &fst)
		return fst.Ingest.Appended == 3700 && fst.SpeedNext[0]+fst.SpeedNext[1] == 3700
	})
	check("tasks, speed layer only")
	if code, out, stderr := runLambdaCmd(t, "batch", "--api", api); code != 0 || !strings.Contains(out, "batch view recomputed") {
		t.Fatalf("lambda batch on tasks: exit %d, %s %s", code, out, stderr)
	}
	check("tasks, batch view from Cassandra and speed")
	if code, out, stderr := runLambdaCmd(t, "down", "--api", api); code != 0 || !strings.Contains(out, "pipeline pageviews is down") {
		t.Fatalf("lambda down of the tasks: exit %d, %s %s", code, out, stderr)
	}
}

// checkLambdaAnswers asks every view of spec for two pages (the keyless
// views for all) through `agora lambda query` and compares each bucket
// with truth, the views computed offline from the events sent.
func checkLambdaAnswers(t *testing.T, api string, spec *plan.Spec, truth view.Table, stage string) {
	t.Helper()
	for _, v := range spec.Views {
		keys := [][]string{{"/p0"}, {"/p2"}}
		if len(v.Key) == 0 {
			keys = [][]string{nil}
		}
		for _, k := range keys {
			args := []string{"query", "--api", api, "--view", v.Name, "--json"}
			for _, kv := range k {
				args = append(args, "--key", kv)
			}
			code, out, stderr := runLambdaCmd(t, args...)
			var a serve.Answer
			if code != 0 || json.Unmarshal([]byte(out), &a) != nil {
				t.Fatalf("%s: lambda %v: exit %d, %s %s", stage, args, code, out, stderr)
			}
			got := map[int64]float64{}
			for _, p := range a.Points {
				got[p.Bucket.Unix()] = p.Value
			}
			want := map[int64]float64{}
			for row, agg := range truth {
				if row.View == v.Name && row.Key == view.KeyOf(k...) {
					want[row.Bucket] = agg.Value(v.Type)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: view %s key %v: got %v, want %v", stage, v.Name, k, got, want)
			}
		}
	}
}

func runLambdaCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb strings.Builder
	var code int
	switch args[0] {
	case "up":
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		code = lambdaUp(ctx, args[1:], &out, &errb)
	case "status":
		code = lambdaStatus(args[1:], &out, &errb)
	case "query":
		code = lambdaQuery(args[1:], &out, &errb)
	case "batch":
		code = lambdaBatch(args[1:], &out, &errb)
	case "down":
		code = lambdaDown(args[1:], &out, &errb)
	default:
		t.Fatalf("no lambda command %s", args[0])
	}
	return code, out.String(), errb.String()
}
