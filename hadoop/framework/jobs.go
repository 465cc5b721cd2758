package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/format"
	"github.com/agora-cluster/agora/hadoop/fs"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
	"github.com/agora-cluster/agora/hadoop/umbilical"
)

// jobRun is one job: its plan, its core and what the scheduler keeps
// around it. Only the loop touches it.
type jobRun struct {
	id        job.ID
	info      client.JobInfo // the static part; Status fills the rest
	plan      job.Plan
	core      *jobtracker.Job // nil for jobs that finished before this incarnation
	committer *format.Committer
	// trackers maps every attempt launched to the tracker that ran it (for
	// lost trackers and logs).
	trackers map[job.AttemptID]string
	waiters  []*waiter
	final    *JobRecord   // set once the job has ended
	specJSON []byte       // the spec as attempts receive it, encoded once
	progress *ProgressLog // what its tasks did, kept in the store
}

// waiter is a reduce waiting for map completion events.
type waiter struct {
	ctx   context.Context
	from  int
	reply chan []jobtracker.MapCompletion // closed: the attempt is gone
}

// Prepare parses (if needed), validates and plans a submission; it runs
// on the API's goroutine, since listing and sampling input reads files. A
// refused submission returns a *job.RefusedError and changes nothing.
func Prepare(r client.SubmitRequest) (job.Plan, error) {
	return job.Prepare(job.Submission{Spec: r.Spec, Args: r.Args, Cwd: r.Cwd}, job.Env{Check: checkTrackerConf})
}

// checkTrackerConf refuses a job whose job tracker settings (attempts,
// speculation, timeouts, failure limits) do not parse: what Prepare
// checks beyond job.Validate.
func checkTrackerConf(c conf.Conf) error {
	_, err := jobtracker.ConfigFrom(c)
	return err
}

// submit creates a job from a prepared plan: it gets the next job ID, its
// output directory is set up and the submission is saved before the job
// can run.
func (f *Framework) submit(ctx context.Context, plan job.Plan, now time.Time) (client.JobInfo, error) {
	id := job.ID{Tracker: f.state.Tracker, Seq: f.state.NextSeq}
	f.state.NextSeq++
	if err := f.store.SaveFramework(f.state); err != nil {
		return client.JobInfo{}, err
	}
	j, err := f.start(plan, id, now, 0)
	if err != nil {
		return client.JobInfo{}, err
	}
	j.progress = f.store.NewProgress(id.String())
	rec := JobRecord{Plan: plan, Info: j.info}
	if err := f.store.SaveJob(rec); err != nil {
		j.committer.AbortJob()
		return client.JobInfo{}, err
	}
	f.jobs[id.String()] = j
	f.active = append(f.active, j)
	f.changes.Bump()
	f.log.Info("job submitted", "job", id.String(), "name", j.info.Name, "maps", len(plan.Splits), "reduces", plan.NumReduces, "output", j.info.Output)
	f.revive(ctx)
	return f.jobInfo(j), nil
}

// start builds the core of a job and sets up its output.
func (f *Framework) start(plan job.Plan, id job.ID, now time.Time, restarts int) (*jobRun, error) {
	cfg, err := jobtracker.ConfigFrom(plan.Spec.Conf)
	if err != nil {
		return nil, err
	}
	resolve, err := job.Resolver(plan.Spec.Conf)
	if err != nil {
		return nil, err
	}
	committer, err := format.NewCommitter(resolve, plan.Spec.Output())
	if err != nil {
		return nil, err
	}
	if err := committer.SetupJob(); err != nil {
		return nil, err
	}
	hosts := make([][]string, len(plan.Splits))
	for i, s := range plan.Splits {
		hosts[i] = s.Hosts
	}
	spec := plan.Spec
	j := &jobRun{
		id:        id,
		plan:      plan,
		core:      jobtracker.New(id, hosts, plan.NumReduces, cfg, now),
		committer: committer,
		trackers:  map[job.AttemptID]string{},
		info: client.JobInfo{
			ID: id.String(), Name: spec.Name(), User: spec.Conf[conf.JobUser], Submitted: now,
			Input: spec.Inputs(), Output: spec.Output(),
			Mapper: spec.Mapper(), Reducer: spec.Reducer(), Combiner: spec.Combiner(),
			Restarts: restarts,
		},
	}
	if plan.NumReduces == 0 {
		j.info.Reducer = job.NoReducer
	}
	return j, nil
}

