package framework

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Locality: with a requested total, Spark's ExecutorAllocationManager
// hands the cluster manager its pending tasks' preferred hosts (where
// their input lives: HDFS blocks, cached partitions) and how many tasks
// prefer each. As Spark's Mesos backend did, for spark.locality.wait
// after the preferred hosts change an application takes executors only
// from offers on those hosts, first those where it has no executor yet
// (to spread over the data), then, once every preferred host has one,
// any preferred host; after the wait, any offer, so that a preferred
// host that has no room or no agent delays executors by the wait at most.

// setLocalityLocked records the preferred hosts (host → pending tasks
// that prefer it) of a requested total. The wait starts again when a host
// is new, not when hosts drop out as their tasks run: a stage's set only
// shrinks, so the wait ends.
func (a *App) setLocalityLocked(hosts map[string]int, now time.Time) {
	next := map[string]int{}
	restart := false
	for h, n := range hosts {
		if n > 0 {
			h = strings.ToLower(h)
			next[h] = n
			if _, ok := a.hostTasks[h]; !ok {
				restart = true
			}
		}
	}
	if restart {
		a.localitySince = now
	}
	a.hostTasks = next
}

// localityAllows says whether an offer from host may get one of a's
// executors at now, and if not, how long until the wait ends.
func (a *App) localityAllows(host string, now time.Time) (bool, time.Duration) {
	if len(a.hostTasks) == 0 {
		return true, 0
	}
	left := a.localitySince.Add(a.Sizing.LocalityWait).Sub(now)
	if left <= 0 {
		return true, 0
	}
	host = strings.ToLower(host)
	if _, preferred := a.hostTasks[host]; !preferred {
		return false, left
	}
	covered := map[string]bool{}
	for _, e := range a.executors {
		if e.active() {
			covered[strings.ToLower(e.Hostname)] = true
		}
	}
	if !covered[host] {
		return true, 0
	}
	for h := range a.hostTasks {
		if !covered[h] {
			return false, left // a preferred host without an executor comes first
		}
	}
	return true, 0
}

// localityMessage says why a is passing over an offer from host.
func (a *App) localityMessage(host string, left time.Duration) string {
	return fmt.Sprintf("waiting up to %s more for offers from the hosts its tasks prefer (%s), not %s (spark.locality.wait)",
		left.Round(time.Millisecond), strings.Join(slices.Sorted(maps.Keys(a.hostTasks)), ", "), host)
}
