package lambda

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agora-cluster/agora/frameworks/servicepage"
	"github.com/agora-cluster/agora/lambda/plan"
)

// uiFiles are the pipeline's web page: its views with a query form, the
// batch generations, the speed layer's progress and the ingester's rate
// and dead letters, served at /ui/ by the query API beside /v1/query and
// /v1/status.
//
//go:embed ui
var uiFiles embed.FS

// Progress is what the pipeline's status says at one moment: the part of
// /v1/status the page follows over time.
type Progress struct {
	BatchWatermark map[int32]int64
	SpeedNext      map[int32]int64
	// LastBatch is when the last batch run started, LastBatchMS how long
	// it took, LastBatchError why it failed (the previous view stays).
	LastBatch      time.Time
	LastBatchMS    int64
	LastBatchError string
	// Appended and DeadLetter are the ingester's counts since it started.
	Appended   int64
	DeadLetter int64
}

// Generation is one batch run as the board saw it: the watermark of the
// view it made (per partition; the offsets below it are in the view) and
// when it completed.
type Generation struct {
	Number    int             `json:"number"`
	Watermark map[int32]int64 `json:"watermark"`
	// Events is the sum of the watermark's offsets: the events the view
	// was computed from, dead letters included.
	Events    int64     `json:"events"`
	Started   time.Time `json:"started"`
	Completed time.Time `json:"completed"`
	Error     string    `json:"error,omitempty"`
}

// ViewInfo is a view of the spec as the page shows it.
type ViewInfo struct {
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	Key    []string `json:"key"`
	Of     string   `json:"of,omitempty"`
	Bucket string   `json:"bucket"`
}

// Overview is GET /v1/pipeline: what the page shows.
type Overview struct {
	Pipeline    string       `json:"pipeline"`
	Views       []ViewInfo   `json:"views"`
	Generations []Generation `json:"generations"` // newest first
	Speed       SpeedInfo    `json:"speed"`
	Ingest      IngestInfo   `json:"ingest"`
	// SampledAt is when the status it shows was read (the board reads
	// it at most once per sampleEvery, however often the page asks).
	SampledAt time.Time `json:"sampled_at"`
}

// SpeedInfo is the speed layer's progress past the batch view.
type SpeedInfo struct {
	Next map[int32]int64 `json:"next"`
	// SinceBatch are the events (offsets) it holds that the batch view
	// does not: read since the last batch run's watermark.
	SinceBatch int64 `json:"events_since_batch"`
	// LastAdvanced is when its offsets were last seen to grow (the
	// board samples them every second): how fresh its view is.
	LastAdvanced time.Time `json:"last_advanced,omitzero"`
}

// IngestInfo is the ingester's progress.
type IngestInfo struct {
	Appended   int64 `json:"appended"`
	DeadLetter int64 `json:"dead_letter"`
	// DeadLetterTopic receives the events that do not match the schema.
	DeadLetterTopic string `json:"dead_letter_topic"`
	// RatePerSecond is the events appended per second over the last
	// rateWindow (0 until two samples).
	RatePerSecond float64 `json:"rate_per_second"`
}

// Bounds of what the board keeps and does.
const (
	maxGenerations = 20
	rateWindow     = 10 * time.Second
	// sampleEvery is how often Watch reads the status, and the most
	// often a page's requests make the board read it: in tasks mode a
	// read is an HTTP call to the speed task.
	sampleEvery = time.Second
	// maxSamples caps the rate window's samples whatever their ages (a
	// clock step, or reads from Watch and requests interleaved).
	maxSamples = 2*int(rateWindow/sampleEvery) + 2
)

type sample struct {
	at       time.Time
	appended int64
}

// Board follows a pipeline's progress for its page: the batch generations
// it has seen, when the speed layer last advanced and the ingest rate.
type Board struct {
	spec *plan.Spec
	read func() (Progress, error)

	mu       sync.Mutex
	gens     []Generation // oldest first
	samples  []sample     // the last rateWindow's
	next     int64        // the speed layer's offsets, summed, at the last sample
	advanced time.Time
	last     Progress
	lastAt   time.Time // when last was read
	tried    time.Time // when a read last started
	// readErr is why the last read of the status failed ("" when it
	// did not).
	readErr string
	// shown is the Overview the last sample made, but for SampledAt.
	shown *Overview
	// changes is the page's change feed: a sample that makes another
	// Overview, or another status, than the last bumps it, and so does
	// a read that fails otherwise than the last (the page's own read of
	// /v1/status then says why).
	changes *servicepage.Changes
}

// NewBoard follows the pipeline of spec through read, its status; a
// status that cannot be read is skipped (the page's own read of
// /v1/status says why).
func NewBoard(spec *plan.Spec, read func() (Progress, error)) *Board {
	return &Board{spec: spec, read: read, changes: servicepage.NewChanges()}
}

