package lambda

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agora-cluster/agora/frameworks/servicepage"
	"github.com/agora-cluster/agora/lambda/plan"
)

// However often the page asks, the board reads the pipeline's status (in
// tasks mode an HTTP call to the speed task) at most once per
// sampleEvery, requests never queue behind a slow read, and the rate
// window keeps a bounded number of samples.
func TestBoardBoundsWorkPerRequest(t *testing.T) {
	var reads atomic.Int64
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	b := NewBoard(&plan.Spec{Name: "p"}, func() (Progress, error) {
		if reads.Add(1) == 1 {
			<-release // the first read hangs, as a speed task that does not answer
		}
		return Progress{Appended: reads.Load()}, nil
	})

	// One request starts a read that hangs; many more meanwhile start
	// none and are answered from what the board has.
	first := make(chan Overview, 1)
	go func() { first <- b.Overview() }()
	deadline := time.Now().Add(30 * time.Second)
	for reads.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first request never read the status")
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 250 {
				b.Overview()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("2,000 requests did not finish while one read hung: they wait for it")
	}
	// Reads started: the hung one, and at most one per sampleEvery since.
	if got, most := reads.Load(), 2+int64(time.Since(start)/sampleEvery); got > most {
		t.Errorf("2,000 requests made %d reads of the status in %v, want at most %d", got, time.Since(start), most)
	}
	unblock()
	select {
	case <-first:
	case <-time.After(30 * time.Second):
		t.Fatal("the first request did not finish once its read did")
	}

	// Samples taken back to back, within one rate window, are capped.
	now := time.Now()
	for i := range 1000 {
		b.take(now.Add(time.Duration(i) * time.Millisecond))
	}
	b.mu.Lock()
	n := len(b.samples)
	b.mu.Unlock()
	if n > maxSamples {
		t.Errorf("the board keeps %d samples after 1,000 in one rate window, want at most %d", n, maxSamples)
	}
	if o := b.Overview(); o.Ingest.RatePerSecond <= 0 {
		t.Errorf("ingest rate %v after samples with growing counts, want > 0", o.Ingest.RatePerSecond)
	}
}

// A read that finishes after a later one (a slow speed task) does not take
// the page back: its status and its batch run are not recorded.
func TestBoardIgnoresAReadOlderThanTheLast(t *testing.T) {
	batch2 := time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC)
	batch1 := batch2.Add(-5 * time.Minute)
	answers := []Progress{{Appended: 20, LastBatch: batch2}, {Appended: 10, LastBatch: batch1}}
	b := NewBoard(&plan.Spec{Name: "p"}, func() (Progress, error) {
		p := answers[0]
		answers = answers[1:]
		return p, nil
	})
	now := time.Now()
	b.take(now)                   // the later read, recorded first
	b.take(now.Add(-time.Second)) // the slow, older one
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.Appended != 20 || !b.lastAt.Equal(now) {
		t.Errorf("the board shows %+v read at %v; want the later read's (20 appended)", b.last, b.lastAt)
	}
	if len(b.gens) != 1 || !b.gens[0].Started.Equal(batch2) {
		t.Errorf("generations %+v; want only the batch run of the later read", b.gens)
	}
}

// The board's feed moves when what the page shows moves, not only the
// status: ingest that stops takes the rate down to 0 (the status stays
// the same meanwhile), and a status that cannot be read, or is read again,
// moves it too.
func TestBoardBumpsWhenThePageWouldChange(t *testing.T) {
	var p Progress
	var readErr error
	b := NewBoard(&plan.Spec{Name: "p"}, func() (Progress, error) { return p, readErr })
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return now.Add(time.Duration(s) * time.Second) }
	// Ingest at 100/s for 20 s.
	for s := range 20 {
		p.Appended = int64(100 * s)
		b.sample(at(s))
	}
	if r := b.overviewAt().Ingest.RatePerSecond; r != 100 {
		t.Fatalf("ingest rate %v, want 100/s", r)
	}
	// Ingest stops: the status is the same at each sample, but the rate
	// falls, and each fall is told.
	v := b.changes.Version()
	falls := 0
	for s := 20; s < 40; s++ {
		before := b.changes.Version()
		b.sample(at(s))
		if b.changes.Version() != before {
			falls++
		}
	}
	if r := b.overviewAt().Ingest.RatePerSecond; r != 0 {
		t.Fatalf("ingest rate %v 20 s after ingest stopped, want 0", r)
	}
	if falls < 5 {
		t.Errorf("the feed moved %d times while the rate fell from 100/s to 0 (from version %d), want at each step", falls, v)
	}
	// Nothing moves now: no bump.
	v = b.changes.Version()
	b.sample(at(40))
	b.sample(at(41))
	if got := b.changes.Version(); got != v {
		t.Errorf("the feed moved %d times with nothing changing, want none", got-v)
	}

	// The status cannot be read: one bump, not one per failed read.
	readErr = errors.New("the speed task does not answer")
	b.sample(at(42))
	if b.changes.Version() != v+1 {
		t.Fatalf("version %d after the first failed read, want %d", b.changes.Version(), v+1)
	}
	b.sample(at(43))
	if b.changes.Version() != v+1 {
		t.Errorf("version %d after the same failure again, want %d", b.changes.Version(), v+1)
	}
	readErr = errors.New("no speed-layer task serves the views yet")
	b.sample(at(44))
	if b.changes.Version() != v+2 {
		t.Errorf("version %d after another failure, want %d", b.changes.Version(), v+2)
	}
	// Read again, the same status as before the failures: the page's
	// banner goes, so the feed moves.
	readErr = nil
	b.sample(at(45))
	if b.changes.Version() != v+3 {
		t.Errorf("version %d after the status reads again, want %d", b.changes.Version(), v+3)
	}
}

// overviewAt is the Overview without a sample of its own.
func (b *Board) overviewAt() Overview {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.overviewLocked()
}

// Close ends the page's open feeds, so that the server's graceful
// shutdown does not wait for them, and refuses new ones.
func TestBoardCloseEndsThePageFeeds(t *testing.T) {
	b := NewBoard(&plan.Spec{Name: "p"}, func() (Progress, error) { return Progress{}, nil })
	mux := http.NewServeMux()
	b.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+servicepage.ChangesPath, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the feed: %s", resp.Status)
	}
	b.Close()
	// The stream ends (rather than running until the minute's bound).
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("the feed after Close: %v, want its end", err)
	}
	again, err := http.Get(srv.URL + servicepage.ChangesPath)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a feed opened after Close: %s, want 503", again.Status)
	}
}
