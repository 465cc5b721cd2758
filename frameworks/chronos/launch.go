package chronos

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	schedpb "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/frameworks/chronos/schedule"
	"github.com/agora-cluster/agora/frameworks/marathon/plan"
	"github.com/agora-cluster/agora/frameworks/offers"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// offers launches the waiting runs, as many per offer as fit, and
// declines the rest. Each run's task is written to its job's file before
// it is sent.
func (f *Framework) offers(ctx context.Context, offs []mesos.Offer) {
	type launch struct {
		offer mesos.OfferID
		infos []mesos.TaskInfo
		jobs  []string
	}
	var launches []launch
	var idle, unfit []mesos.OfferID
	now := f.now()
	f.mu.Lock()
	if f.dead {
		f.mu.Unlock()
		return // a dead process answers nothing; the offers time out
	}
	waiting := f.waiting()
	for i := range offs {
		o := &offs[i]
		if f.stopping || len(waiting) == 0 {
			idle = append(idle, o.ID)
			continue
		}
		pool := offers.NewPool(o)
		agent := plan.AgentOf(o)
		var l launch
		rest := waiting[:0:0]
		for _, r := range waiting {
			if !allows(r, agent) {
				rest = append(rest, r)
				continue
			}
			rs, ok := pool.Take(offers.Need{CPUs: r.Job.CPUs, Mem: r.Job.Mem, Disk: r.Job.Disk, Role: f.cfg.Role})
			if !ok {
				rest = append(rest, r)
				continue
			}
			info, ok := f.record(r, o, rs, now)
			if !ok {
				continue
			}
			l.infos = append(l.infos, info)
			l.jobs = append(l.jobs, r.Job.Name)
		}
		waiting = rest
		if len(l.infos) == 0 {
			unfit = append(unfit, o.ID)
			continue
		}
		l.offer = o.ID
		launches = append(launches, l)
	}
	f.mu.Unlock()
	for _, l := range launches {
		for _, info := range l.infos {
			if !f.hook("recorded", info) {
				return
			}
		}
		f.log.Info("launching", "offer", l.offer.Value, "jobs", l.jobs)
		if err := f.driver.Launch(ctx, []mesos.OfferID{l.offer}, l.infos, scheduler.RefuseFor(refuseRest)); err != nil {
			// Reconciliation tells whether the master took them: it
			// answers TASK_LOST for a task it never saw, which queues the
			// run again.
			f.log.Warn("launch; reconciling the tasks", "jobs", l.jobs, "err", err)
			f.reconcileTasks(ctx, l.infos)
			continue
		}
		for _, info := range l.infos {
			if !f.hook("sent", info) {
				return
			}
		}
	}
	if len(idle) > 0 {
		if err := f.driver.Decline(ctx, idle, refuseIdle); err != nil {
			f.log.Debug("decline offers", "err", err)
		}
	}
	if len(unfit) > 0 {
		if err := f.driver.Decline(ctx, unfit, refuseRest); err != nil {
			f.log.Debug("decline offers", "err", err)
		}
	}
	f.adjustOffers(ctx)
}

// allows says whether r's job may run on agent by its constraints.
func allows(r *record, agent plan.Agent) bool {
	cons, err := r.Job.placement() // checked when the job was put
	if err != nil {
		return false
	}
	for _, k := range cons {
		if ok, _ := k.Allows(agent, nil); !ok {
			return false
		}
	}
	return true
}

// hook calls Config.LaunchHook; false stops the framework dead.
func (f *Framework) hook(stage string, info mesos.TaskInfo) bool {
	if f.cfg.LaunchHook == nil {
		return true
	}
	job, _ := jobOfTask(info.TaskID.Value)
	if f.cfg.LaunchHook(stage, job, info.TaskID.Value) {
		return true
	}
	f.mu.Lock()
	f.dead = true
	f.mu.Unlock()
	f.log.Warn("stopped dead by the launch hook", "stage", stage, "task", info.TaskID.Value)
	return false
}

