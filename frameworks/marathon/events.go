package marathon

import (
	"encoding/json"
	"sync"
	"time"
)

// Event is one event of the event bus, as /v2/events sends it.
type Event struct {
	ID   uint64
	Type string
	Data []byte // JSON with eventType and timestamp
}

// bus fans events out to the /v2/events subscribers. Publishing never
// blocks: a subscriber that falls behind by more than its buffer is
// dropped (its stream ends, and it reconnects and re-reads state, as
// Marathon's docs tell clients to).
type bus struct {
	mu     sync.Mutex
	next   uint64
	subs   map[chan Event]struct{}
	closed bool
}

const subscriberBuffer = 1024

func newBus() *bus { return &bus{subs: map[chan Event]struct{}{}} }

// publish sends an event of type typ with fields (eventType and timestamp
// are added).
func (b *bus) publish(typ string, fields map[string]any) {
	fields["eventType"] = typ
	fields["timestamp"] = time.Now().UTC().Format(timeFormat)
	data, err := json.Marshal(fields)
	if err != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	ev := Event{ID: b.next, Type: typ, Data: data}
	for ch := range b.subs {
		select {
		case ch <- ev:
		default:
			delete(b.subs, ch)
			close(ch)
		}
	}
}

// subscribe returns a channel of events, closed when the subscriber is
// dropped or the bus closes; cancel ends the subscription.
func (b *bus) subscribe() (<-chan Event, func()) {
	ch := make(chan Event, subscriberBuffer)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(ch)
		return ch, func() {}
	}
	b.subs[ch] = struct{}{}
	return ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[ch]; ok {
			delete(b.subs, ch)
			close(ch)
		}
	}
}

func (b *bus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for ch := range b.subs {
		delete(b.subs, ch)
		close(ch)
	}
}

// timeFormat is Marathon's timestamp format (ISO 8601, milliseconds, UTC).
const timeFormat = "2006-01-02T15:04:05.000Z"

func stamp(t time.Time) string { return t.UTC().Format(timeFormat) }
