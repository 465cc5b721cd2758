package agent

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A call that panics is answered 500 and stops the agent: Run returns the
// panic as its error (so `agora agent` exits for its supervisor to
// restart it from its checkpoint), and the panic is counted.
func TestPanickingCallStopsTheAgent(t *testing.T) {
	fm := newFakeMaster(t)
	a, err := New(testConfig(t, fm, ""))
	if err != nil {
		t.Fatal(err)
	}
	routes := a.handler
	a.handler = a.guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/test/panic" {
			panic("a bug")
		}
		routes.ServeHTTP(w, r)
	}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	fm.nextRegister(t)

	resp, err := http.Get("http://" + a.Addr() + "/test/panic")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("a panicking call answered %d, want 500", resp.StatusCode)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "panicked") {
			t.Fatalf("Run returned %v; want the panic", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the agent kept running after a call panicked")
	}
	if n := a.metricsSnapshot()["slave/handler_panics"]; n != 1 {
		t.Fatalf("slave/handler_panics = %v, want 1", n)
	}
}

// A checkpoint journal that can no longer be written (its fdatasync
// failed, so the kernel may have dropped pages it had not flushed) stops
// the agent: it could acknowledge nothing more, and a restart replays what
// is on disk.
func TestBrokenJournalStopsTheAgent(t *testing.T) {
	fm := newFakeMaster(t)
	a, err := New(testConfig(t, fm, ""))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	fm.nextRegister(t)

	old := journalSync
	journalSync = func(f *os.File) error { return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: syscall.EIO} }
	werr := a.journal.put(filepath.Join(journalRoot(a.workDir), "probe", "task.json"), []byte("x"), true)
	journalSync = old
	if werr == nil {
		t.Fatal("a record whose fdatasync failed was acknowledged")
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "fdatasync failed") {
			t.Fatalf("Run returned %v; want the journal's failure", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the agent kept running with a checkpoint journal it cannot write")
	}
}
