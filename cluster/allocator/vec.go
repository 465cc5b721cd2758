package allocator

import (
	"math"
	"slices"
)

// Scalars are kept in fixed point, thousandths of a unit, as Mesos does, so
// that adding and subtracting offers never drifts.
const milli = 1000

// The scalars every agent has live in fixed slots; they are also the ones
// dominant shares are computed over.
const (
	cpus = iota
	mem
	disk
	gpus
	nMain
)

var mainNames = [nMain]string{"cpus", "mem", "disk", "gpus"}

func mainIndex(name string) int {
	switch name {
	case "cpus":
		return cpus
	case "mem":
		return mem
	case "disk":
		return disk
	case "gpus":
		return gpus
	}
	return -1
}

// scalars holds the main scalar quantities in thousandths.
type scalars [nMain]int64

func (s *scalars) add(o *scalars) {
	for i := range s {
		s[i] += o[i]
	}
}

func (s *scalars) sub(o *scalars) {
	for i := range s {
		s[i] -= o[i]
	}
}

func toMilli(f float64) int64 {
	if !(f > 0) || math.IsInf(f, 0) {
		return 0
	}
	return int64(math.Round(f * milli))
}

func fromMilli(v int64) float64 { return float64(v) / milli }

type namedScalar struct {
	name string
	v    int64
}

type namedRanges struct {
	name  string
	spans []span
}

type namedSet struct {
	name  string
	items []string // sorted, unique
}

// vec is the allocator's compact form of a bag of resources of one
// reservation pool: fixed scalar slots plus short, name-sorted lists of other
// scalars, ranges (ports) and sets. Entries are kept when they become empty
// so that their buffers are reused; an empty entry means zero.
type vec struct {
	s      scalars
	extra  []namedScalar
	ranges []namedRanges
	sets   []namedSet
}

func (v *vec) isZero() bool {
	if v.s != (scalars{}) {
		return false
	}
	for i := range v.extra {
		if v.extra[i].v != 0 {
			return false
		}
	}
	for i := range v.ranges {
		if len(v.ranges[i].spans) != 0 {
			return false
		}
	}
	for i := range v.sets {
		if len(v.sets[i].items) != 0 {
			return false
		}
	}
	return true
}

// reset empties v, keeping its buffers.
func (v *vec) reset() {
	v.s = scalars{}
	for i := range v.extra {
		v.extra[i].v = 0
	}
	for i := range v.ranges {
		v.ranges[i].spans = v.ranges[i].spans[:0]
	}
	for i := range v.sets {
		v.sets[i].items = v.sets[i].items[:0]
	}
}

func (v *vec) copyFrom(o *vec) {
	v.reset()
	v.add(o)
}

func (v *vec) clone() *vec {
	c := &vec{}
	c.add(v)
	return c
}

func (v *vec) extraAt(name string) *namedScalar {
	for i := range v.extra {
		if v.extra[i].name == name {
			return &v.extra[i]
		}
	}
	return insertNamed(&v.extra, namedScalar{name: name}, func(e *namedScalar) string { return e.name })
}

func (v *vec) rangesAt(name string) *namedRanges {
	for i := range v.ranges {
		if v.ranges[i].name == name {
			return &v.ranges[i]
		}
	}
	return insertNamed(&v.ranges, namedRanges{name: name}, func(e *namedRanges) string { return e.name })
}

func (v *vec) setAt(name string) *namedSet {
	for i := range v.sets {
		if v.sets[i].name == name {
			return &v.sets[i]
		}
	}
	return insertNamed(&v.sets, namedSet{name: name}, func(e *namedSet) string { return e.name })
}

// insertNamed adds e to the name-sorted list *list, which has no entry of
// its name, and returns the added entry. Only the first use of a name in a
// vec comes here: entries are kept when they become empty.
func insertNamed[T any](list *[]T, e T, name func(*T) string) *T {
	n := name(&e)
	*list = append(*list, e)
	slices.SortFunc(*list, func(a, b T) int { return cmpString(name(&a), name(&b)) })
	for i := range *list {
		if name(&(*list)[i]) == n {
			return &(*list)[i]
		}
	}
	panic("unreachable")
}

func (v *vec) extraValue(name string) int64 {
	for i := range v.extra {
		if v.extra[i].name == name {
			return v.extra[i].v
		}
	}
	return 0
}

func (v *vec) spansOf(name string) []span {
	for i := range v.ranges {
		if v.ranges[i].name == name {
			return v.ranges[i].spans
		}
	}
	return nil
}

