// Package gcpace paces the Go garbage collector of agora's long-running
// processes (master, agent, dev cluster, benchmarks).
//
// Go's default (GOGC=100) starts a collection each time the heap has grown
// by as much as survived the last one. An agent or a master keeps a small
// live heap (tens of MB) and allocates fast while it launches tasks: a dev
// cluster (about 27 MB live) collected 28 times in a 4,000-task benchmark,
// and the collector's marking took about 7 % of its CPU
// (benchmarks/RESULTS.md). Pacing lets the heap grow by at least Floor
// between collections while it is small, and by as much as survived (Go's
// default) once it is large: the GC percentage is set after each
// collection to max(100, 100 × Floor / live heap), at most MaxPercent.
// Extra memory is bounded by Floor, whatever the heap.
//
// An operator's GOGC wins: with GOGC set, nothing is paced. Code that sets
// the percentage itself (the master while recovered agents re-register,
// cluster/master/recoverygc.go) wins too: pacing leaves a percentage it
// did not set alone, and resumes once the value it set is back. GOMEMLIMIT
// keeps its meaning (the collector still runs before the limit is
// reached). Processes that run inside task containers (executors) are not
// paced: their memory limits are the task's.
package gcpace

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
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
	set     int // the percentage last set; 0 before the first
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
		arm()
	})
}

var samples = []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/gogc:percent"}}

// adjust sets the percentage for the live heap the last collection left;
// mu is held. A percentage somebody else set is left alone, and a change
// of less than a tenth is not worth the call.
func adjust() {
	metrics.Read(samples)
	if samples[0].Value.Kind() != metrics.KindUint64 || samples[1].Value.Kind() != metrics.KindUint64 {
		return
	}
	if set != 0 && samples[1].Value.Uint64() != uint64(set) {
		// (One set between this read and the set below is overwritten:
		// a narrow race, which costs its setter that one raise.)
		return
	}
	p := Percent(samples[0].Value.Uint64(), Floor)
	if set != 0 && p*10 > set*9 && p*10 < set*11 {
		return
	}
	debug.SetGCPercent(p)
	set = p
}
