package registry

import (
	"sync"
	"sync/atomic"
)

// Registrar writes the master's registry changes in batches: changes
// submitted while a commit is in flight are stored together in the next
// one (group commit, as Mesos's registrar does), so a burst of changes
// costs one commit instead of one each, and the master's loop, which
// submits and goes on, never waits for the disk.
//
// Batches are committed in submission order, one at a time, through
// Registry.Apply: a batch is durable whole or not at all, and every
// submission in a batch is told the same outcome, in submission order.
// Backend-agnostic: it needs only Apply.
type Registrar struct {
	reg Registry

	mu      sync.Mutex
	queue   []submission
	closed  bool
	wake    chan struct{}
	stopped chan struct{}

	batches, changes, failed atomic.Int64
}

type submission struct {
	changes []Change
	done    func(error)
}

// maxBatch bounds the changes of one commit, so that one huge burst does
// not make a transaction (and the wait of its first caller) unbounded.
const maxBatch = 4096

// NewRegistrar starts a registrar writing to reg; Close stops it.
func NewRegistrar(reg Registry) *Registrar {
	r := &Registrar{reg: reg, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	go r.run()
	return r
}

// Submit queues changes for the next commit and returns at once. done is
// called, on the registrar's goroutine, once the changes are durable
// (nil) or refused (the batch's error): done must not block. After Close,
// done is called at once with ErrClosed.
func (r *Registrar) Submit(changes []Change, done func(error)) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		done(ErrClosed)
		return
	}
	r.queue = append(r.queue, submission{changes, done})
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// ErrClosed refuses changes submitted after Close.
var ErrClosed = errClosed{}

type errClosed struct{}

func (errClosed) Error() string { return "registry: the registrar is closed" }

// Close commits what is queued, then stops; it returns once no commit is
// in flight, so the caller may close the Registry.
func (r *Registrar) Close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.wake)
	}
	r.mu.Unlock()
	<-r.stopped
}

// Stats returns the commits made, the changes they held and the commits
// that failed.
func (r *Registrar) Stats() (batches, changes, failed int64) {
	return r.batches.Load(), r.changes.Load(), r.failed.Load()
}

func (r *Registrar) run() {
	defer close(r.stopped)
	for {
		batch, more := r.next()
		if len(batch) > 0 {
			r.commit(batch)
			continue
		}
		if !more {
			return
		}
		if _, ok := <-r.wake; !ok {
			r.drain()
			return
		}
	}
}

// next takes up to maxBatch changes' worth of submissions off the queue;
// more is false once the registrar is closed and the queue empty.
func (r *Registrar) next() (batch []submission, more bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, size := 0, 0
	for n < len(r.queue) && (n == 0 || size+len(r.queue[n].changes) <= maxBatch) {
		size += len(r.queue[n].changes)
		n++
	}
	batch = append([]submission(nil), r.queue[:n]...)
	r.queue = r.queue[n:]
	if len(r.queue) == 0 {
		r.queue = nil
	}
	return batch, !r.closed || len(r.queue) > 0
}

// drain commits what was queued before Close.
func (r *Registrar) drain() {
	for {
		batch, _ := r.next()
		if len(batch) == 0 {
			return
		}
		r.commit(batch)
	}
}

func (r *Registrar) commit(batch []submission) {
	var all []Change
	for _, s := range batch {
		all = append(all, s.changes...)
	}
	err := r.reg.Apply(all)
	r.batches.Add(1)
	r.changes.Add(int64(len(all)))
	if err != nil {
		r.failed.Add(1)
	}
	for _, s := range batch {
		s.done(err)
	}
}
