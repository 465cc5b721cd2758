// Package serve is the lambda pipeline's serving layer: it holds the
// current batch view (swapped whole when a batch run ends) beside the
// speed layer's realtime view, and answers queries over HTTP by merging
// the two (GET /v1/query?view=V&key=K&from=T&to=T).
package serve

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/speed"
	"github.com/agora-cluster/agora/lambda/view"
)

// Server answers one pipeline's queries.
type Server struct {
	spec  *plan.Spec
	speed *speed.Layer
	batch atomic.Pointer[view.Batch]
}

// New serves spec's views from the speed layer sp and, once SetBatch has
// been called, the batch view.
func New(spec *plan.Spec, sp *speed.Layer) *Server { return &Server{spec: spec, speed: sp} }

// SetBatch swaps in a new batch view and has the speed layer drop what it
// holds. Between the two a query merges the new batch view with realtime
// segments at or above its watermark only, so the swap is atomic for
// queries.
func (s *Server) SetBatch(b *view.Batch) {
	s.batch.Store(b)
	s.speed.Expire(b.Watermark)
}

// Batch is the current batch view (nil before the first run).
func (s *Server) Batch() *view.Batch { return s.batch.Load() }

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
	b := s.batch.Load()
	a := &Answer{View: v.Name, Type: v.Type, Key: key, SpeedNext: s.speed.Next(), Points: []view.Point{}}
	if b != nil {
		a.BatchWatermark = b.Watermark
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
