// Package serve is the lambda pipeline's serving layer: it holds the
// current batch view (swapped whole when a batch run ends) beside the
// speed layer's realtime view, and answers queries over HTTP by merging
// the two (GET /v1/query?view=V&key=K&from=T&to=T).
//
// The batch view is kept in memory (the embedded store) or, given a
// Store, in Cassandra (lambda/store): each new view is written there as a
// generation of its own, and queries read their rows from it.
package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/speed"
	"github.com/agora-cluster/agora/lambda/view"
)

// Store keeps batch views outside the process: Cassandra (lambda/store).
type Store interface {
	// Put writes a batch view as a new generation, which Rows reads but
	// no query asks for until Swap.
	Put(ctx context.Context, b *view.Batch) (gen int64, err error)
	// Swap makes gen the current generation.
	Swap(ctx context.Context, gen int64, watermark map[int32]int64) error
	// DropOthers deletes the generations older than gen, keeping newer
	// ones another server of the pipeline may serve or be writing.
	DropOthers(ctx context.Context, gen int64) error
	// Rows are generation gen's rows of a view for one key, or an error
	// if gen is gone.
	Rows(ctx context.Context, gen int64, view, key string) (view.Table, error)
}

// Speed is the speed layer's realtime view as the server reads it: a
// speed.Layer, or the counting bolt of the speed layer on Storm.
type Speed interface {
	// Next is the next offset the view will apply, per partition.
	Next() map[int32]int64
	// Expire drops what a batch view with that watermark holds.
	Expire(watermark map[int32]int64)
	// Query answers a view for one key merged with batch.
	Query(v plan.View, key string, from, to time.Time, batch *view.Batch) []view.Point
}

var _ Speed = (*speed.Layer)(nil)

// Server answers one pipeline's queries.
type Server struct {
	spec  *plan.Spec
	speed Speed
	store Store

	// A query merges the speed layer's view with the batch view it read
	// only while that view is still the one served, holding mu shared; a
	// swap holds mu alone from setting the new view to the speed layer's
	// expiry. So a query that read the old view never meets realtime
	// segments expired for the new one. Neither holds mu across the
	// store's work: a query reads its rows first and reads them again if
	// a swap came in between.
	mu    sync.RWMutex
	batch *view.Batch // with a store, the watermark only
	gen   int64       // the store's generation of batch

	// setMu orders SetBatch calls, so that the views are swapped in in
	// the order they were given.
	setMu sync.Mutex
}

// New serves spec's views from the speed layer sp and, once SetBatch has
// been called, the batch view, kept in memory.
func New(spec *plan.Spec, sp Speed) *Server { return &Server{spec: spec, speed: sp} }

// NewStored is New with the batch views kept in st.
func NewStored(spec *plan.Spec, sp Speed, st Store) *Server {
	return &Server{spec: spec, speed: sp, store: st}
}

// storeTimeout bounds a store's write of a whole batch view and a query's
// read of its rows.
const storeTimeout = 2 * time.Minute

// SetBatch swaps in a new batch view and has the speed layer drop what it
// holds, atomically for queries. With a store, the view is written to it
// first; if that fails the previous view stays and nothing changes.
func (s *Server) SetBatch(b *view.Batch) error {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	if s.store == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.batch = b
		s.speed.Expire(b.Watermark)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	gen, err := s.store.Put(ctx, b)
	if err != nil {
		return err
	}
	// This server's queries read s.gen, not the store's current
	// generation, so the store's swap needs no lock.
	if err := s.store.Swap(ctx, gen, b.Watermark); err != nil {
		return err
	}
	s.mu.Lock()
	s.batch, s.gen = &view.Batch{Watermark: b.Watermark}, gen
	s.speed.Expire(b.Watermark)
	s.mu.Unlock()
	// No query reads the older generations any more.
	if err := s.store.DropOthers(ctx, gen); err != nil {
		slog.Warn("dropping older batch views from the serving store; the next swap tries again", "err", err)
	}
	return nil
}

// Batch is the current batch view (nil before the first run); with a
// store, its watermark only.
func (s *Server) Batch() *view.Batch {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.batch
}

