// Package batch is the lambda pipeline's batch layer: it recomputes every
// view from the master dataset up to a watermark — each partition's last
// committed offset, aligned down to a realtime segment — so that the
// speed layer can drop what the new batch view absorbed, whole segments at
// a time.
//
// When the layers run as agora tasks, a batch job writes its view to a
// file (Save) that the serving layer loads (Load); the file is replaced by
// a rename, so a job killed at any moment leaves the previous view whole.
package batch

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/agora-cluster/agora/lambda/ingest"
	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/view"
)

// Watermark is where a batch run over dir stops: each partition's next
// committed offset, aligned down to a segment boundary. It changes nothing
// in dir, so it is safe while the ingester appends.
func Watermark(dir string) (map[int32]int64, error) {
	next, err := ingest.Committed(dir)
	if err != nil {
		return nil, err
	}
	wm := make(map[int32]int64, len(next))
	for p, n := range next {
		wm[p] = view.Align(n)
	}
	return wm, nil
}

// Recompute computes every view of spec from the events of dir below wm.
func Recompute(spec *plan.Spec, dir string, wm map[int32]int64) (*view.Batch, error) {
	b := &view.Batch{Watermark: wm, Rows: view.Table{}}
	err := ingest.Read(dir, wm, func(l ingest.Line) error {
		ev, err := spec.ParseEvent(l.Event)
		if err != nil {
			// The ingester appends only events that match the schema.
			return fmt.Errorf("batch: the dataset's event at %d/%d: %w", l.Partition, l.Offset, err)
		}
		b.Rows.Apply(spec, ev)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// file is a batch view on disk.
type file struct {
	Watermark map[int32]int64 `json:"watermark"`
	Rows      []fileRow       `json:"rows"`
}

type fileRow struct {
	View     string   `json:"view"`
	Key      string   `json:"key"`
	Bucket   int64    `json:"bucket"`
	Count    int64    `json:"count"`
	Sum      float64  `json:"sum,omitempty"`
	Distinct []string `json:"distinct,omitempty"`
}

// Save writes b to path durably: a temporary file synced, then renamed.
func Save(path string, b *view.Batch) error {
	f := file{Watermark: b.Watermark, Rows: make([]fileRow, 0, len(b.Rows))}
	for r, a := range b.Rows {
		fr := fileRow{View: r.View, Key: r.Key, Bucket: r.Bucket, Count: a.Count, Sum: a.Sum}
		for v := range a.Distinct {
			fr.Distinct = append(fr.Distinct, v)
		}
		slices.Sort(fr.Distinct)
		f.Rows = append(f.Rows, fr)
	}
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("batch: %w", err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("batch: writing the view %s: %w", path, err)
	}
	return nil
}

// Load reads a view Save wrote.
func Load(path string) (*view.Batch, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("batch: the view %s: %w", path, err)
	}
	b := &view.Batch{Watermark: f.Watermark, Rows: make(view.Table, len(f.Rows))}
	if b.Watermark == nil {
		b.Watermark = map[int32]int64{}
	}
	for _, fr := range f.Rows {
		a := &view.Agg{Count: fr.Count, Sum: fr.Sum}
		if fr.Distinct != nil {
			a.Distinct = make(map[string]struct{}, len(fr.Distinct))
			for _, v := range fr.Distinct {
				a.Distinct[v] = struct{}{}
			}
		}
		b.Rows[view.Row{View: fr.View, Key: fr.Key, Bucket: fr.Bucket}] = a
	}
	return b, nil
}
