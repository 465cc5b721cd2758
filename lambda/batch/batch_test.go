package batch

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	pageviews "github.com/agora-cluster/agora/examples/lambda-pageviews"
	"github.com/agora-cluster/agora/lambda/ingest"
	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/view"
)

// dataset writes one committed chunk of n events of partition 0 and the
// files of an uncommitted one after it, as an ingester killed between a
// chunk's files and its commit record leaves them.
func dataset(t *testing.T, spec *plan.Spec, n int) (string, view.Table) {
	t.Helper()
	dir := t.TempDir()
	truth := view.Table{}
	var lines []string
	for i := 0; i < n; i++ {
		ev := fmt.Sprintf(`{"ts":1796450400000,"url":"/p%d","user":"u%d","bytes":%d}`, i%3, i%7, i)
		lines = append(lines, fmt.Sprintf("%d\t%s", i, ev))
		if int64(i) < view.Align(int64(n)) {
			e, _ := spec.ParseEvent([]byte(ev))
			truth.Apply(spec, e)
		}
	}
	hour := filepath.Join(dir, "hour=2026-12-04T22")
	os.MkdirAll(hour, 0o755)
	os.MkdirAll(filepath.Join(dir, "_commits"), 0o755)
	os.WriteFile(filepath.Join(hour, fmt.Sprintf("p0-0-%d.jsonl", n)), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "_commits", fmt.Sprintf("p0-0-%d", n)), []byte(fmt.Sprintf("appended=%d dead=0\n", n)), 0o644)
	os.WriteFile(filepath.Join(hour, fmt.Sprintf("p0-%d-%d.jsonl", n, n+5)), []byte("not yet committed\n"), 0o644)
	return dir, truth
}

// The watermark is the committed offsets aligned down to a segment, and
// reading it leaves an uncommitted chunk alone: the ingester that writes
// it may be about to commit it.
func TestWatermarkLeavesUncommittedChunks(t *testing.T) {
	spec, err := plan.Parse(pageviews.Spec)
	if err != nil {
		t.Fatal(err)
	}
	dir, truth := dataset(t, spec, 1500)
	wm, err := Watermark(dir)
	if err != nil || !reflect.DeepEqual(wm, map[int32]int64{0: 1024}) {
		t.Fatalf("Watermark = %v, %v; want partition 0 at 1024", wm, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "hour=2026-12-04T22", "p0-1500-1505.jsonl")); err != nil {
		t.Fatalf("the uncommitted chunk is gone: %v", err)
	}
	st, err := ingest.DatasetStats(dir)
	if err != nil || st != (ingest.Stats{Appended: 1500, Chunks: 1}) {
		t.Errorf("DatasetStats = %+v, %v", st, err)
	}
	b, err := Recompute(spec, dir, wm)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Rows) != len(truth) {
		t.Fatalf("%d rows, want %d", len(b.Rows), len(truth))
	}
	for r, a := range truth {
		for _, v := range spec.Views {
			if r.View == v.Name && b.Rows[r].Value(v.Type) != a.Value(v.Type) {
				t.Errorf("row %+v: %g, want %g", r, b.Rows[r].Value(v.Type), a.Value(v.Type))
			}
		}
	}
}

// A view saved and loaded again is the same view; a damaged file is an
// error naming it.
func TestSaveLoad(t *testing.T) {
	spec, _ := plan.Parse(pageviews.Spec)
	dir, _ := dataset(t, spec, 1100)
	wm, _ := Watermark(dir)
	b, err := Recompute(spec, dir, wm)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "batch.json")
	if err := Save(path, b); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil || !reflect.DeepEqual(got, b) {
		t.Fatalf("Load = %+v, %v; want %+v", got, err, b)
	}
	os.WriteFile(path, []byte(`{"watermark":`), 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Load of a damaged view: %v", err)
	}
}

// The Streaming mapper and reducer over a dataset's committed chunks give
// the rows Recompute gives.
func TestMapReduceIsRecompute(t *testing.T) {
	spec, _ := plan.Parse(pageviews.Spec)
	dir, _ := dataset(t, spec, 2100)
	wm, _ := Watermark(dir)
	want, err := Recompute(spec, dir, wm)
	if err != nil {
		t.Fatal(err)
	}
	files, err := ingest.CommittedFiles(dir)
	if err != nil || len(files) != 1 {
		t.Fatalf("CommittedFiles = %v, %v; want the one committed chunk", files, err)
	}
	w, err := ParseWatermark(FormatWatermark(wm))
	if err != nil || !reflect.DeepEqual(w, wm) {
		t.Fatalf("watermark %v through the command line: %v, %v", wm, w, err)
	}
	var mapped, reduced strings.Builder
	f, _ := os.Open(files[0])
	defer f.Close()
	if err := Map(spec, w, files[0], f, &mapped); err != nil {
		t.Fatal(err)
	}
	// Two map outputs of the same rows, as two splits would give.
	if err := Reduce(strings.NewReader(mapped.String()+mapped.String()), &reduced); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "part-00000"), []byte(reduced.String()), 0o644)
	got, err := ReadOutput(out)
	if err != nil {
		t.Fatal(err)
	}
	for r, a := range want.Rows {

		g := got[r]
		if g == nil || g.Count != 2*a.Count || g.Sum != 2*a.Sum || g.Value("distinct") != a.Value("distinct") {
			t.Fatalf("row %+v: got %+v, want twice %+v", r, g, a)
		}
	}
	if len(got) != len(want.Rows) {
		t.Errorf("%d rows, want %d", len(got), len(want.Rows))
	}
	if err := Map(spec, w, "part-0", strings.NewReader(""), io.Discard); err == nil || !strings.Contains(err.Error(), "not a dataset chunk") {
		t.Errorf("Map of a file that is no chunk: %v", err)
	}
	if _, err := ParseWatermark("0=x"); err == nil {
		t.Error("ParseWatermark(0=x) gave no error")
	}
}