// recover loads the saved jobs: finished ones become history, and each
// unfinished one runs again with its saved plan and ID, keeping the work
// it had done (recoverWork): what its uncommitted attempts left in the
// output is removed, committed part files stay. A job that had committed
// its output (_SUCCESS exists) counts as succeeded.
func (f *Framework) recover(now time.Time) error {
	recs, err := f.store.LoadJobs()
	if err != nil {
		return err
	}
	for _, rec := range recs {
		rec := rec
		id, err := job.ParseID(rec.Info.ID)
		if err != nil {
			return fmt.Errorf("hadoop state: %w", err)
		}
		if id.Tracker == f.state.Tracker && id.Seq >= f.state.NextSeq {
			f.state.NextSeq = id.Seq + 1
		}
		if !rec.Finished {
			if f.committedBefore(rec) {
				rec.Finished = true
				rec.Info.State = jobtracker.JobSucceeded
				rec.Info.Finish = now
				rec.Info.Error = "the scheduler restarted after the job committed its output; counters were lost"
				if err := f.store.SaveJob(rec); err != nil {
					return err
				}
				if err := f.store.RemoveProgress(rec.Info.ID); err != nil {
					return err
				}
			}
		}
		if rec.Finished {
			f.jobs[rec.Info.ID] = &jobRun{id: id, info: rec.Info, plan: rec.Plan, final: &rec, trackers: map[job.AttemptID]string{}}
			f.trimHistory()
			continue
		}
		prog, err := f.store.OpenProgress(rec.Info.ID)
		if err != nil {
			return err
		}
		if err := clearTemporary(rec.Plan.Spec); err != nil {
			return fmt.Errorf("hadoop state: job %s: %w", rec.Info.ID, err)
		}
		j, err := f.start(rec.Plan, id, now, rec.Info.Restarts+1)
		if err != nil {
			return fmt.Errorf("hadoop state: job %s: %w", rec.Info.ID, err)
		}
		j.info.Submitted = rec.Info.Submitted
		if err := f.store.SaveJob(JobRecord{Plan: rec.Plan, Info: j.info}); err != nil {
			return err
		}
		if err := f.recoverWork(j, prog, now); err != nil {
			return fmt.Errorf("hadoop state: job %s: %w", rec.Info.ID, err)
		}
		f.jobs[rec.Info.ID] = j
		f.active = append(f.active, j)
		f.log.Info("job runs on after a scheduler restart", "job", rec.Info.ID, "restarts", j.info.Restarts)
	}
	return f.store.SaveFramework(f.state)
}

func (f *Framework) committedBefore(rec JobRecord) bool {
	resolve, err := job.Resolver(rec.Plan.Spec.Conf)
	if err != nil {
		return false
	}
	fsys, p, err := resolve(rec.Plan.Spec.Output())
	if err != nil {
		return false
	}
	ok, _ := fs.Exists(fsys, path.Join(p, format.SuccessMarker))
	return ok
}

// activeRunning lists the jobs that may still launch attempts.
func (f *Framework) activeRunning() []*jobRun {
	var out []*jobRun
	for _, j := range f.active {
		if j.core.State() == jobtracker.JobRunning {
			out = append(out, j)
		}
	}
	return out
}

// apply carries out a core's decisions.
func (f *Framework) apply(ctx context.Context, j *jobRun, ds []jobtracker.Decision) {
	if len(ds) > 0 {
		f.changes.Bump()
	}
	now := time.Now()
	for _, d := range ds {
		switch d := d.(type) {
		case jobtracker.KillAttempt:
			f.killAttempt(ctx, d.Attempt, d.Reason)
		case jobtracker.CommitJob:
			mark, _ := j.plan.Spec.Conf.Bool(conf.MarkSuccess, true)
			if err := j.committer.CommitJob(mark); err != nil {
				f.apply(ctx, j, j.core.CommitFailed(now, err))
				continue
			}
			j.core.Committed(now)
		case jobtracker.AbortJob:
			if err := j.committer.AbortJob(); err != nil {
				f.log.Warn("abort job output", "job", j.id.String(), "err", err)
			}
		}
	}
}

