// Package batch is the lambda pipeline's batch layer: it recomputes every
// view from the master dataset up to a watermark — each partition's last
// committed offset, aligned down to a realtime segment — so that the
// speed layer can drop what the new batch view absorbed, whole segments at
// a time.
package batch

import (
	"fmt"

	"github.com/agora-cluster/agora/lambda/ingest"
	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/view"
)

// Watermark is where a batch run over dir stops: each partition's next
// committed offset, aligned down to a segment boundary.
func Watermark(dir string) (map[int32]int64, error) {
	next, err := ingest.Recover(dir)
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