func (f *Framework) reconcileTasks(ctx context.Context, infos []mesos.TaskInfo) {
	var ts []schedpb.Call_Reconcile_Task
	for _, i := range infos {
		ts = append(ts, scheduler.ReconcileTask(i.TaskID.Value, i.AgentID.Value))
	}
	if err := f.driver.Reconcile(ctx, ts); err != nil {
		f.log.Warn("reconcile", "err", err)
	}
}

// record makes r's run a task on offer o and writes it to disk; false
// (nothing changed) if it could not be written. Call with f.mu held.
func (f *Framework) record(r *record, o *mesos.Offer, rs []mesos.Resource, now time.Time) (mesos.TaskInfo, bool) {
	run := r.Run
	old := *run
	run.Launches++
	run.TaskID = taskID(r.Job.Name, run.Instant, run.Attempt, run.Launches)
	run.AgentID, run.Host = o.AgentID.Value, o.Hostname
	run.State = mesos.TASK_STAGING.String()
	run.Started = false
	if err := f.store.save(r); err != nil {
		*run = old
		f.log.Error("save the run's task; not launching it", "job", r.Job.Name, "err", err)
		return mesos.TaskInfo{}, false
	}
	return taskInfo(&r.Job, run, o, rs), true
}

// taskID is Chronos's task ID, ct:<instant ms>:<attempt>:<job>:, with the
// launch count after it so that a task launched again gets a new ID.
func taskID(job string, instant time.Time, attempt, launch int) string {
	return fmt.Sprintf("ct:%d:%d:%s:%d", instant.UnixMilli(), attempt, job, launch)
}

// jobOfTask reads the job's name from a task ID.
func jobOfTask(id string) (string, bool) {
	parts := strings.Split(id, ":")
	if len(parts) != 5 || parts[0] != "ct" {
		return "", false
	}
	return parts[3], true
}

// taskInfo is the TaskInfo of a run of job j.
func taskInfo(j *Job, run *Run, o *mesos.Offer, rs []mesos.Resource) mesos.TaskInfo {
	cmd := mesos.CommandInfo{Shell: j.Shell}
	if *j.Shell {
		cmd.Value = ptr(j.Command)
	} else {
		cmd.Value = ptr(j.Command)
		cmd.Arguments = append([]string{j.Command}, j.Arguments...)
	}
	vars := []mesos.Environment_Variable{
		{Name: "CHRONOS_JOB_NAME", Value: ptr(j.Name)},
		{Name: "CHRONOS_JOB_OWNER", Value: ptr(j.Owner)},
		{Name: "CHRONOS_RESOURCE_CPU", Value: ptr(strconv.FormatFloat(j.CPUs, 'f', -1, 64))},
		{Name: "CHRONOS_RESOURCE_MEM", Value: ptr(strconv.FormatFloat(j.Mem, 'f', -1, 64))},
		{Name: "CHRONOS_RESOURCE_DISK", Value: ptr(strconv.FormatFloat(j.Disk, 'f', -1, 64))},
		{Name: "CHRONOS_SCHEDULED_TIME", Value: ptr(run.Instant.UTC().Format(time.RFC3339Nano))},
		{Name: "CHRONOS_ATTEMPT", Value: ptr(strconv.Itoa(run.Attempt))},
	}
	for _, e := range j.EnvironmentVariables {
		vars = append(vars, mesos.Environment_Variable{Name: e.Name, Value: ptr(e.Value)})
	}
	cmd.Environment = &mesos.Environment{Variables: vars}
	if j.RunAsUser != "" {
		cmd.User = ptr(j.RunAsUser)
	}
	for _, u := range j.URIs {
		cmd.URIs = append(cmd.URIs, mesos.CommandInfo_URI{Value: u})
	}
	for _, fe := range j.Fetch {
		cmd.URIs = append(cmd.URIs, mesos.CommandInfo_URI{Value: fe.URI, Cache: ptr(fe.Cache),
			Extract: ptr(fe.Extract), Executable: ptr(fe.Executable)})
	}
	info := mesos.TaskInfo{Name: "ChronosTask:" + j.Name, TaskID: mesos.TaskID{Value: run.TaskID},
		AgentID: o.AgentID, Resources: rs, Command: &cmd}
	if j.Container != nil {
		info.Container = j.Container.info()
	}
	return info
}