// Watch samples the pipeline every second until ctx ends, so that batch
// runs are seen while no page is open.
func (b *Board) Watch(ctx context.Context) {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		b.sample(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func sum(offsets map[int32]int64) int64 {
	var n int64
	for _, o := range offsets {
		n += o
	}
	return n
}

// sample reads the status once: a batch run that ended since the last
// sample becomes a generation.
func (b *Board) sample(now time.Time) {
	b.mu.Lock()
	b.tried = now
	b.mu.Unlock()
	b.take(now)
}

// take reads the status and records it (sample).
func (b *Board) take(now time.Time) {
	p, err := b.read()
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		slog.Debug("the pipeline's status, for its page", "err", err)
		if err.Error() != b.readErr {
			b.readErr = err.Error()
			b.changes.Bump()
		}
		return
	}
	if now.Before(b.lastAt) {
		// A slow read that finished after a later one: it would take the
		// page back in time (and count an older batch run again).
		return
	}
	changed := b.lastAt.IsZero() || !reflect.DeepEqual(b.last, p) || b.readErr != ""
	b.readErr = ""
	b.last, b.lastAt = p, now
	defer func() {
		// What the page shows moves without the status moving: the
		// ingest rate over the window, for one.
		o := b.overviewLocked()
		o.SampledAt = time.Time{}
		o.Ingest.RatePerSecond = math.Round(o.Ingest.RatePerSecond*10) / 10 // as the page shows it
		if changed || b.shown == nil || !reflect.DeepEqual(*b.shown, o) {
			b.shown = &o
			b.changes.Bump()
		}
	}()
	if n := len(b.gens); !p.LastBatch.IsZero() && (n == 0 || !b.gens[n-1].Started.Equal(p.LastBatch)) {
		g := Generation{Number: 1, Watermark: p.BatchWatermark, Events: sum(p.BatchWatermark), Started: p.LastBatch,
			Completed: p.LastBatch.Add(time.Duration(p.LastBatchMS) * time.Millisecond), Error: p.LastBatchError}
		if n > 0 {
			g.Number = b.gens[n-1].Number + 1
		}
		b.gens = append(b.gens, g)
		if len(b.gens) > maxGenerations {
			b.gens = slices.Delete(b.gens, 0, len(b.gens)-maxGenerations)
		}
	}
	// The first sample only sets where the speed layer was.
	if next := sum(p.SpeedNext); next != b.next {
		if len(b.samples) > 0 {
			b.advanced = now
		}
		b.next = next
	}
	b.samples = append(b.samples, sample{now, p.Appended})
	for len(b.samples) > 2 && now.Sub(b.samples[1].at) >= rateWindow || len(b.samples) > maxSamples {
		b.samples = b.samples[1:]
	}
}

// sampleIfStale samples the pipeline unless a read started within the
// last sampleEvery (Watch's, or another request's, perhaps still under
// way): a page's requests, however many, add at most one read and one
// sample per sampleEvery.
func (b *Board) sampleIfStale(now time.Time) {
	b.mu.Lock()
	stale := b.tried.IsZero() || now.Sub(b.tried) >= sampleEvery || now.Before(b.tried)
	if stale {
		b.tried = now
	}
	b.mu.Unlock()
	if stale {
		b.take(now)
	}
}

// Overview says what the page shows, from the samples Watch takes (or,
// without Watch, from one taken now if the last is older than
// sampleEvery).
func (b *Board) Overview() Overview {
	b.sampleIfStale(time.Now())
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.overviewLocked()
}

// overviewLocked is the Overview of what the board holds. Call with b.mu
// held.
func (b *Board) overviewLocked() Overview {
	o := Overview{Pipeline: b.spec.Name, SampledAt: b.lastAt, Generations: []Generation{}, Views: []ViewInfo{}}
	for _, v := range b.spec.Views {
		o.Views = append(o.Views, ViewInfo{Name: v.Name, Type: v.Type, Key: append([]string{}, v.Key...), Of: v.Of, Bucket: shortDuration(time.Duration(v.Bucket))})
	}
	for i := len(b.gens) - 1; i >= 0; i-- {
		o.Generations = append(o.Generations, b.gens[i])
	}
	o.Speed = SpeedInfo{Next: b.last.SpeedNext, SinceBatch: max(sum(b.last.SpeedNext)-sum(b.last.BatchWatermark), 0), LastAdvanced: b.advanced}
	o.Ingest = IngestInfo{Appended: b.last.Appended, DeadLetter: b.last.DeadLetter, DeadLetterTopic: b.spec.Input.DeadLetterTopic}
	if len(b.samples) == 0 {
		return o
	}
	if first, last := b.samples[0], b.samples[len(b.samples)-1]; last.at.Sub(first.at) > 0 {
		o.Ingest.RatePerSecond = float64(last.appended-first.appended) / last.at.Sub(first.at).Seconds()
	}
	return o
}

// shortDuration writes d as the spec does: 1h, not 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ServeHTTP answers GET /v1/pipeline with the Overview.
func (b *Board) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMethodNotAllowed)
		json.NewEncoder(w).Encode(map[string]string{"error": "GET the pipeline's overview"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(b.Overview()); err != nil {
		slog.Debug("writing the pipeline's overview", "err", err)
	}
}

// Close ends the page's open change feeds and refuses new ones, so that
// the server's graceful shutdown need not wait for the open pages. Call it
// before the server's Shutdown.
func (b *Board) Close() { b.changes.Close() }

// Mount serves the page on mux: /ui/ (and / leading there), and
// /v1/pipeline, what it reads beside /v1/status and /v1/query.
func (b *Board) Mount(mux *http.ServeMux) {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded directory is there at build time
	}
	mux.Handle("/ui/", servicepage.Handler(sub, b.changes))
	mux.Handle("/v1/pipeline", b)
	mux.Handle("/{$}", http.RedirectHandler("/ui/", http.StatusFound))
}
