// Package view is the lambda pipeline's arithmetic: exact aggregates of
// events into each view's rows (a key and a time bucket), the batch view
// computed from the master dataset up to a watermark, the realtime view of
// what came after it, and the query that merges them with no event counted
// twice at the boundary.
//
// The boundary is an offset per partition of the input topic, never a
// time: the batch layer recomputes from every event below its watermark,
// and the speed layer keeps its aggregates in segments of Segment offsets
// per partition, so that the segments a batch run has absorbed are dropped
// whole. A watermark is therefore always a multiple of Segment (Align), and
// a query reads realtime segments at or above it only, whether or not the
// older ones have been expired yet.
package view

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agora-cluster/agora/lambda/plan"
)

// Segment is how many offsets of one partition a realtime segment covers.
const Segment = 1024

// Align is the largest watermark at most next (a partition's next offset)
// that falls on a segment boundary.
func Align(next int64) int64 { return next - next%Segment }

// Row names one row of a view: its key values and its bucket's start.
type Row struct {
	View   string
	Key    string // the key fields' values joined by Sep
	Bucket int64  // the bucket's start, unix seconds
}

// Sep joins a row's key values.
const Sep = "\x1f"

// Agg is one row's aggregate.
type Agg struct {
	Count    int64
	Sum      float64
	Distinct map[string]struct{}
}

func (a *Agg) merge(b *Agg) {
	a.Count += b.Count
	a.Sum += b.Sum
	if b.Distinct != nil {
		if a.Distinct == nil {
			a.Distinct = make(map[string]struct{}, len(b.Distinct))
		}
		for v := range b.Distinct {
			a.Distinct[v] = struct{}{}
		}
	}
}

// Value is the row's answer for a view of type typ.
func (a *Agg) Value(typ string) float64 {
	switch typ {
	case "distinct":
		return float64(len(a.Distinct))
	case "sum":
		return a.Sum
	}
	return float64(a.Count)
}

// Table holds rows of any of a spec's views.
type Table map[Row]*Agg

// Apply adds one event to every view of spec.
func (t Table) Apply(spec *plan.Spec, ev plan.Event) {
	for _, v := range spec.Views {
		r := RowOf(v, ev)
		a := t[r]
		if a == nil {
			a = &Agg{}
			t[r] = a
		}
		a.Count++
		switch v.Type {
		case "sum":
			switch x := ev.Fields[v.Of].(type) {
			case int64:
				a.Sum += float64(x)
			case float64:
				a.Sum += x
			}
		case "distinct":
			if a.Distinct == nil {
				a.Distinct = map[string]struct{}{}
			}
			a.Distinct[fieldString(ev.Fields[v.Of])] = struct{}{}
		}
	}
}

// Merge adds u's rows into t.
func (t Table) Merge(u Table) {
	for r, b := range u {
		a := t[r]
		if a == nil {
			a = &Agg{}
			t[r] = a
		}
		a.merge(b)
	}
}

// RowOf is the row of view v an event falls into.
func RowOf(v plan.View, ev plan.Event) Row {
	vals := make([]string, len(v.Key))
	for i, k := range v.Key {
		vals[i] = fieldString(ev.Fields[k])
	}
	b := int64(time.Duration(v.Bucket) / time.Second)
	sec := ev.Time.Unix()
	start := sec - ((sec%b)+b)%b // floor, also before 1970
	return Row{View: v.Name, Key: strings.Join(vals, Sep), Bucket: start}
}

// KeyOf joins key values as a row's Key.
func KeyOf(values ...string) string { return strings.Join(values, Sep) }

func fieldString(x any) string {
	switch v := x.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprint(x)
}

// Batch is a batch view: every event below Watermark (per partition).
// It is not changed once queries read it.
type Batch struct {
	Watermark map[int32]int64
	Rows      Table

	// idx lists the buckets of each view and key (view Sep key), built
	// by the first query, so that a query reads its own rows instead of
	// walking the whole view.
	idxOnce sync.Once
	idx     map[string][]int64
}

