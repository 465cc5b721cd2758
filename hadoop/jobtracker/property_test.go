package jobtracker

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/hadoop/job"
)

type simAttempt struct {
	id   job.AttemptID
	host string
	ends time.Time
	fail bool
}

// Random clusters, failures, lost hosts and fetch failures never break the
// core's invariants, and every job ends.
func TestPropertyRandomRunsKeepInvariants(t *testing.T) {
	ends := map[JobState]int{}
	for seed := uint64(0); seed < 300; seed++ {
		ends[simulate(t, seed)]++
	}
	t.Logf("ends: %v", ends)
	if ends[JobSucceeded] < 100 || ends[JobFailed] < 20 {
		t.Fatalf("the runs should both succeed and fail: %v", ends)
	}
}

func simulate(t *testing.T, seed uint64) JobState {
	rng := rand.New(rand.NewPCG(seed, 99))
	cfg := testConfig(t)
	cfg.SpeculativeLag = time.Duration(rng.IntN(20)) * time.Second
	cfg.LocalityDelay = time.Duration(rng.IntN(5)) * time.Second
	cfg.TaskTimeout = 30 * time.Second
	cfg.SlowStart = rng.Float64()
	hosts := []string{"h0", "h1", "h2", "h3", "h4"}[:1+rng.IntN(5)]
	nmaps := 1 + rng.IntN(12)
	var splits [][]string
	for i := 0; i < nmaps; i++ {
		if rng.IntN(3) == 0 {
			splits = append(splits, nil)
		} else {
			splits = append(splits, []string{hosts[rng.IntN(len(hosts))], "elsewhere"})
		}
	}
	reduces := rng.IntN(4)
	failP := rng.Float64() * 0.5
	j := New(jobID, splits, reduces, cfg, t0)
	running := map[job.AttemptID]simAttempt{}
	blacklistedAt := map[string]bool{}
	now := t0
	apply := func(ds []Decision) {
		for _, d := range ds {
			switch d := d.(type) {
			case KillAttempt:
				delete(running, d.Attempt)
			case CommitJob:
				j.Committed(now)
			case AbortJob:
				if d.State != JobFailed && d.State != JobKilled {
					t.Fatalf("seed %d: abort with state %s", seed, d.State)
				}
			}
		}
	}
	for step := 0; step < 5000 && !j.State().Done(); step++ {
		now = now.Add(time.Second)
		for _, h := range hosts {
			for _, k := range []job.Kind{job.Map, job.Map, job.Reduce} {
				busy := 0
				for _, a := range running {
					if a.host == h && a.id.Task.Kind == k {
						busy++
					}
				}
				if k == job.Map && busy >= 2 || k == job.Reduce && busy >= 1 {
					continue
				}
				l, _ := j.Assign(now, rng, h, k)
				if l == nil {
					continue
				}
				if blacklistedAt[h] {
					t.Fatalf("seed %d: launched on blacklisted host %s", seed, h)
				}
				running[l.Attempt] = simAttempt{id: l.Attempt, host: h, ends: now.Add(time.Duration(1+rng.IntN(40)) * time.Second), fail: rng.Float64() < failP}
			}
		}
		for _, id := range sortedIDs(running) {
			a := running[id]
			if rng.IntN(10) == 0 {
				j.Update(now, id, Progress{Progress: rng.Float64()})
			}
			if now.Before(a.ends) {
				continue
			}
			delete(running, id)
			switch {
			case a.fail:
				apply(j.Failed(now, id, fmt.Sprintf("simulated failure of %s", id)))
			case j.needsCommit(id.Task.Kind) && !j.RequestCommit(now, id):
				apply(j.Killed(now, id, "commit refused"))
			default:
				apply(j.Succeeded(now, id, Result{ShuffleURL: "http://" + a.host}))
			}
		}
		if rng.IntN(200) == 0 && len(hosts) > 1 {
			h := hosts[rng.IntN(len(hosts))]
			for _, id := range sortedIDs(running) {
				if running[id].host == h {
					delete(running, id)
				}
			}
			apply(j.HostLost(now, h))
		}
		if reduces > 0 && nmaps > 0 && rng.IntN(50) == 0 {
			for _, id := range sortedIDs(running) {
				if id.Task.Kind == job.Reduce {
					apply(j.FetchFailed(now, id, rng.IntN(nmaps)))
					break
				}
			}
		}
		apply(j.Tick(now))
		for _, h := range j.Blacklisted() {
			blacklistedAt[h] = true
		}
		checkInvariants(t, seed, j)
	}
	if !j.State().Done() {
		t.Fatalf("seed %d: job did not end: %+v", seed, j.Status())
	}
	return j.State()
}

// sortedIDs makes the simulation independent of map iteration order.
func sortedIDs(m map[job.AttemptID]simAttempt) []job.AttemptID {
	ids := make([]job.AttemptID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b job.AttemptID) int { return strings.Compare(a.String(), b.String()) })
	return ids
}

func checkInvariants(t *testing.T, seed uint64, j *Job) {
	t.Helper()
	for _, task := range j.Tasks() {
		succeeded, committing, active := 0, 0, 0
		failures := 0
		for _, a := range task.Attempts {
			switch a.State {
			case AttemptSucceeded:
				succeeded++
			case AttemptCommitPending:
				committing++
			case AttemptFailed:
				failures++
			}
			if a.State.active() {
				active++
			}
		}
		if succeeded > 1 || committing > 1 || succeeded+committing > 1 && j.needsCommit(task.ID.Kind) {
			t.Fatalf("seed %d: %s has %d succeeded and %d committing attempts", seed, task.ID, succeeded, committing)
		}
		if (task.State == TaskSucceeded) != (succeeded == 1) {
			t.Fatalf("seed %d: %s is %s with %d succeeded attempts", seed, task.ID, task.State, succeeded)
		}
		if active > 2 {
			t.Fatalf("seed %d: %s has %d attempts running", seed, task.ID, active)
		}
		if failures > j.maxAttempts(task.ID.Kind) {
			t.Fatalf("seed %d: %s failed %d times", seed, task.ID, failures)
		}
		if task.State == TaskPending && active > 0 {
			t.Fatalf("seed %d: pending %s has running attempts", seed, task.ID)
		}
		if j.State() == JobSucceeded && task.State != TaskSucceeded {
			t.Fatalf("seed %d: job succeeded with %s %s", seed, task.ID, task.State)
		}
	}
	if j.State() == JobFailed && !strings.Contains(j.Err(), "task_") && !strings.Contains(j.Err(), "commit") {
		t.Fatalf("seed %d: failure does not name a task: %s", seed, j.Err())
	}
}
