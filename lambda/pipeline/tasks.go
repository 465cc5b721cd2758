package pipeline

// The layers as separate processes, which `agora lambda up --master` runs
// as agora tasks (lambda/framework): the ingester, the batch job, and the
// speed layer serving the queries. They share the work directory — the
// master dataset under dataset/ and the current batch view in
// views/batch.json — and the brokers.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/lambda/batch"
	"github.com/agora-cluster/agora/lambda/ingest"
	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/serve"
	"github.com/agora-cluster/agora/lambda/speed"
	"github.com/agora-cluster/agora/lambda/store"
	"github.com/agora-cluster/agora/lambda/view"
)

// DatasetDir is where the master dataset of work directory dir is.
func DatasetDir(dir string) string { return filepath.Join(dir, "dataset") }

// ViewFile is where the current batch view of work directory dir is.
func ViewFile(dir string) string { return filepath.Join(dir, "views", "batch.json") }

// RunIngest appends the input topic to dir's dataset until ctx ends.
//
// It first takes the dataset's lock, waiting while another ingester holds
// it: a task reported lost may still run on an agent cut off from the
// master, and two ingesters would commit overlapping chunks (the kernel
// frees the lock of a process that dies, however it dies).
func RunIngest(ctx context.Context, spec *plan.Spec, brokers []string, dir string, log *slog.Logger) error {
	if err := os.MkdirAll(DatasetDir(dir), 0o755); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "ingest.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	defer lock.Close()
	for waited := false; ; waited = true {
		err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("ingest: locking %s: %w", lock.Name(), err)
		}
		if !waited {
			log.Warn("another ingester holds the dataset's lock; waiting for it to exit", "lock", lock.Name())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
	in, err := ingest.New(ingest.Config{Spec: spec, Brokers: brokers, Dir: DatasetDir(dir)})
	if err != nil {
		return err
	}
	defer in.Close()
	if err := in.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// RunBatchJob recomputes every view from dir's dataset and replaces dir's
// batch view with it; pause (for fault tests) holds the finished view
// before it is written, as does $AGORA_LAMBDA_HOLD_BATCH_UNTIL (HoldBatchEnv).
func RunBatchJob(ctx context.Context, spec *plan.Spec, dir string, pause time.Duration) (*view.Batch, error) {
	wm, err := batch.Watermark(DatasetDir(dir))
	if err != nil {
		return nil, err
	}
	b, err := batch.Recompute(spec, DatasetDir(dir), wm)
	if err != nil {
		return nil, err
	}
	if err := holdBeforeSwap(ctx, pause); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(ViewFile(dir)), 0o755); err != nil {
		return nil, fmt.Errorf("batch: %w", err)
	}
	return b, batch.Save(ViewFile(dir), b)
}

// HoldBatchEnv names an environment variable for fault tests: when it
// names a file, a batch job holds its finished view (after the pause)
// until that file exists, so a test can kill an attempt that is sure to
// be still running and then let the next attempt finish.
const HoldBatchEnv = "AGORA_LAMBDA_HOLD_BATCH_UNTIL"

// holdBeforeSwap holds a batch job's finished view for pause, and then
// until the file named by $AGORA_LAMBDA_HOLD_BATCH_UNTIL exists (when
// set), or until ctx ends.
func holdBeforeSwap(ctx context.Context, pause time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(pause):
	}
	file := os.Getenv(HoldBatchEnv)
	if file == "" {
		return nil
	}
	for {
		if _, err := os.Stat(file); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// SpeedConfig is one speed-layer task.
type SpeedConfig struct {
	Spec    *plan.Spec
	Brokers []string
	Dir     string // the work directory
	Addr    string // the query API's address
	// Cassandra and CassandraRF are as in Config: where the batch views
	// are kept and served from, if not in memory.
	Cassandra   []string
	CassandraRF int
	Log         *slog.Logger
}

// RunSpeed runs the speed layer and the query API (/v1/query, /v1/status)
// until ctx ends. It starts from the batch view in cfg.Dir (the topic's
// start without one) and swaps in each new view a batch job writes.
func RunSpeed(ctx context.Context, cfg SpeedConfig) error {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	s := &speedTask{cfg: cfg}
	b, err := s.loadView()
	if err != nil {
		return err
	}
	var from map[int32]int64
	if b != nil {
		from = b.Watermark
	}
	sp, err := speed.New(cfg.Spec, cfg.Brokers, from)
	if err != nil {
		return err
	}
	defer sp.Close()
	s.sp, s.srv = sp, serve.New(cfg.Spec, sp)
	if len(cfg.Cassandra) > 0 {
		octx, cancel := context.WithTimeout(ctx, time.Minute)
		st, err := store.Open(octx, cfg.Cassandra, cfg.Spec.Name, max(cfg.CassandraRF, 1))
		cancel()
		if err != nil {
			return err
		}
		defer st.Close()
		s.srv = serve.NewStored(cfg.Spec, sp, st)
	}
	if b != nil {
		if err := s.srv.SetBatch(b); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("lambda: the query API on %s: %w", cfg.Addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/query", s.srv)
	mux.HandleFunc("/v1/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.status()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 3)
	go func() { errc <- sp.Run(ctx) }()
	go func() { errc <- hs.Serve(ln) }()
	go func() { errc <- s.follow(ctx) }()
	cfg.Log.Info("speed layer up", "api", ln.Addr().String(), "from", from)
	err = <-errc
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	hs.Shutdown(sctx)
	cancel()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

type speedTask struct {
	cfg SpeedConfig
	sp  *speed.Layer
	srv *serve.Server

	mu   sync.Mutex
	seen os.FileInfo // of the view file last loaded
}

// loadView reads the view file if it changed since the last load (nil,
// nil when it did not or there is none).
func (s *speedTask) loadView() (*view.Batch, error) {
	fi, err := os.Stat(ViewFile(s.cfg.Dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	same := s.seen != nil && os.SameFile(s.seen, fi) && s.seen.ModTime().Equal(fi.ModTime())
	s.mu.Unlock()
	if same {
		return nil, nil
	}
	b, err := batch.Load(ViewFile(s.cfg.Dir))
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.seen = fi
	s.mu.Unlock()
	return b, nil
}

// follow swaps in each new batch view until ctx ends.
func (s *speedTask) follow(ctx context.Context) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		b, err := s.loadView()
		if err != nil {
			s.cfg.Log.Error("loading the batch view; the previous one stays", "err", err)
			continue
		}
		if b == nil {
			continue
		}
		// A view older than the one served (two batch jobs finishing out
		// of order) would miss the realtime segments already expired.
		if cur := s.srv.Batch(); cur != nil && !covers(b.Watermark, cur.Watermark) {
			s.cfg.Log.Warn("a batch view older than the one served; kept the served one", "watermark", b.Watermark, "served", cur.Watermark)
			continue
		}
		if err := s.srv.SetBatch(b); err != nil {
			s.cfg.Log.Error("swapping in the batch view; the previous one stays", "err", err)
			continue
		}
		s.cfg.Log.Info("batch view swapped in", "watermark", b.Watermark, "rows", len(b.Rows))
	}
}

func (s *speedTask) status() (Status, error) {
	st := Status{Pipeline: s.cfg.Spec.Name, Topic: s.cfg.Spec.Input.Topic, Brokers: s.cfg.Brokers, SpeedNext: s.sp.Next()}
	var err error
	if st.Ingest, err = ingest.DatasetStats(DatasetDir(s.cfg.Dir)); err != nil {
		return st, err
	}
	if b := s.srv.Batch(); b != nil {
		st.BatchWatermark = b.Watermark
	}
	for _, v := range s.cfg.Spec.Views {
		st.Views = append(st.Views, v.Name)
	}
	return st, nil
}

// covers reports whether watermark a is at or past b on every partition.
func covers(a, b map[int32]int64) bool {
	for p, o := range b {
		if a[p] < o {
			return false
		}
	}
	return true
}
