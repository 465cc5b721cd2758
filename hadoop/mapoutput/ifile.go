// Package mapoutput is the map side of the shuffle and the merge both sides
// share: map output records are collected in a bounded in-memory buffer,
// sorted by (partition, key) and spilled to disk as sorted runs when the
// buffer fills, optionally combined, and k-way merged (in passes of at most
// mapreduce.task.io.sort.factor runs) into one partitioned file with an
// index, Hadoop's file.out and file.out.index. Reduces merge the segments
// they fetched with the same code.
//
// A segment is a sequence of records, each uvarint(len(key)),
// uvarint(len(value)), key, value; its index entry gives its offset and
// length in the file, its record count and its CRC-32C.
package mapoutput

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// Castagnoli is the CRC table of segment checksums.
var Castagnoli = crc32.MakeTable(crc32.Castagnoli)

// IndexEntry locates one partition's segment in a map output file.
type IndexEntry struct {
	Offset  int64
	Length  int64
	Records int64
	CRC     uint32
}

// Index has one entry per partition.
type Index []IndexEntry

const indexEntrySize = 28

// WriteIndex writes an index file.
func WriteIndex(path string, idx Index) error {
	b := make([]byte, 0, len(idx)*indexEntrySize)
	for _, e := range idx {
		b = binary.BigEndian.AppendUint64(b, uint64(e.Offset))
		b = binary.BigEndian.AppendUint64(b, uint64(e.Length))
		b = binary.BigEndian.AppendUint64(b, uint64(e.Records))
		b = binary.BigEndian.AppendUint32(b, e.CRC)
	}
	return os.WriteFile(path, b, 0o644)
}

// ReadIndex reads an index file.
func ReadIndex(path string) (Index, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b)%indexEntrySize != 0 {
		return nil, fmt.Errorf("index %s: %d bytes is not a whole number of entries", path, len(b))
	}
	idx := make(Index, len(b)/indexEntrySize)
	for i := range idx {
		e := b[i*indexEntrySize:]
		idx[i] = IndexEntry{
			Offset:  int64(binary.BigEndian.Uint64(e)),
			Length:  int64(binary.BigEndian.Uint64(e[8:])),
			Records: int64(binary.BigEndian.Uint64(e[16:])),
			CRC:     binary.BigEndian.Uint32(e[24:]),
		}
	}
	return idx, nil
}

// FileWriter writes a partitioned file: records must arrive in partition
// order (and, within a partition, in key order for the file to be a valid
// run). Records are assembled in its own buffer and checksummed a buffer
// at a time: map outputs are mostly small records, and a write and a CRC
// update per field were a large part of writing them.
type FileWriter struct {
	f       *os.File
	buf     []byte
	crcFrom int    // buf[crcFrom:] is not in crc yet
	crc     uint32 // of the current partition's bytes so far
	err     error
	idx     Index
	part    int
	pos     int64
	start   int64
	records int64
}

const fileBufSize = 256 << 10

// CreateFile starts a partitioned file with the given number of partitions.
func CreateFile(path string, partitions int) (*FileWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &FileWriter{f: f, buf: make([]byte, 0, fileBufSize), idx: make(Index, partitions)}, nil
}

// Append adds a record to partition p, which must not be below the
// partition of the previous record.
func (w *FileWriter) Append(p int, key, value []byte) error {
	if p != w.part {
		if p < w.part || p >= len(w.idx) {
			return fmt.Errorf("mapoutput: partition %d after %d (of %d)", p, w.part, len(w.idx))
		}
		w.endPartition()
		for w.part++; w.part < p; w.part++ {
			w.endPartition()
		}
	}
	need := 2*binary.MaxVarintLen64 + len(key) + len(value)
	if len(w.buf)+need > cap(w.buf) {
		w.flush()
	}
	n0 := len(w.buf)
	if need > cap(w.buf) { // a record larger than the buffer goes out on its own
		var hdr [2 * binary.MaxVarintLen64]byte
		h := binary.AppendUvarint(hdr[:0], uint64(len(key)))
		h = binary.AppendUvarint(h, uint64(len(value)))
		for _, b := range [][]byte{h, key, value} {
			w.crc = crc32.Update(w.crc, Castagnoli, b)
			w.write(b)
		}
		w.pos += int64(len(h) + len(key) + len(value))
	} else {
		w.buf = binary.AppendUvarint(w.buf, uint64(len(key)))
		w.buf = binary.AppendUvarint(w.buf, uint64(len(value)))
		w.buf = append(w.buf, key...)
		w.buf = append(w.buf, value...)
		w.pos += int64(len(w.buf) - n0)
	}
	w.records++
	return w.err
}

// flush checksums and writes the buffer.
func (w *FileWriter) flush() {
	w.crc = crc32.Update(w.crc, Castagnoli, w.buf[w.crcFrom:])
	w.write(w.buf)
	w.buf, w.crcFrom = w.buf[:0], 0
}

func (w *FileWriter) write(b []byte) {
	if w.err == nil && len(b) > 0 {
		_, w.err = w.f.Write(b)
	}
}

func (w *FileWriter) endPartition() {
	w.crc = crc32.Update(w.crc, Castagnoli, w.buf[w.crcFrom:])
	w.crcFrom = len(w.buf)
	w.idx[w.part] = IndexEntry{Offset: w.start, Length: w.pos - w.start, Records: w.records, CRC: w.crc}
	w.start, w.records, w.crc = w.pos, 0, 0
}

// Close finishes the remaining partitions and the file and returns the
// index.
func (w *FileWriter) Close() (Index, error) {
	for ; w.part < len(w.idx); w.part++ {
		w.endPartition()
	}
	w.flush()
	if w.err != nil {
		w.f.Close()
		return nil, w.err
	}
	if err := w.f.Close(); err != nil {
		return nil, err
	}
	return w.idx, nil
}

// Abort closes and removes the file.
func (w *FileWriter) Abort() {
	w.f.Close()
	os.Remove(w.f.Name())
}

// Records is a stream of records; the slices Next returns are valid until
// the next call. Next returns io.EOF after the last record.
type Records interface {
	Next() (key, value []byte, err error)
}

// SegmentReader reads the records of one segment.
type SegmentReader struct {
	r          *bufio.Reader
	key, value []byte
	left       int64 // records left; -1 = until EOF
}

// NewSegmentReader reads records from r until EOF, or until records
// records have been read when records >= 0.
func NewSegmentReader(r io.Reader, records int64, bufSize int) *SegmentReader {
	return &SegmentReader{r: bufio.NewReaderSize(r, bufSize), left: records}
}

var errCorrupt = errors.New("mapoutput: corrupt segment")

func (s *SegmentReader) Next() ([]byte, []byte, error) {
	if s.left == 0 {
		return nil, nil, io.EOF
	}
	kl, err := binary.ReadUvarint(s.r)
	if err == io.EOF && s.left < 0 {
		return nil, nil, io.EOF
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	vl, err := binary.ReadUvarint(s.r)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if kl > 1<<31 || vl > 1<<31 {
		return nil, nil, fmt.Errorf("%w: record of %d+%d bytes", errCorrupt, kl, vl)
	}
	s.key = grow(s.key, int(kl))
	s.value = grow(s.value, int(vl))
	if _, err := io.ReadFull(s.r, s.key); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if _, err := io.ReadFull(s.r, s.value); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if s.left > 0 {
		s.left--
	}
	return s.key, s.value, nil
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n, max(n, 2*cap(b)))
	}
	return b[:n]
}
