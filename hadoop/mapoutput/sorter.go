package mapoutput

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// Stats counts what the sorter did; the names follow Hadoop's task
// counters.
type Stats struct {
	Records       int64 // MAP_OUTPUT_RECORDS
	Bytes         int64 // MAP_OUTPUT_BYTES (keys and values)
	Spills        int
	SpilledRecs   int64 // SPILLED_RECORDS
	CombineInput  int64
	CombineOutput int64
	MergePasses   int
}

// SortConfig configures a Sorter.
type SortConfig struct {
	Partitions int
	// BufferBytes bounds the sort buffer's memory: keys, values and 48
	// bytes of metadata per record (an entry and the radix sort's copy of
	// it); mapreduce.task.io.sort.mb times mapreduce.map.sort.spill.percent.
	BufferBytes int
	// Factor is mapreduce.task.io.sort.factor, the most runs merged at once.
	Factor int
	// Dir holds spill files.
	Dir string
	// Combine, if set, runs on every spill, and on the final merge when
	// there were at least MinSpillsForCombine spills.
	Combine             Combiner
	MinSpillsForCombine int
}

// entry is one collected record: its partition, the first eight key bytes
// (big-endian, zero-padded) to compare without touching the arena, and
// where key and value sit in the arena.
type entry struct {
	prefix uint64
	off    uint32
	klen   uint32
	vlen   uint32
	part   uint32
}

const entrySize = 24

// Sorter is the map-side sort buffer. It is not safe for concurrent use.
type Sorter struct {
	cfg   SortConfig
	arena []byte
	meta  []entry
	tmp   []entry // the radix sort's second buffer
	runs  []Run
	st    Stats
}

// NewSorter returns an empty sort buffer.
func NewSorter(cfg SortConfig) *Sorter {
	cfg.BufferBytes = max(cfg.BufferBytes, 1024)
	s := &Sorter{cfg: cfg}
	if b, ok := buffers.Get().(*sortBuffers); ok {
		s.arena, s.meta, s.tmp = b.arena[:0], b.meta[:0], b.tmp
	}
	s.shape(initialRecordBytes)
	return s
}

// initialRecordBytes is the record size (key and value) the buffer is
// first shaped for, until a spill shows the real one.
const initialRecordBytes = 100

// shape splits the buffer's memory between the arena (keys and values)
// and the metadata (an entry per record, twice: the radix sort needs a
// second array) for records of avg bytes, so that together they hold
// what fits in BufferBytes and no more: all three are allocated once, at
// their full size (growing them by appends copies them and touches fresh
// memory at every doubling), and a map slot's memory is what the buffer
// says, whatever the size of its records. Buffers within a quarter of
// the wanted size are kept.
func (s *Sorter) shape(avg float64) {
	b := float64(s.cfg.BufferBytes)
	a := int(b * avg / (avg + 2*entrySize))
	m := int((b - float64(a)) / (2 * entrySize))
	a, m = max(a, 512), max(m, 16)
	if cap(s.arena) < a || cap(s.arena) > a+a/4 {
		s.arena = make([]byte, 0, a)
	}
	if cap(s.meta) < m || cap(s.meta) > m+m/4 {
		s.meta = make([]entry, 0, m)
	}
	if cap(s.tmp) < m || cap(s.tmp) > m+m/4 {
		s.tmp = make([]entry, m)
	}
}

// sortBuffers are a finished sorter's buffers, kept for the next one: a
// TaskTracker runs map after map, and fresh buffers of a hundred
// megabytes cost page faults and zeroing every time.
type sortBuffers struct {
	arena []byte
	meta  []entry
	tmp   []entry
}

var buffers sync.Pool

// release hands the buffers on; the sorter must not be used after.
func (s *Sorter) release() {
	if s.arena == nil {
		return
	}
	buffers.Put(&sortBuffers{arena: s.arena, meta: s.meta, tmp: s.tmp})
	s.arena, s.meta, s.tmp = nil, nil, nil
}

// Stats returns what the sorter has done so far.
func (s *Sorter) Stats() Stats { return s.st }

func prefixOf(k []byte) uint64 {
	if len(k) >= 8 {
		return binary.BigEndian.Uint64(k)
	}
	var b [8]byte
	copy(b[:], k)
	return binary.BigEndian.Uint64(b[:])
}

