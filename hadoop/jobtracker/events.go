package jobtracker

import (
	"fmt"
	"strings"
	"time"

	"github.com/agora-cluster/agora/hadoop/counters"
	"github.com/agora-cluster/agora/hadoop/job"
)

// live returns the task and attempt of id if the attempt is still running;
// reports about attempts that ended (or that the core already killed) are
// stale and ignored.
func (j *Job) live(id job.AttemptID) (*Task, *Attempt) {
	t, a := j.attempt(id)
	if a == nil || !a.State.active() {
		return nil, nil
	}
	return t, a
}

// Update records an attempt's progress report.
func (j *Job) Update(now time.Time, id job.AttemptID, p Progress) {
	_, a := j.live(id)
	if a == nil {
		return
	}
	a.Progress = min(max(p.Progress, 0), 1)
	if p.Status != "" {
		a.Status = p.Status
	}
	if p.Counters != nil {
		a.Counters = p.Counters.Clone()
	}
	a.LastProgress = now
}

// RequestCommit asks whether an attempt that finished its work may commit
// its output (Hadoop's commit-pending / canCommit). Exactly one attempt of
// a task is allowed; the others are refused and should discard their
// output and report Killed.
func (j *Job) RequestCommit(now time.Time, id job.AttemptID) bool {
	t, a := j.live(id)
	if a == nil || j.state != JobRunning || t.State == TaskSucceeded {
		return false
	}
	if t.committer != nil && t.committer != a && t.committer.State.active() {
		return false
	}
	t.committer = a
	a.State = AttemptCommitPending
	a.LastProgress = now
	return true
}

// Succeeded records a successful attempt. An attempt whose output is job
// output must have been allowed to commit (RequestCommit). The other
// attempts of the task are killed; when every task is done the job
// commits.
func (j *Job) Succeeded(now time.Time, id job.AttemptID, r Result) []Decision {
	t, a := j.live(id)
	if a == nil {
		return nil
	}
	a.Finish, a.LastProgress = now, now
	if r.Counters != nil {
		a.Counters = r.Counters.Clone()
	}
	if t.State == TaskSucceeded || j.needsCommit(t.ID.Kind) && t.committer != a {
		a.State = AttemptKilled
		a.Diagnostics = "finished without permission to commit, or after another attempt succeeded"
		j.countKilled(t)
		if t.State == TaskRunning && len(t.running()) == 0 {
			t.State = TaskPending
		}
		return nil
	}
	a.State, a.Progress, a.ShuffleURL = AttemptSucceeded, 1, r.ShuffleURL
	t.State, t.successful = TaskSucceeded, a
	t.fetchFailures = map[job.TaskID]bool{}
	var ds []Decision
	for _, o := range t.running() {
		ds = append(ds, j.kill(now, t, o, fmt.Sprintf("%s succeeded", a.ID))...)
	}
	if t.ID.Kind == job.Map {
		if !j.MapOnly() {
			j.publish(MapCompletion{Map: t.ID.Index, Attempt: a.ID, URL: r.ShuffleURL, Status: MapSucceeded})
		}
		if j.finishedMaps() == len(j.maps) {
			j.mapsDoneAt = now
		}
	}
	return append(ds, j.checkDone(now)...)
}

// Failed records a failed attempt with its diagnostics (for Streaming, the
// exit status and the tail of stderr). The task runs again unless it has
// failed maxattempts times; then it fails, and the job with it unless the
// job tolerates that many failed tasks.
func (j *Job) Failed(now time.Time, id job.AttemptID, diagnostics string) []Decision {
	t, a := j.live(id)
	if a == nil {
		return nil
	}
	return j.fail(now, t, a, diagnostics)
}

