package jobtracker

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/agora-cluster/agora/hadoop/counters"
	"github.com/agora-cluster/agora/hadoop/job"
)

// Assign offers the job one free slot of kind on host and returns the
// attempt to start there, or nil and the reason nothing should start (a
// "no", not an error). Failed tasks are retried first; maps then prefer
// data-local work and, while the delay scheduling wait lasts, leave the
// slot empty rather than run far from their data; when no task is waiting
// a straggler may be speculated. rng breaks ties between equally slow
// stragglers.
func (j *Job) Assign(now time.Time, rng *rand.Rand, hostName string, kind job.Kind) (*Launch, string) {
	if j.state != JobRunning {
		return nil, fmt.Sprintf("job is %s", j.state)
	}
	h := j.host(hostName)
	if h.blacklisted {
		return nil, fmt.Sprintf("host %s is blacklisted for this job after %d task failures", hostName, h.failures)
	}
	if kind == job.Reduce {
		return j.assignReduce(now, rng, hostName)
	}
	return j.assignMap(now, rng, hostName)
}

func (j *Job) host(name string) *host {
	h := j.hosts[name]
	if h == nil {
		h = &host{}
		j.hosts[name] = h
	}
	return h
}

// allowedOn reports whether t may run on host: not where it already failed,
// unless it failed on every host the job knows (Hadoop's rule for small
// clusters), and not next to its own running attempt.
func (j *Job) allowedOn(t *Task, hostName string) bool {
	for _, a := range t.running() {
		if a.Host == hostName {
			return false
		}
	}
	if !t.failedHosts[hostName] {
		return true
	}
	usable := 0
	for _, h := range j.hosts {
		if !h.blacklisted {
			usable++
		}
	}
	return len(t.failedHosts) >= usable
}

// onHost reports whether a map whose split lives on hosts is data-local on
// the agent named hostName. Split hosts carry the datanodes' hostnames and
// IP addresses, and agents register under a hostname or an IP address, so
// either matches; names compare without regard to case or a trailing dot,
// and a short name matches a fully qualified one with that first label
// ("dn1" and "dn1.example.com"), as one site's DNS often gives both.
func onHost(hosts []string, hostName string) bool {
	h := normalHost(hostName)
	if h == "" {
		return false
	}
	for _, s := range hosts {
		s = normalHost(s)
		if s == h {
			return true
		}
		if net.ParseIP(s) != nil || net.ParseIP(h) != nil {
			continue
		}
		short, long := s, h
		if len(short) > len(long) {
			short, long = long, short
		}
		if !strings.Contains(short, ".") && strings.HasPrefix(long, short+".") {
			return true
		}
	}
	return false
}

func normalHost(h string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
}

func (j *Job) assignMap(now time.Time, rng *rand.Rand, hostName string) (*Launch, string) {
	var retry, local, anywhere, remote *Task
	pending := 0
	for _, t := range j.maps {
		if t.State != TaskPending {
			continue
		}
		pending++
		if !j.allowedOn(t, hostName) {
			continue
		}
		switch {
		case t.failures > 0:
			if retry == nil {
				retry = t
			}
		case onHost(t.Hosts, hostName):
			if local == nil {
				local = t
			}
		case len(t.Hosts) == 0:
			if anywhere == nil {
				anywhere = t
			}
		default:
			if remote == nil {
				remote = t
			}
		}
	}
	switch {
	case retry != nil:
		return j.launch(now, retry, hostName, false), ""
	case local != nil:
		j.waitingSince, j.relaxed = time.Time{}, false
		return j.launch(now, local, hostName, false), ""
	case anywhere != nil:
		return j.launch(now, anywhere, hostName, false), ""
	case remote != nil:
		if j.cfg.LocalityDelay > 0 && !j.relaxed {
			if j.waitingSince.IsZero() {
				j.waitingSince = now
			}
			if waited := now.Sub(j.waitingSince); waited < j.cfg.LocalityDelay {
				return nil, fmt.Sprintf("no map has data on %s; waiting %v more for a data-local slot (delay scheduling)", hostName, (j.cfg.LocalityDelay - waited).Round(time.Millisecond))
			}
			j.relaxed = true
		}
		return j.launch(now, remote, hostName, false), ""
	case pending > 0:
		return nil, fmt.Sprintf("the %d pending maps may not run on %s (they failed there or run there already)", pending, hostName)
	}
	if t := j.speculationCandidate(now, rng, job.Map, hostName); t != nil {
		return j.launch(now, t, hostName, true), ""
	}
	return nil, "no map to run"
}

