// Package pipeline runs a whole lambda pipeline in one process — what
// `agora lambda up` starts: the broker (an in-process Kafka-compatible
// one, franz-go's kfake, unless real brokers are given), the ingester that
// appends the master dataset, the speed layer, the batch layer on its
// period, and the query API, with /v1/status, POST /v1/batch and POST
// /v1/down (which ends Run, keeping the data) beside /v1/query, and the
// pipeline's page at /ui/ (package lambda).
//
// The layers run here as goroutines. tasks.go runs each of them as a
// process of its own, which lambda/framework launches as agora tasks.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/agora-cluster/agora/lambda"
	"github.com/agora-cluster/agora/lambda/batch"
	"github.com/agora-cluster/agora/lambda/ingest"
	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/serve"
	"github.com/agora-cluster/agora/lambda/speed"
	"github.com/agora-cluster/agora/lambda/store"
	"github.com/agora-cluster/agora/lambda/view"
)

// Config is one pipeline run.
type Config struct {
	Spec *plan.Spec
	// Brokers are real Kafka brokers; none runs the embedded broker,
	// listening on BrokerAddr (default 127.0.0.1:0), its log kept under
	// Dir so that a restart keeps the events.
	Brokers    []string
	BrokerAddr string
	// Dir holds the master dataset (and the embedded broker's log).
	Dir string
	// QueryAddr is the query API's address (default 127.0.0.1:0).
	QueryAddr string
	// BatchPeriod overrides the spec's batch period (0: the spec's).
	BatchPeriod time.Duration
	// Cassandra are native-transport addresses (HOST:PORT) of a Cassandra
	// ring that keeps the batch views (layers.serving: cassandra); none
	// keeps them in memory. CassandraRF is their replication factor
	// (default 1).
	Cassandra   []string
	CassandraRF int
	Log         *slog.Logger
}

// Pipeline is a running pipeline.
type Pipeline struct {
	cfg     Config
	Brokers []string // where events are sent
	Query   string   // the query API's address, HOST:PORT

	fake   *kfake.Cluster
	in     *ingest.Ingester
	sp     *speed.Layer
	srv    *serve.Server
	store  *store.Cassandra
	ln     net.Listener
	hs     *http.Server
	board  *lambda.Board // the page at /ui/
	batch  sync.Mutex    // one batch run at a time
	closed sync.Once
	down   chan struct{} // closed by POST /v1/down
	downed sync.Once
	status struct {
		sync.Mutex
		lastBatch time.Time
		lastTook  time.Duration
		lastErr   string
	}
}

// Start starts every part, each listening before Start returns.
func Start(cfg Config) (*Pipeline, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.BatchPeriod == 0 {
		cfg.BatchPeriod = time.Duration(cfg.Spec.Batch.Period)
	}
	if cfg.QueryAddr == "" {
		cfg.QueryAddr = "127.0.0.1:0"
	}
	p := &Pipeline{cfg: cfg, Brokers: cfg.Brokers, down: make(chan struct{})}
	dataset := filepath.Join(cfg.Dir, "dataset")
	if err := os.MkdirAll(dataset, 0o755); err != nil {
		return nil, fmt.Errorf("lambda: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			p.Close()
		}
	}()
	if len(p.Brokers) == 0 {
		c, err := StartBroker(cfg.Dir, cfg.BrokerAddr)
		if err != nil {
			return nil, err
		}
		p.fake = c
		p.Brokers = c.ListenAddrs()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ingest.EnsureTopics(ctx, p.Brokers, cfg.Spec); err != nil {
		return nil, err
	}
	var err error
	if p.in, err = ingest.New(ingest.Config{Spec: cfg.Spec, Brokers: p.Brokers, Dir: dataset}); err != nil {
		return nil, err
	}
	// The batch view is recomputed from the dataset at start, so that the
	// speed layer starts at its watermark and not at the topic's start.
	start := time.Now()
	b, err := p.recompute()
	if err != nil {
		return nil, err
	}
	p.status.lastBatch, p.status.lastTook = start, time.Since(start)
	if p.sp, err = speed.New(cfg.Spec, p.Brokers, b.Watermark); err != nil {
		return nil, err
	}
	if len(cfg.Cassandra) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		st, err := store.Open(ctx, cfg.Cassandra, cfg.Spec.Name, max(cfg.CassandraRF, 1))
		cancel()
		if err != nil {
			return nil, err
		}
		p.store = st
		p.srv = serve.NewStored(cfg.Spec, p.sp, st)
	} else {
		p.srv = serve.New(cfg.Spec, p.sp)
	}
	if err := p.srv.SetBatch(b); err != nil {
		return nil, err
	}
	if p.ln, err = net.Listen("tcp", cfg.QueryAddr); err != nil {
		return nil, fmt.Errorf("lambda: the query API on %s: %w", cfg.QueryAddr, err)
	}
	p.Query = p.ln.Addr().String()
	mux := http.NewServeMux()
	mux.Handle("/v1/query", p.srv)
	mux.HandleFunc("/v1/status", p.serveStatus)
	mux.HandleFunc("/v1/batch", p.serveBatch)
	mux.Handle("/v1/down", DownHandler(cfg.Spec.Name, cfg.Dir, func() { p.downed.Do(func() { close(p.down) }) }))
	p.board = lambda.NewBoard(cfg.Spec, func() (lambda.Progress, error) { return ProgressOf(p.Status()), nil })
	p.board.Mount(mux)
	p.hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ok = true
	return p, nil
}

// ProgressOf is the part of a status the pipeline's page follows.
func ProgressOf(st Status) lambda.Progress {
	return lambda.Progress{BatchWatermark: st.BatchWatermark, SpeedNext: st.SpeedNext, LastBatch: st.LastBatch, LastBatchMS: st.LastBatchMS,
		LastBatchError: st.LastBatchError, Appended: st.Ingest.Appended, DeadLetter: st.Ingest.DeadLetter}
}