func (v *vec) itemsOf(name string) []string {
	for i := range v.sets {
		if v.sets[i].name == name {
			return v.sets[i].items
		}
	}
	return nil
}

// add sets v = v + o.
func (v *vec) add(o *vec) {
	v.s.add(&o.s)
	for i := range o.extra {
		if o.extra[i].v != 0 {
			v.extraAt(o.extra[i].name).v += o.extra[i].v
		}
	}
	for i := range o.ranges {
		if len(o.ranges[i].spans) != 0 {
			r := v.rangesAt(o.ranges[i].name)
			r.spans = unionSpans(r.spans, o.ranges[i].spans)
		}
	}
	for i := range o.sets {
		if len(o.sets[i].items) != 0 {
			s := v.setAt(o.sets[i].name)
			s.items = unionItems(s.items, o.sets[i].items)
		}
	}
}

// sub sets v = v - o, never going below zero.
func (v *vec) sub(o *vec) {
	for i := range v.s {
		v.s[i] = max(0, v.s[i]-o.s[i])
	}
	for i := range o.extra {
		if o.extra[i].v != 0 {
			e := v.extraAt(o.extra[i].name)
			e.v = max(0, e.v-o.extra[i].v)
		}
	}
	for i := range o.ranges {
		if len(o.ranges[i].spans) == 0 {
			continue
		}
		for j := range v.ranges {
			if v.ranges[j].name == o.ranges[i].name {
				var buf [32]span
				out := subtractSpans(buf[:0], v.ranges[j].spans, o.ranges[i].spans)
				v.ranges[j].spans = append(v.ranges[j].spans[:0], out...)
			}
		}
	}
	for i := range o.sets {
		if len(o.sets[i].items) == 0 {
			continue
		}
		for j := range v.sets {
			if v.sets[j].name == o.sets[i].name {
				v.sets[j].items = subtractItems(v.sets[j].items, o.sets[i].items)
			}
		}
	}
}

// intersect sets v = a ∩ b.
func (v *vec) intersect(a, b *vec) {
	v.reset()
	for i := range v.s {
		v.s[i] = min(a.s[i], b.s[i])
	}
	for i := range a.extra {
		if q := min(a.extra[i].v, b.extraValue(a.extra[i].name)); q > 0 {
			v.extraAt(a.extra[i].name).v = q
		}
	}
	for i := range a.ranges {
		bs := b.spansOf(a.ranges[i].name)
		if len(bs) == 0 || len(a.ranges[i].spans) == 0 {
			continue
		}
		r := v.rangesAt(a.ranges[i].name)
		r.spans = intersectSpans(r.spans[:0], a.ranges[i].spans, bs)
	}
	for i := range a.sets {
		bi := b.itemsOf(a.sets[i].name)
		if len(bi) == 0 || len(a.sets[i].items) == 0 {
			continue
		}
		s := v.setAt(a.sets[i].name)
		s.items = intersectItems(s.items[:0], a.sets[i].items, bi)
	}
}

// contains reports whether o ⊆ v.
func (v *vec) contains(o *vec) bool {
	for i := range v.s {
		if o.s[i] > v.s[i] {
			return false
		}
	}
	for i := range o.extra {
		if o.extra[i].v > v.extraValue(o.extra[i].name) {
			return false
		}
	}
	for i := range o.ranges {
		if len(o.ranges[i].spans) != 0 && !containsSpans(v.spansOf(o.ranges[i].name), o.ranges[i].spans) {
			return false
		}
	}
	for i := range o.sets {
		if len(o.sets[i].items) != 0 && !containsItems(v.itemsOf(o.sets[i].name), o.sets[i].items) {
			return false
		}
	}
	return true
}

func (v *vec) equal(o *vec) bool { return v.contains(o) && o.contains(v) }

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func unionItems(a, b []string) []string {
	for _, x := range b {
		if _, ok := slices.BinarySearch(a, x); !ok {
			a = append(a, x)
		}
	}
	slices.Sort(a)
	return a
}

func subtractItems(a, b []string) []string {
	out := a[:0]
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			out = append(out, x)
		}
	}
	return out
}

func intersectItems(dst, a, b []string) []string {
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); ok {
			dst = append(dst, x)
		}
	}
	return dst
}

func containsItems(a, b []string) bool {
	for _, x := range b {
		if _, ok := slices.BinarySearch(a, x); !ok {
			return false
		}
	}
	return true
}
