package shuffle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agora-cluster/agora/hadoop/mapoutput"
)

func writeMapOutput(t *testing.T, dir string) (string, mapoutput.Index) {
	t.Helper()
	path := filepath.Join(dir, "file.out")
	w, err := mapoutput.CreateFile(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	for p := 0; p < 3; p++ {
		for i := 0; i < 2000; i++ {
			w.Append(p, []byte(fmt.Sprintf("p%d-key%05d", p, i)), []byte(strings.Repeat("v", p+1)))
		}
	}
	idx, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := mapoutput.WriteIndex(path+".index", idx); err != nil {
		t.Fatal(err)
	}
	return path, idx
}

func readSegment(t *testing.T, path string) []string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := mapoutput.NewSegmentReader(f, -1, 4096)
	var keys []string
	for {
		k, _, err := r.Next()
		if err == io.EOF {
			return keys
		}
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, string(k))
	}
}

// cutting serves the first response of each request only halfway, then
// breaks the connection.
type cutting struct {
	h    http.Handler
	cuts atomic.Int32
}

type halfWriter struct {
	http.ResponseWriter
	left int
}

func (h *halfWriter) Write(p []byte) (int, error) {
	if len(p) > h.left {
		h.ResponseWriter.Write(p[:h.left])
		h.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	h.left -= len(p)
	return h.ResponseWriter.Write(p)
}

func (c *cutting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Range") == "" && c.cuts.Add(1) <= 2 {
		c.h.ServeHTTP(&halfWriter{ResponseWriter: w, left: 5000}, r)
		return
	}
	c.h.ServeHTTP(w, r)
}

func TestFetchResumesBrokenTransfersAndChecksSegments(t *testing.T) {
	dir := t.TempDir()
	file, idx := writeMapOutput(t, dir)
	srv := NewServer()
	if err := srv.Register("job_1_0001", 7, "attempt_1_0001_m_000007_0", file); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, srv)
	c := &cutting{h: mux}
	hs := httptest.NewServer(c)
	defer hs.Close()

	f := &Fetcher{Backoff: 1}
	loc := Location{Map: 7, Attempt: "attempt_1_0001_m_000007_0", URL: hs.URL}
	for p := 0; p < 3; p++ {
		dst := filepath.Join(dir, fmt.Sprintf("fetched%d", p))
		got, err := f.Fetch(context.Background(), "job_1_0001", loc, p, dst)
		if err != nil {
			t.Fatalf("partition %d: %v", p, err)
		}
		if got.Records != 2000 || got.Bytes != idx[p].Length {
			t.Fatalf("partition %d: %+v, index %+v", p, got, idx[p])
		}
		keys := readSegment(t, dst)
		if len(keys) != 2000 || keys[0] != fmt.Sprintf("p%d-key00000", p) || keys[1999] != fmt.Sprintf("p%d-key01999", p) {
			t.Fatalf("partition %d: read %d keys, first %q", p, len(keys), keys[0])
		}
	}
	if c.cuts.Load() < 2 {
		t.Fatal("transfers were not interrupted; the test proves nothing")
	}

	// Unknown map, wrong attempt and bad partition fail at once.
	for _, l := range []Location{{Map: 8, URL: hs.URL}, {Map: 7, Attempt: "attempt_1_0001_m_000007_1", URL: hs.URL}} {
		if _, err := f.Fetch(context.Background(), "job_1_0001", l, 0, filepath.Join(dir, "x")); !errors.Is(err, ErrFetchFailed) {
			t.Errorf("%+v: %v", l, err)
		}
	}
	if _, err := f.Fetch(context.Background(), "job_1_0001", loc, 3, filepath.Join(dir, "x")); !errors.Is(err, ErrFetchFailed) {
		t.Errorf("partition 3 of 3: %v", err)
	}

	// A range past the segment is refused, not served from the next one.
	req, _ := http.NewRequest("GET", hs.URL+Path+"?job=job_1_0001&map=7&reduce=0", nil)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-", idx[0].Length))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("range past the segment: %s", resp.Status)
	}
	req.Header.Set("Range", "bytes=0-9")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || len(b) != 10 {
		t.Fatalf("range 0-9: %s, %d bytes", resp.Status, len(b))
	}

	if files := srv.RemoveJob("job_1_0001"); len(files) != 2 {
		t.Fatalf("RemoveJob returned %v", files)
	}
}
