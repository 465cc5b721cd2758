package dist_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/agora-cluster/agora/kafka/kafkatest"
)

// Kafka's home runs a KRaft broker on Java 17: records produced to a new
// topic (created on first use) come back from it in order, and bin/kafka
// says its version and refuses what it does not know.
func TestKafkaHome(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Maven and the JVM; not in -short")
	}
	b := kafkatest.Start(t)
	kafka := filepath.Join(b.Home, "bin", "kafka")
	if out, err := exec.Command(kafka, "version").Output(); err != nil || strings.TrimSpace(string(out)) != "4.4.0" {
		t.Errorf("kafka version: %q, %v; want 4.4.0", out, err)
	}
	if out, err := exec.Command(kafka, "nosuch").CombinedOutput(); err == nil || !strings.Contains(string(out), "unknown command nosuch") {
		t.Errorf("kafka nosuch: %q, %v; want an error naming the command", out, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const topic, n = "events", 200
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.Bootstrap), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i % 7)), Value: []byte(fmt.Sprintf("event-%03d", i))})
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v\n%s", err, b.Tail(3000))
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(b.Bootstrap), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []string
	for len(got) < n && ctx.Err() == nil {
		fs := cons.PollFetches(ctx)
		for _, e := range fs.Errors() {
			if ctx.Err() == nil {
				t.Fatalf("fetch: %v", e.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) != n {
		t.Fatalf("consumed %d of %d records", len(got), n)
	}
	for i, v := range got {
		if want := fmt.Sprintf("event-%03d", i); v != want {
			t.Fatalf("record %d is %q, want %q (one partition keeps the order)", i, v, want)
		}
	}
}
