package gcpace

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		live, floor uint64
		want        int
	}{
		{0, Floor, MaxPercent},
		{1 << 20, Floor, MaxPercent},      // 6,400 % capped
		{16 << 20, Floor, 400},            // grows by 64 MB
		{32 << 20, Floor, 200},            // grows by 64 MB
		{27 << 20, Floor, 237},            // a dev cluster's live heap
		{64 << 20, Floor, 100},            // Go's default from here on
		{4 << 30, Floor, 100},             // a large master
		{10 << 20, 100 << 20, MaxPercent}, // 1,000 % capped
	} {
		if got := Percent(c.live, c.floor); got != c.want {
			t.Errorf("Percent(%d, %d) = %d, want %d", c.live, c.floor, got, c.want)
		}
	}
}

func gogc() int64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

func live() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// awaitPercent collects until the percentage pacing set after the last
// collection satisfies ok (the finalizer that sets it runs on its own
// goroutine, after the collection), at most for a minute.
func awaitPercent(t *testing.T, what string, ok func(p int64) bool) int64 {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		p := gogc()
		if ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("GC percentage %d after a minute of collections (live heap %d bytes), want %s", p, live(), what)
		}
	}
}

var retained []byte

// awaitCollections collects until pacing has seen n more collections, at
// most for a minute.
func awaitCollections(t *testing.T, n int64) {
	t.Helper()
	want := runs.Load() + n
	deadline := time.Now().Add(time.Minute)
	for runs.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("pacing saw %d collections in a minute, want %d", runs.Load()-want+n, n)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStartPacesByTheLiveHeap(t *testing.T) {
	if v, ok := os.LookupEnv("GOGC"); ok {
		os.Unsetenv("GOGC")
		t.Cleanup(func() { os.Setenv("GOGC", v) })
	}
	if !Start() {
		t.Fatal("Start did not pace with GOGC unset")
	}
	// A small heap (this test binary's): well above Go's default.
	p := awaitPercent(t, "above 100 for a small heap", func(p int64) bool { return p > 100 })
	if l := live(); l < Floor/2 && p < 200 {
		t.Errorf("GC percentage %d for a live heap of %d bytes, want at least 200", p, l)
	}
	// A heap larger than the floor: Go's default.
	retained = make([]byte, Floor+(16<<20))
	awaitPercent(t, "100 with a live heap larger than the floor", func(p int64) bool { return p == 100 })
	// Freed again: paced again.
	retained = nil
	awaitPercent(t, "above 100 once the large heap is freed", func(p int64) bool { return p > 100 })
	// Held (the master while recovered agents re-register): the holder's
	// percentage stays through collections, however the heap changes...
	release, paced := Hold()
	t.Cleanup(release)
	if !paced {
		t.Fatal("Hold reports no pacing after Start")
	}
	debug.SetGCPercent(MaxPercent + 100)
	retained = make([]byte, Floor+(16<<20))
	awaitCollections(t, 3)
	if p := gogc(); p != MaxPercent+100 {
		t.Fatalf("GC percentage %d while pacing is held at %d", p, MaxPercent+100)
	}
	// ... and once released pacing sets its own at once, for the heap as
	// it is now.
	release()
	if p := gogc(); p != 100 {
		t.Fatalf("GC percentage %d right after the hold's release with a live heap larger than the floor, want 100", p)
	}
	release() // a second call does nothing
	mu.Lock()
	if holds != 0 {
		t.Errorf("%d holds after a release called twice, want 0", holds)
	}
	mu.Unlock()
	retained = nil
	awaitPercent(t, "above 100 once the large heap is freed again", func(p int64) bool { return p > 100 })
	if !Start() {
		t.Error("a second Start reports no pacing")
	}
}

func TestGOGCWins(t *testing.T) {
	t.Setenv("GOGC", "150")
	if Start() {
		t.Error("Start paced although GOGC is set")
	}
}

func TestHoldWithoutPacing(t *testing.T) {
	mu.Lock()
	was := started
	started = false
	mu.Unlock()
	t.Cleanup(func() { mu.Lock(); started = was; mu.Unlock() })
	release, paced := Hold()
	if paced {
		t.Error("Hold reports pacing that was never started")
	}
	release()
	mu.Lock()
	defer mu.Unlock()
	if holds != 0 {
		t.Errorf("%d holds counted without pacing", holds)
	}
}