func (j *Job) fail(now time.Time, t *Task, a *Attempt, diagnostics string) []Decision {
	a.State, a.Finish, a.Diagnostics = AttemptFailed, now, diagnostics
	if t.committer == a {
		t.committer = nil
	}
	if t.ID.Kind == job.Map {
		j.counters.Add(counters.JobGroup, counters.NumFailedMaps, 1)
	} else {
		j.counters.Add(counters.JobGroup, counters.NumFailedReduces, 1)
	}
	t.failures++
	t.failedHosts[a.Host] = true
	j.hostFailed(a.Host)
	if t.State == TaskSucceeded && t.successful != a {
		return nil // a loser of a race failed late; nothing changes
	}
	if t.successful == a { // a map whose output was lost
		t.successful = nil
		j.publish(MapCompletion{Map: t.ID.Index, Attempt: a.ID, Status: MapObsolete})
	}
	if t.failures < j.maxAttempts(t.ID.Kind) {
		if len(t.running()) == 0 {
			t.State = TaskPending
		} else {
			t.State = TaskRunning
		}
		return nil
	}
	var ds []Decision
	for _, o := range t.running() {
		ds = append(ds, j.kill(now, t, o, fmt.Sprintf("task %s failed", t.ID))...)
	}
	t.State = TaskFailed
	if t.ID.Kind == job.Map && !j.MapOnly() {
		j.publish(MapCompletion{Map: t.ID.Index, Attempt: a.ID, Status: MapTIPFailed})
	}
	if !j.tolerates(t.ID.Kind) {
		reason := fmt.Sprintf("task %s failed %d times; last attempt %s on %s:\n%s",
			t.ID, t.failures, a.ID, a.Host, strings.TrimSpace(diagnostics))
		return append(ds, j.end(now, JobFailed, reason)...)
	}
	return append(ds, j.checkDone(now)...)
}

// tolerates reports whether the failed tasks of kind stay within
// mapreduce.{map,reduce}.failures.maxpercent.
func (j *Job) tolerates(k job.Kind) bool {
	ts := j.tasks(k)
	failed := 0
	for _, t := range ts {
		if t.State == TaskFailed {
			failed++
		}
	}
	pct := j.cfg.MapFailuresPercent
	if k == job.Reduce {
		pct = j.cfg.ReduceFailuresPct
	}
	return failed*100 <= pct*len(ts)
}

// hostFailed counts a task failure on a host and blacklists the host for
// the job at MaxFailuresPerHost failures, as long as at most a quarter of
// the known hosts (at least one, never all) are blacklisted.
func (j *Job) hostFailed(name string) {
	h := j.host(name)
	h.failures++
	if h.blacklisted || j.cfg.MaxFailuresPerHost <= 0 || h.failures < j.cfg.MaxFailuresPerHost {
		return
	}
	black := len(j.Blacklisted())
	if black+1 >= len(j.hosts) || black+1 > max(1, len(j.hosts)/4) {
		return
	}
	h.blacklisted = true
}

// Killed records that an attempt ended without failing: killed by the
// framework, lost with its host, or refused a commit. It does not count
// toward maxattempts; its task runs again if nothing else runs it.
func (j *Job) Killed(now time.Time, id job.AttemptID, reason string) []Decision {
	t, a := j.live(id)
	if a == nil {
		return nil
	}
	return j.kill(now, t, a, reason)
}

// kill marks an attempt killed and returns the decision to stop it.
func (j *Job) kill(now time.Time, t *Task, a *Attempt, reason string) []Decision {
	a.State, a.Finish, a.Diagnostics = AttemptKilled, now, reason
	if t.committer == a {
		t.committer = nil
	}
	j.countKilled(t)
	if t.State == TaskRunning && len(t.running()) == 0 {
		t.State = TaskPending
	}
	return []Decision{KillAttempt{Attempt: a.ID, Host: a.Host, Reason: reason}}
}

func (j *Job) countKilled(t *Task) {
	if t.ID.Kind == job.Map {
		j.counters.Add(counters.JobGroup, counters.NumKilledMaps, 1)
	} else {
		j.counters.Add(counters.JobGroup, counters.NumKilledReduces, 1)
	}
}

// HostLost records that a host (its TaskTracker) is gone: its running
// attempts are lost, and maps whose output lived there run again if any
// reduce still needs it.
func (j *Job) HostLost(now time.Time, hostName string) []Decision {
	return j.AttemptsLost(now, func(a Attempt) bool { return a.Host == hostName }, "lost with host "+hostName)
}

// AttemptsLost records that the TaskTracker that ran the attempts lost
// reports is gone (an executor that died, while other trackers on the same
// host live on): its running attempts are killed (this does not count
// toward maxattempts), and maps whose successful output lived there run
// again if any reduce still needs it. HostLost is AttemptsLost for every
// attempt on a host.
func (j *Job) AttemptsLost(now time.Time, lost func(Attempt) bool, reason string) []Decision {
	var ds []Decision
	for _, ts := range [][]*Task{j.maps, j.reduces} {
		for _, t := range ts {
			for _, a := range t.running() {
				if lost(*a) {
					ds = append(ds, j.kill(now, t, a, reason)...)
				}
			}
		}
	}
	if j.state == JobRunning && !j.MapOnly() && !j.reducesDone() {
		for _, t := range j.maps {
			if a := t.successful; t.State == TaskSucceeded && a != nil && lost(*a) {
				a.State, a.Diagnostics = AttemptKilled, "output "+reason
				j.countKilled(t)
				t.successful, t.State = nil, TaskPending
				j.publish(MapCompletion{Map: t.ID.Index, Attempt: a.ID, Status: MapObsolete})
			}
		}
	}
	return ds
}

