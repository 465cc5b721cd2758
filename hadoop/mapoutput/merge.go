package mapoutput

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Merger merges sorted record streams into one sorted stream. Records with
// equal keys come out in the order of their streams, so merging is stable
// and its output deterministic.
type Merger struct {
	h    []*cursor
	last *cursor
}

type cursor struct {
	src        Records
	key, value []byte
	order      int
}

func less(a, b *cursor) bool {
	if c := bytes.Compare(a.key, b.key); c != 0 {
		return c < 0
	}
	return a.order < b.order
}

// NewMerger reads the first record of every stream.
func NewMerger(srcs []Records) (*Merger, error) {
	m := &Merger{}
	for i, s := range srcs {
		c := &cursor{src: s, order: i}
		ok, err := c.advance()
		if err != nil {
			return nil, err
		}
		if ok {
			m.h = append(m.h, c)
		}
	}
	for i := len(m.h)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
	return m, nil
}

func (c *cursor) advance() (bool, error) {
	k, v, err := c.src.Next()
	if err == io.EOF {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	c.key, c.value = k, v
	return true, nil
}

// Next returns the smallest remaining record; its slices are valid until
// the next call.
func (m *Merger) Next() ([]byte, []byte, error) {
	if m.last != nil {
		m.last = nil
		ok, err := m.h[0].advance()
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			n := len(m.h) - 1
			m.h[0] = m.h[n]
			m.h = m.h[:n]
		}
		if len(m.h) > 0 {
			m.down(0)
		}
	}
	if len(m.h) == 0 {
		return nil, nil, io.EOF
	}
	m.last = m.h[0]
	return m.h[0].key, m.h[0].value, nil
}

func (m *Merger) down(i int) {
	n := len(m.h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		j := l
		if r := l + 1; r < n && less(m.h[r], m.h[l]) {
			j = r
		}
		if !less(m.h[j], m.h[i]) {
			return
		}
		m.h[i], m.h[j] = m.h[j], m.h[i]
		i = j
	}
}

// Run is a sorted, partitioned file on disk.
type Run struct {
	Path  string
	Index Index
}

// Records returns the total record count of the run.
func (r Run) Records() int64 {
	var n int64
	for _, e := range r.Index {
		n += e.Records
	}
	return n
}

// openRuns opens partition p of every run; close releases the files.
func openRuns(runs []Run, p int) (srcs []Records, close func(), err error) {
	var files []*os.File
	close = func() {
		for _, f := range files {
			f.Close()
		}
	}
	for _, r := range runs {
		e := r.Index[p]
		if e.Records == 0 {
			continue
		}
		f, err := os.Open(r.Path)
		if err != nil {
			close()
			return nil, nil, err
		}
		files = append(files, f)
		srcs = append(srcs, NewSegmentReader(io.NewSectionReader(f, e.Offset, e.Length), e.Records, 64<<10))
	}
	return srcs, close, nil
}

// Combiner combines the sorted records of one partition, emitting records
// in key order (Hadoop's combiner contract: it may merge values but must
// not reorder keys).
type Combiner func(partition int, in Records, emit func(key, value []byte) error) error

// merge writes the merge of runs to path, combining each partition if
// combine is set.
func merge(runs []Run, partitions int, path string, combine Combiner, st *Stats) (Run, error) {
	w, err := CreateFile(path, partitions)
	if err != nil {
		return Run{}, err
	}
	for p := 0; p < partitions; p++ {
		srcs, closeAll, err := openRuns(runs, p)
		if err != nil {
			w.Abort()
			return Run{}, err
		}
		m, err := NewMerger(srcs)
		if err == nil {
			err = writePartition(w, p, m, combine, st)
		}
		closeAll()
		if err != nil {
			w.Abort()
			return Run{}, fmt.Errorf("merge into %s: %w", filepath.Base(path), err)
		}
	}
	idx, err := w.Close()
	if err != nil {
		return Run{}, err
	}
	return Run{Path: path, Index: idx}, nil
}

// ErrCombinerOrder is returned when a combiner emits keys out of order.
var ErrCombinerOrder = errors.New("combiner output is not sorted by key")

// writePartition copies (or combines) the sorted records of partition p.
func writePartition(w *FileWriter, p int, in Records, combine Combiner, st *Stats) error {
	if combine == nil {
		for {
			k, v, err := in.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := w.Append(p, k, v); err != nil {
				return err
			}
		}
	}
	var prev []byte
	first := true
	counted := &countingRecords{in: in}
	err := combine(p, counted, func(k, v []byte) error {
		if !first && bytes.Compare(k, prev) < 0 {
			return fmt.Errorf("%w: %q after %q", ErrCombinerOrder, k, prev)
		}
		first = false
		prev = append(prev[:0], k...)
		st.CombineOutput++
		return w.Append(p, k, v)
	})
	st.CombineInput += counted.n
	return err
}

type countingRecords struct {
	in Records
	n  int64
}

func (c *countingRecords) Next() ([]byte, []byte, error) {
	k, v, err := c.in.Next()
	if err == nil {
		c.n++
	}
	return k, v, err
}

// Reduce merges runs in passes of at most factor runs into dir until no
// more than factor remain, and returns those. The first runs are merged
// first and the result takes their place, which keeps equal keys in run
// order. Intermediate files are removed once merged.
func Reduce(runs []Run, partitions, factor int, dir string, st *Stats) ([]Run, error) {
	factor = max(factor, 2)
	for pass := 0; len(runs) > factor; pass++ {
		path := filepath.Join(dir, fmt.Sprintf("merge%d.out", pass))
		merged, err := merge(runs[:factor], partitions, path, nil, st)
		if err != nil {
			return nil, err
		}
		for _, r := range runs[:factor] {
			if filepath.Dir(r.Path) == dir {
				os.Remove(r.Path)
			}
		}
		runs = append([]Run{merged}, runs[factor:]...)
		st.MergePasses++
	}
	return runs, nil
}

// OpenMerged returns the merged records of partition p of runs (at most
// factor of them; see Reduce). Close the returned closer when done.
func OpenMerged(runs []Run, p int) (Records, io.Closer, error) {
	srcs, closeAll, err := openRuns(runs, p)
	if err != nil {
		return nil, nil, err
	}
	m, err := NewMerger(srcs)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return m, closerFunc(closeAll), nil
}

type closerFunc func()

func (f closerFunc) Close() error { f(); return nil }