// pick is the batch view's rows of view for key.
func (b *Batch) pick(view, key string) Table {
	b.idxOnce.Do(func() {
		b.idx = make(map[string][]int64)
		for r := range b.Rows {
			k := r.View + Sep + r.Key
			b.idx[k] = append(b.idx[k], r.Bucket)
		}
	})
	out := Table{}
	for _, bucket := range b.idx[view+Sep+key] {
		r := Row{View: view, Key: key, Bucket: bucket}
		out[r] = b.Rows[r]
	}
	return out
}

// Realtime is the speed layer's view, in segments per partition.
type Realtime struct {
	segs map[int32]map[int64]Table // partition → segment start → rows
	// idx lists each segment's buckets per view and key, so that a query
	// reads its own rows of every segment instead of walking them all.
	idx map[int32]map[int64]map[string][]int64 // … → view Sep key → buckets
}

// NewRealtime returns an empty realtime view.
func NewRealtime() *Realtime {
	return &Realtime{segs: map[int32]map[int64]Table{}, idx: map[int32]map[int64]map[string][]int64{}}
}

// Apply adds the event at offset of partition.
func (r *Realtime) Apply(spec *plan.Spec, partition int32, offset int64, ev plan.Event) {
	p := r.segs[partition]
	if p == nil {
		p = map[int64]Table{}
		r.segs[partition] = p
		r.idx[partition] = map[int64]map[string][]int64{}
	}
	s := Align(offset)
	t := p[s]
	if t == nil {
		t = Table{}
		p[s] = t
		r.idx[partition][s] = map[string][]int64{}
	}
	idx := r.idx[partition][s]
	for _, v := range spec.Views {
		if row := RowOf(v, ev); t[row] == nil {
			k := row.View + Sep + row.Key
			idx[k] = append(idx[k], row.Bucket)
		}
	}
	t.Apply(spec, ev)
}

// Expire drops the segments below each partition's watermark: a batch
// view holds them now.
func (r *Realtime) Expire(watermark map[int32]int64) {
	for part, p := range r.segs {
		for s := range p {
			if s+Segment <= watermark[part] {
				delete(p, s)
				delete(r.idx[part], s)
			}
		}
	}
}

// Segments is how many segments the view holds.
func (r *Realtime) Segments() int {
	n := 0
	for _, p := range r.segs {
		n += len(p)
	}
	return n
}

// pickSince merges view's rows for key from the segments at or above
// each partition's watermark.
func (r *Realtime) pickSince(watermark map[int32]int64, view, key string) Table {
	out := Table{}
	k := view + Sep + key
	for part, p := range r.segs {
		for s, t := range p {
			if s < watermark[part] {
				continue
			}
			for _, b := range r.idx[part][s][k] {
				row := Row{View: view, Key: key, Bucket: b}
				if a := out[row]; a != nil {
					a.merge(t[row])
				} else {
					c := &Agg{}
					c.merge(t[row])
					out[row] = c
				}
			}
		}
	}
	return out
}

// Point is one bucket of a query's answer.
type Point struct {
	Bucket time.Time `json:"bucket"`
	Value  float64   `json:"value"`
}

// Query answers view v for one key over [from, to): one point per bucket
// that has events, in time order, from the batch view and the realtime
// segments it has not absorbed.
func Query(v plan.View, key string, from, to time.Time, batch *Batch, rt *Realtime) []Point {
	var wm map[int32]int64
	rows := Table{}
	if batch != nil {
		wm = batch.Watermark
		rows.Merge(batch.pick(v.Name, key))
	}
	if rt != nil {
		rows.Merge(rt.pickSince(wm, v.Name, key))
	}
	var out []Point
	buckets := make([]int64, 0, len(rows))
	for r := range rows {
		buckets = append(buckets, r.Bucket)
	}
	slices.Sort(buckets)
	for _, b := range buckets {
		t := time.Unix(b, 0).UTC()
		if t.Before(from) || !t.Before(to) {
			continue
		}
		a := rows[Row{View: v.Name, Key: key, Bucket: b}]
		out = append(out, Point{Bucket: t, Value: a.Value(v.Type)})
	}
	return out
}