// jobOf finds the job whose run is task id. Call with f.mu held.
func (f *Framework) jobOf(id string) *record {
	if name, ok := jobOfTask(id); ok {
		if r := f.jobs[name]; r != nil && r.Run != nil && r.Run.TaskID == id {
			return r
		}
	}
	return nil
}

// update follows a run's task. A task of no run is killed. A run whose
// task the master never saw is launched again; one that failed is retried
// up to its job's retries; one that succeeded starts the dependent jobs
// whose parents have all succeeded.
func (f *Framework) update(ctx context.Context, st mesos.TaskStatus) {
	id, state := st.TaskID.Value, st.GetState()
	now := f.now()
	f.mu.Lock()
	if f.dead {
		f.mu.Unlock()
		return
	}
	if f.reconciler != nil {
		f.reconciler.Observe(st)
	}
	r := f.jobOf(id)
	if r == nil {
		f.mu.Unlock()
		if !scheduler.IsTerminal(state) && state != mesos.TASK_UNKNOWN {
			f.log.Info("killing a task of no run", "task", id)
			_ = f.driver.Kill(ctx, id, st.GetAgentID().GetValue())
		}
		return
	}
	defer f.poke()
	defer f.mu.Unlock()
	run := r.Run
	if !scheduler.IsTerminal(state) {
		if run.State == state.String() {
			return
		}
		run.State = state.String()
		if state == mesos.TASK_STARTING || state == mesos.TASK_RUNNING {
			if !run.Started {
				run.Started, run.StartedAt = true, now
			}
		}
		f.save(r)
		return
	}
	if run.TaskDone {
		return // an async run: its outcome is the job's own report
	}
	name := r.Job.Name
	res := RunResult{Instant: run.Instant, TaskID: id, AgentID: run.AgentID, Host: run.Host, State: state.String(),
		Message: st.GetMessage(), Attempts: run.Attempt + 1, Manual: run.Manual, Started: run.StartedAt, Ended: now}
	switch {
	case state == mesos.TASK_FINISHED && r.Job.Async && !run.Killed:
		run.State, run.TaskDone = state.String(), true
		f.save(r)
		f.log.Info("an async run's task finished; the run ends when the job reports", "job", name, "task", id)
	case state == mesos.TASK_FINISHED:
		f.succeeded(r, res, now)
		f.log.Info("run succeeded", "job", name, "instant", res.Instant, "task", id)
	case neverRan(run, st) && !run.Killed:
		f.log.Info("the master never started the run's task; launching it again", "job", name, "task", id, "state", state)
		f.requeue(r, run.Attempt, now)
	default:
		f.failed(r, res, now)
	}
}

// failed ends a try of r's run that failed: it is tried again while the
// job has retries left and nobody killed it, else the run fails. Call
// with f.mu held.
func (f *Framework) failed(r *record, res RunResult, now time.Time) {
	run, name := r.Run, r.Job.Name
	if !run.Killed && run.Attempt < *r.Job.Retries {
		f.log.Info("run failed; retrying", "job", name, "task", res.TaskID, "state", res.State, "message", res.Message,
			"attempt", run.Attempt+1, "retries", *r.Job.Retries)
		r.remember(res)
		f.requeue(r, run.Attempt+1, now)
		return
	}
	r.Run = nil
	r.ErrorCount++
	r.ErrorsSinceLastSuccess++
	r.LastError = now
	r.remember(res)
	f.save(r)
	f.log.Warn("run failed", "job", name, "instant", res.Instant, "task", res.TaskID, "state", res.State, "message", res.Message)
}

