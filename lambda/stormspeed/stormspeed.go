// Package stormspeed is the lambda pipeline's speed layer as a Storm
// topology (layers.speed: storm): a Kafka spout emits each event of the
// input topic as a tuple (partition, offset, event) and one counting bolt
// applies them to the realtime view and serves the query API over both
// views. Run runs the topology on agora's native Storm runtime and
// RunOnNimbus submits it to a real Storm; either way its two components
// are `agora lambda storm-spout` and `agora lambda storm-bolt`, speaking
// Storm's multilang protocol, started by sh from the resources directory.
//
// Exactness under Storm's at-least-once delivery: every spout tuple is
// tracked to its ack and emitted again when it fails, and the bolt applies
// an offset once however often it comes, in whatever order. A bolt that
// dies loses its view: the one started in its place writes a reset file,
// and the spout, seeing it, reads the topic again from the batch
// watermark. A spout that dies starts there as well.
package stormspeed

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/view"
	"github.com/agora-cluster/agora/storm/multilang"
)

// Dir is the speed layer's directory under the work directory: the
// topology's resources, the bolt's reset file and its query address.
func Dir(workDir string) string { return filepath.Join(workDir, "storm-speed") }

// AddrFile holds the running bolt's query API address.
func AddrFile(workDir string) string { return filepath.Join(Dir(workDir), "api-addr") }

func resetFile(workDir string) string { return filepath.Join(Dir(workDir), "bolt-started") }

// conn is a component's end of the multilang protocol.
type conn struct {
	r  *bufio.Reader
	mu sync.Mutex
	w  *bufio.Writer
}

// handshake reads the setup, writes the pid file and answers the pid.
func handshake(in io.Reader, out io.Writer) (*conn, multilang.Setup, error) {
	c := &conn{r: bufio.NewReaderSize(in, 64<<10), w: bufio.NewWriter(out)}
	var setup multilang.Setup
	raw, err := c.read()
	if err != nil {
		return nil, setup, err
	}
	if err := json.Unmarshal(raw, &setup); err != nil {
		return nil, setup, fmt.Errorf("multilang: the setup is not JSON: %v", err)
	}
	pid := os.Getpid()
	if setup.PIDDir != "" {
		if err := os.WriteFile(filepath.Join(setup.PIDDir, strconv.Itoa(pid)), nil, 0o644); err != nil {
			return nil, setup, fmt.Errorf("multilang: the pid file: %w", err)
		}
	}
	return c, setup, c.send(map[string]int{"pid": pid})
}

// read reads one message: the lines up to one that is "end".
func (c *conn) read() ([]byte, error) {
	var msg []byte
	for {
		line, err := c.r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("multilang: reading: %w", err)
		}
		if bytes.Equal(line, []byte("end\n")) {
			return msg, nil
		}
		msg = append(msg, line...)
	}
}

// send writes one message.
func (c *conn) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.w.Write(b)
	c.w.WriteString("\nend\n")
	return c.w.Flush()
}

// Realtime is the bolt's view: the events from the batch watermark on,
// each offset applied once.
type Realtime struct {
	spec *plan.Spec

	mu   sync.Mutex
	rt   *view.Realtime
	next map[int32]int64          // below it every offset is applied (or in the batch view)
	seen map[int32]map[int64]bool // offsets at or above next applied already
	dead int64
}

// NewRealtime starts the view at the batch watermark from.
func NewRealtime(spec *plan.Spec, from map[int32]int64) *Realtime {
	r := &Realtime{spec: spec, rt: view.NewRealtime(), next: map[int32]int64{}, seen: map[int32]map[int64]bool{}}
	for p := int32(0); p < int32(spec.Input.Partitions); p++ {
		r.next[p] = from[p]
		r.seen[p] = map[int64]bool{}
	}
	return r
}

// Apply applies the event at offset of partition unless it was already.
func (r *Realtime) Apply(partition int32, offset int64, event []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := r.seen[partition]
	if seen == nil || offset < r.next[partition] || seen[offset] {
		return
	}
	seen[offset] = true
	for seen[r.next[partition]] {
		delete(seen, r.next[partition])
		r.next[partition]++
	}
	ev, err := r.spec.ParseEvent(event)
	if err != nil {
		r.dead++ // the ingester sends it to the dead-letter topic
		return
	}
	r.rt.Apply(r.spec, partition, offset, ev)
}

// Next is, per partition, the offset below which every event is applied.
func (r *Realtime) Next() map[int32]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[int32]int64, len(r.next))
	for p, n := range r.next {
		out[p] = n
	}
	return out
}

// Expire drops what a batch view with watermark wm holds.
func (r *Realtime) Expire(wm map[int32]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rt.Expire(wm)
	for p, w := range wm {
		if r.next[p] >= w {
			continue
		}
		r.next[p] = w
		for o := range r.seen[p] {
			if o < w {
				delete(r.seen[p], o)
			}
		}
		for r.seen[p][r.next[p]] {
			delete(r.seen[p], r.next[p])
			r.next[p]++
		}
	}
}

// Query answers view v for key over [from, to) merged with batch.
func (r *Realtime) Query(v plan.View, key string, from, to time.Time, batch *view.Batch) []view.Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	return view.Query(v, key, from, to, batch, r.rt)
}

// writeFile replaces path's content whole.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

var errProtocol = errors.New("multilang: unexpected message")
