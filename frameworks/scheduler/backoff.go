package scheduler

import (
	"math"
	"time"
)

// Backoff is a truncated exponential backoff with jitter: the n-th retry
// (from 0) waits a random time between half and all of Min·Factorⁿ, capped at
// Max. The jitter keeps many frameworks that lost the same master from
// reconnecting in lockstep.
type Backoff struct {
	Min    time.Duration // first delay (before jitter)
	Max    time.Duration // cap on the delay
	Factor float64       // growth per attempt; values below 1 mean 2
}

// DefaultBackoff is used when Config.Backoff is zero.
var DefaultBackoff = Backoff{Min: 250 * time.Millisecond, Max: 30 * time.Second, Factor: 2}

// Delay is the wait before retry number attempt (0 for the first retry).
// jitter is a random number in [0, 1); Delay is pure so tests can pin it.
func (b Backoff) Delay(attempt int, jitter float64) time.Duration {
	b = b.withDefaults()
	if attempt < 0 {
		attempt = 0
	}
	d := float64(b.Min) * math.Pow(b.Factor, float64(attempt))
	if d > float64(b.Max) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(b.Max)
	}
	if jitter < 0 {
		jitter = 0
	}
	if jitter >= 1 {
		jitter = math.Nextafter(1, 0)
	}
	return time.Duration(d/2 + jitter*d/2)
}

func (b Backoff) withDefaults() Backoff {
	if b.Min <= 0 {
		b.Min = DefaultBackoff.Min
	}
	if b.Max < b.Min {
		b.Max = max(DefaultBackoff.Max, b.Min)
	}
	if b.Factor < 1 {
		b.Factor = 2
	}
	return b
}