// killAttempt kills the Mesos task of an attempt, if it still runs.
func (f *Framework) killAttempt(ctx context.Context, a job.AttemptID, reason string) {
	id := umbilical.TaskID(a, f.state.Incarnation)
	t := f.tasks[id]
	if t == nil {
		return
	}
	f.log.Debug("killing attempt", "attempt", a.String(), "reason", reason)
	go func() {
		if err := f.driver.Kill(ctx, id, t.agentID); err != nil {
			f.log.Warn("kill attempt", "attempt", a.String(), "err", err)
		}
	}()
}

// finish records a job that ended: its final state is saved, reduces
// still waiting are let go, and its trackers drop its files.
func (f *Framework) finish(ctx context.Context, j *jobRun) {
	defer f.changes.Bump()
	info := f.jobInfo(j)
	rec := JobRecord{Plan: j.plan, Info: info, Finished: true, Tasks: j.core.Tasks()}
	if err := f.store.SaveJob(rec); err != nil {
		f.log.Error("save finished job", "job", j.id.String(), "err", err)
	} else if err := f.store.RemoveProgress(j.id.String()); err != nil {
		f.log.Warn("remove job progress", "job", j.id.String(), "err", err)
	}
	j.final = &rec
	j.closeWaiters()
	j.core = nil // the record has what the API shows; late updates are dropped
	f.active = slices.DeleteFunc(f.active, func(o *jobRun) bool { return o == j })
	f.trimHistory()
	msg, _ := json.Marshal(umbilical.Message{JobDone: j.id.String()})
	for _, tr := range f.trackers {
		if !tr.jobs[j.id.String()] {
			continue
		}
		delete(tr.jobs, j.id.String())
		for a := range tr.ran {
			if a.Task.Job == j.id {
				delete(tr.ran, a)
			}
		}
		if tr.state == trackerLost {
			continue
		}
		agent, exec := tr.agentID, tr.id
		go func() {
			if err := f.driver.Message(ctx, agent, exec, msg); err != nil {
				f.log.Debug("tell tracker the job is done", "tracker", exec, "err", err)
			}
		}()
	}
	f.log.Info("job ended", "job", j.id.String(), "state", info.State, "seconds", info.Elapsed(time.Now()).Seconds(), "error", info.Error)
}

// historyLimit is how many finished jobs the scheduler keeps in memory
// (and loads on a restart); their records stay in the state directory.
// Hadoop's JobTracker keeps 100 per user.
const historyLimit = 200

// trimHistory forgets the oldest finished jobs beyond historyLimit.
func (f *Framework) trimHistory() {
	var done []*jobRun
	for _, j := range f.jobs {
		if j.final != nil {
			done = append(done, j)
		}
	}
	if len(done) <= historyLimit {
		return
	}
	slices.SortFunc(done, func(a, b *jobRun) int { return a.info.Submitted.Compare(b.info.Submitted) })
	for _, j := range done[:len(done)-historyLimit] {
		delete(f.jobs, j.id.String())
	}
}

// jobInfo is a job's summary as the API shows it.
func (f *Framework) jobInfo(j *jobRun) client.JobInfo {
	if j.final != nil {
		return j.final.Info
	}
	info := j.info
	st := j.core.Status()
	info.State, info.Error, info.Finish = st.State, st.Error, st.Finish
	info.Maps, info.Reduces = st.Maps, st.Reduces
	info.MapProgress, info.ReduceProgress = st.MapProgress, st.ReduceProgress
	info.Counters, info.Blacklisted = st.Counters, st.Blacklisted
	return info
}

// wake answers the reduces waiting for map completion events.
func (j *jobRun) wake() {
	kept := j.waiters[:0]
	for _, w := range j.waiters {
		if w.ctx.Err() != nil {
			continue
		}
		if evs := j.core.MapCompletions(w.from); len(evs) > 0 {
			w.reply <- evs
			continue
		}
		kept = append(kept, w)
	}
	clear(j.waiters[len(kept):])
	j.waiters = kept
}

func (j *jobRun) closeWaiters() {
	for _, w := range j.waiters {
		close(w.reply)
	}
	j.waiters = nil
}

func (f *Framework) closeWaiters() {
	for _, j := range f.active {
		j.closeWaiters()
	}
}
