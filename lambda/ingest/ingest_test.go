package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/agora-cluster/agora/kafka/kafkatest"
	"github.com/agora-cluster/agora/lambda/plan"
)

const specYAML = `
name: pv
input:
  topic: pv
  partitions: 2
  schema:
    time: {field: ts}
    fields: {url: string, n: int}
views: [{name: c, type: count, key: [url], bucket: 1h}]
`

func testSpec(t testing.TB) *plan.Spec {
	s, err := plan.Parse([]byte(specYAML))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The ingester as a child process, so that the test can kill -9 it.
func TestMain(m *testing.M) {
	if brokers := os.Getenv("INGEST_CHILD_BROKERS"); brokers != "" {
		spec, _ := plan.Parse([]byte(specYAML))
		in, err := New(Config{Spec: spec, Brokers: strings.Split(brokers, ","), Dir: os.Getenv("INGEST_CHILD_DIR"), MaxChunk: 37})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		err = in.Run(context.Background())
		fmt.Fprintln(os.Stderr, err)
		os.Exit(4)
	}
	os.Exit(m.Run())
}

// Events produced while the ingester is killed with SIGKILL at random
// moments and restarted: once it has caught up, the dataset holds every
// good event exactly once, at its offset, and every bad one reached the
// dead-letter topic.
func TestIngestExactlyOnceAcrossKills(t *testing.T) {
	c, err := kfake.NewCluster(kfake.SeedTopics(2, "pv"), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exactlyOnce(t, c.ListenAddrs(), 6)
}

// The same against a real Kafka broker.
func TestIngestExactlyOnceOnRealKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real Kafka broker; not in -short")
	}
	b := kafkatest.Start(t)
	exactlyOnce(t, []string{b.Bootstrap}, 3)
}