func (j *Job) reducesDone() bool {
	for _, t := range j.reduces {
		if t.State != TaskSucceeded && t.State != TaskFailed {
			return false
		}
	}
	return true
}

// FetchFailed records that a reduce attempt could not fetch a map's
// output. When FetchFailuresToRerun distinct reduces have reported it (or
// every running reduce has, if fewer run), the map attempt is failed
// ("Too many fetch-failures") and the map runs again.
func (j *Job) FetchFailed(now time.Time, reduce job.AttemptID, mapIndex int) []Decision {
	if j.state != JobRunning || mapIndex < 0 || mapIndex >= len(j.maps) {
		return nil
	}
	t := j.maps[mapIndex]
	a := t.successful
	if t.State != TaskSucceeded || a == nil {
		return nil
	}
	t.fetchFailures[reduce.Task] = true
	runningReduces := 0
	for _, r := range j.reduces {
		if r.State == TaskRunning {
			runningReduces++
		}
	}
	if n := len(t.fetchFailures); n < j.cfg.FetchFailuresToRerun && n < runningReduces {
		return nil
	}
	t.fetchFailures = map[job.TaskID]bool{}
	a.Finish = now
	return j.fail(now, t, a, fmt.Sprintf("Too many fetch-failures: reduces could not fetch the output of %s from %s", a.ID, a.Host))
}

// Tick checks time-based rules: an attempt that reported no progress for
// TaskTimeout fails.
func (j *Job) Tick(now time.Time) []Decision {
	if j.state != JobRunning || j.cfg.TaskTimeout <= 0 {
		return nil
	}
	var ds []Decision
	for _, ts := range [][]*Task{j.maps, j.reduces} {
		for _, t := range ts {
			for _, a := range t.running() {
				if idle := now.Sub(a.LastProgress); idle >= j.cfg.TaskTimeout {
					ds = append(ds, KillAttempt{Attempt: a.ID, Host: a.Host, Reason: "timed out"})
					ds = append(ds, j.fail(now, t, a, fmt.Sprintf("Task %s failed to report status for %d seconds. Killing!", a.ID, int(idle.Seconds())))...)
					if j.state != JobRunning {
						return ds
					}
				}
			}
		}
	}
	return ds
}

// Kill kills the job: its running attempts are killed and its output
// aborted.
func (j *Job) Kill(now time.Time, reason string) []Decision {
	if j.state.Done() {
		return nil
	}
	if reason == "" {
		reason = "killed by request"
	}
	return j.end(now, JobKilled, reason)
}

// end finishes the job unsuccessfully.
func (j *Job) end(now time.Time, state JobState, reason string) []Decision {
	var ds []Decision
	for _, ts := range [][]*Task{j.maps, j.reduces} {
		for _, t := range ts {
			for _, a := range t.running() {
				ds = append(ds, j.kill(now, t, a, "job "+strings.ToLower(string(state)))...)
			}
			if t.State == TaskPending || t.State == TaskRunning {
				t.State = TaskKilled
			}
		}
	}
	j.state, j.err, j.finish = state, reason, now
	return append(ds, AbortJob{State: state, Reason: reason})
}

// checkDone moves the job to COMMITTING when every task is done.
func (j *Job) checkDone(now time.Time) []Decision {
	if j.state != JobRunning {
		return nil
	}
	for _, ts := range [][]*Task{j.maps, j.reduces} {
		for _, t := range ts {
			if t.State != TaskSucceeded && t.State != TaskFailed {
				return nil
			}
		}
	}
	j.state = JobCommitting
	return []Decision{CommitJob{}}
}

// Committed records that the job's output was committed.
func (j *Job) Committed(now time.Time) {
	if j.state == JobCommitting {
		j.state, j.finish = JobSucceeded, now
	}
}

// CommitFailed records that committing the output failed; the job fails.
func (j *Job) CommitFailed(now time.Time, err error) []Decision {
	if j.state != JobCommitting {
		return nil
	}
	j.state = JobRunning // so end applies
	return j.end(now, JobFailed, fmt.Sprintf("job commit failed: %v", err))
}

func (j *Job) publish(e MapCompletion) {
	e.Seq = len(j.completions)
	j.completions = append(j.completions, e)
}
