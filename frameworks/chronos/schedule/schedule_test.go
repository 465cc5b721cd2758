package schedule

import (
	"strings"
	"testing"
	"time"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParsePeriod(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Period
	}{
		{"PT10M", Period{Clock: 10 * time.Minute}},
		{"P10M", Period{Months: 10}},
		{"P1Y2M3DT4H5M6S", Period{Years: 1, Months: 2, Days: 3, Clock: 4*time.Hour + 5*time.Minute + 6*time.Second}},
		{"P2W", Period{Weeks: 2}},
		{"PT0.5S", Period{Clock: 500 * time.Millisecond}},
	} {
		got, err := ParsePeriod(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParsePeriod(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
		if got.String() != c.in && c.in != "PT0.5S" {
			t.Errorf("%+v.String() = %q, want %q", got, got.String(), c.in)
		}
	}
	for _, bad := range []string{"", "P", "PT", "T1H", "P1H", "PT1D", "PT0S", "P-1D", "1D", "P1DT"} {
		if _, err := ParsePeriod(bad); err == nil {
			t.Errorf("ParsePeriod(%q) took it", bad)
		}
	}
}

func TestParseISOBadInput(t *testing.T) {
	now := mustTime(t, "2026-01-01T00:00:00Z")
	for _, c := range []struct{ expr, tz, want string }{
		{"every hour", "", "not an ISO 8601 repeating interval"},
		{"R/2026-01-01T00:00:00Z", "", "not an ISO 8601 repeating interval"},
		{"R/2026-13-01T00:00:00Z/PT1H", "", "start \"2026-13-01T00:00:00Z\""},
		{"R/2026-01-01T00:00:00Z/PT", "", "period \"PT\""},
		{"Rx/2026-01-01T00:00:00Z/PT1H", "", "not an ISO 8601 repeating interval"},
		{"R/2026-01-01T00:00:00Z/PT1H", "Mars/Olympus", "scheduleTimeZone \"Mars/Olympus\""},
	} {
		_, err := ParseISO(c.expr, c.tz, now)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseISO(%q, %q) = %v, want an error with %q", c.expr, c.tz, err, c.want)
		}
	}
}

func TestISONext(t *testing.T) {
	now := mustTime(t, "2026-03-01T10:00:00Z")
	for _, c := range []struct {
		name, expr, tz, after string
		want                  []string // the next instants, in order
	}{
		{"start ahead", "R/2026-03-02T00:00:00Z/PT1H", "", "2026-03-01T10:00:00Z",
			[]string{"2026-03-02T00:00:00Z", "2026-03-02T01:00:00Z"}},
		{"start in the past skips whole periods", "R/2020-01-01T00:00:30Z/PT1M", "", "2026-03-01T10:00:00Z",
			[]string{"2026-03-01T10:00:30Z", "2026-03-01T10:01:30Z"}},
		{"empty start is now", "R//PT2S", "", "2026-03-01T09:59:59Z",
			[]string{"2026-03-01T10:00:00Z", "2026-03-01T10:00:02Z"}},
		{"R3 runs three times", "R3/2026-03-01T00:00:00Z/P1D", "", "2026-02-01T00:00:00Z",
			[]string{"2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z"}},
		{"months", "R/2026-01-15T06:00:00Z/P1M", "", "2026-03-01T10:00:00Z",
			[]string{"2026-03-15T06:00:00Z", "2026-04-15T06:00:00Z"}},
		{"weeks", "R/2026-01-05T06:00:00Z/P1W", "", "2026-01-05T06:00:00Z",
			[]string{"2026-01-12T06:00:00Z", "2026-01-19T06:00:00Z"}},
		// A daily job at 09:00 Berlin keeps 09:00 local across the spring
		// change (08:00Z in winter, 07:00Z in summer).
		{"daily in a zone across DST", "R/2026-03-27T09:00:00/P1D", "Europe/Berlin", "2026-03-27T00:00:00Z",
			[]string{"2026-03-27T08:00:00Z", "2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z", "2026-03-30T07:00:00Z"}},
		// An explicit offset is kept as the instant.
		{"offset in the start", "R/2026-03-02T00:00:00+02:00/PT12H", "", "2026-03-01T10:00:00Z",
			[]string{"2026-03-01T22:00:00Z", "2026-03-02T10:00:00Z"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseISO(c.expr, c.tz, now)
			if err != nil {
				t.Fatal(err)
			}
			got := Preview(r, mustTime(t, c.after), len(c.want)+1)
			if c.name == "R3 runs three times" && len(got) != 3 {
				t.Fatalf("R3 gave %d instants: %v", len(got), got)
			}
			for i, w := range c.want {
				if i >= len(got) || !got[i].Equal(mustTime(t, w)) {
					t.Fatalf("instants after %s = %v, want %v", c.after, got, c.want)
				}
			}
		})
	}
}

func TestISOStringSpellsOutStart(t *testing.T) {
	now := mustTime(t, "2026-03-01T10:00:00Z")
	r, err := ParseISO("R5//PT2S", "", now)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.String(), "R5/2026-03-01T10:00:00Z/PT2S"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

// TestCronInZone drives a cron schedule in a time zone with a fake clock:
// each instant must be the right local time, and DST days must run a
// nonexistent time once at the end of the gap and a repeated time once.
func TestCronInZone(t *testing.T) {
	for _, c := range []struct {
		name, expr, tz, after string
		want                  []string
	}{
		{"every day 09:30 New York, winter and summer", "30 9 * * *", "America/New_York", "2026-03-06T00:00:00Z",
			[]string{"2026-03-06T14:30:00Z", "2026-03-07T14:30:00Z", "2026-03-08T13:30:00Z", "2026-03-09T13:30:00Z"}},
		{"weekdays 08:00 Tokyo", "0 8 * * mon-fri", "Asia/Tokyo", "2026-03-05T00:00:00Z",
			[]string{"2026-03-05T23:00:00Z", "2026-03-08T23:00:00Z"}},
		// 02:30 does not exist in Berlin on 2026-03-29: it runs once at
		// 03:00 CEST (01:00Z), the first instant after the gap.
		{"nonexistent local time", "30 2 * * *", "Europe/Berlin", "2026-03-28T00:00:00Z",
			[]string{"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}},
		// Every quarter hour across the gap: 02:00-02:45 all fall into it
		// and give one run at 03:00 CEST, then 03:15.
		{"quarter hours across the gap", "*/15 * * * *", "Europe/Berlin", "2026-03-29T00:40:00Z",
			[]string{"2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z"}},
		// 02:30 happens twice in Berlin on 2026-10-25 (00:30Z CEST and
		// 01:30Z CET): it runs once, at the first.
		{"repeated local time", "30 2 * * *", "Europe/Berlin", "2026-10-24T00:00:00Z",
			[]string{"2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}},
		{"hourly across the repeated hour", "0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z",
			[]string{"2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z"}},
		{"day of month or day of week", "0 0 13 * fri", "UTC", "2026-02-01T00:00:00Z",
			[]string{"2026-02-06T00:00:00Z", "2026-02-13T00:00:00Z", "2026-02-20T00:00:00Z"}},
		{"February 29th", "0 12 29 2 *", "UTC", "2026-01-01T00:00:00Z",
			[]string{"2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z"}},
		{"macro and steps", "@hourly", "", "2026-01-01T00:59:59Z",
			[]string{"2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := ParseCron(c.expr, c.tz)
			if err != nil {
				t.Fatal(err)
			}
			got := Preview(s, mustTime(t, c.after), len(c.want))
			for i, w := range c.want {
				if i >= len(got) || !got[i].Equal(mustTime(t, w)) {
					t.Fatalf("instants after %s = %v, want %v", c.after, got, c.want)
				}
			}
		})
	}
}

// TestCronHourly30MinZone checks the repeated hour counts once in a zone
// whose clock goes back by half an hour (Lord Howe Island).
func TestCronHalfHourShift(t *testing.T) {
	s, err := ParseCron("45 1 * * *", "Australia/Lord_Howe")
	if err != nil {
		t.Fatal(err)
	}
	// On 2026-04-05 01:30-02:00 local repeats; 01:45 occurs twice.
	after := mustTime(t, "2026-04-04T12:00:00Z")
	got := Preview(s, after, 2)
	if len(got) != 2 || got[1].Sub(got[0]) < 23*time.Hour {
		t.Fatalf("runs %v: 01:45 ran twice or not daily", got)
	}
}

func TestParseCronBadInput(t *testing.T) {
	for _, c := range []struct{ expr, tz, want string }{
		{"* * * *", "", "4 fields, want 5"},
		{"60 * * * *", "", "minute field \"60\": 60 is out of range 0-59"},
		{"* 24 * * *", "", "hour field"},
		{"* * 0 * *", "", "day-of-month field"},
		{"* * * 13 *", "", "month field"},
		{"* * * * 8", "", "day-of-week field"},
		{"*/0 * * * *", "", "step \"0\""},
		{"5-1 * * * *", "", "runs backwards"},
		{"* * * * foo", "", "\"foo\" is not a number"},
		{"* * * * *", "Nowhere/Else", "scheduleTimeZone"},
	} {
		_, err := ParseCron(c.expr, c.tz)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseCron(%q, %q) = %v, want an error with %q", c.expr, c.tz, err, c.want)
		}
	}
}

// TestDueEpsilon: an instant at most epsilon late runs; one later than
// that is missed and recorded, never run late.
func TestDueEpsilon(t *testing.T) {
	r, err := ParseISO("R/2026-01-01T00:00:00Z/PT1M", "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	due := mustTime(t, "2026-01-01T00:00:00Z")
	for _, c := range []struct {
		name, now string
		run       string // "" for none
		missed    int
		next      string
	}{
		{"not yet", "2025-12-31T23:59:59Z", "", 0, "2026-01-01T00:00:00Z"},
		{"on time", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", 0, "2026-01-01T00:01:00Z"},
		{"late within epsilon", "2026-01-01T00:00:30Z", "2026-01-01T00:00:00Z", 0, "2026-01-01T00:01:00Z"},
		{"late beyond epsilon", "2026-01-01T00:00:31Z", "", 1, "2026-01-01T00:01:00Z"},
		{"several missed, the last in epsilon", "2026-01-01T00:03:10Z", "2026-01-01T00:03:00Z", 3, "2026-01-01T00:04:00Z"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := Due(r, due, mustTime(t, c.now), 30*time.Second)
			if c.run == "" && d.RunOK || c.run != "" && (!d.RunOK || !d.Run.Equal(mustTime(t, c.run))) {
				t.Fatalf("run = %v %v, want %q", d.Run, d.RunOK, c.run)
			}
			if d.MissedCount != c.missed || len(d.Missed) != c.missed {
				t.Fatalf("missed %d %v, want %d", d.MissedCount, d.Missed, c.missed)
			}
			if !d.NextOK || !d.Next.Equal(mustTime(t, c.next)) {
				t.Fatalf("next = %v, want %s", d.Next, c.next)
			}
		})
	}
	// Far behind: the count is bounded work, and the schedule resumes.
	d := Due(r, due, mustTime(t, "2027-01-01T00:00:10Z"), 30*time.Second)
	if !d.RunOK || !d.Run.Equal(mustTime(t, "2027-01-01T00:00:00Z")) || len(d.Missed) > maxMissed || d.MissedCount < 10000 {
		t.Fatalf("a year behind: %+v", d)
	}
	// The end of an Rn schedule.
	r3, _ := ParseISO("R1/2026-01-01T00:00:00Z/PT1M", "", time.Time{})
	if d := Due(r3, due, due, 0); !d.RunOK || d.NextOK {
		t.Fatalf("R1: %+v, want a run and no next", d)
	}
}

func TestCheckGraph(t *testing.T) {
	for _, c := range []struct {
		name    string
		parents map[string][]string
		want    string
	}{
		{"chain", map[string][]string{"a": nil, "b": {"a"}, "c": {"b"}}, ""},
		{"diamond", map[string][]string{"a": nil, "b": {"a"}, "c": {"a"}, "d": {"b", "c"}}, ""},
		{"unknown parent", map[string][]string{"a": nil, "b": {"x"}}, `job "b": parent "x" is not a job`},
		{"cycle", map[string][]string{"a": nil, "b": {"a", "c"}, "c": {"b"}}, "dependency cycle: b -> c -> b"},
		{"self", map[string][]string{"a": {"a"}}, "dependency cycle: a -> a"},
	} {
		err := CheckGraph(c.parents)
		if c.want == "" && err != nil || c.want != "" && (err == nil || err.Error() != c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func TestReady(t *testing.T) {
	t1 := mustTime(t, "2026-01-01T00:00:00Z")
	t2 := t1.Add(time.Hour)
	if _, ok := Ready([]string{"a", "b"}, map[string]time.Time{"a": t1}); ok {
		t.Fatal("ready with one of two parents")
	}
	if at, ok := Ready([]string{"a", "b"}, map[string]time.Time{"a": t1, "b": t2}); !ok || !at.Equal(t2) {
		t.Fatalf("Ready = %v %v, want %v", at, ok, t2)
	}
	if _, ok := Ready(nil, nil); ok {
		t.Fatal("a job without parents is not a dependent job")
	}
}
