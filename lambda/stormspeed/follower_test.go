package stormspeed

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/agora-cluster/agora/lambda/batch"
	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/serve"
	"github.com/agora-cluster/agora/lambda/view"
)

// flakyStore fails its first fails Puts, then keeps the views in memory.
type flakyStore struct {
	mu    sync.Mutex
	fails int
	puts  int
	gens  map[int64]*view.Batch
}

func (f *flakyStore) Put(_ context.Context, b *view.Batch) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts++
	if f.puts <= f.fails {
		return 0, errors.New("store: no node reachable")
	}
	f.gens[int64(f.puts)] = b
	return int64(f.puts), nil
}

func (f *flakyStore) Swap(context.Context, int64, map[int32]int64) error { return nil }
func (f *flakyStore) DropOthers(context.Context, int64) error            { return nil }
func (f *flakyStore) Rows(_ context.Context, gen int64, v, key string) (view.Table, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gens[gen].Rows, nil
}

// A batch view the store fails to take is tried again on a later tick,
// not left unserved until the batch layer writes another.
func TestFollowerRetriesAFailedSwap(t *testing.T) {
	data, err := os.ReadFile("../../examples/lambda-pageviews/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := plan.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "view.json")
	if err := batch.Save(path, &view.Batch{Watermark: map[int32]int64{0: view.Segment}, Rows: view.Table{}}); err != nil {
		t.Fatal(err)
	}
	st := &flakyStore{fails: 2, gens: map[int64]*view.Batch{}}
	srv := serve.NewStored(spec, NewRealtime(spec, nil), st)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&follower{path: path}).follow(ctx, srv, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for srv.Batch() == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if b := srv.Batch(); b == nil || b.Watermark[0] != view.Segment {
		st.mu.Lock()
		defer st.mu.Unlock()
		t.Fatalf("after %d Puts (the first %d failing) the served view is %+v; want the view file's, watermark %d", st.puts, st.fails, b, view.Segment)
	}
}
