package clustertest

import (
	"sync"
	"testing"
	"time"
)

// Queue carries events from a handler to the test that reads them. Put
// never blocks: a scheduler or executor driver calls its handlers on its
// event loop, and a handler stuck on a full channel the test has stopped
// reading (it is waiting for something else, or failing) stops that loop,
// so Run cannot return and the test's cleanup waits forever. The queue is
// unbounded instead, so no event is dropped and their order is kept.
type Queue[T any] struct {
	mu     sync.Mutex
	items  []T
	notify chan struct{} // a Put happened; capacity 1
	out    chan T
	done   chan struct{}
}

// NewQueue returns an empty queue whose delivery ends when t's test ends.
func NewQueue[T any](t testing.TB) *Queue[T] {
	q := &Queue[T]{notify: make(chan struct{}, 1), out: make(chan T), done: make(chan struct{})}
	go q.deliver()
	t.Cleanup(func() { close(q.done) })
	return q
}

// Put appends v; it never blocks.
func (q *Queue[T]) Put(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// C delivers the queued values in the order they were put.
func (q *Queue[T]) C() <-chan T { return q.out }

func (q *Queue[T]) deliver() {
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			q.mu.Unlock()
			select {
			case <-q.notify:
				continue
			case <-q.done:
				return
			}
		}
		v := q.items[0]
		var zero T
		q.items[0] = zero
		q.items = q.items[1:]
		q.mu.Unlock()
		select {
		case q.out <- v:
		case <-q.done:
			return
		}
	}
}

// StopTimeout bounds how long a cleanup waits for a Run or a goroutine to
// end after its context is cancelled.
const StopTimeout = 30 * time.Second

// AwaitStop waits for done (a Run's result, or a channel closed when it
// returns) and reports a test error naming what did not stop, rather than
// letting a stuck loop hang the test's cleanup.
func AwaitStop[T any](t testing.TB, what string, done <-chan T) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(StopTimeout):
		t.Errorf("%s did not stop within %v of its cancel", what, StopTimeout)
	}
}
