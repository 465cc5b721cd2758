package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	pageviews "github.com/agora-cluster/agora/examples/lambda-pageviews"
	"github.com/agora-cluster/agora/lambda/ingest"
	"github.com/agora-cluster/agora/lambda/plan"
)

// syncLog is a log the test reads while the ingester writes it.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within a minute", what)
		}
	}
}

// An ingester waits while another holds the dataset's lock (a task
// reported lost that still runs) and appends nothing until it is freed.
func TestIngestWaitsForTheDatasetLock(t *testing.T) {
	spec, err := plan.Parse(pageviews.Spec)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fake, err := StartBroker(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	brokers := fake.ListenAddrs()
	if err := ingest.EnsureTopics(ctx, brokers, spec); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(spec.Input.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := 0; i < 10; i++ {
		recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf(`{"ts":1796450400000,"url":"/p%d","user":"u1","bytes":1}`, i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// The other ingester's lock.
	lock, err := os.OpenFile(filepath.Join(dir, "ingest.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	var log syncLog
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- RunIngest(runCtx, spec, brokers, dir, slog.New(slog.NewTextHandler(&log, nil))) }()
	defer func() { stop(); <-done }()
	waitFor(t, "waiting for the lock in the log", func() bool { return strings.Contains(log.String(), "another ingester holds the dataset's lock") })
	if st, err := ingest.DatasetStats(DatasetDir(dir)); err != nil || st.Appended != 0 {
		t.Fatalf("appended while another ingester holds the lock: %+v, %v", st, err)
	}
	syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	waitFor(t, "10 events appended once the lock is free", func() bool {
		st, err := ingest.DatasetStats(DatasetDir(dir))
		return err == nil && st.Appended == 10
	})
}
