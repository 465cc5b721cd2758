package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Cron is a five-field cron expression (minute hour day-of-month month
// day-of-week) read in a time zone. As in Vixie cron, when both day
// fields are restricted a day matches either.
type Cron struct {
	Expr                          string
	Loc                           *time.Location
	minute, hour, dom, month, dow [64]bool
	domStar, dowStar              bool
}

var macros = map[string]string{
	"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}

var monthNames = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseCron parses a cron expression to be read in tz (a tz database
// name, "" for UTC).
func ParseCron(expr, tz string) (*Cron, error) {
	loc, err := Location(tz)
	if err != nil {
		return nil, err
	}
	c := &Cron{Expr: expr, Loc: loc}
	spec := strings.TrimSpace(expr)
	if m, ok := macros[strings.ToLower(spec)]; ok {
		spec = m
	}
	fs := strings.Fields(spec)
	if len(fs) != 5 {
		return nil, fmt.Errorf("cron %q has %d fields, want 5: minute hour day-of-month month day-of-week", expr, len(fs))
	}
	specs := []struct {
		name     string
		set      *[64]bool
		lo, hi   int
		names    []string
		nameBase int
	}{
		{"minute", &c.minute, 0, 59, nil, 0},
		{"hour", &c.hour, 0, 23, nil, 0},
		{"day-of-month", &c.dom, 1, 31, nil, 0},
		{"month", &c.month, 1, 12, monthNames, 1},
		{"day-of-week", &c.dow, 0, 7, dayNames, 0},
	}
	for i, s := range specs {
		if err := parseField(fs[i], s.set, s.lo, s.hi, s.names, s.nameBase); err != nil {
			return nil, fmt.Errorf("cron %q: %s field %q: %v", expr, s.name, fs[i], err)
		}
	}
	if c.dow[7] {
		c.dow[0] = true
	}
	c.domStar = fs[2] == "*" || fs[2] == "?"
	c.dowStar = fs[4] == "*" || fs[4] == "?"
	return c, nil
}

func parseField(f string, set *[64]bool, lo, hi int, names []string, base int) error {
	for _, part := range strings.Split(f, ",") {
		rng, stepS, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepS)
			if err != nil || n <= 0 {
				return fmt.Errorf("step %q is not a positive number", stepS)
			}
			step = n
		}
		a, b := lo, hi
		switch {
		case rng == "*" || rng == "?":
		default:
			as, bs, isRange := strings.Cut(rng, "-")
			var err error
			if a, err = value(as, lo, hi, names, base); err != nil {
				return err
			}
			b = a
			if isRange {
				if b, err = value(bs, lo, hi, names, base); err != nil {
					return err
				}
				if b < a {
					return fmt.Errorf("range %q runs backwards", rng)
				}
			} else if hasStep {
				b = hi
			}
		}
		for v := a; v <= b; v += step {
			set[v] = true
		}
	}
	return nil
}

func value(s string, lo, hi int, names []string, base int) (int, error) {
	for i, n := range names {
		if strings.EqualFold(s, n) {
			return i + base, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if v < lo || v > hi {
		return 0, fmt.Errorf("%d is out of range %d-%d", v, lo, hi)
	}
	return v, nil
}

func (c *Cron) dayMatches(d time.Time) bool {
	dom, dow := c.dom[d.Day()], c.dow[int(d.Weekday())]
	if !c.month[int(d.Month())] {
		return false
	}
	switch {
	case c.domStar && c.dowStar:
		return true
	case c.domStar:
		return dow
	case c.dowStar:
		return dom
	}
	return dom || dow
}

// searchDays bounds the search for a matching day (February 29th on a
// given weekday recurs within 28 years).
const searchDays = 366 * 30

// Next implements Schedule. Matching wall-clock times are taken in the
// cron's zone: one that does not occur on a DST day runs once at the end
// of the gap, one that occurs twice runs once, at its first occurrence.
func (c *Cron) Next(after time.Time) (time.Time, bool) {
	from := wall(after, c.Loc).Truncate(time.Minute).Add(time.Minute)
	day := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	for i := 0; i < searchDays; i, day = i+1, day.AddDate(0, 0, 1) {
		if !c.dayMatches(day) {
			continue
		}
		for h := 0; h < 24; h++ {
			if !c.hour[h] {
				continue
			}
			for m := 0; m < 60; m++ {
				if !c.minute[m] {
					continue
				}
				w := day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
				if w.Before(from) {
					continue
				}
				if t := Resolve(w, c.Loc); t.After(after) {
					return t, true
				}
			}
		}
	}
	return time.Time{}, false
}