func exactlyOnce(t *testing.T, brokers []string, kills int) {
	spec := testSpec(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := EnsureTopics(ctx, brokers, spec); err != nil {
		t.Fatal(err)
	}
	if err := EnsureTopics(ctx, brokers, spec); err != nil {
		t.Fatalf("a second EnsureTopics: %v", err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.AllowAutoTopicCreation(),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	r := rand.New(rand.NewPCG(1, 2))
	type sent struct {
		value string
		bad   bool
	}
	want := map[string]sent{} // "p/offset" → event
	produce := func(n int) {
		var recs []*kgo.Record
		for i := 0; i < n; i++ {
			v := fmt.Sprintf(`{"ts":%d,"url":"/u%d","n":%d}`, time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC).UnixMilli()+r.Int64N(3*3600e3), r.IntN(9), i)
			if r.IntN(10) == 0 {
				v = fmt.Sprintf(`{"ts":%d,"url":%d}`, i, i) // url is not a string, n is missing
			}
			recs = append(recs, &kgo.Record{Topic: "pv", Partition: int32(r.IntN(2)), Value: []byte(v)})
		}
		res := prod.ProduceSync(ctx, recs...)
		if err := res.FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		for _, pr := range res {
			want[fmt.Sprintf("%d/%d", pr.Record.Partition, pr.Record.Offset)] = sent{string(pr.Record.Value), !strings.Contains(string(pr.Record.Value), `"n"`)}
		}
	}

	dir := t.TempDir()
	self, _ := os.Executable()
	start := func() *exec.Cmd {
		cmd := exec.Command(self, "-test.run=^$")
		cmd.Env = append(os.Environ(), "INGEST_CHILD_BROKERS="+strings.Join(brokers, ","), "INGEST_CHILD_DIR="+dir)
		cmd.Stderr = os.Stderr // only an error that stops it
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	commits := func() int {
		ents, _ := os.ReadDir(dir + "/_commits")
		return len(ents)
	}
	for k := 0; k < kills; k++ {
		produce(300)
		before := commits()
		cmd := start()
		// Kill it once it is appending: after its first commit, at a
		// random moment of the next ones.
		for deadline := time.Now().Add(time.Minute); commits() == before && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(r.IntN(20)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if commits() == before {
			t.Fatalf("run %d committed nothing in a minute", k)
		}
	}
	produce(300)

	// A last run catches up: poll until every good event is in.
	in, err := New(Config{Spec: spec, Brokers: brokers, Dir: dir, MaxChunk: 37})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	good := 0
	for _, s := range want {
		if !s.bad {
			good++
		}
	}
	got := map[string]string{}
	for ctx.Err() == nil {
		got = map[string]string{}
		dup := ""
		if err := Read(dir, nil, func(l Line) error {
			key := fmt.Sprintf("%d/%d", l.Partition, l.Offset)
			if _, ok := got[key]; ok {
				dup = key
			}
			got[key] = string(l.Event)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if dup != "" {
			t.Fatalf("offset %s appended twice", dup)
		}
		if len(got) >= good {
			break
		}
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		if err := in.Poll(pctx); err != nil && pctx.Err() == nil {
			t.Fatal(err)
		}
		pcancel()
	}
	for key, s := range want {
		if s.bad {
			if _, ok := got[key]; ok {
				t.Fatalf("the bad event at %s is in the dataset", key)
			}
			continue
		}
		if got[key] != s.value {
			t.Fatalf("offset %s: dataset has %q, want %q (%d of %d good events in)", key, got[key], s.value, len(got), good)
		}
	}
	if len(got) != good {
		t.Fatalf("the dataset has %d events, want %d", len(got), good)
	}

	// Every bad event reached the dead-letter topic (at least once: a kill
	// between sending it and committing its chunk sends it again), with
	// the reason and its origin.
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(spec.Input.DeadLetterTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	deadSeen := map[string]bool{}
	bad := len(want) - good
	for len(deadSeen) < bad && ctx.Err() == nil {
		fs := cons.PollFetches(ctx)
		fs.EachRecord(func(rec *kgo.Record) {
			var origin, reason string
			for _, h := range rec.Headers {
				switch h.Key {
				case "offset":
					origin = string(h.Value)
				case "error":
					reason = string(h.Value)
				}
			}
			if !strings.Contains(reason, `field "url": want a string`) && !strings.Contains(reason, `no field "n"`) {
				t.Errorf("dead letter %s: reason %q", origin, reason)
			}
			if s, ok := want[origin]; !ok || !s.bad || s.value != string(rec.Value) {
				t.Errorf("dead letter %s (%q) is not a bad event sent there", origin, rec.Value)
			}
			deadSeen[origin] = true
		})
	}
	if len(deadSeen) != bad {
		t.Fatalf("%d of %d bad events reached the dead-letter topic", len(deadSeen), bad)
	}
	var js json.RawMessage
	if json.Unmarshal([]byte(got[firstKey(got)]), &js) != nil {
		t.Fatal("the dataset's events are not the JSON that was sent")
	}
}

func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}

// Recover drops what a crash between a chunk's files and its commit
// record left, and temporary files, and keeps committed chunks.
func TestRecoverDropsUncommittedChunks(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []struct{ dir, name, data string }{
		{"hour=2026-12-05T08", "p0-0-3.jsonl", "0\t{}\n1\t{}\n2\t{}\n"},
		{"_commits", "p0-0-3", ""},
		{"hour=2026-12-05T09", "p0-3-5.jsonl", "3\t{}\n4\t{}\n"}, // no commit record
		{"hour=2026-12-05T09", ".tmp-p1-0-2.jsonl-123", "0\t{}"},
		{"hour=2026-12-05T09", "p1-0-2.jsonl", "0\t{}\n1\t{}\n"},
		{"_commits", "p1-0-2", ""},
	} {
		if err := os.MkdirAll(dir+"/"+f.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir+"/"+f.dir+"/"+f.name, []byte(f.data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	next, err := Recover(dir)
	if err != nil {
		t.Fatal(err)
	}
	if next[0] != 3 || next[1] != 2 {
		t.Fatalf("next offsets %v, want p0 at 3, p1 at 2", next)
	}
	for _, gone := range []string{"hour=2026-12-05T09/p0-3-5.jsonl", "hour=2026-12-05T09/.tmp-p1-0-2.jsonl-123"} {
		if _, err := os.Stat(dir + "/" + gone); !os.IsNotExist(err) {
			t.Errorf("%s survived recovery: %v", gone, err)
		}
	}
	n := 0
	if err := Read(dir, map[int32]int64{0: 2, 1: 5}, func(Line) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 4 { // p0 offsets 0 and 1 (below its watermark 2), p1 offsets 0 and 1
		t.Fatalf("read %d events below the watermarks, want 4", n)
	}
}
