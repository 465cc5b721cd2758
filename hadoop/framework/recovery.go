package framework

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"time"

	"github.com/agora-cluster/agora/hadoop/format"
	"github.com/agora-cluster/agora/hadoop/fs"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
	"github.com/agora-cluster/agora/hadoop/shuffle"
)

// Recovery of a job's work after a scheduler restart.
//
// What a job's tasks did is kept in its progress file (a record before
// attempts launch and one when an attempt succeeds, progress.go). A
// restarted scheduler replays it and decides, task by task, what it can
// keep:
//
//   - a reduce (or a map of a map-only job) whose part file is in the
//     output directory was committed (FileOutputCommitter renames the
//     attempt's file into place, atomically): it is kept, with the
//     recorded attempt and counters when the record made it to disk;
//   - a map's output lives only on the TaskTracker that ran it. It is
//     kept when that tracker still serves it (the scheduler asks for it
//     over HTTP), and the tracker is adopted: it runs nothing new, but its
//     loss (a FAILURE event, or an offer from its agent that no longer
//     lists its executor) loses the maps it holds, as for any tracker.
//     When every reduce has committed, no map output is needed;
//   - everything else runs again, under attempt numbers the earlier
//     scheduler never gave out.
//
// The output's _temporary directory (what uncommitted attempts wrote) is
// emptied first; committed files stay.

// probeTimeout bounds asking a tracker whether it still serves a map
// output.
const probeTimeout = 3 * time.Second

// recoverWork restores what an unfinished job did before the restart into
// its new core; log is the job's replayed progress file, which it keeps
// appending to.
func (f *Framework) recoverWork(j *jobRun, log *ProgressLog, now time.Time) error {
	fsys, out, err := outputDir(j.plan.Spec)
	if err != nil {
		return err
	}
	prog := log.Progress()
	last := map[job.TaskID]TaskDone{}
	for _, d := range prog.Done {
		last[d.Attempt.ID.Task] = d
	}
	committed := func(t job.TaskID) (bool, error) {
		return fs.Exists(fsys, path.Join(out, fmt.Sprintf("part-%05d", t.Index)))
	}
	tasks := j.core.Tasks()
	var rs []jobtracker.Recovered
	allReduces := j.plan.NumReduces > 0
	for _, t := range tasks {
		if t.ID.Kind != job.Reduce {
			continue
		}
		ok, err := committed(t.ID)
		if err != nil {
			return err
		}
		allReduces = allReduces && ok
	}
	probes := map[string]bool{} // trackers that did not answer
	keptMaps, keptReduces := 0, 0
	for _, t := range tasks {
		r := jobtracker.Recovered{Task: t.ID, Launched: prog.Launched[t.ID.String()]}
		d, recorded := last[t.ID]
		output := t.ID.Kind == job.Reduce || j.plan.NumReduces == 0
		switch {
		case output:
			ok, err := committed(t.ID)
			if err != nil {
				return err
			}
			if ok {
				r.Success = f.keptAttempt(t.ID, d, recorded, r.Launched, "committed before the scheduler restarted (its record was lost)")
			}
		case allReduces:
			r.Success = f.keptAttempt(t.ID, d, recorded, r.Launched, "not needed: every reduce had committed before the scheduler restarted")
		case recorded && d.URL != "" && !probes[d.Tracker]:
			served, answered := probeMapOutput(d.URL, j.id, t.ID.Index, d.Attempt.ID)
			if !answered {
				probes[d.Tracker] = true
			}
			if served {
				a := d.Attempt
				r.Success = &a
				f.adoptTracker(j, d)
			}
		}
		if r.Success != nil {
			j.trackers[r.Success.ID] = d.Tracker
			if t.ID.Kind == job.Map {
				keptMaps++
			} else {
				keptReduces++
			}
		}
		rs = append(rs, r)
	}
	ds, err := j.core.Recover(now, rs)
	if err != nil {
		return err
	}
	f.log.Info("job work recovered after a scheduler restart", "job", j.id.String(), "maps_kept", keptMaps, "reduces_kept", keptReduces,
		"maps", len(j.plan.Splits), "reduces", j.plan.NumReduces)
	j.progress = log
	f.apply(context.Background(), j, ds)
	return nil
}

