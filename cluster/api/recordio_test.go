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
	r := NewRecordReader(&buf)
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
