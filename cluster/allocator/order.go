package allocator

import "slices"

// Sorted slices of clients or nodes, ordered by rank().

type ranked interface{ rank() (float64, uint64) }

func cmpRanked[E ranked](a, b E) int {
	ak, as := a.rank()
	bk, bs := b.rank()
	switch {
	case ak < bk:
		return -1
	case ak > bk:
		return 1
	case as < bs:
		return -1
	case as > bs:
		return 1
	}
	return 0
}

// indexRanked finds e by its current key, falling back to a scan.
func indexRanked[E interface {
	comparable
	ranked
}](s []E, e E) int {
	i, _ := slices.BinarySearchFunc(s, e, cmpRanked[E])
	if i < len(s) && s[i] == e {
		return i
	}
	return slices.Index(s, e)
}

func insertRanked[E ranked](s []E, e E) []E {
	i, _ := slices.BinarySearchFunc(s, e, cmpRanked[E])
	return slices.Insert(s, i, e)
}

// fixRanked moves s[i], whose key changed, to its sorted place.
func fixRanked[E ranked](s []E, i int) {
	e := s[i]
	if j, _ := slices.BinarySearchFunc(s[:i], e, cmpRanked[E]); j < i {
		copy(s[j+1:i+1], s[j:i])
		s[j] = e
		return
	}
	j, _ := slices.BinarySearchFunc(s[i+1:], e, cmpRanked[E])
	j += i // new index after removal
	copy(s[i:j], s[i+1:j+1])
	s[j] = e
}

func setBit(b *[]uint64, i int32) {
	w := int(i >> 6)
	for len(*b) <= w {
		*b = append(*b, 0)
	}
	(*b)[w] |= 1 << (uint(i) & 63)
}

func clearBit(b []uint64, i int32) {
	if w := int(i >> 6); w < len(b) {
		b[w] &^= 1 << (uint(i) & 63)
	}
}

func hasBit(b []uint64, i int32) bool {
	w := int(i >> 6)
	return w < len(b) && b[w]&(1<<(uint(i)&63)) != 0
}

// Leaf client lists hold slot indexes rather than pointers so that moving
// entries is a plain memmove, without write barriers.

// searchClient returns where c sorts in cs.
func (s *sorter) searchClient(cs []int32, c *client) int {
	lo, hi := 0, len(cs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if cmpRanked(s.slots[cs[m]], c) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// indexClient finds c by its current key, falling back to a scan.
func (s *sorter) indexClient(cs []int32, c *client) int {
	if i := s.searchClient(cs, c); i < len(cs) && cs[i] == c.idx {
		return i
	}
	return slices.Index(cs, c.idx)
}

// fixClient moves cs[i], whose key changed, to its sorted place.
func (s *sorter) fixClient(cs []int32, i int) {
	c := s.slots[cs[i]]
	if j := s.searchClient(cs[:i], c); j < i {
		copy(cs[j+1:i+1], cs[j:i])
		cs[j] = c.idx
		return
	}
	j := i + s.searchClient(cs[i+1:], c)
	copy(cs[i:j], cs[i+1:j+1])
	cs[j] = c.idx
}
