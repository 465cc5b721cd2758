package registry

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *Registrar) queued() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue)
}

// Changes submitted while a commit is in flight go into the next commit
// together, and every submitter hears, in submission order, once its
// change is durable.
func TestRegistrarBatchesWhileACommitIsInFlight(t *testing.T) {
	f := NewFaulty(nil)
	r := NewRegistrar(f)
	defer r.Close()
	release := f.HoldWrites()
	results := make(chan string, 100)
	r.Submit([]Change{{Agent: &AgentRecord{ID: "first", State: AgentAdmitted}}}, func(err error) { results <- fmt.Sprint("first ", err) })
	waitFor(t, "the first commit in flight", func() bool { return r.queued() == 0 })
	for i := 0; i < 50; i++ {
		id := fmt.Sprintf("a%02d", i)
		r.Submit([]Change{{Agent: &AgentRecord{ID: id, State: AgentAdmitted}}}, func(err error) { results <- fmt.Sprint(id, " ", err) })
	}
	release()
	if got := <-results; got != "first <nil>" {
		t.Fatalf("first result %q", got)
	}
	for i := 0; i < 50; i++ {
		if got, want := <-results, fmt.Sprintf("a%02d <nil>", i); got != want {
			t.Fatalf("result %d: %q, want %q (submission order)", i, got, want)
		}
	}
	batches, changes, failed := r.Stats()
	if batches != 2 || changes != 51 || failed != 0 {
		t.Fatalf("%d commits of %d changes (%d failed); want the 50 queued ones in one commit after the first", batches, changes, failed)
	}
	recs, err := f.Agents()
	if err != nil || len(recs) != 51 {
		t.Fatalf("registry holds %d agents (%v), want 51", len(recs), err)
	}
}

// A batch that fails refuses every change in it: each submitter gets the
// error and the registry holds none of them; later batches go through.
func TestRegistrarFailedBatchRefusesAll(t *testing.T) {
	f := NewFaulty(nil)
	r := NewRegistrar(f)
	defer r.Close()
	release := f.HoldWrites()
	errs := make(chan error, 10)
	r.Submit([]Change{{Policy: &Policy{Weights: map[string]float64{"eng": 2}}}}, func(err error) { errs <- err })
	waitFor(t, "the first commit in flight", func() bool { return r.queued() == 0 })
	f.FailWrites(true)
	for i := 0; i < 3; i++ {
		r.Submit([]Change{{Agent: &AgentRecord{ID: fmt.Sprint("a", i)}}}, func(err error) { errs <- err })
	}
	release()
	for i := 0; i < 4; i++ {
		if err := <-errs; !errors.Is(err, ErrInjected) {
			t.Fatalf("result %d: %v, want the injected error", i, err)
		}
	}
	if recs, _ := f.Agents(); len(recs) != 0 {
		t.Fatalf("a refused batch left %d agents in the registry", len(recs))
	}
	f.FailWrites(false)
	r.Submit([]Change{{Agent: &AgentRecord{ID: "later"}}}, func(err error) { errs <- err })
	if err := <-errs; err != nil {
		t.Fatalf("after the fault: %v", err)
	}
}

// Close commits what was queued before it and refuses what comes after.
func TestRegistrarCloseDrains(t *testing.T) {
	b, err := OpenBolt(filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r := NewRegistrar(b)
	done := make(chan error, 200)
	for i := 0; i < 100; i++ {
		r.Submit([]Change{{Agent: &AgentRecord{ID: fmt.Sprint("a", i)}}, {DeleteAgent: fmt.Sprint("a", i-1)}}, func(err error) { done <- err })
	}
	r.Close()
	for i := 0; i < 100; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	r.Submit([]Change{{DeleteAgent: "a99"}}, func(err error) { done <- err })
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
	recs, err := b.Agents()
	if err != nil || len(recs) != 1 || recs[0].ID != "a99" {
		t.Fatalf("registry after the drained batches: %v, %v; want only a99 (each deleting the one before)", recs, err)
	}
}
