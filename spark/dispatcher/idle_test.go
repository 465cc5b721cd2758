package dispatcher

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest"
)

// A driver submitted while a round of offers that found nothing to run is
// being declined (for an hour, and offers suppressed) is launched all the
// same: its revive reaches the master after that decline and suppress, or
// the round declines briefly and does not suppress. The Spark home is a
// stand-in whose spark-submit prints its arguments.
func TestSubmitDuringIdleRound(t *testing.T) {
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "bin", "spark-submit"), []byte("#!/bin/sh\necho \"spark-submit $*\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := clustertest.Start(t, clustertest.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Masters: []string{c.MasterAddr}, Listener: ln, WorkDir: t.TempDir(), SparkHome: home})
	if err != nil {
		t.Fatal(err)
	}
	req, _, err := ParseCreate([]byte(createJSON))
	if err != nil {
		t.Fatal(err)
	}
	req.AppResource = "local:/opt/app.jar"
	req.SparkProperties["spark.driver.memory"] = "64m"
	ids := clustertest.NewQueue[string](t)
	var once sync.Once
	d.idleHook = func() {
		once.Do(func() {
			_, r := d.submit(req)
			ids.Put(r.SubmissionID)
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the dispatcher did not stop within 30s")
		}
	})
	var id string
	select {
	case id = <-ids.C():
	case <-time.After(60 * time.Second):
		t.Fatal("no idle round of offers within 60s")
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if dr, _ := d.Get(id); dr.State == StateFinished {
			break
		}
		if time.Now().After(deadline) {
			dr, _ := d.Get(id)
			t.Fatalf("the driver submitted during an idle round is %s after 60s; want FINISHED", dr.State)
		}
	}
}
