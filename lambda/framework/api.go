package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/agora-cluster/agora/lambda"
	"github.com/agora-cluster/agora/lambda/batch"
	"github.com/agora-cluster/agora/lambda/pipeline"
	"github.com/agora-cluster/agora/lambda/stormspeed"
)

// API is the pipeline's query API in front of its tasks: /v1/query goes
// to the speed task (which holds both views), /v1/status is the speed
// task's with the tasks and the batch runs added, and POST /v1/batch runs
// a batch job and answers once the speed task serves its view. POST
// /v1/down ends `up`.
type API struct {
	F *Framework
	// Dir is the work directory (the batch view's file is read from it).
	Dir string
	// Status fills in what only `up` knows (brokers, the batch period).
	Status func(*pipeline.Status)
	// Down ends `up`, which tears the framework down and so kills the
	// layers' tasks (POST /v1/down).
	Down func()
	// SpeedAddr, when set, is where the query API runs instead of the
	// speed task (the bolt of a topology on agora's Storm framework).
	SpeedAddr func() string
	// Board, when set, serves the pipeline's page at /ui/ (package lambda).
	Board *lambda.Board

	// Topology, when set, describes the speed layer's topology on a real
	// Nimbus for /v1/status.
	Topology func(context.Context) stormspeed.Topology

	client http.Client
	mu     sync.Mutex
	last   struct {
		at   time.Time
		took time.Duration
		err  string
	}
}

// Handler serves the API.
func (a *API) Handler() http.Handler {
	a.client.Timeout = 30 * time.Second
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/query", a.query)
	mux.HandleFunc("/v1/status", a.status)
	mux.HandleFunc("/v1/batch", a.batch)
	mux.Handle("/v1/down", pipeline.DownHandler(a.F.cfg.Name, a.Dir, a.Down))
	if a.Board != nil {
		a.Board.Mount(mux)
	}
	return mux
}

// speedAddr is where the query API over both views runs ("" while
// nothing serves it).
func (a *API) speedAddr() string {
	if a.SpeedAddr != nil {
		return a.SpeedAddr()
	}
	return a.F.SpeedAddr()
}

func (a *API) speed(w http.ResponseWriter) (string, bool) {
	addr := a.speedAddr()
	if addr == "" {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the speed-layer task is not running yet (see /v1/status); try again"})
		return "", false
	}
	return addr, true
}

func (a *API) query(w http.ResponseWriter, r *http.Request) {
	addr, ok := a.speed(w)
	if !ok {
		return
	}
	p := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: addr})
	p.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": fmt.Sprintf("the speed-layer task at %s: %v", addr, err)})
	}
	p.ServeHTTP(w, r)
}

// Status is /v1/status in front of the tasks.
type Status struct {
	pipeline.Status
	Tasks []TaskStatus `json:"tasks"`
	// Topology is the speed layer's topology on a real Nimbus, if it runs
	// on one.
	Topology *stormspeed.Topology `json:"topology,omitempty"`
	// SpeedError, if set, is why the speed task's own status (ingest,
	// watermarks, views) is missing: it could not be asked.
	SpeedError string `json:"speed_error,omitempty"`
}

func (a *API) speedStatus(ctx context.Context, addr string) (pipeline.Status, error) {
	var st pipeline.Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return st, fmt.Errorf("the speed-layer task at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("the speed-layer task at %s: %s: %s", addr, resp.Status, body)
	}
	return st, json.Unmarshal(body, &st)
}

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "GET the status"})
		return
	}
	st, err := a.Current(r.Context())
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// Current is the pipeline's status: the speed task's (while one runs)
// with the tasks and the batch runs added. The error is always nil: a
// speed task that cannot be asked is reported in SpeedError.
func (a *API) Current(ctx context.Context) (Status, error) {
	st := Status{Tasks: a.F.Tasks()}
	if addr := a.speedAddr(); addr != "" {
		// A speed task that cannot answer at the moment (restarting,
		// busy) leaves its part of the status empty and says why; the
		// tasks, the batch runs and the topology are still worth seeing.
		if s, err := a.speedStatus(ctx, addr); err != nil {
			st.SpeedError = err.Error()
		} else {
			st.Status = s
		}
	}
	if a.Status != nil {
		a.Status(&st.Status)
	}
	if a.Topology != nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		top := a.Topology(ctx)
		cancel()
		st.Topology = &top
	}
	a.mu.Lock()
	st.LastBatch, st.LastBatchMS, st.LastBatchError = a.last.at, a.last.took.Milliseconds(), a.last.err
	a.mu.Unlock()
	return st, nil
}

// RunBatch runs a batch job and waits until the speed task serves its view.
func (a *API) RunBatch(ctx context.Context) (map[int32]int64, int, error) {
	start := time.Now()
	err := a.F.RunBatch(ctx)
	var b *batchView
	if err == nil {
		b, err = a.awaitServed(ctx)
	}
	a.mu.Lock()
	a.last.at, a.last.took, a.last.err = start, time.Since(start), ""
	if err != nil {
		a.last.err = err.Error()
	}
	a.mu.Unlock()
	if err != nil {
		return nil, 0, err
	}
	return b.watermark, b.rows, nil
}

type batchView struct {
	watermark map[int32]int64
	rows      int
}

// awaitServed waits until the speed task serves the batch view on disk.
func (a *API) awaitServed(ctx context.Context) (*batchView, error) {
	b, err := batch.Load(pipeline.ViewFile(a.Dir))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		if addr := a.speedAddr(); addr != "" {
			if st, err := a.speedStatus(ctx, addr); err == nil && covers(st.BatchWatermark, b.Watermark) {
				return &batchView{b.Watermark, len(b.Rows)}, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the speed-layer task did not swap in the batch view (watermark %v): %w", b.Watermark, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func covers(served, wm map[int32]int64) bool {
	for p, o := range wm {
		if served[p] < o {
			return false
		}
	}
	return true
}

func (a *API) batch(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST runs the batch layer now"})
		return
	}
	wm, rows, err := a.RunBatch(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"batch_watermark": wm, "rows": rows})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
