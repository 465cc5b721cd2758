package mapoutput

import (
	"bytes"
	"slices"
)

// The sort buffer is ordered by a least-significant-digit radix sort on
// each entry's partition and 8-byte key prefix: the map side sorts every
// record a mapper emits (tens of millions for a word count), and a
// comparison sort was most of the engine's own CPU time. LSD radix sort
// is stable, so records with equal prefixes stay in arrival order; only
// runs of equal prefixes whose keys are longer than the prefix (or of
// different lengths under it) are then put in key order, stably.

// sortEntries sorts s.meta by partition, key, then arrival.
func (s *Sorter) sortEntries() {
	n := len(s.meta)
	if n < 2 {
		return
	}
	if cap(s.tmp) < n {
		s.tmp = make([]entry, n)
	}
	src, dst := s.meta, s.tmp[:n]
	// One pass counts every digit: 8 prefix bytes (least significant
	// first), then 4 partition bytes.
	var counts [12][256]int
	for i := range src {
		e := &src[i]
		p := e.prefix
		for d := 0; d < 8; d++ {
			counts[d][byte(p>>(8*d))]++
		}
		q := e.part
		for d := 0; d < 4; d++ {
			counts[8+d][byte(q>>(8*d))]++
		}
	}
	for d := 0; d < 12; d++ {
		c := &counts[d]
		if slices.Contains(c[:], n) {
			continue // every entry has the same digit here
		}
		var pos [256]int
		sum := 0
		for b, k := range c {
			pos[b] = sum
			sum += k
		}
		if d < 8 {
			shift := 8 * d
			for i := range src {
				b := byte(src[i].prefix >> shift)
				dst[pos[b]] = src[i]
				pos[b]++
			}
		} else {
			shift := 8 * (d - 8)
			for i := range src {
				b := byte(src[i].part >> shift)
				dst[pos[b]] = src[i]
				pos[b]++
			}
		}
		src, dst = dst, src
	}
	if &src[0] != &s.meta[0] {
		copy(s.meta, src)
	}
	s.fixLongKeys()
}

// fixLongKeys orders, by their whole keys, the runs of entries whose
// partition and prefix are equal but whose keys may differ: keys longer
// than the prefix, or of different lengths within it.
func (s *Sorter) fixLongKeys() {
	m := s.meta
	for i := 0; i < len(m); {
		j := i + 1
		same := m[i].klen <= 8
		for j < len(m) && m[j].part == m[i].part && m[j].prefix == m[i].prefix {
			if m[j].klen != m[i].klen {
				same = false
			}
			j++
		}
		if j-i > 1 && !same {
			slices.SortStableFunc(m[i:j], func(a, b entry) int {
				return bytes.Compare(s.arena[a.off:a.off+a.klen], s.arena[b.off:b.off+b.klen])
			})
		}
		i = j
	}
}
