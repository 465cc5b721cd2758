// Package schedule is the pure core of agora's Chronos-compatible job
// scheduler: it parses ISO 8601 repeating intervals and cron expressions,
// computes a job's next run in its time zone, decides what a missed run
// becomes (run late within epsilon, or skipped), and checks the job graph.
// Nothing here reads the clock: every answer is a function of the times it
// is given, so that tests drive it with a fake clock.
package schedule

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Schedule yields a job's scheduled instants.
type Schedule interface {
	// Next is the first instant strictly after after, and false when the
	// schedule has no more.
	Next(after time.Time) (time.Time, bool)
}

// Period is an ISO 8601 duration, PnYnMnWnDTnHnMnS. Its calendar part
// (years, months, weeks, days) is added in local time, so that a daily
// job keeps its hour across a DST change; its clock part is elapsed time.
type Period struct {
	Years, Months, Weeks, Days int
	Clock                      time.Duration
}

func (p Period) calendar() bool { return p.Years != 0 || p.Months != 0 || p.Weeks != 0 || p.Days != 0 }

// approx is the period's rough length, for estimating how many periods
// fit in a span.
func (p Period) approx() time.Duration {
	day := 24 * time.Hour
	return time.Duration(p.Years)*8766*time.Hour + time.Duration(p.Months)*730*time.Hour +
		time.Duration(p.Weeks)*7*day + time.Duration(p.Days)*day + p.Clock
}

var periodRE = regexp.MustCompile(`^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:[.,]\d+)?)S)?)?$`)

// ParsePeriod parses an ISO 8601 duration such as PT10M, P1D, P2W or
// P1Y2M3DT4H5M6S ("P10M" is ten months, "PT10M" ten minutes).
func ParsePeriod(s string) (Period, error) {
	m := periodRE.FindStringSubmatch(s)
	if m == nil || s == "P" || strings.HasSuffix(s, "T") {
		return Period{}, fmt.Errorf("period %q is not an ISO 8601 duration (PnYnMnWnDTnHnMnS, e.g. PT10M or P1D)", s)
	}
	num := func(i int) int {
		if m[i] == "" {
			return 0
		}
		n, _ := strconv.Atoi(m[i])
		return n
	}
	p := Period{Years: num(1), Months: num(2), Weeks: num(3), Days: num(4),
		Clock: time.Duration(num(5))*time.Hour + time.Duration(num(6))*time.Minute}
	if m[7] != "" {
		sec, err := strconv.ParseFloat(strings.Replace(m[7], ",", ".", 1), 64)
		if err != nil {
			return Period{}, fmt.Errorf("period %q: seconds %q: %v", s, m[7], err)
		}
		p.Clock += time.Duration(sec * float64(time.Second))
	}
	if !p.calendar() && p.Clock <= 0 {
		return Period{}, fmt.Errorf("period %q is empty: a job cannot repeat every instant", s)
	}
	return p, nil
}

// Repeating is an ISO 8601 repeating interval, R[n]/start/period.
type Repeating struct {
	// Repeats is how many runs in all; -1 is forever (a bare "R").
	Repeats int
	Start   time.Time
	Period  Period
	// Loc is where the period's calendar part is added.
	Loc *time.Location
}

var isoRE = regexp.MustCompile(`^(R[0-9]*)/(.*)/(P.*)$`)

// startLayouts are the start times accepted, with and without an offset.
var startLayouts = []string{
	time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02",
}

// ParseISO parses a Chronos schedule, R[n]/start/period. An empty start
// is now. tz, a tz database name, is the job's scheduleTimeZone: a start
// without an offset is read as wall-clock time there, and the period's
// calendar part is added there ("" is UTC).
func ParseISO(expr, tz string, now time.Time) (*Repeating, error) {
	loc, err := Location(tz)
	if err != nil {
		return nil, err
	}
	m := isoRE.FindStringSubmatch(strings.TrimSpace(expr))
	if m == nil {
		return nil, fmt.Errorf("schedule %q is not an ISO 8601 repeating interval R[n]/start/period (e.g. R/2026-01-01T00:00:00Z/PT1H)", expr)
	}
	r := &Repeating{Repeats: -1, Loc: loc}
	if m[1] != "R" {
		if r.Repeats, err = strconv.Atoi(m[1][1:]); err != nil {
			return nil, fmt.Errorf("schedule %q: repetitions %q: %v", expr, m[1], err)
		}
	}
	if r.Period, err = ParsePeriod(m[3]); err != nil {
		return nil, fmt.Errorf("schedule %q: %w", expr, err)
	}
	if m[2] == "" {
		r.Start = now
		return r, nil
	}
	for _, l := range startLayouts {
		if t, err := time.ParseInLocation(l, m[2], loc); err == nil {
			r.Start = t
			return r, nil
		}
	}
	return nil, fmt.Errorf("schedule %q: start %q is not an ISO 8601 date-time (YYYY-MM-DDThh:mm:ss[.s][Z|±hh:mm])", expr, m[2])
}

