package view

import (
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/agora-cluster/agora/lambda/plan"
)

func exampleSpec(t *testing.T) *plan.Spec {
	data, err := os.ReadFile("../../examples/lambda-pageviews/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := plan.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type logged struct {
	part   int32
	offset int64
	ev     plan.Event
}

// events makes n page views over three hours on two partitions.
func events(t *testing.T, spec *plan.Spec, n int, seed uint64) []logged {
	r := rand.New(rand.NewPCG(seed, 1))
	start := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC).UnixMilli()
	next := map[int32]int64{}
	var out []logged
	for i := 0; i < n; i++ {
		line := fmt.Sprintf(`{"ts":%d,"url":"/p%d","user":"u%d","bytes":%d}`,
			start+r.Int64N(3*3600*1000), r.IntN(5), r.IntN(40), r.IntN(2000))
		ev, err := spec.ParseEvent([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		p := int32(r.IntN(2))
		out = append(out, logged{p, next[p], ev})
		next[p]++
	}
	return out
}

// offline answers a query from every event, the way a test computes the
// truth.
func offline(spec *plan.Spec, v plan.View, key string, evs []logged) map[int64]float64 {
	tab := Table{}
	for _, l := range evs {
		tab.Apply(spec, l.ev)
	}
	out := map[int64]float64{}
	for r, a := range tab {
		if r.View == v.Name && r.Key == key {
			out[r.Bucket] = a.Value(v.Type)
		}
	}
	return out
}

func asMap(ps []Point) map[int64]float64 {
	out := map[int64]float64{}
	for _, p := range ps {
		out[p.Bucket.Unix()] = p.Value
	}
	return out
}

// Before any batch run, after one at each of several watermarks, and after
// the realtime view expired what the batch absorbed, every view's answer
// equals the offline computation over all events: nothing counted twice at
// the boundary, nothing missing.
func TestQueryMergesBatchAndRealtimeExactly(t *testing.T) {
	spec := exampleSpec(t)
	evs := events(t, spec, 6000, 7)
	rt := NewRealtime()
	for _, l := range evs {
		rt.Apply(spec, l.part, l.offset, l.ev)
	}
	from, to := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	check := func(stage string, b *Batch) {
		t.Helper()
		for _, v := range spec.Views {
			keys := []string{KeyOf("/p0"), KeyOf("/p3")}
			if len(v.Key) == 0 {
				keys = []string{KeyOf()}
			}
			for _, k := range keys {
				got := asMap(Query(v, k, from, to, b, rt))
				if want := offline(spec, v, k, evs); !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: view %s key %q: got %v, want %v", stage, v.Name, k, got, want)
				}
			}
		}
	}
	check("speed layer only", nil)
	initial := rt.Segments()

	next := map[int32]int64{}
	for _, l := range evs {
		next[l.part] = l.offset + 1
	}
	for _, frac := range []float64{0.3, 0.7, 1} {
		wm := map[int32]int64{}
		for p, n := range next {
			wm[p] = Align(int64(float64(n) * frac))
		}
		b := &Batch{Watermark: wm, Rows: Table{}}
		for _, l := range evs {
			if l.offset < wm[l.part] {
				b.Rows.Apply(spec, l.ev)
			}
		}
		check(fmt.Sprintf("batch at %v, realtime not expired", wm), b)
		rt.Expire(wm)
		for p, segs := range rt.segs {
			for s := range segs {
				if s+Segment <= wm[p] {
					t.Fatalf("expiring at %v kept partition %d's segment at %d", wm, p, s)
				}
			}
		}
		check(fmt.Sprintf("batch at %v, realtime expired", wm), b)
	}
	if rt.Segments() >= initial {
		t.Fatalf("the realtime view still holds all %d segments after the batch runs", initial)
	}
}

func TestRowBuckets(t *testing.T) {
	v := plan.View{Name: "c", Type: "count", Key: []string{"k"}, Bucket: plan.Duration(time.Hour)}
	for _, tc := range []struct {
		at   time.Time
		want int64
	}{
		{time.Date(2026, 12, 5, 10, 59, 59, 0, time.UTC), time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC).Unix()},
		{time.Date(2026, 12, 5, 11, 0, 0, 0, time.UTC), time.Date(2026, 12, 5, 11, 0, 0, 0, time.UTC).Unix()},
		{time.Unix(-1, 0), -3600},
	} {
		r := RowOf(v, plan.Event{Time: tc.at, Fields: map[string]any{"k": "x"}})
		if r.Bucket != tc.want || r.Key != "x" {
			t.Errorf("%v: row %+v, want bucket %d", tc.at, r, tc.want)
		}
	}
	if Align(2047) != 1024 || Align(1024) != 1024 || Align(5) != 0 {
		t.Fatalf("Align: %d %d %d", Align(2047), Align(1024), Align(5))
	}
}

// A query of a large batch view (20,000 pages over 48 hours) reads its
// own rows through the view's index, not the whole view.
func BenchmarkQueryLargeBatch(b *testing.B) {
	data, err := os.ReadFile("../../examples/lambda-pageviews/pipeline.yaml")
	if err != nil {
		b.Fatal(err)
	}
	spec, err := plan.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC).UnixMilli()
	batch := &Batch{Watermark: map[int32]int64{0: 1 << 20}, Rows: Table{}}
	for i := 0; i < 200000; i++ {
		ev, err := spec.ParseEvent([]byte(fmt.Sprintf(`{"ts":%d,"url":"/p%d","user":"u%d","bytes":%d}`,
			start+r.Int64N(48*3600e3), r.IntN(20000), r.IntN(100), r.IntN(2000))))
		if err != nil {
			b.Fatal(err)
		}
		batch.Rows.Apply(spec, ev)
	}
	v, _ := spec.View("views")
	rt := NewRealtime()
	from, to := time.Unix(0, 0), time.Unix(1<<40, 0)
	Query(v, KeyOf("/p0"), from, to, batch, rt) // builds the index
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if ps := Query(v, KeyOf(fmt.Sprintf("/p%d", i%20000)), from, to, batch, rt); len(ps) == 0 {
			b.Fatal("no rows for a page that has some")
		}
	}
}
