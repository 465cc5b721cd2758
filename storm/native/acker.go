package native

import (
	"sync"
	"time"
)

// Acker tracks spout tuples to completion as Storm's acker does: each
// tuple tree is one 64-bit value, the XOR of the edge IDs of the tuples
// created and acked in it. A tuple's edge ID is XORed in when it is sent
// and again when it is acked, so the value is zero exactly when every
// tuple of the tree was acked. A fail, or no completion by the deadline
// (topology.message.timeout.secs), fails the tree.
type Acker struct {
	mu      sync.Mutex
	timeout time.Duration
	trees   map[uint64]*tree
	done    func(Outcome)
}

type tree struct {
	val      uint64
	spout    int // the spout task
	msgID    any
	start    time.Time
	deadline time.Time
}

// Outcome is the end of one tree: the spout task to tell, the spout's
// message ID, whether it completed and the complete latency.
type Outcome struct {
	SpoutTask int
	MsgID     any
	Acked     bool
	Latency   time.Duration
}

// NewAcker calls done (without the acker's lock held) for every tree that
// completes or fails.
func NewAcker(timeout time.Duration, done func(Outcome)) *Acker {
	return &Acker{timeout: timeout, trees: map[uint64]*tree{}, done: done}
}

// Init starts tracking root with the XOR of the edges the spout sent. A
// tree with no edges (the tuple went to no task) completes at once.
func (a *Acker) Init(root, val uint64, spoutTask int, msgID any, now time.Time) {
	a.mu.Lock()
	if val == 0 {
		a.mu.Unlock()
		a.done(Outcome{SpoutTask: spoutTask, MsgID: msgID, Acked: true})
		return
	}
	a.trees[root] = &tree{val: val, spout: spoutTask, msgID: msgID, start: now, deadline: now.Add(a.timeout)}
	a.mu.Unlock()
}

// Ack XORs v into root's value (a bolt acked a tuple of the tree: its
// edge XOR the edges it anchored). A tree that is gone (failed, timed
// out) is ignored.
func (a *Acker) Ack(root, v uint64, now time.Time) {
	a.mu.Lock()
	t, ok := a.trees[root]
	if !ok {
		a.mu.Unlock()
		return
	}
	t.val ^= v
	if t.val != 0 {
		a.mu.Unlock()
		return
	}
	delete(a.trees, root)
	a.mu.Unlock()
	a.done(Outcome{SpoutTask: t.spout, MsgID: t.msgID, Acked: true, Latency: now.Sub(t.start)})
}

// Fail fails root's tree.
func (a *Acker) Fail(root uint64) {
	a.mu.Lock()
	t, ok := a.trees[root]
	delete(a.trees, root)
	a.mu.Unlock()
	if ok {
		a.done(Outcome{SpoutTask: t.spout, MsgID: t.msgID})
	}
}

// Expire fails every tree whose deadline is before now.
func (a *Acker) Expire(now time.Time) int {
	a.mu.Lock()
	var failed []*tree
	for root, t := range a.trees {
		if now.After(t.deadline) {
			failed = append(failed, t)
			delete(a.trees, root)
		}
	}
	a.mu.Unlock()
	for _, t := range failed {
		a.done(Outcome{SpoutTask: t.spout, MsgID: t.msgID})
	}
	return len(failed)
}

// Pending is the number of trees being tracked.
func (a *Acker) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.trees)
}
