package plan

import (
	"math"
	"slices"
	"time"
)

// Instance is what scaling decisions see of one active instance.
type Instance struct {
	ID      string
	Started time.Time // when it was launched
}

// KillOrder lists the instances to kill first when scaling down by n:
// the youngest first (Marathon's default) or the oldest first.
func KillOrder(insts []Instance, selection string, n int) []string {
	s := slices.Clone(insts)
	slices.SortStableFunc(s, func(a, b Instance) int {
		c := a.Started.Compare(b.Started)
		if c == 0 {
			c = compareStrings(a.ID, b.ID)
		}
		if selection == OldestFirst {
			return c
		}
		return -c
	})
	n = min(max(n, 0), len(s))
	out := make([]string, 0, n)
	for _, i := range s[:n] {
		out = append(out, i.ID)
	}
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// LaunchDelay is how long to wait before launching again after failures
// failed (or finished) instances in a row: backoffSeconds, times
// backoffFactor per further failure, capped at maxLaunchDelaySeconds.
func LaunchDelay(a *App, failures int) time.Duration {
	if failures <= 0 {
		return 0
	}
	s := a.BackoffSeconds * math.Pow(a.BackoffFactor, float64(failures-1))
	if s > a.MaxLaunchDelaySeconds || math.IsInf(s, 0) || math.IsNaN(s) {
		s = a.MaxLaunchDelaySeconds
	}
	return time.Duration(s * float64(time.Second))
}

// Restart is the arithmetic of Marathon's rolling replacement
// (TaskReplaceActor) for an app of n instances: how many old instances
// may be killed, and how many new ones started, now. healthy counts the
// instances (old and new) considered healthy, oldActive the old ones not
// yet killed, started the new ones launched so far.
func Restart(n int, u UpgradeStrategy, healthy, oldActive, started int) (kill, start int) {
	minHealthy, maxCapacity := Capacity(n, u, healthy)
	kill = min(max(0, healthy-minHealthy), oldActive)
	left := max(0, maxCapacity-(oldActive-kill)-started)
	start = max(0, min(n-started, left))
	return kill, start
}

// Capacity is the bounds of a rolling replacement of n instances:
// at least minHealthy healthy, at most maxCapacity instances, with
// Marathon's one extra when the two meet and all are healthy (so that
// the replacement can go one at a time).
func Capacity(n int, u UpgradeStrategy, healthy int) (minHealthy, maxCapacity int) {
	minHealthy = int(math.Ceil(float64(n) * u.MinimumHealthCapacity))
	maxCapacity = int(math.Floor(float64(n) * (1 + u.MaximumOverCapacity)))
	if minHealthy == maxCapacity && maxCapacity <= healthy {
		maxCapacity++
	}
	return minHealthy, maxCapacity
}

// DefaultUpgradeStrategy is Marathon's: keep every instance, double up.
var DefaultUpgradeStrategy = UpgradeStrategy{MinimumHealthCapacity: 1, MaximumOverCapacity: 1}

// Strategy is the app's upgrade strategy or the default.
func (a *App) Strategy() UpgradeStrategy {
	if a.UpgradeStrategy == nil {
		return DefaultUpgradeStrategy
	}
	return *a.UpgradeStrategy
}
