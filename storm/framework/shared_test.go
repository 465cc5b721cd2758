package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/agora-cluster/agora/frameworks/servicepage"
)

// countingTopologies is a source of one topology that counts its reads.
type countingTopologies struct {
	mu          sync.Mutex
	status      string
	uptime      int
	acked       int64
	lists, gets int
	anyID       bool // every id is a topology, not only words-1-2
}

func (c *countingTopologies) List(context.Context) ([]TopologySummary, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lists++
	return []TopologySummary{{ID: "words-1-2", Name: "words", Runtime: "storm", Status: c.status, UptimeSecs: c.uptime}}, nil
}

func (c *countingTopologies) Get(_ context.Context, id string) (*Topology, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gets++
	if id != "words-1-2" && !c.anyID {
		return nil, fmt.Errorf("%w: %q", ErrNoTopology, id)
	}
	return &Topology{TopologySummary: TopologySummary{ID: id, Name: "words", Status: c.status, UptimeSecs: c.uptime},
		Workers:    []TopologyWorker{{Host: "h", Port: 6700, UptimeSecs: c.uptime}},
		Components: []TopologyComponent{{ID: "count", Type: "bolt", Acked: c.acked}}}, nil
}

func (c *countingTopologies) Kill(context.Context, string) error { return nil }
func (c *countingTopologies) CanKill() bool                      { return true }

func (c *countingTopologies) MayKill(context.Context, string) error { return nil }

func (c *countingTopologies) set(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f()
}

func (c *countingTopologies) reads() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lists, c.gets
}

