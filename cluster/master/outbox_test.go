package master

import "testing"

// A bounded outbox cuts its peer off at the limit: what it held is
// dropped, the stream ends, and the overflow is reported once; an
// unbounded one keeps everything.
func TestBoundedOutboxCutsASlowPeer(t *testing.T) {
	cuts := 0
	o := newBoundedOutbox(3, func() { cuts++ })
	for i := 0; i < 10; i++ {
		o.push(i)
	}
	if cuts != 1 {
		t.Fatalf("overflow reported %d times, want once", cuts)
	}
	stop := make(chan struct{})
	close(stop)
	if items, ok := o.take(stop); ok || len(items) != 0 {
		t.Fatalf("take after the cut = %v, %v; want nothing and the end of the stream", items, ok)
	}
	u := newOutbox()
	for i := 0; i < 1000; i++ {
		u.push(i)
	}
	if items, ok := u.take(stop); !ok || len(items) != 1000 {
		t.Fatalf("unbounded outbox gave %d items, %v", len(items), ok)
	}
}
