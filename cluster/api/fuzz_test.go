package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// FuzzRecordIO: whatever a peer streams, the reader never panics, never
// returns an empty or oversized record, ends with an error or io.EOF,
// and what it read writes back to frames that read back the same.
func FuzzRecordIO(f *testing.F) {
	for _, s := range []string{"5\nhello3\nabc", "1\nx", "0\n", "05\nhello", "-1\nx", "3\nab", "10", "\n", "67108865\nx",
		"18446744073709551616\n", "2\nab\n", "+2\nab", " 2\nab", "2\r\nab", "4\n\n\n\n\n1\n"} {
		f.Add([]byte(s), uint8(16))
	}
	f.Fuzz(func(t *testing.T, in []byte, size uint8) {
		rr := NewRecordReaderSize(bytes.NewReader(in), int(size)+16)
		var records [][]byte
		var err error
		for {
			var rec []byte
			rec, err = rr.ReadRecord()
			if err != nil {
				break
			}
			if len(rec) == 0 || len(rec) > MaxRecordSize {
				t.Fatalf("a record of %d bytes", len(rec))
			}
			records = append(records, rec)
		}
		if err != io.EOF && err.Error() == "" {
			t.Fatal("a refusal without a reason")
		}
		var out bytes.Buffer
		w := NewRecordWriter(&out)
		for _, rec := range records {
			if err := w.WriteRecord(rec); err != nil {
				t.Fatal(err)
			}
		}
		if err == io.EOF && out.Len() > len(in) {
			t.Fatalf("%d bytes of clean stream re-encode to %d", len(in), out.Len())
		}
		again := NewRecordReader(&out)
		for i, rec := range records {
			got, err := again.ReadRecord()
			if err != nil || !bytes.Equal(got, rec) {
				t.Fatalf("record %d reads back as %q, %v; want %q", i, got, err, rec)
			}
		}
		if _, err := again.ReadRecord(); err != io.EOF {
			t.Fatalf("after the re-encoded records: %v, want io.EOF", err)
		}
	})
}

// A length header that claims a large record holds no buffer of that size
// until the bytes arrive.
func TestRecordReaderDoesNotTrustTheClaimedLength(t *testing.T) {
	in := strings.NewReader("67108864\n" + strings.Repeat("x", 100))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := NewRecordReader(in).ReadRecord()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a cut record: %v, want io.ErrUnexpectedEOF", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Fatalf("reading 100 bytes of a record claiming 64 MiB allocated %d bytes", grew)
	}
}

// FuzzParseResources: the --resources syntax (text or JSON) never panics
// the parser; what it accepts has names and finite non-negative scalars,
// renders to JSON, and its text form parses back to the same text form.
func FuzzParseResources(f *testing.F) {
	for _, s := range []string{
		"cpus:4;mem:8192;disk:10240;ports:[31000-32000];gpus:0;labels:{a,b}",
		"cpus(analytics):2;mem(*):1", "cpus:NaN", "cpus:-1", "cpus:Inf", "mem:1e308", "cpus:0x1p-2",
		"ports:[5-1]", "ports:[1-2,2-3, 10-10]", "ports:[]", "s:{}", "s:{a:b,}", "cpus():1", "cpus(a:1", "(r):1",
		":1", "cpus", "cpus:text", "cpus(a)b):1;;",
		`[{"name":"cpus","type":"SCALAR","scalar":{"value":2}}]`,
		`[{"name":"cpus","type":"SCALAR","scalar":{"value":-2}}]`,
		`[{"name":"","type":"SET"}]`, `[{"name":"p","type":"RANGES","ranges":{"range":[{"begin":9,"end":1}]}}]`, "[",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		rs, err := ParseResources(text)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("a refusal without a reason")
			}
			return
		}
		for _, r := range rs {
			if strings.TrimSpace(r.Name) == "" {
				t.Fatalf("accepted a resource without a name: %v", r)
			}
			if r.GetType() == mesos.SCALAR {
				if v := r.GetScalar().GetValue(); v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("accepted the scalar %v for %s", v, r.Name)
				}
			}
		}
		if _, err := json.Marshal(FlattenResources(rs)); err != nil {
			t.Fatalf("accepted resources do not render to JSON: %v", err)
		}
		if strings.HasPrefix(strings.TrimSpace(text), "[") {
			return // JSON keeps what the text syntax cannot say (labels, providers)
		}
		once := FormatResources(rs)
		again, err := ParseResources(once)
		if err != nil {
			t.Fatalf("%q formats as %q, which does not parse: %v", text, once, err)
		}
		if twice := FormatResources(again); twice != once || len(again) != len(rs) {
			t.Fatalf("%q: formats as %q, then as %q", text, once, twice)
		}
	})
}

// FuzzParseAttributes: the --attributes syntax never panics the parser;
// what it accepts renders to JSON and its text form parses back the same.
func FuzzParseAttributes(f *testing.F) {
	for _, s := range []string{"rack:r1;zone:us-east;level:3;slots:[1-4]", "os:{linux,amd64}", "x:NaN", "x:-Inf", "x:[3-1]",
		"x:[", "x:{", ":y", "a:b:c", "a: spaced value ;b:1e400", "x:0x10", ";;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		as, err := ParseAttributes(text)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("a refusal without a reason")
			}
			return
		}
		if _, err := json.Marshal(FlattenAttributes(as)); err != nil {
			t.Fatalf("accepted attributes do not render to JSON: %v", err)
		}
		once := formatAttributes(as)
		again, err := ParseAttributes(once)
		if err != nil {
			t.Fatalf("%q formats as %q, which does not parse: %v", text, once, err)
		}
		if twice := formatAttributes(again); twice != once || len(again) != len(as) {
			t.Fatalf("%q: formats as %q, then as %q", text, once, twice)
		}
	})
}

func formatAttributes(as []mesos.Attribute) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.Name + ":" + FormatValue(a.GetType(), a.Scalar, a.Ranges, a.Set, a.Text)
	}
	return strings.Join(parts, ";")
}
