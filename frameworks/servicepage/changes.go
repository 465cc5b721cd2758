package servicepage

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

// ChangesPath is where Handler serves a service's change feed.
const ChangesPath = "/ui/changes"

// Defaults of a Changes' stream limits.
const (
	DefaultMaxStreams = 64
	DefaultHeartbeat  = 15 * time.Second
	DefaultCoalesce   = 100 * time.Millisecond
	DefaultMinGap     = time.Second
)

// Changes is a service's change notifier: a version the service bumps
// whenever what its page shows changes, and a feed of server-sent events
// (text/event-stream) that tells the page's viewers the version moved,
// so that a page reloads its API only when something changed instead of
// polling it.
//
// Bump never blocks and allocates nothing per viewer: it moves a counter
// and wakes the streams, each of which then sends the newest version once
// (bumps that land while a stream writes or waits are coalesced into one
// event), and no sooner than MinGap after its last event. A nil *Changes is valid: Bump does nothing and the feed answers
// 404, so a page falls back to polling.
type Changes struct {
	// MaxStreams bounds the feeds open at once (DefaultMaxStreams when
	// 0); one more is answered 503.
	MaxStreams int
	// Heartbeat is the period of the comment lines that keep an idle
	// stream open through proxies (DefaultHeartbeat when 0).
	Heartbeat time.Duration
	// Coalesce is how long a stream waits after a bump before it sends,
	// gathering a burst of bumps into one event (DefaultCoalesce when 0;
	// negative: none).
	Coalesce time.Duration
	// MinGap is the least time between two events of one stream
	// (DefaultMinGap when 0; negative: none): however often the service
	// bumps, each viewer re-reads the API at most once per MinGap. The
	// bumps within a gap make one event, sent when the gap ends, so
	// the last change is always told.
	MinGap time.Duration

	mu      sync.Mutex
	version uint64
	wake    chan struct{} // closed and replaced by each Bump
	streams int
	closed  chan struct{} // closed by Close
}

// NewChanges is a notifier with the default limits.
func NewChanges() *Changes { return &Changes{} }

// Bump records a change: every open stream sends the new version soon.
// It never blocks on a viewer.
func (c *Changes) Bump() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.version++
	if c.wake != nil {
		close(c.wake)
		c.wake = nil
	}
	c.mu.Unlock()
}

// Version is the number of changes so far.
func (c *Changes) Version() uint64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// Streams is the number of feeds open now.
func (c *Changes) Streams() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams
}

// Close ends the open streams and refuses new ones (503), so that a
// server's graceful shutdown, which waits for its requests, need not
// wait for the pages to go. Bump still counts.
func (c *Changes) Close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed == nil {
		c.closed = make(chan struct{})
	}
	select {
	case <-c.closed:
	default:
		close(c.closed)
	}
}

// doneLocked is the channel Close closes. Call with c.mu held.
func (c *Changes) doneLocked() <-chan struct{} {
	if c.closed == nil {
		c.closed = make(chan struct{})
	}
	return c.closed
}

// current is the version and a channel closed by the next Bump.
func (c *Changes) current() (uint64, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wake == nil {
		c.wake = make(chan struct{})
	}
	return c.version, c.wake
}

// ServeHTTP serves the feed: an event "change" whose data (and id) is the
// version, once when the stream opens and then each time the version
// moves; a comment line every Heartbeat. The stream ends when the client
// goes.
func (c *Changes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c == nil {
		http.Error(w, "this service's page has no change feed: the page polls its API", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "GET the change feed (text/event-stream); "+r.Method+" is not served", http.StatusMethodNotAllowed)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "the server cannot stream the change feed", http.StatusInternalServerError)
		return
	}
	most := c.MaxStreams
	if most <= 0 {
		most = DefaultMaxStreams
	}
	c.mu.Lock()
	done := c.doneLocked()
	select {
	case <-done:
		c.mu.Unlock()
		w.Header().Set("Retry-After", "30")
		http.Error(w, "the service is stopping: its change feed is closed", http.StatusServiceUnavailable)
		return
	default:
	}
	if c.streams >= most {
		c.mu.Unlock()
		w.Header().Set("Retry-After", "30")
		http.Error(w, fmt.Sprintf("too many change feeds open (%d, the most this service serves): the page polls its API until one closes", most), http.StatusServiceUnavailable)
		return
	}
	c.streams++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.streams--
		c.mu.Unlock()
	}()

	heartbeat := c.Heartbeat
	if heartbeat <= 0 {
		heartbeat = DefaultHeartbeat
	}
	coalesce := c.Coalesce
	if coalesce == 0 {
		coalesce = DefaultCoalesce
	}
	gap := c.MinGap
	if gap == 0 {
		gap = DefaultMinGap
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	ctx := r.Context()
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	v, wake := c.current()
	// retry: the browser's reconnection delay after the stream drops.
	if _, err := fmt.Fprintf(w, "retry: 3000\nid: %d\nevent: change\ndata: %d\n\n", v, v); err != nil {
		return
	}
	flusher.Flush()
	sent, sentAt := v, time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case <-wake:
			// Wait Coalesce for the rest of a burst, and until MinGap
			// after the last event; what changed meanwhile is read
			// after the wait, so the newest version is the one sent.
			wait := max(coalesce, 0)
			if gap > 0 {
				wait = max(wait, time.Until(sentAt.Add(gap)))
			}
			if wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-done:
					t.Stop()
					return
				case <-t.C:
				}
			}
			v, wake = c.current()
			if v == sent {
				continue
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: change\ndata: %d\n\n", v, v); err != nil {
				return
			}
			flusher.Flush()
			sent, sentAt = v, time.Now()
		}
	}
}
