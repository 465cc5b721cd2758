package auth

import (
	"strings"
	"testing"
	"time"
)

// TestRateLimits: a listed principal bursts up to its capacity and then
// earns one call per 1/qps; one listed without qps and the principals
// under the aggregate default are limited as configured. The clock is
// the test's, so the counts are exact.
func TestRateLimits(t *testing.T) {
	l, err := ParseRateLimits([]byte(`{"limits": [
		{"principal": "batch", "qps": 2, "capacity": 3},
		{"principal": "prod"}],
		"aggregate_default_qps": 1, "aggregate_default_capacity": 2}`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	l.SetClock(func() time.Time { return now })
	count := func(p string, n int) (ok int, retry time.Duration) {
		for i := 0; i < n; i++ {
			r, allowed := l.Allow(p)
			if allowed {
				ok++
			} else {
				retry = r
			}
		}
		return ok, retry
	}
	if ok, retry := count("batch", 10); ok != 3 || retry != 500*time.Millisecond {
		t.Errorf("batch: %d of 10 allowed (want its capacity, 3), retry after %v (want 500ms)", ok, retry)
	}
	if ok, _ := count("prod", 1000); ok != 1000 {
		t.Errorf("prod (listed without qps): %d of 1000 allowed", ok)
	}
	// The unlisted share the aggregate bucket.
	if a, b := func() (int, int) { x, _ := count("x", 2); y, _ := count("y", 2); return x, y }(); a != 2 || b != 0 {
		t.Errorf("aggregate: x %d, y %d allowed; want 2 and 0 (capacity 2, shared)", a, b)
	}
	now = now.Add(time.Second)
	if ok, _ := count("batch", 10); ok != 2 {
		t.Errorf("batch a second later: %d allowed, want 2 (qps 2)", ok)
	}
	m := l.Metrics()
	if m["frameworks/batch/messages_received"] != 20 || m["frameworks/batch/messages_processed"] != 5 ||
		m["master/rate_limited_calls"] != 15+2 {
		t.Errorf("metrics: %v", m)
	}
	var none *RateLimits
	if _, ok := none.Allow("anyone"); !ok {
		t.Error("nil RateLimits must allow every call")
	}
}

func TestRateLimitsParseErrors(t *testing.T) {
	for _, tc := range []struct{ json, says string }{
		{`{"limits": [{"qps": 1}]}`, `limits[0]: missing "principal"`},
		{`{"limits": [{"principal": "a"}, {"principal": "a"}]}`, `limits[1] (principal "a"): principal listed twice`},
		{`{"limits": [{"principal": "a", "qps": 0}]}`, "qps must be a positive number"},
		{`{"limits": [{"principal": "a", "qps": 1, "capacity": 0}]}`, "capacity must be at least 1"},
		{`{"limits": [{"principal": "a", "rate": 1}]}`, `unknown field "rate"`},
		{`{"aggregate_default_qps": -1}`, "aggregate_default: qps must be"},
		{`{`, "malformed JSON"},
	} {
		_, err := ParseRateLimits([]byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want an error saying %q", tc.json, err, tc.says)
		}
	}
}

// FuzzParseRateLimits: no --rate_limits text crashes the parser, and what
// it accepts never asks a refused caller to wait a negative time.
func FuzzParseRateLimits(f *testing.F) {
	f.Add([]byte(`{"limits": [{"principal": "a", "qps": 2, "capacity": 3}, {"principal": "b"}], "aggregate_default_qps": 1}`), "a")
	f.Add([]byte(`{"limits": [{"principal": "a", "qps": 1e-300}]}`), "a")
	f.Add([]byte(`{"aggregate_default_qps": 1e308, "aggregate_default_capacity": 1e308}`), "x")
	f.Fuzz(func(t *testing.T, data []byte, principal string) {
		l, err := ParseRateLimits(data)
		if err != nil {
			return
		}
		now := time.Unix(0, 0)
		l.SetClock(func() time.Time { return now })
		for i := 0; i < 5; i++ {
			if retry, ok := l.Allow(principal); !ok && retry < 0 {
				t.Fatalf("refused with Retry-After %v", retry)
			}
		}
	})
}