// Add collects one record for partition p, spilling first if the buffer is
// full. A record larger than the whole arena is collected alone.
func (s *Sorter) Add(p int, key, value []byte) error {
	if p < 0 || p >= s.cfg.Partitions {
		return fmt.Errorf("mapoutput: partition %d out of range [0,%d)", p, s.cfg.Partitions)
	}
	size := len(key) + len(value)
	if len(s.meta) > 0 && (len(s.meta) == cap(s.meta) || len(s.arena)+size > cap(s.arena)) {
		if err := s.spill(); err != nil {
			return err
		}
		// Shape the buffer after the records seen so far.
		s.shape(float64(s.st.Bytes) / float64(max(s.st.Records, 1)))
	}
	off := len(s.arena)
	if off+size > 1<<32-1 {
		return fmt.Errorf("mapoutput: sort buffer over 4 GiB")
	}
	s.arena = append(s.arena, key...)
	s.arena = append(s.arena, value...)
	s.meta = append(s.meta, entry{prefix: prefixOf(key), off: uint32(off), klen: uint32(len(key)), vlen: uint32(len(value)), part: uint32(p)})
	s.st.Records++
	s.st.Bytes += int64(size)
	return nil
}

func (s *Sorter) key(e *entry) []byte   { return s.arena[e.off : e.off+e.klen] }
func (s *Sorter) value(e *entry) []byte { return s.arena[e.off+e.klen : e.off+e.klen+e.vlen] }

// sortBuffer orders the records by partition, key, then arrival.
func (s *Sorter) sortBuffer() { s.sortEntries() }

// writeBuffer writes the sorted buffer to path as a run.
func (s *Sorter) writeBuffer(path string, combine Combiner) (Run, error) {
	s.sortBuffer()
	w, err := CreateFile(path, s.cfg.Partitions)
	if err != nil {
		return Run{}, err
	}
	for i := 0; i < len(s.meta); {
		p := s.meta[i].part
		j := i
		for j < len(s.meta) && s.meta[j].part == p {
			j++
		}
		if err := writePartition(w, int(p), &bufferRecords{s: s, ents: s.meta[i:j]}, combine, &s.st); err != nil {
			w.Abort()
			return Run{}, err
		}
		i = j
	}
	idx, err := w.Close()
	if err != nil {
		return Run{}, err
	}
	run := Run{Path: path, Index: idx}
	s.st.SpilledRecs += run.Records()
	s.arena = s.arena[:0]
	s.meta = s.meta[:0]
	return run, nil
}

func (s *Sorter) spill() error {
	path := filepath.Join(s.cfg.Dir, fmt.Sprintf("spill%d.out", len(s.runs)))
	run, err := s.writeBuffer(path, s.cfg.Combine)
	if err != nil {
		return fmt.Errorf("spill %d: %w", len(s.runs), err)
	}
	s.runs = append(s.runs, run)
	s.st.Spills++
	return nil
}

// Finish sorts what is left and writes the map output file at path (with
// its index at path+".index"), merging the spills if there were any.
func (s *Sorter) Finish(path string) (Index, error) {
	defer s.release()
	if len(s.runs) == 0 {
		run, err := s.writeBuffer(path, s.cfg.Combine)
		if err != nil {
			return nil, err
		}
		s.st.Spills = 1
		return run.Index, WriteIndex(path+".index", run.Index)
	}
	if len(s.meta) > 0 {
		if err := s.spill(); err != nil {
			return nil, err
		}
	}
	runs, err := Reduce(s.runs, s.cfg.Partitions, s.cfg.Factor, s.cfg.Dir, &s.st)
	if err != nil {
		return nil, err
	}
	var combine Combiner
	if s.cfg.Combine != nil && s.st.Spills >= s.cfg.MinSpillsForCombine {
		combine = s.cfg.Combine
	}
	final, err := merge(runs, s.cfg.Partitions, path, combine, &s.st)
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		os.Remove(r.Path)
	}
	s.st.SpilledRecs += final.Records()
	return final.Index, WriteIndex(path+".index", final.Index)
}

// bufferRecords iterates over sorted entries of the buffer.
type bufferRecords struct {
	s    *Sorter
	ents []entry
	i    int
}

func (b *bufferRecords) Next() ([]byte, []byte, error) {
	if b.i >= len(b.ents) {
		return nil, nil, io.EOF
	}
	e := &b.ents[b.i]
	b.i++
	return b.s.key(e), b.s.value(e), nil
}