// keptAttempt is the attempt a kept task succeeded with: the recorded one,
// or (the record was lost with the scheduler) one under a new number.
func (f *Framework) keptAttempt(t job.TaskID, d TaskDone, recorded bool, launched int, why string) *jobtracker.Attempt {
	if recorded {
		a := d.Attempt
		return &a
	}
	return &jobtracker.Attempt{ID: job.AttemptID{Task: t, N: launched}, Diagnostics: why}
}

// probeMapOutput asks a tracker whether it still serves a map attempt's
// output; answered is false when the tracker could not be reached at all.
func probeMapOutput(base string, id job.ID, m int, a job.AttemptID) (served, answered bool) {
	q := url.Values{"job": {id.String()}, "map": {strconv.Itoa(m)}, "reduce": {"0"}, "attempt": {a.String()}}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, base+shuffle.Path+"?"+q.Encode(), nil)
	if err != nil {
		return false, false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, true
}

// adoptTracker takes over a tracker of an earlier scheduler that still
// serves map outputs of job j: it gets no slots (new attempts run on this
// scheduler's trackers), and is shut down once idle like any other.
func (f *Framework) adoptTracker(j *jobRun, d TaskDone) {
	t := f.trackers[d.Tracker]
	if t == nil {
		u, err := url.Parse(d.URL)
		if err != nil {
			return
		}
		port, _ := strconv.ParseUint(u.Port(), 10, 64)
		t = &tracker{
			id: d.Tracker, agentID: d.AgentID, host: u.Hostname(), port: port, url: d.URL,
			running: map[string]job.Kind{}, jobs: map[string]bool{}, ran: map[job.AttemptID]bool{},
			state: trackerRunning, launched: time.Now(), adopted: true,
		}
		f.trackers[t.id] = t
		f.log.Info("adopting a task tracker of an earlier scheduler: it serves map outputs", "tracker", t.id, "agent", t.agentID, "url", t.url)
	}
	t.jobs[j.id.String()] = true
	t.ran[d.Attempt.ID] = true
}

// outputDir resolves a job's output directory.
func outputDir(spec job.Spec) (fs.FileSystem, string, error) {
	resolve, err := job.Resolver(spec.Conf)
	if err != nil {
		return nil, "", err
	}
	return resolve(spec.Output())
}

// clearTemporary removes what uncommitted attempts of an interrupted run
// left in the output directory; committed part files stay.
func clearTemporary(spec job.Spec) error {
	fsys, p, err := outputDir(spec)
	if err != nil {
		return err
	}
	return fsys.RemoveAll(path.Join(p, format.TemporaryDir))
}

// recordLaunches notes, before they launch, the attempts about to start,
// so that a restarted scheduler never gives their numbers out again. On
// an error, the attempts must not launch (a restarted scheduler could
// give their numbers out twice).
func (f *Framework) recordLaunches(refs []*taskRef) error {
	deltas := map[*jobRun]map[string]int{}
	for _, ref := range refs {
		j := ref.job
		k := ref.attempt.Task.String()
		if n := ref.attempt.N + 1; n > j.progress.Launched(k) {
			if deltas[j] == nil {
				deltas[j] = map[string]int{}
			}
			deltas[j][k] = max(deltas[j][k], n)
		}
	}
	for j, d := range deltas {
		if err := j.progress.Append(Progress{Launched: d}); err != nil {
			return fmt.Errorf("record the launch of attempts of job %s: %w", j.id, err)
		}
	}
	return nil
}

// recordDone notes a successful attempt (after the core accepted it, and
// before the scheduler acts on the success). A failure is logged: the
// success stands, and a restarted scheduler without its record runs the
// task again or finds its committed output.
func (f *Framework) recordDone(j *jobRun, a job.AttemptID, t *tracker) {
	at, ok := j.core.Attempt(a)
	if !ok || at.State != jobtracker.AttemptSucceeded {
		return
	}
	d := TaskDone{Attempt: at, Tracker: t.id, AgentID: t.agentID, URL: t.url}
	if err := j.progress.Append(Progress{Done: []TaskDone{d}}); err != nil {
		f.log.Error("the success of an attempt is not recorded: a restarted scheduler would run its task again",
			"job", j.id.String(), "attempt", a.String(), "err", err)
	}
}
