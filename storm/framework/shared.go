package framework

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/agora-cluster/agora/frameworks/servicepage"
)

// DefaultReadEvery is how often a SharedTopologies reads its source.
const DefaultReadEvery = 2 * time.Second

// Defaults of a SharedTopologies' watched pages.
const (
	// DefaultWatchFor is how long a SharedTopologies keeps reading a
	// topology's page after a viewer last asked for it, while no page
	// follows the change feed.
	DefaultWatchFor = time.Minute
	// DefaultMaxWatched bounds the topologies' pages read with the list.
	DefaultMaxWatched = 64
)

// SharedTopologies reads a Topologies (Nimbus's: each read is a Thrift
// call) for every viewer of the page at once: Run reads the list, and the
// page of each topology a viewer asked for in the last minute (or since,
// while any page follows the change feed: such a page asks again only
// when the feed moves), once each ReadEvery whatever the number of
// viewers, and the page's API answers from those reads. When what it read
// differs from the last read (an uptime aside, which moves every second)
// it bumps Changes, the feed the pages follow, so that a page reloads
// only when a topology changed. An id that names no topology is not
// watched, and at most MaxWatched pages are (the least recently asked
// for goes first).
type SharedTopologies struct {
	Source  Topologies
	Changes *servicepage.Changes
	// ReadEvery is the period of the reads (DefaultReadEvery when 0).
	ReadEvery time.Duration
	// Timeout bounds one read (default 20 s).
	Timeout time.Duration
	// WatchFor is how long a topology's page is read after a viewer
	// last asked for it while no feed is open (DefaultWatchFor when 0).
	WatchFor time.Duration
	// MaxWatched bounds the pages read (DefaultMaxWatched when 0).
	MaxWatched int

	mu     sync.Mutex
	readMu chan struct{} // cap 1, held by the one read of the source at a time
	listed bool          // list and listErr hold a read
	list   []TopologySummary
	err    error
	pages  map[string]*sharedPage
	wake   chan struct{} // cap 1: a change asks for a read now
	reads  int
}

type sharedPage struct {
	t       *Topology
	err     error
	read    bool
	wanted  time.Time // a viewer last asked for it
	started time.Time // the read that filled it started
}

// Reads is the number of reads of the source so far (a list, or one
// topology's page, each count one).
func (s *SharedTopologies) Reads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

func (s *SharedTopologies) init() {
	if s.pages == nil {
		s.pages = map[string]*sharedPage{}
	}
	if s.wake == nil {
		s.wake = make(chan struct{}, 1)
	}
	if s.readMu == nil {
		s.readMu = make(chan struct{}, 1)
	}
}

// lockRead waits for the turn to read the source, or until ctx ends.
func (s *SharedTopologies) lockRead(ctx context.Context) error {
	s.mu.Lock()
	s.init()
	sem := s.readMu
	s.mu.Unlock()
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *SharedTopologies) unlockRead() { <-s.readMu }

func (s *SharedTopologies) watchFor() time.Duration {
	if s.WatchFor > 0 {
		return s.WatchFor
	}
	return DefaultWatchFor
}

func (s *SharedTopologies) maxWatched() int {
	if s.MaxWatched > 0 {
		return s.MaxWatched
	}
	return DefaultMaxWatched
}

func (s *SharedTopologies) period() time.Duration {
	if s.ReadEvery > 0 {
		return s.ReadEvery
	}
	return DefaultReadEvery
}

// Run reads the source every ReadEvery (and at once after a kill) until
// ctx ends.
func (s *SharedTopologies) Run(ctx context.Context) {
	s.mu.Lock()
	s.init()
	wake := s.wake
	s.mu.Unlock()
	t := time.NewTicker(s.period())
	defer t.Stop()
	for {
		s.Refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
	}
}

// Refresh reads the list and the watched topologies' pages now, and bumps
// Changes if they changed. A page is watched for WatchFor after a viewer
// last asked for it, and for as long as any page follows the feed (it
// asks again only after the feed moves).
func (s *SharedTopologies) Refresh(ctx context.Context) {
	if s.lockRead(ctx) != nil {
		return
	}
	defer s.unlockRead()
	changed := s.readList(ctx)
	following := s.Changes.Streams() > 0
	s.mu.Lock()
	s.init()
	now := time.Now()
	var ids []string
	for id, p := range s.pages {
		if !following && now.Sub(p.wanted) > s.watchFor() {
			delete(s.pages, id)
			continue
		}
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		if _, c, _ := s.readPage(ctx, id); c {
			changed = true
		}
	}
	if changed {
		s.Changes.Bump()
	}
}

func (s *SharedTopologies) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return 20 * time.Second
}

