package webuitest

import (
	"sync/atomic"
	"testing"
	"time"
)

// quiet is how long a page's reads must pause for Settled: longer than a
// change feed holds an event (servicepage.DefaultMinGap after the last,
// and the coalescing delay).
const quiet = 2500 * time.Millisecond

// Settled waits until the count of a page's reads of what (n, counted
// by the server) has not moved for 2.5 s, a minute at most, and returns
// it: the reads a page makes as it opens, however late a busy machine
// makes them, are done.
func Settled(t testing.TB, what string, n *atomic.Int64) int64 {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	last := n.Load()
	for {
		time.Sleep(quiet)
		now := n.Load()
		if now == last {
			return now
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page still reads %s after a minute (%d reads)", what, now)
		}
		last = now
	}
}
