package chronos

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/agora-cluster/agora/frameworks/chronos/schedule"
)

// APIError is an error with the HTTP status the API answers it with.
type APIError struct {
	Code int
	Msg  string
}

func (e *APIError) Error() string { return e.Msg }

func badRequest(format string, a ...any) error {
	return &APIError{Code: http.StatusBadRequest, Msg: fmt.Sprintf(format, a...)}
}

func notFound(name string) error {
	return &APIError{Code: http.StatusNotFound, Msg: fmt.Sprintf("no job named %q", name)}
}

// Put creates or replaces a job posted to /v1/scheduler/iso8601 (kind
// "iso8601") or /v1/scheduler/dependency ("dependency"). Bad input is an
// *APIError naming what is wrong, and changes nothing. Replacing a job
// keeps its counts, history and run in flight; a new schedule starts from
// now.
func (f *Framework) Put(kind string, j Job) error {
	now := f.now()
	s, err := j.normalize(kind, now, f.cfg.Epsilon)
	if err != nil {
		return badRequest("%v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	graph := map[string][]string{}
	for n, r := range f.jobs {
		graph[n] = r.Job.Parents
	}
	graph[j.Name] = j.Parents
	if err := schedule.CheckGraph(graph); err != nil {
		return badRequest("%v", err)
	}
	old := f.jobs[j.Name]
	r := &record{}
	if old != nil {
		cp := *old
		r = &cp
	}
	r.Job = j
	if s == nil {
		r.NextDue = nil
	} else if old == nil || old.Job.Schedule != j.Schedule || old.Job.Cron != j.Cron ||
		old.Job.ScheduleTimeZone != j.ScheduleTimeZone || r.NextDue == nil {
		if first, ok := schedule.First(s, now); ok {
			r.NextDue = &first
		} else {
			r.NextDue = nil
		}
	}
	if err := f.store.save(r); err != nil {
		return err
	}
	f.jobs[j.Name] = r
	if s != nil {
		f.sched[j.Name] = s
	} else {
		delete(f.sched, j.Name)
	}
	f.log.Info("job saved", "job", j.Name, "next", r.NextDue)
	f.poke()
	return nil
}

// Delete removes a job, killing its run's task. A job that others depend
// on is refused.
func (f *Framework) Delete(ctx context.Context, name string) error {
	f.mu.Lock()
	r := f.jobs[name]
	if r == nil {
		f.mu.Unlock()
		return notFound(name)
	}
	var children []string
	for _, n := range f.names() {
		if contains(f.jobs[n].Job.Parents, name) {
			children = append(children, n)
		}
	}
	if len(children) > 0 {
		f.mu.Unlock()
		return badRequest("job %q is a parent of %s: delete or change them first", name, strings.Join(children, ", "))
	}
	if err := f.store.remove(name); err != nil {
		f.mu.Unlock()
		return err
	}
	delete(f.jobs, name)
	delete(f.sched, name)
	var task, agent string
	if r.Run != nil {
		task, agent = r.Run.TaskID, r.Run.AgentID
	}
	f.mu.Unlock()
	if task != "" {
		// Its updates find no run now, and a task of no run is killed
		// again if this kill is lost.
		_ = f.driver.Kill(ctx, task, agent)
	}
	f.log.Info("job deleted", "job", name)
	return nil
}

// Start runs a job now (PUT /v1/scheduler/job/NAME), for the instant now;
// its dependent jobs follow its success. A job with a run in flight is
// refused.
func (f *Framework) Start(name string) error {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.jobs[name]
	if r == nil {
		return notFound(name)
	}
	if r.Run != nil {
		return &APIError{Code: http.StatusConflict, Msg: fmt.Sprintf("job %q is already running (instant %s)", name, r.Run.Instant.Format(time.RFC3339))}
	}
	old := *r
	r.Run = &Run{Instant: now, Manual: true, State: stateQueued, QueuedAt: now}
	if now.After(r.LastTriggered) {
		r.LastTriggered = now
	}
	if err := f.store.save(r); err != nil {
		*r = old
		return err
	}
	f.reviveDue = true
	f.poke()
	f.log.Info("manual run", "job", name)
	return nil
}

// Kill kills a job's run in flight; it is recorded as failed, without
// retries.
func (f *Framework) Kill(ctx context.Context, name string) error {
	now := f.now()
	f.mu.Lock()
	r := f.jobs[name]
	if r == nil {
		f.mu.Unlock()
		return notFound(name)
	}
	run := r.Run
	if run == nil {
		f.mu.Unlock()
		return nil
	}
	if run.TaskID == "" || run.TaskDone {
		// No task to kill: not launched yet, or an async run whose task
		// has finished and whose report will not come now.
		msg := "killed before launch"
		if run.TaskDone {
			msg = "killed while waiting for the async job's report"
		}
		r.Run = nil
		r.ErrorCount++
		r.ErrorsSinceLastSuccess++
		r.LastError = now
		r.remember(RunResult{Instant: run.Instant, TaskID: run.TaskID, State: "TASK_KILLED", Message: msg, Attempts: run.Attempt + 1, Manual: run.Manual, Ended: now})
		f.save(r)
		f.mu.Unlock()
		return nil
	}
	run.Killed = true
	f.save(r)
	task, agent := run.TaskID, run.AgentID
	f.mu.Unlock()
	return f.driver.Kill(ctx, task, agent)
}

// JobView is a job as GET /v1/scheduler/jobs shows it: its definition
// and its counts.
type JobView struct {
	Job
	SuccessCount           int         `json:"successCount"`
	ErrorCount             int         `json:"errorCount"`
	ErrorsSinceLastSuccess int         `json:"errorsSinceLastSuccess"`
	LastSuccess            string      `json:"lastSuccess"`
	LastError              string      `json:"lastError"`
	MissedCount            int         `json:"missedCount"`
	NextRun                string      `json:"nextRun,omitempty"`
	State                  string      `json:"state"`
	Run                    *Run        `json:"currentRun,omitempty"`
	Missed                 []time.Time `json:"missedRuns,omitempty"`
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func view(r *record) JobView {
	v := JobView{Job: r.Job, SuccessCount: r.SuccessCount, ErrorCount: r.ErrorCount,
		ErrorsSinceLastSuccess: r.ErrorsSinceLastSuccess, LastSuccess: stamp(r.LastSuccess),
		LastError: stamp(r.LastError), MissedCount: r.MissedCount, State: "idle", Missed: r.Missed}
	if r.NextDue != nil {
		v.NextRun = stamp(*r.NextDue)
	}
	if r.Run != nil {
		cp := *r.Run
		v.Run = &cp
		v.State = "running"
		if cp.State == stateQueued {
			v.State = "queued"
		}
	}
	if v.Arguments == nil {
		v.Arguments = []string{}
	}
	if v.EnvironmentVariables == nil {
		v.EnvironmentVariables = []EnvVar{}
	}
	if v.URIs == nil {
		v.URIs = []string{}
	}
	if v.Fetch == nil {
		v.Fetch = []Fetch{}
	}
	return v
}

// Jobs lists the jobs by name.
func (f *Framework) Jobs() []JobView {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]JobView, 0, len(f.jobs))
	for _, n := range f.names() {
		out = append(out, view(f.jobs[n]))
	}
	return out
}

// JobByName is one job, and false if there is none.
func (f *Framework) JobByName(name string) (JobView, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.jobs[name]
	if r == nil {
		return JobView{}, false
	}
	return view(r), true
}

// History is a job's ended runs and missed instants, oldest first.
func (f *Framework) History(name string) ([]RunResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.jobs[name]
	if r == nil {
		return nil, notFound(name)
	}
	return slices.Clone(r.History), nil
}

// NextRuns previews a job's next n scheduled instants.
func (f *Framework) NextRuns(name string, n int) ([]time.Time, error) {
	f.mu.Lock()
	r, s := f.jobs[name], f.sched[name]
	var from time.Time
	if r != nil && r.NextDue != nil {
		from = r.NextDue.Add(-1)
	}
	f.mu.Unlock()
	if r == nil {
		return nil, notFound(name)
	}
	if s == nil || from.IsZero() {
		return []time.Time{}, nil
	}
	return schedule.Preview(s, from, n), nil
}

// stats is /v1/scheduler/job/stat/NAME: percentiles of the successful
// runs' durations (milliseconds) and the recent runs.
func stats(h []RunResult) map[string]any {
	var ds []float64
	for _, r := range h {
		if r.State == "TASK_FINISHED" && !r.Started.IsZero() {
			ds = append(ds, float64(r.Ended.Sub(r.Started).Milliseconds()))
		}
	}
	sort.Float64s(ds)
	pct := func(p float64) float64 {
		if len(ds) == 0 {
			return 0
		}
		return ds[min(len(ds)-1, int(p*float64(len(ds))))]
	}
	mean := 0.0
	for _, d := range ds {
		mean += d / float64(len(ds))
	}
	return map[string]any{
		"histogram": map[string]any{"count": len(ds), "mean": mean, "median": pct(0.5),
			"75thPercentile": pct(0.75), "95thPercentile": pct(0.95), "98thPercentile": pct(0.98), "99thPercentile": pct(0.99)},
		"taskStatHistory": h,
	}
}