// Answer is a query's result.
type Answer struct {
	View   string       `json:"view"`
	Type   string       `json:"type"`
	Key    []string     `json:"key"`
	Points []view.Point `json:"points"`
	// BatchWatermark and SpeedNext say what the answer covers: events
	// below the watermark from the batch view, and from it up to the speed
	// layer's next offset from the realtime view, per partition.
	BatchWatermark map[int32]int64 `json:"batch_watermark"`
	SpeedNext      map[int32]int64 `json:"speed_next"`
}

// Query answers view name for the key values over [from, to).
func (s *Server) Query(name string, key []string, from, to time.Time) (*Answer, error) {
	v, ok := s.spec.View(name)
	if !ok {
		names := make([]string, len(s.spec.Views))
		for i, v := range s.spec.Views {
			names[i] = v.Name
		}
		return nil, &Error{http.StatusNotFound, fmt.Sprintf("unknown view %q (views: %s)", name, strings.Join(names, ", "))}
	}
	if len(key) != len(v.Key) {
		return nil, &Error{http.StatusBadRequest, fmt.Sprintf("view %q is keyed by [%s]: give %d key value(s), got %d", name, strings.Join(v.Key, ", "), len(v.Key), len(key))}
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	for {
		s.mu.RLock()
		b, gen := s.batch, s.gen
		s.mu.RUnlock()
		var rows view.Table
		var err error
		if b != nil && s.store != nil {
			rows, err = s.store.Rows(ctx, gen, v.Name, view.KeyOf(key...))
		}
		s.mu.RLock()
		if s.batch != b {
			// A swap came in while the rows were read (and may have
			// deleted them): read the new view's.
			s.mu.RUnlock()
			if ctx.Err() != nil {
				return nil, &Error{http.StatusBadGateway, "the serving store: batch views were swapped in faster than a query could read one"}
			}
			continue
		}
		a, err := s.merge(v, key, from, to, b, rows, err)
		s.mu.RUnlock()
		return a, err
	}
}

// merge answers v from the speed layer and batch view b (with a store,
// its rows read with error err); the caller holds mu shared, b being the
// view served.
func (s *Server) merge(v plan.View, key []string, from, to time.Time, b *view.Batch, rows view.Table, err error) (*Answer, error) {
	if err != nil {
		return nil, &Error{http.StatusBadGateway, "the serving store: " + err.Error()}
	}
	a := &Answer{View: v.Name, Type: v.Type, Key: key, SpeedNext: s.speed.Next(), Points: []view.Point{}}
	if b != nil {
		a.BatchWatermark = b.Watermark
	}
	if b != nil && s.store != nil {
		b = &view.Batch{Watermark: b.Watermark, Rows: rows}
	}
	if ps := s.speed.Query(v, view.KeyOf(key...), from, to, b); ps != nil {
		a.Points = ps
	}
	return a, nil
}

// Error is a query refused, with its HTTP status.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// ServeHTTP answers GET /v1/query.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/query" {
		writeErr(w, &Error{http.StatusNotFound, "no such endpoint; queries go to /v1/query?view=V&key=K&from=T&to=T"})
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeErr(w, &Error{http.StatusMethodNotAllowed, "queries are GET requests"})
		return
	}
	q := r.URL.Query()
	from, err := parseTime(q.Get("from"), time.Unix(math.MinInt32, 0))
	if err != nil {
		writeErr(w, &Error{http.StatusBadRequest, "from: " + err.Error()})
		return
	}
	to, err := parseTime(q.Get("to"), time.Unix(math.MaxInt32, 0))
	if err != nil {
		writeErr(w, &Error{http.StatusBadRequest, "to: " + err.Error()})
		return
	}
	if q.Get("view") == "" {
		writeErr(w, &Error{http.StatusBadRequest, "view: missing (/v1/query?view=V)"})
		return
	}
	a, err := s.Query(q.Get("view"), q["key"], from, to)
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(a)
}

// parseTime reads RFC 3339 or unix seconds; empty is def.
func parseTime(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-12-05T10:00:00Z) nor unix seconds", s)
	}
	return t, nil
}

func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	if e, ok := err.(*Error); ok {
		code = e.Code
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
