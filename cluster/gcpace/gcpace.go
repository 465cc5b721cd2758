// Package gcpace paces the Go garbage collector of agora's long-running
// processes (master, agent, dev cluster, benchmarks).
//
// Go's default (GOGC=100) starts a collection each time the heap has grown
// by as much as survived the last one. An agent or a master keeps a small
// live heap (tens of MB) and allocates fast while it launches tasks: a dev
// cluster (about 27 MB live) collected 22 times in a 4,000-task benchmark,
// and the collector took about 7 % of its CPU (benchmarks/RESULTS.md).
// Pacing lets the heap grow by up to Floor between collections while it
// is small (at most MaxPercent of the live heap), and by as much as
// survived (Go's default) once it is large: the GC percentage is set
// after each collection to min(MaxPercent, max(100, 100 × Floor / live
// heap)). The memory it adds to Go's default is less than Floor, whatever
// the heap.
//
// An operator's GOGC wins: with GOGC set, nothing is paced. Code that sets
// the percentage itself for a while (the master while recovered agents
// re-register, cluster/master/recoverygc.go) holds pacing (Hold) until it
// is done; pacing then sets its percentage at once. GOMEMLIMIT keeps its
// meaning (the collector still runs before the limit is reached).
// Processes that run inside task containers (executors) are not paced:
// their memory limits are the task's.
package gcpace

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// Floor is the heap growth allowed between collections while the live heap
// is small.
const Floor = 64 << 20

// MaxPercent caps the GC percentage pacing sets (a nearly empty heap would
// otherwise ask for thousands).
const MaxPercent = 800

// Percent is the GC percentage for a live heap of live bytes and a growth
// floor of floor bytes.
func Percent(live, floor uint64) int {
	if live == 0 {
		return MaxPercent
	}
	p := floor * 100 / live
	switch {
	case p < 100:
		return 100
	case p > MaxPercent:
		return MaxPercent
	}
	return int(p)
}

var (
	mu      sync.Mutex
	started bool
	holds   int          // Holds not released
	set     int          // the percentage pacing last set; 0: none (or forgotten)
	runs    atomic.Int64 // collections seen (finalizer runs), for tests
)

// Start paces the collector from now on, unless GOGC is set in the
// environment; it reports whether it does. Calling it again does nothing.
func Start() bool {
	if _, ok := os.LookupEnv("GOGC"); ok {
		return false
	}
	mu.Lock()
	defer mu.Unlock()
	if started {
		return true
	}
	started = true
	adjust()
	arm()
	return true
}

// sentinel is garbage from its birth; its finalizer runs after the next
// collection, adjusts the percentage, and arms a new one.
type sentinel struct{ _ [16]byte }

func arm() {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
		mu.Lock()
		adjust()
		mu.Unlock()
		runs.Add(1)
		arm()
	})
}

// Hold stops pacing until release is called, for code that sets the
// percentage itself for a while; release has pacing set its percentage at
// once (the heap may have grown meanwhile). paced is false, and release
// does nothing, when pacing is off (GOGC set, or Start not called).
func Hold() (release func(), paced bool) {
	mu.Lock()
	defer mu.Unlock()
	if !started {
		return func() {}, false
	}
	holds++
	var once sync.Once
	return func() {
		once.Do(func() {
			mu.Lock()
			defer mu.Unlock()
			if holds--; holds == 0 {
				set = 0
				adjust()
			}
		})
	}, true
}

var liveSample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}

// adjust sets the percentage for the live heap the last collection left,
// unless pacing is held; mu is held. A change of less than a tenth is not
// worth the call.
func adjust() {
	if holds > 0 {
		return
	}
	metrics.Read(liveSample)
	if liveSample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	p := Percent(liveSample[0].Value.Uint64(), Floor)
	if set != 0 && p*10 > set*9 && p*10 < set*11 {
		return
	}
	debug.SetGCPercent(p)
	set = p
}
