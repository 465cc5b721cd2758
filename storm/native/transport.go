package native

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/agora-cluster/agora/storm/multilang"
)

// With topology.workers above 1, every worker runs the plan's tasks whose
// position in task-ID order is its index modulo the number of workers, as
// Storm's even scheduler spreads executors. Tuples for another worker's
// task, and acks and fails of a tree another worker tracks (the spout's
// worker, written in the root ID's low byte), go to that worker over TCP,
// JSON messages one per line. Each peer gets two connections: tuples,
// whose reader waits while the target's queue is full (backpressure), and
// acks and fails, whose reader never waits, so that acks are never stuck
// behind tuples (which, with tuples flowing both ways, could deadlock). A
// peer that cannot be reached for peerRetry loses the message: the tree
// times out at its spout and is replayed.

// wire is one message between workers.
type wire struct {
	Kind  string            `json:"k"` // tuple, ack or fail
	To    int               `json:"to,omitempty"`
	Tuple *multilang.Tuple  `json:"t,omitempty"`
	Edges map[uint64]uint64 `json:"e,omitempty"`
	Root  uint64            `json:"r,omitempty"`
	Val   uint64            `json:"v,omitempty"`
}

// peerRetry bounds how long a message waits for its peer to answer.
const peerRetry = 5 * time.Second

// maxWorkers is what the root ID's low byte can name.
const maxWorkers = 256

// peer is another worker: a connection for tuples, one for acks and fails.
type peer struct{ tuples, control *conn }

type conn struct {
	addr string
	mu   sync.Mutex
	conn net.Conn
	w    *bufio.Writer
}

// send writes m to worker w, reconnecting as needed for up to peerRetry.
func (r *Runtime) send(w int, m wire) error {
	p := r.peers[w].tuples
	if m.Kind != "tuple" {
		p = r.peers[w].control
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	deadline := time.Now().Add(peerRetry)
	var last error
	for r.ctx.Err() == nil && time.Now().Before(deadline) {
		if p.conn == nil {
			c, err := net.DialTimeout("tcp", p.addr, time.Second)
			if err != nil {
				last = err
				select {
				case <-r.ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			p.conn, p.w = c, bufio.NewWriter(c)
		}
		b, _ := json.Marshal(m)
		_, err := p.w.Write(append(b, '\n'))
		if err == nil {
			err = p.w.Flush()
		}
		if err == nil {
			return nil
		}
		last = err
		p.conn.Close()
		p.conn = nil
	}
	if last == nil {
		last = r.ctx.Err()
	}
	return fmt.Errorf("worker %d at %s: %w", w, p.addr, last)
}

// sendOrDrop sends and logs a loss (the tree's timeout replays it).
func (r *Runtime) sendOrDrop(w int, m wire) {
	if err := r.send(w, m); err != nil && r.ctx.Err() == nil {
		r.log.Warn("native storm: message to a worker lost; its tuple tree will time out", "kind", m.Kind, "err", err)
	}
}

// serve accepts the other workers' connections until the topology stops.
func (r *Runtime) serve(ln net.Listener) {
	defer r.wg.Done()
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	go func() {
		<-r.ctx.Done()
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if r.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				r.fail(fmt.Errorf("worker %d: accept: %w", r.worker, err))
			}
			return
		}
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.receive(c)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			c.Close()
		}()
	}
}

// receive handles one peer's messages.
func (r *Runtime) receive(c net.Conn) {
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var m wire
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			r.log.Warn("native storm: bad message from a worker; dropping the connection", "from", c.RemoteAddr(), "err", err)
			return
		}
		switch m.Kind {
		case "tuple":
			t := r.tasks[m.To]
			if t == nil || m.Tuple == nil || r.owner[m.To] != r.worker || t.spout {
				r.log.Warn("native storm: a tuple for a task this worker does not run", "task", m.To, "from", c.RemoteAddr())
				continue
			}
			select {
			case t.inbox <- delivery{to: m.To, tuple: *m.Tuple, edges: m.Edges}:
			case <-r.ctx.Done():
				return
			}
		case "ack":
			r.acker.Ack(m.Root, m.Val, time.Now())
		case "fail":
			r.acker.Fail(m.Root)
		}
	}
}

// ackRoot and failRoot reach the acker of root's tree, here or at the
// worker named in its low byte.
func (r *Runtime) ackRoot(root, v uint64, now time.Time) {
	if w := int(root % maxWorkers); w != r.worker {
		r.sendOrDrop(w, wire{Kind: "ack", Root: root, Val: v})
		return
	}
	r.acker.Ack(root, v, now)
}

func (r *Runtime) failRoot(root uint64) {
	if w := int(root % maxWorkers); w != r.worker {
		r.sendOrDrop(w, wire{Kind: "fail", Root: root})
		return
	}
	r.acker.Fail(root)
}

// newRoot is a fresh root ID naming this worker.
func (r *Runtime) newRoot(random uint64) uint64 {
	return random&^(maxWorkers-1) | uint64(r.worker)
}