func (j *Job) assignReduce(now time.Time, rng *rand.Rand, hostName string) (*Launch, string) {
	if len(j.reduces) == 0 {
		return nil, "the job is map-only"
	}
	need := int(math.Ceil(j.cfg.SlowStart * float64(len(j.maps))))
	if done := j.finishedMaps(); done < need {
		return nil, fmt.Sprintf("reduces wait until %d of %d maps are done (%d are)", need, len(j.maps), done)
	}
	var pick *Task
	pending := 0
	for _, t := range j.reduces {
		if t.State != TaskPending {
			continue
		}
		pending++
		if !j.allowedOn(t, hostName) {
			continue
		}
		if pick == nil || t.failures > 0 && pick.failures == 0 {
			pick = t
		}
	}
	if pick != nil {
		return j.launch(now, pick, hostName, false), ""
	}
	if pending > 0 {
		return nil, fmt.Sprintf("the %d pending reduces may not run on %s", pending, hostName)
	}
	if t := j.speculationCandidate(now, rng, job.Reduce, hostName); t != nil {
		return j.launch(now, t, hostName, true), ""
	}
	return nil, "no reduce to run"
}

func (j *Job) finishedMaps() int {
	n := 0
	for _, t := range j.maps {
		if t.State == TaskSucceeded || t.State == TaskFailed {
			n++
		}
	}
	return n
}

func (j *Job) launch(now time.Time, t *Task, hostName string, speculative bool) *Launch {
	id := job.AttemptID{Task: t.ID, N: len(t.Attempts)}
	a := &Attempt{ID: id, Host: hostName, State: AttemptRunning, Speculative: speculative, Start: now, LastProgress: now}
	if t.ID.Kind == job.Map {
		switch {
		case len(t.Hosts) == 0:
			a.Locality = NoPreference
		case onHost(t.Hosts, hostName):
			a.Locality = DataLocal
			j.counters.Add(counters.JobGroup, counters.DataLocalMaps, 1)
		default:
			a.Locality = OffSwitch
			j.counters.Add(counters.JobGroup, counters.OtherLocalMaps, 1)
		}
		j.counters.Add(counters.JobGroup, counters.TotalLaunchedMaps, 1)
	} else {
		j.counters.Add(counters.JobGroup, counters.TotalLaunchedReduces, 1)
	}
	t.Attempts = append(t.Attempts, a)
	t.State = TaskRunning
	return &Launch{Attempt: id, Speculative: speculative, Locality: a.Locality}
}

// speculationCandidate picks the running task of kind most worth a second
// attempt on host, or nil. A task qualifies when it has exactly one running
// attempt that has run at least SpeculativeLag and whose estimated total
// run time (elapsed / progress) exceeds the mean run time of the finished
// tasks of its kind by SlowTaskThreshold standard deviations; among those
// the one with the longest estimated time left wins (LATE). At most
// max(SpeculativeMinTasks, SpeculativeCap × running tasks) speculative
// attempts run at once. Reduces are speculated only once every map is done.
func (j *Job) speculationCandidate(now time.Time, rng *rand.Rand, kind job.Kind, hostName string) *Task {
	if kind == job.Map && !j.cfg.MapSpeculative || kind == job.Reduce && !j.cfg.ReduceSpeculative {
		return nil
	}
	if kind == job.Reduce && j.finishedMaps() < len(j.maps) {
		return nil
	}
	ts := j.tasks(kind)
	var durations []float64
	running, speculating := 0, 0
	for _, t := range ts {
		if t.State == TaskSucceeded && t.successful != nil {
			durations = append(durations, t.successful.Finish.Sub(t.successful.Start).Seconds())
		}
		if t.State == TaskRunning {
			running++
			for _, a := range t.running() {
				if a.Speculative {
					speculating++
				}
			}
		}
	}
	if len(durations) == 0 || running == 0 {
		return nil
	}
	if limit := max(j.cfg.SpeculativeMinTasks, int(math.Ceil(j.cfg.SpeculativeCap*float64(running)))); speculating >= limit {
		return nil
	}
	mean, std := meanStd(durations)
	threshold := mean + j.cfg.SlowTaskThreshold*std
	var best []*Task
	bestLeft := -1.0
	for _, t := range ts {
		if t.State != TaskRunning {
			continue
		}
		run := t.running()
		if len(run) != 1 || !j.allowedOn(t, hostName) {
			continue
		}
		a := run[0]
		started := a.Start
		if kind == job.Reduce && j.mapsDoneAt.After(started) {
			started = j.mapsDoneAt // time spent waiting for maps says nothing
		}
		elapsed := now.Sub(started).Seconds()
		if elapsed < j.cfg.SpeculativeLag.Seconds() {
			continue
		}
		total := math.Inf(1)
		if a.Progress > 0 {
			total = elapsed / a.Progress
		}
		if total <= threshold {
			continue
		}
		left := total - elapsed
		switch {
		case left > bestLeft:
			best, bestLeft = []*Task{t}, left
		case left == bestLeft:
			best = append(best, t)
		}
	}
	if len(best) == 0 {
		return nil
	}
	if len(best) == 1 || rng == nil {
		return best[0]
	}
	return best[rng.IntN(len(best))]
}

func meanStd(xs []float64) (float64, float64) {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	mean := sum / float64(len(xs))
	var v float64
	for _, x := range xs {
		v += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(v / float64(len(xs)))
}
