// Package bench measures a lambda pipeline on the embedded default: how
// fast events are ingested, how soon an event is visible in a query
// (freshness), how long a batch recompute takes and how long a query
// takes. Every count is checked against the events sent, so a fast but
// wrong pipeline fails the run instead of reporting numbers.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	pageviews "github.com/agora-cluster/agora/examples/lambda-pageviews"
	"github.com/agora-cluster/agora/lambda/pipeline"
	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/serve"
	"github.com/agora-cluster/agora/lambda/stormspeed"
	"github.com/agora-cluster/agora/lambda/view"
)

// Config is one run.
type Config struct {
	Dir string // the pipeline's work directory (emptied by the caller)
	// Brokers are real Kafka brokers (none: the embedded one). Each run
	// uses a topic of its own there, TOPIC-<unix seconds>.
	Brokers []string
	// Cassandra are the native-transport addresses of a Cassandra ring to
	// keep the batch views in (none: in memory).
	Cassandra []string
	// StormExe, when set, is the agora binary that runs the speed layer
	// as a Storm topology on the native runtime (lambda/stormspeed)
	// beside the pipeline: events/s, freshness, the queries and the
	// exactness are then the topology's (its bolt's, from offset 0).
	StormExe string
	// Nimbus, with StormExe, submits the topology to the real Storm whose
	// Nimbus is at HOST:PORT instead of the native runtime.
	Nimbus  string
	Events  int // page views sent for the ingest rate
	Probes  int // events sent one at a time for freshness
	Queries int // queries timed
	Log     io.Writer
}

// Result is what a run measured.
type Result struct {
	Events         int     `json:"events"`
	Ingested       int64   `json:"ingested"`
	IngestSeconds  float64 `json:"ingest_seconds"`
	EventsPerSec   float64 `json:"events_per_s"`
	Probes         int     `json:"freshness_probes"`
	FreshnessP50ms float64 `json:"freshness_p50_ms"`
	FreshnessP99ms float64 `json:"freshness_p99_ms"`
	BatchEvents    int64   `json:"batch_events"`
	BatchRows      int     `json:"batch_rows"`
	BatchSeconds   float64 `json:"batch_recompute_seconds"`
	Queries        int     `json:"queries"`
	QueryP50ms     float64 `json:"query_p50_ms"`
	QueryP99ms     float64 `json:"query_p99_ms"`
	Exact          bool    `json:"exact"`
	Broker         string  `json:"broker"`  // "embedded" or the Kafka brokers
	Serving        string  `json:"serving"` // "embedded" or the Cassandra nodes
	Speed          string  `json:"speed"`   // "native" or "storm"
	// SpeedStartSeconds is how long the Storm topology took to answer
	// queries (not counted in the ingest rate).
	SpeedStartSeconds float64 `json:"speed_start_seconds,omitempty"`
}

