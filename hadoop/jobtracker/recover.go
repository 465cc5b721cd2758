package jobtracker

import (
	"fmt"
	"time"

	"github.com/agora-cluster/agora/hadoop/job"
)

// Recovered is what a task did before the scheduler restarted, as the
// scheduler kept it: how many attempts were launched (their numbers are
// not given out again, so a new attempt never shares an ID, a temporary
// output directory or a work directory with one that may still be
// running somewhere), and the successful attempt whose output is kept, if
// any: a committed reduce or map-only map, or a map whose output its
// TaskTracker still serves.
type Recovered struct {
	Task     job.TaskID
	Launched int
	Success  *Attempt
}

// earlierLife is the diagnostics of the attempts a job's earlier scheduler
// ran and the core knows nothing more about.
const earlierLife = "ran under an earlier scheduler; not recovered"

// Recover restores work done before a scheduler restart into a job that
// has just been created and has run nothing yet: each task gets its
// earlier attempts back (as killed placeholders, so new attempts get new
// numbers) and, with a Success, succeeds with that attempt, publishing a
// map's output location to the reduces. A job whose every task is
// recovered moves on to commit.
func (j *Job) Recover(now time.Time, rs []Recovered) ([]Decision, error) {
	for _, r := range rs {
		t := j.Task(r.Task)
		if t == nil {
			return nil, fmt.Errorf("recover %s: no such task in %s", r.Task, j.ID)
		}
		if len(t.Attempts) > 0 {
			return nil, fmt.Errorf("recover %s: the task has attempts already", r.Task)
		}
		n := r.Launched
		if r.Success != nil {
			if r.Success.ID.Task != r.Task {
				return nil, fmt.Errorf("recover %s: attempt %s is not the task's", r.Task, r.Success.ID)
			}
			n = max(n, r.Success.ID.N+1)
		}
		for i := 0; i < n; i++ {
			if r.Success != nil && i == r.Success.ID.N {
				a := *r.Success
				a.State, a.Progress = AttemptSucceeded, 1
				if a.Finish.IsZero() {
					a.Finish = now
				}
				t.Attempts = append(t.Attempts, &a)
				continue
			}
			t.Attempts = append(t.Attempts, &Attempt{ID: job.AttemptID{Task: r.Task, N: i}, State: AttemptKilled,
				Start: now, Finish: now, LastProgress: now, Diagnostics: earlierLife})
		}
		if r.Success == nil {
			continue
		}
		a := t.Attempts[r.Success.ID.N]
		t.State, t.successful = TaskSucceeded, a
		if t.ID.Kind == job.Map {
			if !j.MapOnly() {
				j.publish(MapCompletion{Map: t.ID.Index, Attempt: a.ID, URL: a.ShuffleURL, Status: MapSucceeded})
			}
			if j.finishedMaps() == len(j.maps) {
				j.mapsDoneAt = now
			}
		}
	}
	return j.checkDone(now), nil
}
