package batch

// The batch job as a Hadoop Streaming job on agora's Hadoop framework:
// `agora lambda map` aggregates its split of the dataset into partial rows,
// `agora lambda reduce` merges the partial rows of each view row, and the
// job's output is read back as the batch view. A row travels as one line,
// KEY<TAB>AGG: KEY the JSON array [view, key, bucket] (JSON keeps tabs and
// newlines of key values out of the line) and AGG the JSON of the partial
// aggregate.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/view"
)

// partial is a row's aggregate on the wire.
type partial struct {
	Count    int64    `json:"c"`
	Sum      float64  `json:"s,omitempty"`
	Distinct []string `json:"d,omitempty"`
}

func toPartial(a *view.Agg) partial {
	p := partial{Count: a.Count, Sum: a.Sum}
	for v := range a.Distinct {
		p.Distinct = append(p.Distinct, v)
	}
	slices.Sort(p.Distinct)
	return p
}

func (p partial) agg() *view.Agg {
	a := &view.Agg{Count: p.Count, Sum: p.Sum}
	if p.Distinct != nil {
		a.Distinct = make(map[string]struct{}, len(p.Distinct))
		for _, v := range p.Distinct {
			a.Distinct[v] = struct{}{}
		}
	}
	return a
}

func writeRows(w io.Writer, t view.Table) error {
	bw := bufio.NewWriter(w)
	for r, a := range t {
		k, _ := json.Marshal([]any{r.View, r.Key, r.Bucket})
		v, _ := json.Marshal(toPartial(a))
		bw.Write(k)
		bw.WriteByte('\t')
		bw.Write(v)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

func parseRow(line string) (view.Row, *view.Agg, error) {
	k, v, ok := strings.Cut(line, "\t")
	var key []json.RawMessage
	var p partial
	if !ok || json.Unmarshal([]byte(k), &key) != nil || len(key) != 3 || json.Unmarshal([]byte(v), &p) != nil {
		return view.Row{}, nil, fmt.Errorf("batch: %.100q is not a view row (KEY<TAB>AGG)", line)
	}
	var r view.Row
	if json.Unmarshal(key[0], &r.View) != nil || json.Unmarshal(key[1], &r.Key) != nil || json.Unmarshal(key[2], &r.Bucket) != nil {
		return view.Row{}, nil, fmt.Errorf("batch: %.100q is not a view row (KEY<TAB>AGG)", line)
	}
	return r, p.agg(), nil
}

var chunkFile = regexp.MustCompile(`^p(\d+)-\d+-\d+\.jsonl$`)

// Map aggregates the dataset lines of one chunk file (named file, read
// from r) below wm into partial rows on w.
func Map(spec *plan.Spec, wm map[int32]int64, file string, r io.Reader, w io.Writer) error {
	m := chunkFile.FindStringSubmatch(filepath.Base(file))
	if m == nil {
		return fmt.Errorf("batch: map input %q is not a dataset chunk (p<partition>-<first>-<end>.jsonl)", file)
	}
	p64, _ := strconv.ParseInt(m[1], 10, 32)
	limit := wm[int32(p64)]
	t := view.Table{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		off, ev, ok := strings.Cut(sc.Text(), "\t")
		n, err := strconv.ParseInt(off, 10, 64)
		if !ok || err != nil {
			return fmt.Errorf("batch: %s: a line without its offset: %.80q", file, sc.Text())
		}
		if n >= limit {
			continue
		}
		e, err := spec.ParseEvent([]byte(ev))
		if err != nil {
			return fmt.Errorf("batch: the dataset's event at %d/%d: %w", p64, n, err)
		}
		t.Apply(spec, e)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return writeRows(w, t)
}

// Reduce merges the partial rows of r (any order) into one line per row.
func Reduce(r io.Reader, w io.Writer) error {
	t, err := readRows(r)
	if err != nil {
		return err
	}
	return writeRows(w, t)
}

func readRows(r io.Reader) (view.Table, error) {
	t := view.Table{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		if sc.Text() == "" {
			continue
		}
		row, a, err := parseRow(sc.Text())
		if err != nil {
			return nil, err
		}
		t.Merge(view.Table{row: a})
	}
	return t, sc.Err()
}

// ReadOutput reads a finished job's output directory (part-* files) as
// the rows of a batch view.
func ReadOutput(dir string) (view.Table, error) {
	parts, err := filepath.Glob(filepath.Join(dir, "part-*"))
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("batch: no part-* files in the job's output %s", dir)
	}
	t := view.Table{}
	for _, p := range parts {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		u, err := readRows(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		t.Merge(u)
	}
	return t, nil
}

// FormatWatermark and ParseWatermark carry a watermark on a command line:
// PARTITION=OFFSET,...
func FormatWatermark(wm map[int32]int64) string {
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(wm)) {
		parts = append(parts, fmt.Sprintf("%d=%d", p, wm[p]))
	}
	return strings.Join(parts, ",")
}

// ParseWatermark reads what FormatWatermark wrote.
func ParseWatermark(s string) (map[int32]int64, error) {
	wm := map[int32]int64{}
	if s == "" {
		return wm, nil
	}
	for _, kv := range strings.Split(s, ",") {
		p, o, ok := strings.Cut(kv, "=")
		pn, err1 := strconv.ParseInt(p, 10, 32)
		on, err2 := strconv.ParseInt(o, 10, 64)
		if !ok || err1 != nil || err2 != nil || pn < 0 || on < 0 {
			return nil, fmt.Errorf("batch: watermark %q: want PARTITION=OFFSET,... (e.g. 0=1024,1=2048)", s)
		}
		wm[int32(pn)] = on
	}
	return wm, nil
}
