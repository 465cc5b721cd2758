package master

import "sync"

// outbox is a FIFO between the loop (producer) and one stream writer
// goroutine (consumer), so the loop never blocks on a slow peer. With a
// limit, a peer that falls that many items behind is cut off: the outbox
// drops what it holds and closes, the stream ends, and the peer (a
// scheduler or an operator subscriber, which subscribes again and
// reconciles) costs the master no more memory.
type outbox struct {
	mu         sync.Mutex
	items      []any
	notify     chan struct{}
	closed     bool
	done       chan struct{}
	cut        chan struct{} // closed when the limit is hit
	limit      int           // 0: unbounded (agents, whose messages must not be dropped)
	onOverflow func()        // called once, on the loop, when the limit is hit
}

func newOutbox() *outbox {
	return &outbox{notify: make(chan struct{}, 1), done: make(chan struct{}), cut: make(chan struct{})}
}

// newBoundedOutbox is an outbox that cuts its peer off after limit
// unwritten items (0: unbounded), calling onOverflow when it does.
func newBoundedOutbox(limit int, onOverflow func()) *outbox {
	o := newOutbox()
	o.limit, o.onOverflow = limit, onOverflow
	return o
}

// push queues an item; it is dropped if the outbox is closed.
func (o *outbox) push(item any) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	if o.limit > 0 && len(o.items) >= o.limit {
		o.items = nil
		o.closed = true
		close(o.done)
		close(o.cut)
		o.mu.Unlock()
		if o.onOverflow != nil {
			o.onOverflow()
		}
		o.wake()
		return
	}
	o.items = append(o.items, item)
	o.mu.Unlock()
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

// close ends the stream after the queued items are written.
func (o *outbox) close() {
	o.mu.Lock()
	if !o.closed {
		o.closed = true
		close(o.done)
	}
	o.mu.Unlock()
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

func (o *outbox) wake() {
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

// take returns the queued items, waiting until there are some. ok is false
// once the outbox is closed and drained, or stop is closed.
func (o *outbox) take(stop <-chan struct{}) (items []any, ok bool) {
	for {
		o.mu.Lock()
		if len(o.items) > 0 {
			items, o.items = o.items, nil
			o.mu.Unlock()
			return items, true
		}
		closed := o.closed
		o.mu.Unlock()
		if closed {
			return nil, false
		}
		select {
		case <-o.notify:
		case <-stop:
			return nil, false
		}
	}
}
