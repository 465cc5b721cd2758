package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/agora-cluster/agora/cassandra/cassandratest"
	"github.com/agora-cluster/agora/lambda/batch"
	"github.com/agora-cluster/agora/lambda/ingest"
	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/speed"
	"github.com/agora-cluster/agora/lambda/store"
	"github.com/agora-cluster/agora/lambda/view"
)

// The whole pipeline in one process on franz-go's in-process broker: the
// page-view example fed a known stream answers every query exactly as the
// offline computation over the same events does — with the speed layer
// only, after a batch run, with events after the batch run (across the
// boundary), and after the speed worker is replaced by a new one.
func TestPipelineAnswersExactly(t *testing.T) {
	answersExactly(t, func(spec *plan.Spec, sp *speed.Layer) *Server { return New(spec, sp) })
}

// The same with the batch views in a real Cassandra node
// (layers.serving: cassandra): every answer exact at every stage, the
// server holding no batch row in memory (each query reads them from
// Cassandra), and each swap leaving one generation of the view there.
func TestPipelineAnswersExactlyOnCassandra(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Cassandra's JVM; not in -short")
	}
	n := cassandratest.StartNode(t, cassandratest.Home(t), "127.0.0.17", 512)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, []string{n.Addr}, "pageviews", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := answersExactly(t, func(spec *plan.Spec, sp *speed.Layer) *Server { return NewStored(spec, sp, st) })
	if b := srv.Batch(); b == nil || b.Rows != nil {
		t.Errorf("with a store the server holds batch rows in memory: %+v", b)
	}
	gens, err := st.Generations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cur, wm, ok, err := st.Current(ctx)
	if err != nil || !ok || !reflect.DeepEqual(wm, srv.Batch().Watermark) || !reflect.DeepEqual(gens, []int64{cur}) {
		t.Errorf("Cassandra keeps generations %v, current %d (%v, %v) with watermark %v; want only the current one, watermark %v",
			gens, cur, ok, err, wm, srv.Batch().Watermark)
	}
	twoServersOfOnePipeline(t, n.Addr)
}

// memSpeed is a speed layer over a realtime view filled by the test.
type memSpeed struct {
	rt   *view.Realtime
	next map[int32]int64
}

func (m *memSpeed) Next() map[int32]int64            { return m.next }
func (m *memSpeed) Expire(watermark map[int32]int64) { m.rt.Expire(watermark) }
func (m *memSpeed) Query(v plan.View, key string, from, to time.Time, b *view.Batch) []view.Point {
	return view.Query(v, key, from, to, b, m.rt)
}

