package allocator

import "slices"

// span is an inclusive range of values, such as ports 31000-32000.
type span struct{ lo, hi uint64 }

// Span lists in this package are sorted by lo, non-overlapping and
// non-adjacent ("squashed"). The helpers append to dst, which must not alias
// their inputs, so callers can pass a stack buffer and copy back.

// squashSpans sorts s and merges overlapping or adjacent spans in place.
func squashSpans(s []span) []span {
	if len(s) < 2 {
		return s
	}
	if !slices.IsSortedFunc(s, cmpSpan) {
		slices.SortFunc(s, cmpSpan)
	}
	out := s[:1]
	for _, x := range s[1:] {
		last := &out[len(out)-1]
		if x.lo <= last.hi || x.lo-last.hi == 1 {
			if x.hi > last.hi {
				last.hi = x.hi
			}
			continue
		}
		out = append(out, x)
	}
	return out
}

func cmpSpan(a, b span) int {
	switch {
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}

// unionSpans returns a ∪ b; the result may reuse a's storage.
func unionSpans(a, b []span) []span {
	switch {
	case len(b) == 0:
		return a
	case len(a) == 0:
		return append(a, b...)
	case a[len(a)-1].hi < b[0].lo && b[0].lo-a[len(a)-1].hi > 1:
		return append(a, b...)
	}
	return squashSpans(append(a, b...))
}

// subtractSpans appends a \ b to dst.
func subtractSpans(dst, a, b []span) []span {
	j := 0
	for _, x := range a {
		for j < len(b) && b[j].hi < x.lo {
			j++
		}
		lo, covered := x.lo, false
		for k := j; k < len(b) && b[k].lo <= x.hi; k++ {
			if b[k].lo > lo {
				dst = append(dst, span{lo, b[k].lo - 1})
			}
			if b[k].hi >= x.hi {
				covered = true
				break
			}
			lo = b[k].hi + 1
		}
		if !covered {
			dst = append(dst, span{lo, x.hi})
		}
	}
	return dst
}

// intersectSpans appends a ∩ b to dst.
func intersectSpans(dst, a, b []span) []span {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		lo, hi := max(a[i].lo, b[j].lo), min(a[i].hi, b[j].hi)
		if lo <= hi {
			dst = append(dst, span{lo, hi})
		}
		if a[i].hi < b[j].hi {
			i++
		} else {
			j++
		}
	}
	return dst
}

// containsSpans reports whether b ⊆ a.
func containsSpans(a, b []span) bool {
	i := 0
	for _, x := range b {
		for i < len(a) && a[i].hi < x.lo {
			i++
		}
		if i == len(a) || a[i].lo > x.lo || a[i].hi < x.hi {
			return false
		}
	}
	return true
}