// getAll has n viewers GET path at once; each must answer 200 with a
// topology named words.
func getAll(t *testing.T, url string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(url)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var v struct {
				Topologies []TopologySummary `json:"topologies"`
				Topology   *Topology         `json:"topology"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 {
				errs <- fmt.Errorf("%s: %d %v", url, resp.StatusCode, err)
				return
			}
			if (len(v.Topologies) != 1 || v.Topologies[0].Name != "words") && (v.Topology == nil || v.Topology.Name != "words") {
				errs <- fmt.Errorf("%s: %+v, want topology words", url, v)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSharedTopologiesReadOnceForEveryViewer: twenty viewers of the list
// and of a topology's page cost one read of the source each, and the
// change feed moves when a read sees a change, not when only the uptimes
// moved.
func TestSharedTopologiesReadOnceForEveryViewer(t *testing.T) {
	src := &countingTopologies{status: "ACTIVE"}
	s := &SharedTopologies{Source: src, Changes: servicepage.NewChanges(), ReadEvery: time.Hour}
	srv := httptest.NewServer(UIHandler(UIConfig{Topologies: s, Changes: s.Changes}))
	t.Cleanup(srv.Close)
	ctx := context.Background()

	s.Refresh(ctx)
	getAll(t, srv.URL+"/api/v1/topologies", 20)
	getAll(t, srv.URL+"/api/v1/topologies/words-1-2", 20)
	if lists, gets := src.reads(); lists != 1 || gets != 1 {
		t.Fatalf("20 viewers of the list and 20 of a page read the source %d and %d times, want once each", lists, gets)
	}
	v := s.Changes.Version()

	src.set(func() { src.uptime += 5 })
	s.Refresh(ctx)
	if lists, gets := src.reads(); lists != 2 || gets != 2 {
		t.Fatalf("a refresh read the list %d and pages %d times in all, want 2 and 2 (the viewed page is read with the list)", lists, gets)
	}
	if got := s.Changes.Version(); got != v {
		t.Fatalf("the feed moved from %d to %d when only the uptimes did", v, got)
	}

	src.set(func() { src.acked = 42 })
	s.Refresh(ctx)
	if got := s.Changes.Version(); got != v+1 {
		t.Fatalf("the feed at %d after a viewed page's count changed, want %d", got, v+1)
	}
	src.set(func() { src.status = "KILLED" })
	s.Refresh(ctx)
	if got := s.Changes.Version(); got != v+2 {
		t.Fatalf("the feed at %d after the topology's status changed, want %d", got, v+2)
	}
	ts, err := s.List(ctx)
	if err != nil || len(ts) != 1 || ts[0].Status != "KILLED" {
		t.Fatalf("list after the refresh %+v %v, want words KILLED", ts, err)
	}
}

// TestSharedTopologiesRunReadsAtOnceAfterAKill: Run reads the source
// again at once after a kill, however long its period.
func TestSharedTopologiesRunReadsAtOnceAfterAKill(t *testing.T) {
	src := &countingTopologies{status: "ACTIVE"}
	s := &SharedTopologies{Source: src, Changes: servicepage.NewChanges(), ReadEvery: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitReads := func(n int) {
		deadline := time.Now().Add(time.Minute)
		for s.Reads() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d reads after a minute, want %d", s.Reads(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitReads(1)
	src.set(func() { src.status = "KILLED" })
	v := s.Changes.Version()
	if err := s.Kill(ctx, "words-1-2"); err != nil {
		t.Fatal(err)
	}
	waitReads(2)
	deadline := time.Now().Add(time.Minute)
	for s.Changes.Version() == v {
		if time.Now().After(deadline) {
			t.Fatal("the feed did not move after the kill's read")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openFeed opens the page's change feed on srv until the test ends, and
// waits until s counts it.
func openFeed(t *testing.T, srv *httptest.Server, s *SharedTopologies) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+servicepage.ChangesPath, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		cancel()
		resp.Body.Close()
		t.Fatalf("the change feed: %s", resp.Status)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	waitStreams(t, s, 1)
	return func() { cancel(); resp.Body.Close() }
}

func waitStreams(t *testing.T, s *SharedTopologies, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for s.Changes.Streams() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d feeds open after a minute, want %d", s.Changes.Streams(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A page that follows the feed asks for its topology only after the feed
// moves: while a feed is open its topology is read with the list however
// long ago it was asked for, so a change the list does not show (a
// component's count) still moves the feed.
func TestSharedTopologiesWatchPagesWhileAFeedIsOpen(t *testing.T) {
	src := &countingTopologies{status: "ACTIVE"}
	s := &SharedTopologies{Source: src, Changes: servicepage.NewChanges(), ReadEvery: time.Hour, WatchFor: time.Millisecond}
	srv := httptest.NewServer(UIHandler(UIConfig{Topologies: s, Changes: s.Changes}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	closeFeed := openFeed(t, srv, s)

	if _, err := s.Get(ctx, "words-1-2"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // past WatchFor
	s.Refresh(ctx)
	v := s.Changes.Version()
	src.set(func() { src.acked = 42 })
	s.Refresh(ctx)
	if got := s.Changes.Version(); got != v+1 {
		t.Fatalf("feed at %d after a component's count changed, past WatchFor with a feed open, want %d", got, v+1)
	}
	_, gets := src.reads()
	top, err := s.Get(ctx, "words-1-2")
	if err != nil || top.Components[0].Acked != 42 {
		t.Fatalf("page after the change %+v %v, want 42 acked", top, err)
	}
	if _, g := src.reads(); g != gets {
		t.Errorf("the page's read after the bump read the source again (%d reads, want %d): it is watched", g, gets)
	}

	// No feed open: past WatchFor the page is no longer read.
	closeFeed()
	waitStreams(t, s, 0)
	time.Sleep(10 * time.Millisecond)
	s.Refresh(ctx)
	_, gets = src.reads()
	s.Refresh(ctx)
	if _, g := src.reads(); g != gets {
		t.Errorf("with no feed open and no viewer past WatchFor, a refresh read the page (%d reads, want %d)", g, gets)
	}
}

// An id that names no topology is not watched, the watched pages are
// bounded, and a viewer waiting for a read stops when its request does.
func TestSharedTopologiesBoundWhatTheyWatch(t *testing.T) {
	src := &countingTopologies{status: "ACTIVE"}
	s := &SharedTopologies{Source: src, Changes: servicepage.NewChanges(), ReadEvery: time.Hour, MaxWatched: 3}
	ctx := context.Background()
	for range 3 {
		if _, err := s.Get(ctx, "nope"); !errors.Is(err, ErrNoTopology) {
			t.Fatalf("Get of an unknown id: %v, want ErrNoTopology", err)
		}
	}
	_, gets := src.reads()
	s.Refresh(ctx)
	if _, g := src.reads(); g != gets {
		t.Errorf("a refresh read %d pages after viewers asked only for an unknown id, want none", g-gets)
	}

	src.set(func() { src.anyID = true })
	for i := range 10 {
		if _, err := s.Get(ctx, fmt.Sprintf("t-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	_, gets = src.reads()
	s.Refresh(ctx)
	if _, g := src.reads(); g-gets != 3 {
		t.Errorf("a refresh read %d pages after viewers asked for 10, want MaxWatched (3)", g-gets)
	}
	// The newest asked for are the ones kept.
	if _, err := s.Get(ctx, "t-9"); err != nil {
		t.Fatal(err)
	}
	if _, g := src.reads(); g-gets != 3 {
		t.Errorf("the most recent page was read again (%d reads): it should be watched", g-gets)
	}

	// A topology that goes is no longer watched, and its going moves
	// the feed.
	v := s.Changes.Version()
	src.set(func() { src.anyID = false })
	s.Refresh(ctx)
	if got := s.Changes.Version(); got == v {
		t.Error("the feed did not move when the watched topologies went")
	}
	_, gets = src.reads()
	s.Refresh(ctx)
	if _, g := src.reads(); g != gets {
		t.Errorf("a refresh read %d pages of topologies that went, want none", g-gets)
	}

	// A read under way: a viewer whose request ends stops waiting.
	if err := s.lockRead(ctx); err != nil {
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Get(done, "t-1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with its request gone while a read is under way: %v, want context.Canceled", err)
	}
	s.unlockRead()
	unread := &SharedTopologies{Source: src, Changes: servicepage.NewChanges()}
	if err := unread.lockRead(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := unread.List(done); !errors.Is(err, context.Canceled) {
		t.Errorf("List with nothing read yet and its request gone while a read is under way: %v, want context.Canceled", err)
	}
	unread.unlockRead()
}

// heldTopologies is countingTopologies whose page reads wait for release
// (or for their context to end, as a real source's do).
type heldTopologies struct {
	*countingTopologies
	started chan struct{} // told each read that starts (buffered)
	release chan struct{}
}

func (h *heldTopologies) Get(ctx context.Context, id string) (*Topology, error) {
	select {
	case h.started <- struct{}{}:
	default:
	}
	select {
	case <-h.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return h.countingTopologies.Get(ctx, id)
}

// A viewer who leaves while its page is read stops waiting, but the read
// goes on for the others: its end is not kept as the page's error, and
// the next refresh does not move the feed for it.
func TestSharedTopologiesKeepTheReadAViewerLeft(t *testing.T) {
	src := &heldTopologies{countingTopologies: &countingTopologies{status: "ACTIVE"},
		started: make(chan struct{}, 1), release: make(chan struct{})}
	s := &SharedTopologies{Source: src, Changes: servicepage.NewChanges(), ReadEvery: time.Hour}
	ctx := context.Background()
	s.Refresh(ctx) // the list; no page is watched yet

	vctx, leave := context.WithCancel(ctx)
	got := make(chan error, 1)
	go func() {
		_, err := s.Get(vctx, "words-1-2")
		got <- err
	}()
	select {
	case <-src.started:
	case <-time.After(time.Minute):
		t.Fatal("the page's read did not start within a minute")
	}
	leave()
	select {
	case err := <-got:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Get of a viewer who left during the read: %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a viewer who left still waited for the read a minute later")
	}
	reads := s.Reads()
	close(src.release)
	for deadline := time.Now().Add(time.Minute); s.Reads() == reads; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the read the viewer left did not finish within a minute of its release")
		}
	}
	v := s.Changes.Version()
	top, err := s.Get(ctx, "words-1-2")
	if err != nil || top == nil || top.Name != "words" {
		t.Fatalf("the page after the left read: %+v %v, want topology words", top, err)
	}
	s.Refresh(ctx)
	if got := s.Changes.Version(); got != v {
		t.Errorf("the feed moved from %d to %d at the refresh after a viewer left a read: its end was kept", v, got)
	}
}

// A page read lately is answered as read, even while reads of other
// pages crowd it out of the watched ones: never ErrNoTopology for a
// topology that runs.
func TestSharedTopologiesFreshPageNotCrowdedOut(t *testing.T) {
	src := &countingTopologies{status: "ACTIVE", anyID: true}
	s := &SharedTopologies{Source: src, Changes: servicepage.NewChanges(), ReadEvery: time.Hour, MaxWatched: 1}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, id := range []string{"a", "b", "c", "d"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 300 {
				if _, err := s.Get(ctx, id); err != nil {
					errs <- fmt.Errorf("Get %q: %w", id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