// readList reads the list; it reports whether it changed. Call with
// readMu held.
func (s *SharedTopologies) readList(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	list, err := s.Source.List(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	changed := !s.listed || errText(err) != errText(s.err) || !sameSummaries(list, s.list)
	s.list, s.err, s.listed = list, err, true
	return changed
}

// readPage reads topology id's page, and watches it unless the source
// says there is no such topology (then a watched page goes); it returns
// what it read and whether a watched page changed. Call with readMu held.
func (s *SharedTopologies) readPage(ctx context.Context, id string) (*Topology, bool, error) {
	started := time.Now()
	rctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	t, err := s.Source.Get(rctx, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	s.reads++
	p := s.pages[id]
	if errors.Is(err, ErrNoTopology) {
		// Gone, or never there: a page that showed it changes; an id
		// that names nothing is not read again with the list.
		delete(s.pages, id)
		return t, p != nil, err
	}
	if p == nil {
		if len(s.pages) >= s.maxWatched() {
			s.dropOldestLocked()
		}
		p = &sharedPage{wanted: started}
		s.pages[id] = p
	}
	changed := !p.read || errText(err) != errText(p.err) || !sameTopology(t, p.t)
	p.t, p.err, p.read, p.started = t, err, true, started
	return t, changed, err
}

// dropOldestLocked stops watching the page asked for least recently.
// Call with s.mu held.
func (s *SharedTopologies) dropOldestLocked() {
	oldest := ""
	for id, p := range s.pages {
		if oldest == "" || p.wanted.Before(s.pages[oldest].wanted) {
			oldest = id
		}
	}
	delete(s.pages, oldest)
}

// List is the last read of the list (read now if there is none yet).
func (s *SharedTopologies) List(ctx context.Context) ([]TopologySummary, error) {
	s.mu.Lock()
	listed := s.listed
	s.mu.Unlock()
	if !listed {
		err := s.detachedRead(ctx, func(rctx context.Context) {
			s.mu.Lock()
			listed := s.listed
			s.mu.Unlock()
			if !listed {
				s.readList(rctx)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// A copy: the handler sets each viewer's CanKill on what it gets.
	return slices.Clone(s.list), s.err
}

// Get is the last read of topology id's page; a page not watched (or not
// read lately) is read now, and then with the list. The wait for a read
// ends with ctx; a read Get began goes on without it, for the others.
func (s *SharedTopologies) Get(ctx context.Context, id string) (*Topology, error) {
	if t, ok, err := s.freshPage(id, true); ok {
		return t, err
	}
	var t *Topology
	var err error
	werr := s.detachedRead(ctx, func(rctx context.Context) {
		var ok bool
		if t, ok, err = s.freshPage(id, false); !ok {
			t, _, err = s.readPage(rctx, id)
			t = clone(t)
		}
	})
	if werr != nil {
		return nil, werr
	}
	return t, err
}

// freshPage is a copy of topology id's page and ok when it was read
// lately, taken under one hold of s.mu (so that no page read for
// another id between the check and the copy can crowd it out); wanted
// records a viewer's asking.
func (s *SharedTopologies) freshPage(id string, wanted bool) (*Topology, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	p := s.pages[id]
	if p == nil {
		return nil, false, nil
	}
	if wanted {
		p.wanted = time.Now()
	}
	if !p.read || time.Since(p.started) >= 2*s.period() {
		return nil, false, nil
	}
	return clone(p.t), true, p.err
}

// detachedRead runs read with the turn to read the source, on a context
// of its own (readList and readPage bound it by Timeout): a viewer whose
// request ends stops waiting for the turn or the result (ctx's error),
// but the read it began finishes and is kept for the others, not stored
// as its context's end.
func (s *SharedTopologies) detachedRead(ctx context.Context, read func(context.Context)) error {
	if err := s.lockRead(ctx); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer s.unlockRead()
		read(context.WithoutCancel(ctx))
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// clone is a copy of t whose summary a handler may change (it sets each
// viewer's CanKill) without changing the shared read.
func clone(t *Topology) *Topology {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

// Kill kills through the source and asks Run for a read now.
func (s *SharedTopologies) Kill(ctx context.Context, id string) error {
	err := s.Source.Kill(ctx, id)
	s.mu.Lock()
	s.init()
	wake := s.wake
	s.mu.Unlock()
	select {
	case wake <- struct{}{}:
	default: // a read is asked for already
	}
	return err
}

// CanKill is the source's.
func (s *SharedTopologies) CanKill() bool { return s.Source.CanKill() }

// MayKill is the source's: it does not call out, so it is not shared.
func (s *SharedTopologies) MayKill(ctx context.Context, id string) error {
	return s.Source.MayKill(ctx, id)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// sameSummaries compares two lists but for their uptimes.
func sameSummaries(a, b []TopologySummary) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.UptimeSecs, y.UptimeSecs = 0, 0
		if x != y {
			return false
		}
	}
	return true
}

// sameTopology compares two pages but for their uptimes.
func sameTopology(a, b *Topology) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.UptimeSecs, y.UptimeSecs = 0, 0
	x.Workers, y.Workers = noUptimes(x.Workers), noUptimes(y.Workers)
	return reflect.DeepEqual(x, y)
}

func noUptimes(ws []TopologyWorker) []TopologyWorker {
	out := make([]TopologyWorker, len(ws))
	for i, w := range ws {
		w.UptimeSecs = 0
		out[i] = w
	}
	return out
}
