package stormspeed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/agora-cluster/agora/lambda/batch"
	"github.com/agora-cluster/agora/lambda/ingest"
	"github.com/agora-cluster/agora/lambda/pipeline"
	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/serve"
	"github.com/agora-cluster/agora/lambda/store"
	"github.com/agora-cluster/agora/lambda/view"
	"github.com/agora-cluster/agora/storm/multilang"
)

// BoltConfig is the counting bolt.
type BoltConfig struct {
	Spec    *plan.Spec
	WorkDir string
	Addr    string // the query API's address
	// Cassandra and CassandraRF keep the batch views in Cassandra (as in
	// pipeline.Config); none keeps them in memory.
	Cassandra   []string
	CassandraRF int
	Log         *slog.Logger
}

// RunBolt is the bolt: in and out are its multilang streams. It serves
// the query API until its input ends.
func RunBolt(cfg BoltConfig, in io.Reader, out io.Writer) error {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	c, _, err := handshake(in, out)
	if err != nil {
		return err
	}
	// Whatever a bolt before this one applied is lost: the spout reads
	// the topic again from the batch watermark once it sees this.
	if err := writeFile(resetFile(cfg.WorkDir), []byte(fmt.Sprintf("%d %d", os.Getpid(), time.Now().UnixNano()))); err != nil {
		return fmt.Errorf("storm bolt: the reset file: %w", err)
	}
	f := &follower{path: pipeline.ViewFile(cfg.WorkDir)}
	b, err := f.load()
	if err != nil {
		return err
	}
	var from map[int32]int64
	if b != nil {
		from = b.Watermark
	}
	rt := NewRealtime(cfg.Spec, from)
	srv := serve.New(cfg.Spec, rt)
	if len(cfg.Cassandra) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		st, err := store.Open(ctx, cfg.Cassandra, cfg.Spec.Name, max(cfg.CassandraRF, 1))
		cancel()
		if err != nil {
			return err
		}
		defer st.Close()
		srv = serve.NewStored(cfg.Spec, rt, st)
	}
	if b != nil {
		if err := srv.SetBatch(b); err != nil {
			return err
		}
		f.swapped()
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("storm bolt: the query API on %s: %w", cfg.Addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/query", srv)
	mux.HandleFunc("/v1/status", func(w http.ResponseWriter, r *http.Request) {
		st := pipeline.Status{Pipeline: cfg.Spec.Name, Topic: cfg.Spec.Input.Topic, SpeedNext: rt.Next()}
		if b := srv.Batch(); b != nil {
			st.BatchWatermark = b.Watermark
		}
		st.Ingest, _ = ingest.DatasetStats(pipeline.DatasetDir(cfg.WorkDir))
		for _, v := range cfg.Spec.Views {
			st.Views = append(st.Views, v.Name)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	if err := writeFile(AddrFile(cfg.WorkDir), []byte(ln.Addr().String())); err != nil {
		return fmt.Errorf("storm bolt: the address file: %w", err)
	}
	cfg.Log.Info("storm bolt serving", "api", ln.Addr().String(), "from", from)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.follow(ctx, srv, cfg.Log)
	for {
		raw, err := c.read()
		if err != nil {
			return err
		}
		var t multilang.Tuple
		if err := json.Unmarshal(raw, &t); err != nil {
			return fmt.Errorf("storm bolt: %w: %s", errProtocol, raw)
		}
		if t.Stream == "__heartbeat" {
			if err := c.send(map[string]string{"command": "sync"}); err != nil {
				return err
			}
			continue
		}
		if len(t.Values) == 3 {
			p, _ := t.Values[0].(float64)
			o, _ := t.Values[1].(float64)
			ev, _ := t.Values[2].(string)
			rt.Apply(int32(p), int64(o), []byte(ev))
		}
		if err := c.send(map[string]string{"command": "ack", "id": t.ID}); err != nil {
			return err
		}
	}
}

// follower swaps in each new batch view the batch layer writes.
type follower struct {
	path    string
	seen    os.FileInfo // the view file last swapped in
	pending os.FileInfo // the view file load last read
}

// load reads the view file if it changed since the last one swapped in
// (nil, nil when it did not or there is none). A view that fails to swap
// in is read again on the next load.
func (f *follower) load() (*view.Batch, error) {
	fi, err := os.Stat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if f.seen != nil && os.SameFile(f.seen, fi) && f.seen.ModTime().Equal(fi.ModTime()) {
		return nil, nil
	}
	b, err := batch.Load(f.path)
	if err != nil {
		return nil, err
	}
	f.pending = fi
	return b, nil
}

// swapped records the view file load last read as swapped in (or as
// skipped for good), so that it is not read again until it changes.
func (f *follower) swapped() { f.seen = f.pending }

func (f *follower) follow(ctx context.Context, srv *serve.Server, log *slog.Logger) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var retry time.Duration // the wait after a failed swap, doubling
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		b, err := f.load()
		if err != nil {
			log.Error("loading the batch view; the previous one stays", "err", err)
			continue
		}
		if b == nil {
			continue
		}
		if cur := srv.Batch(); cur != nil && !covers(b.Watermark, cur.Watermark) {
			log.Warn("a batch view older than the one served; kept the served one", "watermark", b.Watermark)
			f.swapped()
			continue
		}
		if err := srv.SetBatch(b); err != nil {
			// Each try writes a whole generation to the store: back off
			// (0.2 s doubling to 30 s) rather than try every tick.
			retry = min(max(2*retry, 200*time.Millisecond), 30*time.Second)
			log.Error("swapping in the batch view; the previous one stays and it is tried again", "err", err, "retry_in", retry)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry):
			}
			continue
		}
		retry = 0
		f.swapped()
		log.Info("batch view swapped in", "watermark", b.Watermark, "rows", len(b.Rows))
	}
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