// Two servers of one pipeline on one Cassandra ring (a relaunched speed
// task beside the old one, two runs of `up`): the one with the older
// batch view swaps it in after the newer one has written and swapped its
// own, and both keep answering exactly, each from its own generation.
// A later swap that deletes the older generation leaves its server with
// a clear error, never silently empty batch rows, until it swaps in a
// newer view itself.
func twoServersOfOnePipeline(t *testing.T, addr string) {
	data, err := os.ReadFile("../../examples/lambda-pageviews/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := plan.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := rand.New(rand.NewPCG(5, 6))
	truth := view.Table{}
	newSpeed := func() *memSpeed { return &memSpeed{rt: view.NewRealtime(), next: map[int32]int64{0: 3 * view.Segment}} }
	speeds := []*memSpeed{newSpeed(), newSpeed()}
	batches := []*view.Batch{ // up to the first, second and third segment
		{Watermark: map[int32]int64{0: view.Segment}, Rows: view.Table{}},
		{Watermark: map[int32]int64{0: 2 * view.Segment}, Rows: view.Table{}},
		{Watermark: map[int32]int64{0: 3 * view.Segment}, Rows: view.Table{}},
	}
	for o := int64(0); o < 3*view.Segment; o++ {
		ev, err := spec.ParseEvent([]byte(fmt.Sprintf(`{"ts":%d,"url":"/p%d","user":"u%d","bytes":%d}`,
			time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC).UnixMilli()+r.Int64N(3*3600e3), r.IntN(3), r.IntN(40), r.IntN(5000))))
		if err != nil {
			t.Fatal(err)
		}
		truth.Apply(spec, ev)
		for _, sp := range speeds {
			sp.rt.Apply(spec, 0, o, ev)
		}
		for _, b := range batches {
			if o < b.Watermark[0] {
				b.Rows.Apply(spec, ev)
			}
		}
	}
	var servers []*Server
	for _, sp := range speeds {
		st, err := store.Open(ctx, []string{addr}, "twoservers", 1)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		servers = append(servers, NewStored(spec, sp, st))
	}
	older, newer := servers[0], servers[1]
	check := func(stage string, srv *Server) {
		t.Helper()
		for _, v := range spec.Views {
			keys := [][]string{{"/p0"}, {"/p2"}}
			if len(v.Key) == 0 {
				keys = [][]string{nil}
			}
			for _, k := range keys {
				a, err := srv.Query(v.Name, k, time.Unix(0, 0), time.Unix(1<<40, 0))
				if err != nil {
					t.Fatalf("%s: view %s key %v: %v", stage, v.Name, k, err)
				}
				got, want := map[int64]float64{}, map[int64]float64{}
				for _, p := range a.Points {
					got[p.Bucket.Unix()] = p.Value
				}
				for row, agg := range truth {
					if row.View == v.Name && row.Key == view.KeyOf(k...) {
						want[row.Bucket] = agg.Value(v.Type)
					}
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: view %s key %v: got %v, want %v", stage, v.Name, k, got, want)
				}
			}
		}
	}
	if err := newer.SetBatch(batches[1]); err != nil {
		t.Fatal(err)
	}
	if err := older.SetBatch(batches[0]); err != nil {
		t.Fatal(err)
	}
	check("the newer server, after the older one swapped", newer)
	if cur, wm, ok, err := newer.store.(*store.Cassandra).Current(ctx); err != nil || !ok || !reflect.DeepEqual(wm, batches[1].Watermark) || cur != newer.gen {
		t.Errorf("after the older server's swap the store's current generation is %d with watermark %v (%v, %v); want the newer server's, %d with %v",
			cur, wm, ok, err, newer.gen, batches[1].Watermark)
	}
	check("the older server, after its swap", older)

	// The newer server's next swap deletes the older generation: the
	// older server says so instead of answering without its batch rows.
	if err := newer.SetBatch(batches[2]); err != nil {
		t.Fatal(err)
	}
	check("the newer server after its second swap", newer)
	_, err = older.Query("views", []string{"/p0"}, time.Unix(0, 0), time.Unix(1<<40, 0))
	if err == nil || !strings.Contains(err.Error(), "swap deleted it") {
		t.Fatalf("the older server's query after its generation was deleted: %v; want the store's error saying so", err)
	}
	if err := older.SetBatch(batches[2]); err != nil {
		t.Fatal(err)
	}
	check("the older server after swapping in the newest view", older)
}

