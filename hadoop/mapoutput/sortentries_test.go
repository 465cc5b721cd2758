package mapoutput

import (
	"bytes"
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSortEntriesMatchesReference checks the specialized sort against the
// definition: partition, then key bytes, then arrival.
func TestSortEntriesMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, 13, 100, 5000, 60000} {
		s := NewSorter(SortConfig{Partitions: 3, BufferBytes: 64 << 20})
		for i := 0; i < n; i++ {
			// Short keys with many duplicates, keys around the 8-byte
			// prefix, and keys with zero bytes.
			k := make([]byte, rng.IntN(12))
			for j := range k {
				k[j] = "ab\x00z"[rng.IntN(4)]
			}
			if err := s.Add(rng.IntN(3), k, []byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
		want := slices.Clone(s.meta)
		slices.SortFunc(want, func(a, b entry) int {
			if a.part != b.part {
				return cmp.Compare(a.part, b.part)
			}
			if c := bytes.Compare(s.key(&a), s.key(&b)); c != 0 {
				return c
			}
			return cmp.Compare(a.off, b.off)
		})
		s.sortBuffer()
		if !slices.Equal(s.meta, want) {
			t.Fatalf("n=%d: specialized sort differs from the reference", n)
		}
	}
	// Reversed input.
	s := NewSorter(SortConfig{Partitions: 1, BufferBytes: 64 << 20})
	for i := 50000; i > 0; i-- {
		s.Add(0, []byte{byte(i >> 8), byte(i)}, nil)
	}
	s.sortBuffer()
	for i := 1; i < len(s.meta); i++ {
		if bytes.Compare(s.key(&s.meta[i-1]), s.key(&s.meta[i])) >= 0 {
			t.Fatalf("reversed input: out of order at %d", i)
		}
	}
}
