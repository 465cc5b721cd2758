package native

import (
	"testing"
	"time"
)

func TestAckerXORTreeCompletes(t *testing.T) {
	var got []Outcome
	a := NewAcker(30*time.Second, func(o Outcome) { got = append(got, o) })
	t0 := time.Unix(1000, 0)
	// The spout's tuple goes to two bolts (edges e1, e2); the first
	// anchors a new tuple (e3) to it before acking.
	const root, e1, e2, e3 = 77, 0x1111, 0x2222, 0x4444
	a.Init(root, e1^e2, 5, "m1", t0)
	a.Ack(root, e1^e3, t0.Add(time.Millisecond))
	a.Ack(root, e2, t0.Add(2*time.Millisecond))
	if len(got) != 0 || a.Pending() != 1 {
		t.Fatalf("tree done before its last tuple was acked: %v", got)
	}
	a.Ack(root, e3, t0.Add(3*time.Millisecond))
	if len(got) != 1 || !got[0].Acked || got[0].MsgID != "m1" || got[0].SpoutTask != 5 || got[0].Latency != 3*time.Millisecond {
		t.Fatalf("outcome = %+v, want m1 acked to task 5 after 3ms", got)
	}
	if a.Pending() != 0 {
		t.Errorf("pending = %d after completion", a.Pending())
	}
	a.Ack(root, e3, t0) // late acks of a finished tree change nothing
	if len(got) != 1 {
		t.Errorf("a finished tree was reported again: %v", got)
	}
}

func TestAckerNoEdgesCompletesAtOnce(t *testing.T) {
	var got []Outcome
	a := NewAcker(time.Second, func(o Outcome) { got = append(got, o) })
	a.Init(1, 0, 2, "lonely", time.Now())
	if len(got) != 1 || !got[0].Acked || a.Pending() != 0 {
		t.Fatalf("a tuple sent nowhere: %v, pending %d; want acked at once", got, a.Pending())
	}
}

func TestAckerTimeoutAndFail(t *testing.T) {
	var got []Outcome
	a := NewAcker(30*time.Second, func(o Outcome) { got = append(got, o) })
	t0 := time.Unix(1000, 0)
	a.Init(1, 0x10, 3, "slow", t0)
	a.Init(2, 0x20, 3, "failed", t0)
	a.Init(3, 0x30, 3, "young", t0.Add(20*time.Second))
	if n := a.Expire(t0.Add(29 * time.Second)); n != 0 {
		t.Fatalf("%d trees expired before the timeout", n)
	}
	a.Fail(2)
	if n := a.Expire(t0.Add(31 * time.Second)); n != 1 {
		t.Fatalf("%d trees expired at 31s, want 1", n)
	}
	want := []any{"failed", "slow"}
	if len(got) != 2 || got[0].MsgID != want[0] || got[1].MsgID != want[1] || got[0].Acked || got[1].Acked {
		t.Fatalf("outcomes = %+v, want %v failed", got, want)
	}
	a.Ack(1, 0x10, t0.Add(32*time.Second)) // the timed-out tree stays failed
	if len(got) != 2 || a.Pending() != 1 {
		t.Errorf("after a late ack: outcomes %v, pending %d (want only \"young\")", got, a.Pending())
	}
}