// answersExactly runs the pipeline on a server newServer makes and
// returns that server.
func answersExactly(t *testing.T, newServer func(*plan.Spec, *speed.Layer) *Server) *Server {
	data, err := os.ReadFile("../../examples/lambda-pageviews/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := plan.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kfake.NewCluster()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := ingest.EnsureTopics(ctx, brokers, spec); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in, err := ingest.New(ingest.Config{Spec: spec, Brokers: brokers, Dir: dir, MaxChunk: 500})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	sp, err := speed.New(spec, brokers, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(spec, sp)
	hs := httptest.NewServer(srv)
	defer hs.Close()

	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	r := rand.New(rand.NewPCG(3, 4))
	var all []plan.Event
	next := map[int32]int64{}
	produce := func(n int) {
		var recs []*kgo.Record
		for i := 0; i < n; i++ {
			line := fmt.Sprintf(`{"ts":%d,"url":"/p%d","user":"u%d","bytes":%d}`,
				time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC).UnixMilli()+r.Int64N(6*3600e3), r.IntN(4), r.IntN(50), r.IntN(5000))
			ev, err := spec.ParseEvent([]byte(line))
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, ev)
			recs = append(recs, &kgo.Record{Topic: spec.Input.Topic, Partition: int32(r.IntN(2)), Value: []byte(line)})
		}
		res := prod.ProduceSync(ctx, recs...)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, pr := range res {
			next[pr.Record.Partition] = pr.Record.Offset + 1
		}
	}
	// catchUp polls the ingester and the speed layer until both are past
	// every produced offset.
	catchUp := func() {
		var last string
		for ctx.Err() == nil {
			committed, err := ingest.Recover(dir)
			if err != nil {
				t.Fatal(err)
			}
			sn := sp.Next()
			last = fmt.Sprintf("produced up to %v, ingested %v, speed at %v", next, committed, sn)
			done := true
			for p, n := range next {
				done = done && committed[p] >= n && sn[p] >= n
			}
			if done {
				return
			}
			// Each waits at most a second for records of its own.
			for _, poll := range []func(context.Context) error{in.Poll, sp.Poll} {
				pctx, pcancel := context.WithTimeout(ctx, time.Second)
				poll(pctx)
				pcancel()
			}
		}
		t.Fatalf("the pipeline did not catch up: %s", last)
	}
	check := func(stage string) {
		t.Helper()
		truth := view.Table{}
		for _, ev := range all {
			truth.Apply(spec, ev)
		}
		for _, v := range spec.Views {
			keys := [][]string{{"/p0"}, {"/p2"}, {"/nosuch"}}
			if len(v.Key) == 0 {
				keys = [][]string{nil}
			}
			for _, k := range keys {
				want := map[string]float64{}
				for row, a := range truth {
					if row.View == v.Name && row.Key == view.KeyOf(k...) {
						want[time.Unix(row.Bucket, 0).UTC().Format(time.RFC3339)] = a.Value(v.Type)
					}
				}
				q := url.Values{"view": {v.Name}, "key": k}
				resp, err := http.Get(hs.URL + "/v1/query?" + q.Encode())
				if err != nil {
					t.Fatal(err)
				}
				var a Answer
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || json.Unmarshal(body, &a) != nil {
					t.Fatalf("%s: query %v: %d %s", stage, q, resp.StatusCode, body)
				}
				got := map[string]float64{}
				for _, p := range a.Points {
					got[p.Bucket.UTC().Format(time.RFC3339)] = p.Value
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: view %s key %v: got %v, want %v", stage, v.Name, k, got, want)
				}
			}
		}
	}
	runBatch := func() {
		wm, err := batch.Watermark(dir)
		if err != nil {
			t.Fatal(err)
		}
		b, err := batch.Recompute(spec, dir, wm)
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.SetBatch(b); err != nil {
			t.Fatal(err)
		}
	}

	produce(3000)
	catchUp()
	check("speed layer only")
	runBatch()
	if wm := srv.Batch().Watermark; wm[0] == 0 && wm[1] == 0 {
		t.Fatalf("the batch run covered nothing: watermark %v", wm)
	}
	check("batch and speed")
	produce(1500)
	catchUp()
	check("events after the batch run")
	runBatch()
	check("a second batch run")

	// A new speed worker starts from the batch watermark and rebuilds.
	sp.Close()
	sp, err = speed.New(spec, brokers, srv.Batch().Watermark)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	srv.speed = sp
	produce(500)
	catchUp()
	check("after the speed worker was replaced")
	return srv
}

