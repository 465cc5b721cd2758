package api

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// MaxRecordSize bounds one RecordIO record read from a peer (64 MiB).
const MaxRecordSize = 64 << 20

// RecordWriter writes RecordIO frames ("<len>\n<bytes>") and flushes each one,
// so a streaming HTTP response delivers every event as soon as it is written.
type RecordWriter struct {
	w       io.Writer
	flusher http.Flusher
	buf     []byte
}

// NewRecordWriter wraps w; if w is an http.Flusher every record is flushed.
func NewRecordWriter(w io.Writer) *RecordWriter {
	f, _ := w.(http.Flusher)
	return &RecordWriter{w: w, flusher: f}
}

// WriteRecord writes one frame and flushes it. Empty records are not
// allowed by RecordIO.
func (rw *RecordWriter) WriteRecord(b []byte) error {
	if err := rw.Append(b); err != nil {
		return err
	}
	rw.Flush()
	return nil
}

// Append writes one frame without flushing it: a stream that has several
// events ready writes them all and then flushes once (Flush), one write to
// the connection for the lot instead of one per event.
func (rw *RecordWriter) Append(b []byte) error {
	if len(b) == 0 {
		return errors.New("recordio: refusing to write an empty record")
	}
	rw.buf = strconv.AppendInt(rw.buf[:0], int64(len(b)), 10)
	rw.buf = append(rw.buf, '\n')
	rw.buf = append(rw.buf, b...)
	_, err := rw.w.Write(rw.buf)
	return err
}

// AppendRecord appends b to dst as one RecordIO frame (its length, a
// newline, the bytes), for WriteFrames. Empty records are not allowed by
// RecordIO: an empty b appends nothing.
func AppendRecord(dst, b []byte) []byte {
	if len(b) == 0 {
		return dst
	}
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, '\n')
	return append(dst, b...)
}

// WriteFrames writes frames made with AppendRecord and flushes them: a
// stream whose records were encoded elsewhere sends the lot in one write.
func (rw *RecordWriter) WriteFrames(frames []byte) error {
	if len(frames) == 0 {
		return nil
	}
	if _, err := rw.w.Write(frames); err != nil {
		return err
	}
	rw.Flush()
	return nil
}

// Flush sends what was appended.
func (rw *RecordWriter) Flush() {
	if rw.flusher != nil {
		rw.flusher.Flush()
	}
}

// RecordReader reads RecordIO frames.
type RecordReader struct {
	r *bufio.Reader
}

// NewRecordReader wraps r.
func NewRecordReader(r io.Reader) *RecordReader {
	return NewRecordReaderSize(r, 64<<10)
}

// NewRecordReaderSize wraps r with a read buffer of size bytes. The
// buffer needs to hold only a record's length line (records larger than
// it are read past it), so a process holding tens of thousands of
// streams of small records (a fleet of simulated agents) keeps it small;
// the 64 KiB of NewRecordReader suit a few busy streams.
func NewRecordReaderSize(r io.Reader, size int) *RecordReader {
	return &RecordReader{r: bufio.NewReaderSize(r, size)}
}

// ReadRecord returns the next record, or io.EOF at a clean end of stream.
func (rr *RecordReader) ReadRecord() ([]byte, error) {
	line, err := rr.r.ReadSlice('\n')
	if err != nil {
		if err == io.EOF && len(line) == 0 {
			return nil, io.EOF
		}
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	n, err := strconv.ParseUint(string(line[:len(line)-1]), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("recordio: bad record length %q: %w", line[:len(line)-1], err)
	}
	if n == 0 || n > MaxRecordSize {
		return nil, fmt.Errorf("recordio: record length %d out of range (1..%d)", n, MaxRecordSize)
	}
	if n <= eagerRecordSize {
		b := make([]byte, n)
		if _, err := io.ReadFull(rr.r, b); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		return b, nil
	}
	// A large record's memory grows with the bytes that arrive, not with
	// the length its header claims: a peer announcing 64 MiB and sending
	// nothing more holds no 64 MiB buffer.
	var buf bytes.Buffer
	buf.Grow(eagerRecordSize)
	got, err := io.CopyN(&buf, rr.r, int64(n))
	if got < int64(n) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

// eagerRecordSize is the largest record ReadRecord allocates whole before
// its bytes arrive.
const eagerRecordSize = 1 << 20
