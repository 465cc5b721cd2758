package clustertest

import (
	"testing"
	"time"
)

// Put never blocks however far the reader is behind, and the reader gets
// every value in order.
func TestQueuePutNeverBlocksAndKeepsOrder(t *testing.T) {
	q := NewQueue[int](t)
	const n = 10000
	put := make(chan struct{})
	go func() {
		for i := 0; i < n; i++ {
			q.Put(i)
		}
		close(put)
	}()
	select {
	case <-put:
	case <-time.After(StopTimeout):
		t.Fatalf("Put blocked with nothing reading")
	}
	for i := 0; i < n; i++ {
		select {
		case v := <-q.C():
			if v != i {
				t.Fatalf("value %d is %d", i, v)
			}
		case <-time.After(StopTimeout):
			t.Fatalf("value %d never delivered", i)
		}
	}
}
