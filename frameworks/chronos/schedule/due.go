package schedule

import (
	"fmt"
	"time"
)

// Decision is what to do at now with a job whose next unhandled instant
// is due.
type Decision struct {
	// Run, when RunOK, is the instant to run now.
	Run   time.Time
	RunOK bool
	// Missed are the instants passed by more than epsilon: they are
	// recorded, not run late. Only the last maxMissed are listed;
	// MissedCount counts them all.
	Missed      []time.Time
	MissedCount int
	// Next is the job's next unhandled instant, valid when NextOK (false:
	// the schedule has ended).
	Next   time.Time
	NextOK bool
}

// maxMissed bounds the missed instants listed (a job stopped for a year
// with a one-second period would list millions).
const maxMissed = 100

// Due decides what becomes of a schedule's instants up to now, given the
// next instant not yet handled (due): an instant at most epsilon late is
// run (at most one per call; the next call catches up the next one), an
// instant later than that is missed. Nothing is due before due.
func Due(s Schedule, due, now time.Time, epsilon time.Duration) Decision {
	d := Decision{Next: due, NextOK: true}
	for steps := 0; d.NextOK && !d.Next.After(now); steps++ {
		late := now.Sub(d.Next)
		if late <= epsilon {
			d.Run, d.RunOK = d.Next, true
			d.Next, d.NextOK = s.Next(d.Next)
			return d
		}
		d.MissedCount++
		d.Missed = append(d.Missed, d.Next)
		if len(d.Missed) > maxMissed {
			d.Missed = d.Missed[1:]
		}
		if steps >= 10000 {
			// Far behind: count no further, resume at the first instant
			// still within epsilon.
			d.Next, d.NextOK = s.Next(now.Add(-epsilon - 1))
			continue
		}
		d.Next, d.NextOK = s.Next(d.Next)
	}
	return d
}

// First is a new job's first instant at or after now.
func First(s Schedule, now time.Time) (time.Time, bool) {
	return s.Next(now.Add(-1))
}

// Preview lists the next n instants after now.
func Preview(s Schedule, now time.Time, n int) []time.Time {
	var out []time.Time
	for t := now; len(out) < n; {
		var ok bool
		if t, ok = s.Next(t); !ok {
			break
		}
		out = append(out, t)
	}
	return out
}

// ParseEpsilon parses a job's epsilon (an ISO 8601 duration without a
// calendar part); "" is def.
func ParseEpsilon(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	p, err := ParsePeriod(s)
	if err != nil {
		return 0, fmt.Errorf("epsilon: %w", err)
	}
	if p.Years != 0 || p.Months != 0 {
		return 0, fmt.Errorf("epsilon %q: years and months have no fixed length; use days or less", s)
	}
	return p.approx(), nil
}
