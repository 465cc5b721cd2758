package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/agora-cluster/agora/storm/flux"
	"github.com/agora-cluster/agora/storm/native"
)

// Native runs the prepared word count (its resources holding storm.py)
// on the native runtime in this process, its configuration naming out as
// wordcount.output.dir, and waits until the spout has seen an ack for
// each of sentences. The numbers come from the spout's own records, as on
// Storm.
func Native(ctx context.Context, top *flux.Topology, conf map[string]any, out string, sentences int, want map[string]int) (Result, error) {
	c := map[string]any{OutputDir: out}
	for k, v := range conf {
		c[k] = v
	}
	r, err := native.Start(ctx, top, native.Options{Conf: c})
	if err != nil {
		return Result{}, err
	}
	defer r.Stop()
	res := Result{Runtime: "native", Sentences: sentences}
	for {
		acked := distinctLines(out, "acked-*.txt")
		if acked >= sentences {
			break
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("%d of %d sentences acked: %w", acked, sentences, ctx.Err())
		case <-r.Done():
			return res, fmt.Errorf("the topology stopped with %d of %d sentences acked: %w", acked, sentences, r.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	latencies := spoutRecords(out, &res)
	res.Replayed = len(lineList(out, "failed-*.txt"))
	for _, n := range want {
		res.Words += n
	}
	res.finish(latencies)
	got, err := ReadCounts(out)
	res.Valid = err == nil && equal(got, want)
	return res, nil
}