// Report ends the run of an async job whose task is taskID, as the job
// reports it (PUT /v1/scheduler/task/ID with {"statusCode": N}): 0 is a
// success (its dependent jobs follow), anything else a failure (retried
// as the job says). The task may still be running, or have finished.
func (f *Framework) Report(taskID string, statusCode int) error {
	now := f.now()
	defer f.poke()
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.jobOf(taskID)
	if r == nil {
		return &APIError{Code: http.StatusNotFound, Msg: fmt.Sprintf("no run in flight has task %q", taskID)}
	}
	if !r.Job.Async {
		return badRequest("job %q is not async: its run ends with its task", r.Job.Name)
	}
	run := r.Run
	res := RunResult{Instant: run.Instant, TaskID: taskID, AgentID: run.AgentID, Host: run.Host, State: mesos.TASK_FINISHED.String(),
		Message: fmt.Sprintf("reported statusCode %d", statusCode), Attempts: run.Attempt + 1, Manual: run.Manual,
		Started: run.StartedAt, Ended: now}
	if statusCode == 0 {
		f.succeeded(r, res, now)
		f.log.Info("async run succeeded", "job", r.Job.Name, "instant", res.Instant, "task", taskID)
		return nil
	}
	res.State = mesos.TASK_FAILED.String()
	f.failed(r, res, now)
	return nil
}

// neverRan says whether a terminal update means the task never started:
// the master answers a task it never saw with TASK_LOST (TASK_UNKNOWN or
// TASK_DROPPED for partition-aware frameworks).
func neverRan(run *Run, st mesos.TaskStatus) bool {
	if run.Started {
		return false
	}
	switch st.GetState() {
	case mesos.TASK_LOST, mesos.TASK_DROPPED, mesos.TASK_UNKNOWN:
		return st.GetReason() == mesos.REASON_RECONCILIATION || st.GetState() == mesos.TASK_DROPPED
	}
	return false
}

// requeue puts a run back to wait for an offer. Call with f.mu held.
func (f *Framework) requeue(r *record, attempt int, now time.Time) {
	r.Run.Attempt = attempt
	r.Run.TaskID, r.Run.AgentID, r.Run.Host = "", "", ""
	r.Run.State, r.Run.Started, r.Run.QueuedAt = stateQueued, false, now
	f.reviveDue = true
	f.save(r)
}

// succeeded ends r's run as a success and starts the children that are
// ready. The children are written first: a crash in between leaves the
// parent's run in flight, and its success, reconciled again, finds the
// children already started for the instant. Call with f.mu held.
func (f *Framework) succeeded(r *record, res RunResult, now time.Time) {
	instant := r.Run.Instant
	for _, name := range f.names() {
		c := f.jobs[name]
		if !contains(c.Job.Parents, r.Job.Name) || !instant.After(c.LastTriggered) {
			continue
		}
		if c.Pending == nil {
			c.Pending = map[string]time.Time{}
		}
		c.Pending[r.Job.Name] = instant
		f.startChild(c, now)
		f.save(c)
	}
	r.Run = nil
	r.SuccessCount++
	r.ErrorsSinceLastSuccess = 0
	r.LastSuccess = now
	r.remember(res)
	f.save(r)
}

// startChild queues a run of dependent job c if all its parents have
// succeeded since its last run and none of its runs is in flight (a
// child running still starts when its run ends). Call with f.mu held.
func (f *Framework) startChild(c *record, now time.Time) bool {
	at, ok := schedule.Ready(c.Job.Parents, c.Pending)
	if !ok || c.Run != nil || c.Job.Disabled {
		return false
	}
	c.Run = &Run{Instant: at, State: stateQueued, QueuedAt: now}
	c.LastTriggered = at
	c.Pending = nil
	f.reviveDue = true
	f.log.Info("run due: its parents succeeded", "job", c.Job.Name, "instant", at)
	return true
}

// save writes r, logging a failure (the change stays in memory and is
// written with the next one). Call with f.mu held.
func (f *Framework) save(r *record) {
	if err := f.store.save(r); err != nil {
		f.log.Error("save job", "job", r.Job.Name, "err", err)
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
