package master

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/agora-cluster/agora/cluster/gcpace"
)

// After a failover or a restart the agents recovered from the registry
// re-register within seconds, tens of thousands of them, and the new
// leader's heap grows from the registry to the cluster's whole state:
// nearly everything allocated then stays live. Go's collector, which
// runs each time the heap has grown by GOGC percent (100) since the last
// collection, marks that growing live heap again and again — at 40,000
// agents about a fifth of the new leader's CPU while they came back
// (benchmarks/RESULTS.md). So while recovered agents are still coming
// back the master raises the collector's target to RecoveryGCPercent, and
// puts it back once every one of them has re-registered (or been marked
// unreachable), at most recoveryGCMaxWindow after the master started, and
// when it stops. A memory limit (GOMEMLIMIT) still holds: near it the
// runtime collects sooner whatever the target. Where the process's
// collector is paced (cluster/gcpace: agora master and agora dev), the
// target is set to RecoveryGCPercent for the window whatever pacing had
// set (even a higher percentage, for a heap still small), pacing is held
// meanwhile, and afterwards pacing resumes instead of the old value
// coming back: it sets its percentage for the heap as it is then.

// DefaultRecoveryGCPercent is the collector's target while recovered
// agents re-register (--recovery_gc_percent).
const DefaultRecoveryGCPercent = 800

// recoveryGCMaxWindow bounds the raised target: agents that have not come
// back by then are not a burst any more.
const recoveryGCMaxWindow = time.Minute

// recoveryGC is the process's raise of the collector's target. GOGC is
// the process's, and several masters may share a process (tests, a
// standby that wins an election while the old one stops): the target is
// raised while any of them asks, to the largest asked, and the value from
// before the first raise comes back (or pacing resumes) when the last one
// is done.
var recoveryGC = struct {
	mu      sync.Mutex
	holders map[*Master]int
	before  int
	current int
	// release hands the collector back to pacing (nil: not paced).
	release func()
	// get reads GOGC (-1: off), set sets it, and hold holds pacing
	// (gcpace.Hold); tests replace them.
	get  func() int
	set  func(int)
	hold func() (release func(), paced bool)
}{get: gcPercent, set: func(p int) { debug.SetGCPercent(p) }, hold: gcpace.Hold}

// gcPercent reads GOGC without setting it: reading it with
// debug.SetGCPercent would turn collection on for a moment where it is
// off, and a cycle started then would make the next set wait for it.
func gcPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return -1 // not reported: leave the collector alone
	}
	v := s[0].Value.Uint64()
	if v == 0 || v > 1<<30 {
		// GOGC=off reads as the largest uint64. GOGC=0 (collect all
		// the time) is somebody's deliberate choice: left alone too.
		return -1
	}
	return int(v)
}

// raiseRecoveryGC raises the collector's target for m while it has
// recovered agents to wait for. It runs on the loop, at the start of Run.
func (m *Master) raiseRecoveryGC() {
	p := m.cfg.RecoveryGCPercent
	if p <= 0 || len(m.awaiting) == 0 {
		return
	}
	recoveryGC.mu.Lock()
	defer recoveryGC.mu.Unlock()
	if recoveryGC.holders[m] != 0 {
		return
	}
	if len(recoveryGC.holders) == 0 {
		release, paced := recoveryGC.hold()
		prev := 0
		if paced {
			// Pacing's percentage follows the heap, which is about to
			// grow: it is held, and set again once the window ends.
			recoveryGC.release = release
		} else {
			recoveryGC.release = nil
			if prev = recoveryGC.get(); prev < 0 || prev >= p {
				// Collection off, or already at least as lazy: leave it.
				return
			}
		}
		recoveryGC.set(p)
		recoveryGC.before, recoveryGC.current = prev, p
		recoveryGC.holders = map[*Master]int{}
	} else if p > recoveryGC.current {
		recoveryGC.set(p)
		recoveryGC.current = p
	}
	recoveryGC.holders[m] = p
	m.recoveryGCRaised = true
	m.log.Info("collector's target raised while recovered agents re-register", "gc_percent", p,
		"agents", len(m.awaiting), "until", "every one is back, or "+recoveryGCMaxWindow.String())
}

// lowerRecoveryGC puts the collector's target back for m (it is done, or
// stops); the value from before the first raise returns (or pacing
// resumes) once no master holds it.
func (m *Master) lowerRecoveryGC(why string) {
	if !m.recoveryGCRaised {
		return
	}
	m.recoveryGCRaised = false
	recoveryGC.mu.Lock()
	defer recoveryGC.mu.Unlock()
	if _, ok := recoveryGC.holders[m]; !ok {
		return
	}
	delete(recoveryGC.holders, m)
	if len(recoveryGC.holders) == 0 && recoveryGC.release != nil {
		recoveryGC.release()
		recoveryGC.release, recoveryGC.holders, recoveryGC.current = nil, nil, 0
		m.log.Info("collector's target back to pacing by the live heap", "why", why)
		return
	}
	want := recoveryGC.before
	for _, p := range recoveryGC.holders {
		want = max(want, p)
	}
	if want != recoveryGC.current {
		recoveryGC.set(want)
		recoveryGC.current = want
	}
	if len(recoveryGC.holders) == 0 {
		recoveryGC.holders = nil
	}
	m.log.Info("collector's target back", "gc_percent", want, "why", why)
}

// checkRecoveryGC lowers the raised target once no recovered agent is
// awaited or the window has passed. It runs on the loop.
func (m *Master) checkRecoveryGC(now time.Time) {
	if !m.recoveryGCRaised {
		return
	}
	switch {
	case len(m.awaiting) == 0:
		m.lowerRecoveryGC("every recovered agent is back or marked unreachable")
	case now.Sub(m.start) >= recoveryGCMaxWindow:
		m.lowerRecoveryGC("recovered agents still awaited after " + recoveryGCMaxWindow.String())
	}
}
