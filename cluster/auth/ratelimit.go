package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"time"
)

// RateLimits are Mesos's --rate_limits: how many calls per second
// (qps) each framework principal may make, with bursts of up to capacity
// calls, and an aggregate default shared by every principal not listed.
// Mesos queues the calls over the rate, up to capacity; agora refuses
// them at once (429 with Retry-After) so that no queue grows in the
// master, and lets a principal with a full bucket burst up to capacity
// calls. A capacity not given is one second's worth of calls.
//
// RateLimits are safe for concurrent use; a nil *RateLimits limits
// nothing.
type RateLimits struct {
	mu        sync.Mutex
	now       func() time.Time
	limits    map[string]*bucket     // nil bucket: listed without qps, unlimited
	aggregate *bucket                // nil: principals not listed are not limited
	counts    map[string]*callCounts // the listed principals'
	limited   uint64
}

// callCounts are one principal's calls, for /metrics/snapshot.
type callCounts struct{ received, processed uint64 }

type bucket struct {
	qps, capacity float64
	tokens        float64
	last          time.Time
}

// take spends one token if there is one; otherwise it says how long until
// there is.
func (b *bucket) take(now time.Time) (time.Duration, bool) {
	if b.last.IsZero() {
		b.tokens = b.capacity
	} else if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = math.Min(b.capacity, b.tokens+elapsed*b.qps)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	wait := (1 - b.tokens) / b.qps // seconds; huge for a tiny qps
	if wait >= maxRetryAfter.Seconds() {
		return maxRetryAfter, false
	}
	return time.Duration(wait * float64(time.Second)), false
}

// maxRetryAfter caps the wait a refusal names, so that a tiny qps cannot
// overflow it (the caller is refused again if it comes back too early).
const maxRetryAfter = 24 * time.Hour

// RateLimit is one entry of "limits".
type RateLimit struct {
	Principal string   `json:"principal"`
	QPS       *float64 `json:"qps,omitempty"`
	Capacity  *float64 `json:"capacity,omitempty"`
}

type rateLimitsFile struct {
	Limits                   []RateLimit `json:"limits"`
	AggregateDefaultQPS      *float64    `json:"aggregate_default_qps,omitempty"`
	AggregateDefaultCapacity *float64    `json:"aggregate_default_capacity,omitempty"`
}

// LoadRateLimits reads --rate_limits: a file, or the JSON itself when the
// value starts with '{' (as Mesos allows).
func LoadRateLimits(value string) (*RateLimits, error) {
	data := []byte(value)
	if !strings.HasPrefix(strings.TrimSpace(value), "{") {
		var err error
		if data, err = os.ReadFile(strings.TrimPrefix(value, "file://")); err != nil {
			return nil, fmt.Errorf("rate_limits file: %w", err)
		}
	}
	return ParseRateLimits(data)
}

// ParseRateLimits parses Mesos's rate limits JSON. Problems are errors
// naming the entry: an unknown field, a missing or repeated principal, a
// qps or capacity that is not positive.
func ParseRateLimits(data []byte) (*RateLimits, error) {
	var f rateLimitsFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("malformed JSON: %w", err)
	}
	l := &RateLimits{now: time.Now, limits: map[string]*bucket{}, counts: map[string]*callCounts{}}
	for i, e := range f.Limits {
		where := fmt.Sprintf("limits[%d]", i)
		if e.Principal == "" {
			return nil, fmt.Errorf("%s: missing \"principal\"", where)
		}
		where = fmt.Sprintf("limits[%d] (principal %q)", i, e.Principal)
		if _, dup := l.limits[e.Principal]; dup {
			return nil, fmt.Errorf("%s: principal listed twice", where)
		}
		b, err := newBucket(e.QPS, e.Capacity)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		l.limits[e.Principal] = b
		l.counts[e.Principal] = &callCounts{}
	}
	b, err := newBucket(f.AggregateDefaultQPS, f.AggregateDefaultCapacity)
	if err != nil {
		return nil, fmt.Errorf("aggregate_default: %w", err)
	}
	l.aggregate = b
	return l, nil
}

// newBucket is nil (unlimited) without a qps; capacity needs a qps, as in
// Mesos (it is ignored without one).
func newBucket(qps, capacity *float64) (*bucket, error) {
	if qps == nil {
		return nil, nil
	}
	if !(*qps > 0) || math.IsInf(*qps, 0) {
		return nil, fmt.Errorf("qps must be a positive number, got %v", *qps)
	}
	c := math.Max(1, math.Ceil(*qps))
	if capacity != nil {
		if !(*capacity >= 1) || math.IsInf(*capacity, 0) {
			return nil, fmt.Errorf("capacity must be at least 1, got %v", *capacity)
		}
		c = *capacity
	}
	return &bucket{qps: *qps, capacity: c}, nil
}

// SetClock replaces the clock (tests).
func (l *RateLimits) SetClock(now func() time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.now = now
}

// Allow counts one call of principal ("" for a framework without one)
// and reports whether it is within its limit; when not, how long until
// it would be.
func (l *RateLimits) Allow(principal string) (retryAfter time.Duration, ok bool) {
	if l == nil {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, listed := l.limits[principal]
	if !listed {
		b = l.aggregate
	}
	ok = true
	if b != nil {
		retryAfter, ok = b.take(l.now())
	}
	if c := l.counts[principal]; c != nil {
		c.received++
		if ok {
			c.processed++
		}
	}
	if !ok {
		l.limited++
	}
	return retryAfter, ok
}

// Metrics are Mesos's per-principal counters,
// frameworks/<principal>/messages_received and .../messages_processed
// (the difference is what was refused), for the principals listed in
// "limits" (without authentication a principal is whatever a framework
// claims, so the others are not named one by one), and
// master/rate_limited_calls, every refusal.
func (l *RateLimits) Metrics() map[string]float64 {
	out := map[string]float64{}
	if l == nil {
		return out
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for p, c := range l.counts {
		out["frameworks/"+p+"/messages_received"] = float64(c.received)
		out["frameworks/"+p+"/messages_processed"] = float64(c.processed)
	}
	out["master/rate_limited_calls"] = float64(l.limited)
	return out
}
