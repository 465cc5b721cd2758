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

// A worker launched again (maybe elsewhere, on another port) announces
// its address to the others with a hello carrying its index and its
// launch number; a peer's address is replaced by a hello of a later
// launch than the one it has, and the next message to that worker dials
// the new address.

// wire is one message between workers.
type wire struct {
	Kind  string            `json:"k"` // tuple, ack, fail, hello or status
	To    int               `json:"to,omitempty"`
	Tuple *multilang.Tuple  `json:"t,omitempty"`
	Edges map[uint64]uint64 `json:"e,omitempty"`
	Root  uint64            `json:"r,omitempty"`
	Val   uint64            `json:"v,omitempty"`
	// Of a hello: the worker's index, address and launch.
	Worker int    `json:"w,omitempty"`
	Addr   string `json:"a,omitempty"`
	Launch int    `json:"l,omitempty"`
	// Of a status: the topology's status and its generation.
	Active bool  `json:"on,omitempty"`
	Gen    int64 `json:"g,omitempty"`
}

// peerRetry bounds how long a message waits for its peer to answer.
const peerRetry = 5 * time.Second

// maxWorkers is what the root ID's low byte can name.
const maxWorkers = 256

// peer is another worker: its address, the launch that address is of,
// a connection for tuples and one for acks and fails.
type peer struct {
	mu              sync.Mutex
	addr            string
	launch          int
	tuples, control *conn
}

// address is where the peer is now.
func (p *peer) address() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// moved takes the address of a hello if it is of a later launch.
func (p *peer) moved(addr string, launch int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if launch <= p.launch || addr == "" {
		return false
	}
	p.addr, p.launch = addr, launch
	return true
}

type conn struct {
	mu     sync.Mutex
	conn   net.Conn
	w      *bufio.Writer
	dialed string // the address conn is to
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
	addr := r.peers[w].address()
	for r.ctx.Err() == nil && time.Now().Before(deadline) {
		if addr = r.peers[w].address(); p.conn != nil && p.dialed != addr {
			p.conn.Close() // the worker moved
			p.conn = nil
		}
		if p.conn == nil {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				last = err
				select {
				case <-r.ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			p.conn, p.w, p.dialed = c, bufio.NewWriter(c), addr
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
	return fmt.Errorf("worker %d at %s: %w", w, addr, last)
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
		case "status":
			r.SetStatus(Status{Active: m.Active, Gen: m.Gen})
		case "hello":
			if m.Worker >= 0 && m.Worker < len(r.peers) && m.Worker != r.worker && r.peers[m.Worker].moved(m.Addr, m.Launch) {
				r.log.Info("native storm: a worker was launched again", "worker", m.Worker, "addr", m.Addr, "launch", m.Launch)
			}
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

// announce tells every other worker where this one is, for a worker
// launched again: each hello is retried for peerRetry (a peer that is
// itself being replaced learns the address from its launch instead).
func (r *Runtime) announce() {
	for w := range r.peers {
		if w == r.worker {
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			m := wire{Kind: "hello", Worker: r.worker, Addr: r.opts.Peers[r.worker], Launch: r.opts.Launch}
			if err := r.send(w, m); err != nil && r.ctx.Err() == nil {
				r.log.Warn("native storm: could not announce this worker to another", "worker", w, "err", err)
			}
		}()
	}
}
