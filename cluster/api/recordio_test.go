package api

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func durationOf(n int64) time.Duration { return time.Duration(n) }

func TestRecordIORoundTrip(t *testing.T) {
	for _, size := range []int{64 << 10, 16} {
		testRecordIORoundTrip(t, func(r io.Reader) *RecordReader { return NewRecordReaderSize(r, size) })
	}
	testRecordIORoundTrip(t, NewRecordReader)
}

// testRecordIORoundTrip reads back records larger and smaller than the
// reader's buffer.
func testRecordIORoundTrip(t *testing.T, newReader func(io.Reader) *RecordReader) {
	var buf bytes.Buffer
	w := NewRecordWriter(&buf)
	for _, rec := range []string{"a", "hello\nworld", strings.Repeat("x", 100000)} {
		if err := w.WriteRecord([]byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteRecord(nil); err == nil {
		t.Fatal("empty record written")
	}
	r := newReader(&buf)
	for _, want := range []string{"a", "hello\nworld", strings.Repeat("x", 100000)} {
		got, err := r.ReadRecord()
		if err != nil || string(got) != want {
			t.Fatalf("read %q, %v", got[:min(len(got), 20)], err)
		}
	}
	if _, err := r.ReadRecord(); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
}

func TestRecordIORejectsBadFrames(t *testing.T) {
	for _, in := range []string{"x\nabc", "0\n", "5\nab", "99999999999\nx"} {
		if _, err := NewRecordReader(strings.NewReader(in)).ReadRecord(); err == nil || err == io.EOF {
			t.Errorf("frame %q accepted (err %v)", in, err)
		}
	}
}

// countingFlusher counts flushes and what was written before each.
type countingFlusher struct {
	bytes.Buffer
	flushed []int
}

func (c *countingFlusher) Flush() { c.flushed = append(c.flushed, c.Len()) }

// Appended records reach the peer with one flush; WriteRecord flushes each.
func TestRecordIOAppendThenFlushOnce(t *testing.T) {
	var c countingFlusher
	w := NewRecordWriter(&c)
	for _, rec := range []string{"one", "two", "three"} {
		if err := w.Append([]byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.flushed) != 0 {
		t.Fatalf("Append flushed %d times", len(c.flushed))
	}
	w.Flush()
	if err := w.WriteRecord([]byte("four")); err != nil {
		t.Fatal(err)
	}
	if len(c.flushed) != 2 || c.flushed[0] != len("3\none3\ntwo5\nthree") {
		t.Fatalf("flushes after %v bytes; want one after the three appended records, one after the fourth", c.flushed)
	}
	r := NewRecordReader(&c)
	for _, want := range []string{"one", "two", "three", "four"} {
		if got, err := r.ReadRecord(); err != nil || string(got) != want {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}
}

// Frames made with AppendRecord (elsewhere than the stream's writer) go
// out in one write and one flush, and read back as the records they were;
// an empty record is left out, as RecordIO has no empty frame.
func TestRecordIOWriteFramesOnce(t *testing.T) {
	var frames []byte
	for _, rec := range []string{"one", "", "hello\nworld"} {
		frames = AppendRecord(frames, []byte(rec))
	}
	var c countingFlusher
	w := NewRecordWriter(&c)
	if err := w.WriteFrames(nil); err != nil || len(c.flushed) != 0 {
		t.Fatalf("no frames: %v, %d flushes", err, len(c.flushed))
	}
	if err := w.WriteFrames(frames); err != nil {
		t.Fatal(err)
	}
	if len(c.flushed) != 1 || c.flushed[0] != len("3\none11\nhello\nworld") {
		t.Fatalf("flushes after %v bytes; want one after both records", c.flushed)
	}
	r := NewRecordReader(&c)
	for _, want := range []string{"one", "hello\nworld"} {
		if got, err := r.ReadRecord(); err != nil || string(got) != want {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}
	if _, err := r.ReadRecord(); err != io.EOF {
		t.Fatalf("want EOF after the two records, got %v", err)
	}
}
