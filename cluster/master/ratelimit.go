package master

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
)

// warnClaimedPrincipals warns, at start-up, that --rate_limits without
// --authenticate_frameworks counts each framework under the principal its
// FrameworkInfo claims, so a framework can escape its limit by claiming
// another.
func (m *Master) warnClaimedPrincipals() {
	if m.cfg.RateLimits != nil && !m.cfg.HTTP.Auth.Required(auth.Frameworks) {
		m.log.Warn("--rate_limits without --authenticate_frameworks: a framework's calls count under the principal its FrameworkInfo claims, unchecked, so a framework can escape its limit by claiming another principal")
	}
}

// limitCall counts one scheduler call of a framework principal against
// --rate_limits (Config.RateLimits): over its limit, the call is a 429
// whose Retry-After says when the principal may call again, and it does
// nothing. Metrics: frameworks/<principal>/messages_received and
// messages_processed, master/rate_limited_calls.
func (m *Master) limitCall(principal string) error {
	retry, ok := m.cfg.RateLimits.Allow(principal)
	if ok {
		return nil
	}
	who := principal
	if who == "" {
		who = "(none: the aggregate default)"
	}
	e := errorf(http.StatusTooManyRequests, "rate limit exceeded for framework principal '%s' (--rate_limits): retry after %v", who, retry.Round(time.Millisecond))
	e.retryAfter = retry
	return e
}

// setRetryAfter sets Retry-After, in whole seconds (at least 1), for an
// answer that has one.
func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	if d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Max(1, math.Ceil(d.Seconds())))))
	}
}
