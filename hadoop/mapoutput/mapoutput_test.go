package mapoutput

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

type rec struct{ k, v string }

func readPartition(t *testing.T, path string, idx Index, p int) []rec {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e := idx[p]
	r := NewSegmentReader(io.NewSectionReader(f, e.Offset, e.Length), e.Records, 4096)
	var out []rec
	for {
		k, v, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec{string(k), string(v)})
	}
}

// A sort buffer far smaller than the map output spills many runs, merges
// them in several passes, and still yields every record, sorted, in its
// partition, with equal keys in arrival order.
func TestTinyBufferSpillsManyRunsAndMergesSorted(t *testing.T) {
	dir := t.TempDir()
	const parts = 3
	s := NewSorter(SortConfig{Partitions: parts, BufferBytes: 4096, Factor: 4, Dir: dir})
	rng := rand.New(rand.NewPCG(5, 6))
	want := make([][]rec, parts)
	for i := 0; i < 20000; i++ {
		k := fmt.Sprintf("k%05d", rng.IntN(3000))
		if rng.IntN(50) == 0 {
			k = k[:rng.IntN(3)] // short keys exercise the prefix compare
		}
		v := strconv.Itoa(i)
		p := 0
		if k != "" {
			p = int(k[len(k)-1]) % parts
		}
		if err := s.Add(p, []byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
		want[p] = append(want[p], rec{k, v})
	}
	out := filepath.Join(dir, "file.out")
	idx, err := s.Finish(out)
	if err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Spills < 50 || st.MergePasses < 2 {
		t.Fatalf("expected many spills and merge passes, got %+v", st)
	}
	back, err := ReadIndex(out + ".index")
	if err != nil || !slices.Equal(back, idx) {
		t.Fatalf("index round trip: %v", err)
	}
	for p := 0; p < parts; p++ {
		// Stable sort of what went in is exactly what must come out.
		slices.SortStableFunc(want[p], func(a, b rec) int { return bytes.Compare([]byte(a.k), []byte(b.k)) })
		got := readPartition(t, out, idx, p)
		if !slices.Equal(got, want[p]) {
			t.Fatalf("partition %d: %d records, want %d; first difference at %d", p, len(got), len(want[p]), firstDiff(got, want[p]))
		}
	}
	// Only the output and its index remain.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("left behind: %v", names)
	}
}

func firstDiff(a, b []rec) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// A combiner runs per spill and on the final merge; its output replaces
// the records and out-of-order output is refused.
func TestCombinerSumsAndMustKeepOrder(t *testing.T) {
	dir := t.TempDir()
	sum := func(p int, in Records, emit func(k, v []byte) error) error {
		var cur []byte
		total, have := 0, false
		for {
			k, v, err := in.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			n, _ := strconv.Atoi(string(v))
			if have && bytes.Equal(k, cur) {
				total += n
				continue
			}
			if have {
				emit(cur, []byte(strconv.Itoa(total)))
			}
			cur, total, have = append(cur[:0], k...), n, true
		}
		if have {
			return emit(cur, []byte(strconv.Itoa(total)))
		}
		return nil
	}
	s := NewSorter(SortConfig{Partitions: 1, BufferBytes: 2048, Factor: 10, Dir: dir, Combine: sum, MinSpillsForCombine: 3})
	for i := 0; i < 5000; i++ {
		s.Add(0, []byte(fmt.Sprintf("w%d", i%7)), []byte("1"))
	}
	out := filepath.Join(dir, "file.out")
	idx, err := s.Finish(out)
	if err != nil {
		t.Fatal(err)
	}
	got := readPartition(t, out, idx, 0)
	if len(got) != 7 {
		t.Fatalf("combined to %v", got)
	}
	total := 0
	for _, r := range got {
		n, _ := strconv.Atoi(r.v)
		total += n
	}
	if total != 5000 || s.Stats().CombineInput == 0 {
		t.Fatalf("total %d, stats %+v", total, s.Stats())
	}

	bad := func(p int, in Records, emit func(k, v []byte) error) error {
		emit([]byte("b"), nil)
		return emit([]byte("a"), nil)
	}
	s = NewSorter(SortConfig{Partitions: 1, BufferBytes: 1 << 20, Factor: 10, Dir: dir, Combine: bad})
	s.Add(0, []byte("x"), nil)
	if _, err := s.Finish(filepath.Join(dir, "bad.out")); err == nil {
		t.Fatal("an unsorted combiner output must fail the map")
	}
}

// The sort buffer's memory (arena, entries and the radix sort's second
// array) stays within BufferBytes whether records are tiny (a word count's
// "word\t1") or large, and the output is still complete and sorted.
func TestSortBufferMemoryStaysWithinItsBudget(t *testing.T) {
	for _, size := range []int{6, 100, 3000} {
		const budget = 1 << 20
		s := NewSorter(SortConfig{Partitions: 3, BufferBytes: budget, Factor: 10, Dir: t.TempDir()})
		worst := 0
		n := 20 * budget / (size + 48)
		for i := 0; i < n; i++ {
			k := []byte(fmt.Sprintf("%0*d", size/2, (i*7919)%n))
			if err := s.Add(i%3, k, k[:size-size/2]); err != nil {
				t.Fatal(err)
			}
			worst = max(worst, cap(s.arena)+entrySize*(cap(s.meta)+cap(s.tmp)))
		}
		if worst > budget+budget/4 {
			t.Errorf("records of %d bytes: the buffer held %d bytes, budget %d", size, worst, budget)
		}
		if s.Stats().Spills < 10 {
			t.Errorf("records of %d bytes: %d spills of %d records, want the buffer used fully (about 20)", size, s.Stats().Spills, n)
		}
		out := filepath.Join(t.TempDir(), "file.out")
		idx, err := s.Finish(out)
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		for _, e := range idx {
			total += e.Records
		}
		if total != int64(n) {
			t.Errorf("records of %d bytes: %d records out, want %d", size, total, n)
		}
	}
}