// Bad queries get a clear error and the status that says so.
func TestBadQueries(t *testing.T) {
	data, _ := os.ReadFile("../../examples/lambda-pageviews/pipeline.yaml")
	spec, err := plan.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kfake.NewCluster(kfake.SeedTopics(2, spec.Input.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sp, err := speed.New(spec, c.ListenAddrs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	hs := httptest.NewServer(New(spec, sp))
	defer hs.Close()
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/v1/query?view=nosuch&key=a", 404, `unknown view "nosuch" (views: views, visitors, bytes, total)`},
		{"/v1/query?view=views", 400, "give 1 key value(s), got 0"},
		{"/v1/query?key=a", 400, "view: missing"},
		{"/v1/query?view=views&key=a&from=yesterday", 400, `from: "yesterday" is neither RFC 3339`},
		{"/v2/query", 404, "no such endpoint"},
	} {
		resp, err := http.Get(hs.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Error string }
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.code || !strings.Contains(e.Error, tc.want) {
			t.Errorf("%s: %d %q (%v); want %d and %q", tc.path, resp.StatusCode, e.Error, err, tc.code, tc.want)
		}
	}
}

// fakeStore keeps generations in memory; Put fails while failPut is set.
type fakeStore struct {
	gens    map[int64]*view.Batch
	next    int64
	failPut bool
}

func (f *fakeStore) Put(_ context.Context, b *view.Batch) (int64, error) {
	if f.failPut {
		return 0, fmt.Errorf("store: writing view views key %q: no node reachable", "/p0")
	}
	f.next++
	f.gens[f.next] = b
	return f.next, nil
}

func (f *fakeStore) Swap(context.Context, int64, map[int32]int64) error { return nil }

func (f *fakeStore) DropOthers(_ context.Context, gen int64) error {
	for g := range f.gens {
		if g != gen {
			delete(f.gens, g)
		}
	}
	return nil
}

func (f *fakeStore) Rows(_ context.Context, gen int64, v, key string) (view.Table, error) {
	out := view.Table{}
	for r, a := range f.gens[gen].Rows {
		if r.View == v && r.Key == key {
			out[r] = a
		}
	}
	return out, nil
}

// A batch view the store fails to write is refused with the store's
// error, and nothing changes: the previous view is still the one served,
// and the speed layer keeps the segments the new view would have
// absorbed, so the answers stay exact.
func TestStoreFailureKeepsThePreviousView(t *testing.T) {
	data, _ := os.ReadFile("../../examples/lambda-pageviews/pipeline.yaml")
	spec, err := plan.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kfake.NewCluster(kfake.SeedTopics(2, spec.Input.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sp, err := speed.New(spec, c.ListenAddrs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	st := &fakeStore{gens: map[int64]*view.Batch{}}
	srv := NewStored(spec, sp, st)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(spec.Input.Topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var recs []*kgo.Record
	for i := 0; i < 2*view.Segment; i++ {
		recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf(`{"ts":%d,"url":"/p0","user":"u%d","bytes":1}`, int64(1796536800000)+int64(i), i%7))})
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for sp.Next()[0] < 2*view.Segment && ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		sp.Poll(pctx)
		pcancel()
	}
	views := func() float64 {
		t.Helper()
		a, err := srv.Query("views", []string{"/p0"}, time.Unix(0, 0), time.Unix(1<<40, 0))
		if err != nil || len(a.Points) != 1 {
			t.Fatalf("query: %+v, %v", a, err)
		}
		return a.Points[0].Value
	}
	if v := views(); v != 2*view.Segment {
		t.Fatalf("before any batch view: %v views, want %d", v, 2*view.Segment)
	}
	// A first view of the first segment, then a second of both that the
	// store fails to take.
	first := &view.Batch{Watermark: map[int32]int64{0: view.Segment}, Rows: view.Table{}}
	second := &view.Batch{Watermark: map[int32]int64{0: 2 * view.Segment}, Rows: view.Table{}}
	for i, r := range recs {
		ev, err := spec.ParseEvent(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if i < view.Segment {
			first.Rows.Apply(spec, ev)
		}
		second.Rows.Apply(spec, ev)
	}
	if err := srv.SetBatch(first); err != nil {
		t.Fatal(err)
	}
	st.failPut = true
	if err := srv.SetBatch(second); err == nil || !strings.Contains(err.Error(), "no node reachable") {
		t.Fatalf("SetBatch with a failing store: %v; want the store's error", err)
	}
	if wm := srv.Batch().Watermark; wm[0] != view.Segment {
		t.Errorf("after the failed swap the served watermark is %v, want the first view's", wm)
	}
	if v := views(); v != 2*view.Segment {
		t.Errorf("after the failed swap: %v views, want %d", v, 2*view.Segment)
	}
	if len(st.gens) != 1 {
		t.Errorf("the store keeps %d generations, want the first view's only", len(st.gens))
	}
}

// gatedStore keeps generations in memory; its first Rows waits for gate.
type gatedStore struct {
	mu      sync.Mutex
	gens    map[int64]*view.Batch
	reads   int
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedStore) Put(_ context.Context, b *view.Batch) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	gen := int64(len(g.gens) + 1)
	g.gens[gen] = b
	return gen, nil
}

func (g *gatedStore) Swap(context.Context, int64, map[int32]int64) error { return nil }
func (g *gatedStore) DropOthers(context.Context, int64) error            { return nil }

func (g *gatedStore) Rows(ctx context.Context, gen int64, v, key string) (view.Table, error) {
	g.mu.Lock()
	g.reads++
	first := g.reads == 1
	b := g.gens[gen]
	g.mu.Unlock()
	if first {
		close(g.entered)
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	out := view.Table{}
	for r, a := range b.Rows {
		if r.View == v && r.Key == key {
			out[r] = a
		}
	}
	return out, nil
}

// A query waiting on a slow store does not hold up a swap, and once its
// read ends it answers from the view swapped in meanwhile, exactly: it
// never merges the old view's rows with a speed layer expired for the
// new one.
func TestSlowStoreReadDoesNotBlockSwap(t *testing.T) {
	data, err := os.ReadFile("../../examples/lambda-pageviews/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := plan.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	sp := &memSpeed{rt: view.NewRealtime(), next: map[int32]int64{0: 2 * view.Segment}}
	first := &view.Batch{Watermark: map[int32]int64{0: view.Segment}, Rows: view.Table{}}
	second := &view.Batch{Watermark: map[int32]int64{0: 2 * view.Segment}, Rows: view.Table{}}
	for o := int64(0); o < 2*view.Segment; o++ {
		ev, err := spec.ParseEvent([]byte(fmt.Sprintf(`{"ts":1796536800000,"url":"/p0","user":"u%d","bytes":1}`, o%7)))
		if err != nil {
			t.Fatal(err)
		}
		sp.rt.Apply(spec, 0, o, ev)
		if o < view.Segment {
			first.Rows.Apply(spec, ev)
		}
		second.Rows.Apply(spec, ev)
	}
	st := &gatedStore{gens: map[int64]*view.Batch{}, entered: make(chan struct{}), gate: make(chan struct{})}
	srv := NewStored(spec, sp, st)
	if err := srv.SetBatch(first); err != nil {
		t.Fatal(err)
	}
	type result struct {
		a   *Answer
		err error
	}
	res := make(chan result, 1)
	go func() {
		a, err := srv.Query("views", []string{"/p0"}, time.Unix(0, 0), time.Unix(1<<40, 0))
		res <- result{a, err}
	}()
	defer close(st.gate)
	select {
	case <-st.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the query never read the store")
	}
	swapped := make(chan error, 1)
	go func() { swapped <- srv.SetBatch(second) }()
	select {
	case err := <-swapped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("SetBatch waited for a query's store read")
	}
	st.gate <- struct{}{}
	r := <-res
	if r.err != nil || len(r.a.Points) != 1 || r.a.Points[0].Value != 2*view.Segment || r.a.BatchWatermark[0] != 2*view.Segment {
		t.Fatalf("the query across the swap: %+v, %v; want %d views from the batch view with watermark %d", r.a, r.err, 2*view.Segment, 2*view.Segment)
	}
}