// Run starts the example pipeline on the embedded broker in cfg.Dir and
// measures it.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Events < 1 || cfg.Probes < 1 || cfg.Queries < 1 {
		return nil, fmt.Errorf("bench: events, probes and queries must each be at least 1")
	}
	logf := func(format string, a ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "bench lambda: "+format+"\n", a...)
		}
	}
	spec, err := plan.Parse(pageviews.Spec)
	if err != nil {
		return nil, err
	}
	if len(cfg.Brokers) > 0 {
		// A fresh topic: a real broker keeps the events of earlier runs.
		spec.Input.Topic = fmt.Sprintf("%s-%d", spec.Input.Topic, time.Now().Unix())
		spec.Input.DeadLetterTopic = spec.Input.Topic + "-dead"
	}
	p, err := pipeline.Start(pipeline.Config{Spec: spec, Dir: cfg.Dir, Brokers: cfg.Brokers, BatchPeriod: 24 * time.Hour,
		Cassandra: cfg.Cassandra, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	defer func() { stop(); <-done }()
	// Where queries go, and how far the speed layer is.
	api := func() string { return p.Query }
	var speedStart time.Duration
	speedAt := func() int64 { return total(p.Status().SpeedNext) }
	if cfg.StormExe != "" {
		sdir := filepath.Join(cfg.Dir, "storm")
		specPath := filepath.Join(cfg.Dir, "storm-pipeline.yaml")
		text := strings.Replace(string(pageviews.Spec), "topic: pageviews", "topic: "+spec.Input.Topic, 1)
		if err := os.WriteFile(specPath, []byte(text), 0o644); err != nil {
			return nil, err
		}
		// The topology's and its components' logs go with the bench's.
		stormLog := io.Discard
		if cfg.Log != nil {
			stormLog = cfg.Log
		}
		serr := make(chan error, 1)
		scfg := stormspeed.Config{Spec: spec, SpecPath: specPath, Brokers: p.Brokers, WorkDir: sdir, Exe: cfg.StormExe,
			Stderr: stormLog, Log: slog.New(slog.NewTextHandler(stormLog, nil))}
		go func() {
			if cfg.Nimbus != "" {
				serr <- stormspeed.RunOnNimbus(runCtx, scfg, cfg.Nimbus)
				return
			}
			serr <- stormspeed.Run(runCtx, scfg)
		}()
		defer func() { stop(); <-serr }()
		api = func() string { b, _ := os.ReadFile(stormspeed.AddrFile(sdir)); return string(b) }
		// The clock starts once the bolt answers: a real Storm's worker
		// JVM takes seconds to start, which is not the speed layer's rate.
		began := time.Now()
		err := waitFor(ctx, func() bool {
			var st pipeline.Status
			a := api()
			return a != "" && getJSON(ctx, a, "/v1/status", &st) == nil
		})
		if err != nil {
			select {
			case err = <-serr:
			default:
			}
			return nil, fmt.Errorf("bench: the Storm speed layer's bolt never answered: %w", err)
		}
		speedStart = time.Since(began)
		logf("the Storm speed layer's bolt answers %s after the start", speedStart.Round(time.Millisecond))
		speedAt = func() int64 {
			var st pipeline.Status
			if a := api(); a != "" {
				getJSON(ctx, a, "/v1/status", &st)
			}
			return total(st.SpeedNext)
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Brokers...), kgo.DefaultProduceTopic(spec.Input.Topic), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	res := &Result{Events: cfg.Events, Probes: cfg.Probes, Queries: cfg.Queries, Broker: "embedded", Serving: "embedded", Speed: "native"}
	res.SpeedStartSeconds = speedStart.Seconds()
	if cfg.StormExe != "" {
		res.Speed = "storm"
		if cfg.Nimbus != "" {
			res.Speed = "storm on Nimbus " + cfg.Nimbus
		}
	}
	if len(cfg.Brokers) > 0 {
		res.Broker = strings.Join(cfg.Brokers, ",")
	}
	if len(cfg.Cassandra) > 0 {
		res.Serving = strings.Join(cfg.Cassandra, ",")
	}
	truth := view.Table{}

	// Ingest: every event sent at once, timed until the dataset and the
	// speed layer both hold all of them.
	logf("sending %d page views to %s", cfg.Events, p.Brokers[0])
	g := pageviews.Generator{R: rand.New(rand.NewPCG(1, 2)), Start: time.Now().Add(-6 * time.Hour).Truncate(time.Hour), Span: 6 * time.Hour, Pages: 100, Users: 1000}
	recs := make([]*kgo.Record, cfg.Events)
	for i := range recs {
		line := g.Event()
		ev, err := spec.ParseEvent([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("bench: the generator's event %s: %w", line, err)
		}
		truth.Apply(spec, ev)
		recs[i] = &kgo.Record{Value: []byte(line)}
	}
	start := time.Now()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, fmt.Errorf("bench: sending: %w", err)
	}
	if err := waitFor(ctx, func() bool { return caughtUp(p.Status(), int64(cfg.Events)) && speedAt() >= int64(cfg.Events) }); err != nil {
		return nil, fmt.Errorf("bench: ingest of %d events: %w (status %+v)", cfg.Events, err, p.Status())
	}
	took := time.Since(start)
	res.Ingested = p.Status().Ingest.Appended
	res.IngestSeconds, res.EventsPerSec = took.Seconds(), float64(cfg.Events)/took.Seconds()
	logf("ingested %d events in %s", res.Ingested, took.Round(time.Millisecond))

	// Freshness: one event at a time, on a page of its own, timed from
	// the send until a query counts it.
	var fresh []time.Duration
	for i := 0; i < cfg.Probes; i++ {
		page := fmt.Sprintf("/fresh-%d", i)
		line := fmt.Sprintf(`{"ts":%d,"url":%q,"user":"u0","bytes":1}`, time.Now().UnixMilli(), page)
		ev, _ := spec.ParseEvent([]byte(line))
		truth.Apply(spec, ev)
		start := time.Now()
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(line)}).FirstErr(); err != nil {
			return nil, fmt.Errorf("bench: sending probe %d: %w", i, err)
		}
		err := waitFor(ctx, func() bool {
			a, err := query(ctx, api(), "views", page)
			return err == nil && sum(a) == 1
		})
		if err != nil {
			return nil, fmt.Errorf("bench: probe %d never visible: %w", i, err)
		}
		fresh = append(fresh, time.Since(start))
	}
	res.FreshnessP50ms, res.FreshnessP99ms = ms(percentile(fresh, 50)), ms(percentile(fresh, 99))
	logf("freshness over %d probes: p50 %.1f ms, p99 %.1f ms", cfg.Probes, res.FreshnessP50ms, res.FreshnessP99ms)

	// Batch: one recompute of every view from the whole dataset.
	start = time.Now()
	b, err := p.Batch()
	if err != nil {
		return nil, err
	}
	res.BatchSeconds, res.BatchRows = time.Since(start).Seconds(), len(b.Rows)
	for _, n := range b.Watermark {
		res.BatchEvents += n
	}
	logf("batch recompute over %d events: %s, %d rows", res.BatchEvents, time.Since(start).Round(time.Millisecond), res.BatchRows)

	// Queries: one page's hourly views, over HTTP, one after another.
	var qs []time.Duration
	for i := 0; i < cfg.Queries; i++ {
		start := time.Now()
		if _, err := query(ctx, api(), "views", fmt.Sprintf("/p%d", i%g.Pages)); err != nil {
			return nil, fmt.Errorf("bench: query %d: %w", i, err)
		}
		qs = append(qs, time.Since(start))
	}
	res.QueryP50ms, res.QueryP99ms = ms(percentile(qs, 50)), ms(percentile(qs, 99))
	logf("%d queries: p50 %.2f ms, p99 %.2f ms", cfg.Queries, res.QueryP50ms, res.QueryP99ms)

	// Exactness: every page's views and the daily total against the
	// events sent.
	res.Exact = true
	for _, k := range []struct{ view, key string }{{"total", ""}, {"views", "/p0"}, {"views", "/p7"}, {"visitors", "/p3"}, {"bytes", "/p5"}} {
		a, err := query(ctx, api(), k.view, k.key)
		if err != nil {
			return nil, err
		}
		v, _ := spec.View(k.view)
		want := 0.0
		for row, agg := range truth {
			if row.View == k.view && row.Key == k.key {
				want += agg.Value(v.Type)
			}
		}
		if got := sum(a); got != want {
			logf("view %s key %q: %g, want %g", k.view, k.key, got, want)
			res.Exact = false
		}
	}
	return res, nil
}

func caughtUp(st pipeline.Status, n int64) bool {
	var speed int64
	for _, next := range st.SpeedNext {
		speed += next
	}
	return st.Ingest.Appended+st.Ingest.DeadLetter >= n && speed >= n
}

// waitFor polls cond until it holds or two minutes pass.
func waitFor(ctx context.Context, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

var client = &http.Client{Timeout: 30 * time.Second}

func total(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// getJSON decodes GET http://api+path into out.
func getJSON(ctx context.Context, api, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+api+path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

func query(ctx context.Context, api, viewName, key string) (*serve.Answer, error) {
	q := url.Values{"view": {viewName}}
	if key != "" {
		q.Set("key", key)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+api+"/v1/query?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("%s: %s", resp.Status, body)
	}
	var a serve.Answer
	return &a, json.NewDecoder(resp.Body).Decode(&a)
}

func sum(a *serve.Answer) float64 {
	var s float64
	for _, p := range a.Points {
		s += p.Value
	}
	return s
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