// StartBroker runs the embedded broker, one kfake broker listening on
// addr (default 127.0.0.1:0) with its log under dir/broker, so that a
// restart keeps the events.
func StartBroker(dir, addr string) (*kfake.Cluster, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(filepath.Join(dir, "broker")), kfake.SyncWrites(),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, addr) }),
		kfake.AllowAutoTopicCreation())
	if err != nil {
		return nil, fmt.Errorf("lambda: the embedded broker on %s: %w", addr, err)
	}
	return c, nil
}

// Run serves until ctx ends or POST /v1/down, then stops every part.
func (p *Pipeline) Run(ctx context.Context) error {
	defer p.Close()
	watch, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go p.board.Watch(watch)
	errc := make(chan error, 3)
	go func() { errc <- p.in.Run(ctx) }()
	go func() { errc <- p.sp.Run(ctx) }()
	go func() {
		if err := p.hs.Serve(p.ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	tick := time.NewTicker(p.cfg.BatchPeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.down:
			p.cfg.Log.Info("pipeline down on request; its data stays", "work_dir", p.cfg.Dir)
			return nil
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case <-tick.C:
			if _, err := p.Batch(); err != nil {
				p.cfg.Log.Error("batch run failed; the previous batch view stays", "err", err)
			}
		}
	}
}

// Batch runs the batch layer now and swaps its view in.
func (p *Pipeline) Batch() (*view.Batch, error) {
	p.batch.Lock()
	defer p.batch.Unlock()
	start := time.Now()
	b, err := p.recompute()
	p.status.Lock()
	p.status.lastBatch, p.status.lastTook = start, time.Since(start)
	p.status.lastErr = ""
	if err != nil {
		p.status.lastErr = err.Error()
	}
	p.status.Unlock()
	if err != nil {
		return nil, err
	}
	if err := p.srv.SetBatch(b); err != nil {
		p.status.Lock()
		p.status.lastErr = err.Error()
		p.status.Unlock()
		return nil, err
	}
	p.cfg.Log.Info("batch view recomputed", "watermark", b.Watermark, "rows", len(b.Rows), "took", time.Since(start).Round(time.Millisecond))
	return b, nil
}

func (p *Pipeline) recompute() (*view.Batch, error) {
	dataset := filepath.Join(p.cfg.Dir, "dataset")
	wm, err := batch.Watermark(dataset)
	if err != nil {
		return nil, err
	}
	return batch.Recompute(p.cfg.Spec, dataset, wm)
}

// Status is what /v1/status answers.
type Status struct {
	Pipeline       string          `json:"pipeline"`
	Topic          string          `json:"topic"`
	Brokers        []string        `json:"brokers"`
	Embedded       bool            `json:"embedded_broker"`
	Ingest         ingest.Stats    `json:"ingest"`
	BatchWatermark map[int32]int64 `json:"batch_watermark"`
	SpeedNext      map[int32]int64 `json:"speed_next"`
	LastBatch      time.Time       `json:"last_batch"`
	LastBatchMS    int64           `json:"last_batch_ms"`
	LastBatchError string          `json:"last_batch_error,omitempty"`
	BatchPeriodS   float64         `json:"batch_period_seconds"`
	Views          []string        `json:"views"`
}

// Status reports the pipeline's progress.
func (p *Pipeline) Status() Status {
	st := Status{Pipeline: p.cfg.Spec.Name, Topic: p.cfg.Spec.Input.Topic, Brokers: p.Brokers, Embedded: p.fake != nil,
		Ingest: p.in.Stats(), SpeedNext: p.sp.Next(), BatchPeriodS: p.cfg.BatchPeriod.Seconds()}
	if b := p.srv.Batch(); b != nil {
		st.BatchWatermark = b.Watermark
	}
	p.status.Lock()
	st.LastBatch, st.LastBatchMS, st.LastBatchError = p.status.lastBatch, p.status.lastTook.Milliseconds(), p.status.lastErr
	p.status.Unlock()
	for _, v := range p.cfg.Spec.Views {
		st.Views = append(st.Views, v.Name)
	}
	return st
}

func (p *Pipeline) serveStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "GET the status"})
		return
	}
	writeJSON(w, http.StatusOK, p.Status())
}

func (p *Pipeline) serveBatch(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST runs the batch layer now"})
		return
	}
	b, err := p.Batch()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"batch_watermark": b.Watermark, "rows": len(b.Rows)})
}

// Down is what POST /v1/down answers: the pipeline that is stopping
// and where its data stays.
type Down struct {
	Pipeline string `json:"pipeline"`
	WorkDir  string `json:"work_dir"`
}

// DownHandler answers POST /v1/down with Down and then calls stop, which
// ends `up` (and with it the layers, tasks included).
func DownHandler(pipeline, dir string, stop func()) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST stops the pipeline"})
			return
		}
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
		writeJSON(w, http.StatusOK, Down{Pipeline: pipeline, WorkDir: dir})
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		stop()
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// Close stops every part (Run does it when its context ends).
func (p *Pipeline) Close() { p.closed.Do(p.close) }

func (p *Pipeline) close() {
	if p.board != nil {
		p.board.Close() // the page's feeds end, so the Shutdown below need not wait for them
	}
	if p.hs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		p.hs.Shutdown(ctx)
		cancel()
	} else if p.ln != nil {
		p.ln.Close()
	}
	if p.sp != nil {
		p.sp.Close()
	}
	if p.in != nil {
		p.in.Close()
	}
	if p.fake != nil {
		p.fake.Close()
	}
	if p.store != nil {
		p.store.Close()
	}
}
