package master

import "sync"

// outbox is an unbounded FIFO between the loop (producer) and one stream
// writer goroutine (consumer), so the loop never blocks on a slow peer.
type outbox struct {
	mu     sync.Mutex
	items  []any
	notify chan struct{}
	closed bool
	done   chan struct{}
}

func newOutbox() *outbox {
	return &outbox{notify: make(chan struct{}, 1), done: make(chan struct{})}
}

// push queues an item; it is dropped if the outbox is closed.
func (o *outbox) push(item any) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
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
