// Package speed is the lambda pipeline's speed layer: it reads the input
// topic from the serving store's batch watermark on and keeps the realtime
// view of every event the batch view does not hold. Its state is rebuilt
// from Kafka when it starts, so a speed worker that dies loses nothing and
// counts nothing twice: the events from the watermark on are read again.
package speed

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/view"
)

// Layer is one speed worker over every partition of the input topic.
type Layer struct {
	spec *plan.Spec
	cl   *kgo.Client

	mu   sync.Mutex
	rt   *view.Realtime
	next map[int32]int64 // the next offset to apply, per partition
	dead int64
}

// New starts reading each partition at from's offset (the batch
// watermark; 0 for a partition it does not name).
func New(spec *plan.Spec, brokers []string, from map[int32]int64) (*Layer, error) {
	offsets := map[int32]kgo.Offset{}
	next := map[int32]int64{}
	for p := int32(0); p < int32(spec.Input.Partitions); p++ {
		offsets[p] = kgo.NewOffset().At(from[p])
		next[p] = from[p]
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{spec.Input.Topic: offsets}),
		kgo.FetchMaxWait(200*time.Millisecond),
		// The embedded broker (kfake) does not answer an incremental fetch
		// (KIP-227 session) early when new records arrive on a partition
		// the request left out: every event would wait out FetchMaxWait.
		// Full fetches of a few partitions cost Kafka nothing noticeable.
		kgo.DisableFetchSessions())
	if err != nil {
		return nil, fmt.Errorf("speed: %w", err)
	}
	return &Layer{spec: spec, cl: cl, rt: view.NewRealtime(), next: next}, nil
}

// Close ends the worker's Kafka client.
func (l *Layer) Close() { l.cl.Close() }

// Run applies events until ctx ends.
func (l *Layer) Run(ctx context.Context) error {
	for {
		if err := l.Poll(ctx); err != nil {
			return err
		}
	}
}

// Poll fetches once and applies what came.
func (l *Layer) Poll(ctx context.Context) (err error) {
	fs := l.cl.PollFetches(ctx)
	for _, e := range fs.Errors() {
		if !errors.Is(e.Err, context.Canceled) && !errors.Is(e.Err, context.DeadlineExceeded) {
			return fmt.Errorf("speed: fetching %s[%d]: %w", e.Topic, e.Partition, e.Err)
		}
	}
	// What was fetched is applied even if ctx ended meanwhile: the client
	// will not return those records again.
	defer func() { err = ctx.Err() }()
	l.mu.Lock()
	defer l.mu.Unlock()
	fs.EachRecord(func(r *kgo.Record) {
		if r.Offset < l.next[r.Partition] {
			return // already applied
		}
		l.next[r.Partition] = r.Offset + 1
		ev, err := l.spec.ParseEvent(r.Value)
		if err != nil {
			l.dead++ // the ingester sends it to the dead-letter topic
			return
		}
		l.rt.Apply(l.spec, r.Partition, r.Offset, ev)
	})
	return nil // ctx's error, by the deferred call
}

// Next is the next offset the worker will apply, per partition: what a
// query's freshness can be judged by.
func (l *Layer) Next() map[int32]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[int32]int64, len(l.next))
	for p, n := range l.next {
		out[p] = n
	}
	return out
}

// Expire drops what a batch view with watermark wm holds.
func (l *Layer) Expire(wm map[int32]int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rt.Expire(wm)
}

// Query answers view v for key over [from, to) merged with batch.
func (l *Layer) Query(v plan.View, key string, from, to time.Time, batch *view.Batch) []view.Point {
	l.mu.Lock()
	defer l.mu.Unlock()
	return view.Query(v, key, from, to, batch, l.rt)
}