// String is the interval with its start spelled out.
func (r *Repeating) String() string {
	n := "R"
	if r.Repeats >= 0 {
		n += strconv.Itoa(r.Repeats)
	}
	return n + "/" + r.Start.In(r.Loc).Format(time.RFC3339Nano) + "/" + r.Period.String()
}

// String is the period in ISO 8601.
func (p Period) String() string {
	var b strings.Builder
	b.WriteString("P")
	for _, f := range []struct {
		n int
		u string
	}{{p.Years, "Y"}, {p.Months, "M"}, {p.Weeks, "W"}, {p.Days, "D"}} {
		if f.n != 0 {
			fmt.Fprintf(&b, "%d%s", f.n, f.u)
		}
	}
	if p.Clock != 0 {
		b.WriteString("T")
		c := p.Clock
		if h := c / time.Hour; h > 0 {
			fmt.Fprintf(&b, "%dH", h)
			c -= h * time.Hour
		}
		if m := c / time.Minute; m > 0 {
			fmt.Fprintf(&b, "%dM", m)
			c -= m * time.Minute
		}
		if c > 0 {
			b.WriteString(strconv.FormatFloat(c.Seconds(), 'f', -1, 64) + "S")
		}
	}
	return b.String()
}

// At is the k-th instant (k from 0).
func (r *Repeating) At(k int) time.Time {
	t := r.Start
	p := r.Period
	if p.calendar() {
		c := wall(r.Start, r.Loc).AddDate(k*p.Years, k*p.Months, k*(7*p.Weeks+p.Days))
		t = Resolve(c, r.Loc)
	}
	return t.Add(time.Duration(k) * p.Clock)
}

// Next implements Schedule: a start in the past is skipped forward whole
// periods.
func (r *Repeating) Next(after time.Time) (time.Time, bool) {
	k := 0
	if after.After(r.Start) {
		k = int(after.Sub(r.Start)/r.Period.approx()) - 2
		if !r.Period.calendar() {
			k = int(after.Sub(r.Start)/r.Period.Clock) - 1
		}
		k = max(k, 0)
	}
	for ; r.Repeats < 0 || k < r.Repeats; k++ {
		if t := r.At(k); t.After(after) {
			return t, true
		}
	}
	return time.Time{}, false
}

// Location loads a tz database zone; "" is UTC.
func Location(tz string) (*time.Location, error) {
	if tz == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("scheduleTimeZone %q is not a tz database zone (e.g. Europe/Berlin): %v", tz, err)
	}
	return loc, nil
}

// wall is t's wall-clock reading in loc, as a UTC time (a civil time).
func wall(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// Resolve is the instant a wall-clock time c (given as a UTC time) names
// in loc. A time that occurs twice (the clock is set back) is its first
// occurrence; one that does not occur (the clock jumps forward over it)
// is the first instant after the gap, so that it runs once, as late as
// it must.
func Resolve(c time.Time, loc *time.Location) time.Time {
	guess := time.Date(c.Year(), c.Month(), c.Day(), c.Hour(), c.Minute(), c.Second(), c.Nanosecond(), loc)
	var best time.Time
	found := false
	for _, d := range []time.Duration{-25 * time.Hour, -3 * time.Hour, 0, 3 * time.Hour, 25 * time.Hour} {
		_, off := guess.Add(d).Zone()
		t := c.Add(-time.Duration(off) * time.Second)
		if wall(t, loc).Equal(c) && (!found || t.Before(best)) {
			best, found = t, true
		}
	}
	if found {
		return best.In(loc)
	}
	start, end := guess.ZoneBounds()
	if wall(guess, loc).After(c) && !start.IsZero() {
		return start.In(loc)
	}
	if !end.IsZero() {
		return end.In(loc)
	}
	return guess
}
