package marathon

import (
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/agora-cluster/agora/frameworks/marathon/plan"
)

// Deployment is one change to an app, as /v2/deployments lists it: it
// finishes when the app's instances match its definition and are healthy
// (or, for a delete, when none is left). Unlike Marathon's, a deployment
// that makes no progress for its progress deadline fails with a reason
// and, unless told otherwise, rolls back to the app's previous
// definition.
type Deployment struct {
	ID             string   `json:"id"`
	Version        string   `json:"version"`
	AffectedApps   []string `json:"affectedApps"`
	AffectedPods   []string `json:"affectedPods"`
	Steps          []Step   `json:"steps"`
	CurrentActions []Action `json:"currentActions"`
	CurrentStep    int      `json:"currentStep"`
	TotalSteps     int      `json:"totalSteps"`
	// ProgressDeadline is when the deployment fails if it makes no
	// further progress (absent without a deadline).
	ProgressDeadline string `json:"progressDeadline,omitempty"`
	// RollbackOf names the deployment this one rolls back.
	RollbackOf string `json:"rollbackOf,omitempty"`

	appID        string
	started      time.Time
	prev         *plan.App // the definition before the change; nil for a create
	timeout      time.Duration
	autoRollback bool
	best         int // the most progress seen
	progressAt   time.Time
}

// Step is one step of a deployment's plan.
type Step struct {
	Actions []Action `json:"actions"`
}

// Action is what a step does to one app. Progress is agora's: how far the
// action has come.
type Action struct {
	Action                string          `json:"action"`
	App                   string          `json:"app"`
	ReadinessCheckResults []any           `json:"readinessCheckResults"`
	Progress              *ActionProgress `json:"progress,omitempty"`
}

// ActionProgress counts an app's instances during a deployment: those of
// the new definition (launched, healthy) and those of older ones still
// to be killed.
type ActionProgress struct {
	Instances int `json:"instances"`
	Started   int `json:"started"`
	Healthy   int `json:"healthy"`
	OldActive int `json:"oldActive"`
}

// Deployment actions.
const (
	StartApplication   = "StartApplication"
	StopApplication    = "StopApplication"
	ScaleApplication   = "ScaleApplication"
	RestartApplication = "RestartApplication"
)

// DeployOptions are a deployable request's: ?force=true overrides the
// deployments holding the app; Timeout (?deploymentTimeout=) replaces the
// framework's progress deadline (negative: none); AutoRollback
// (?autoRollback=) whether a deployment that misses it rolls back.
type DeployOptions struct {
	Force        bool
	Timeout      time.Duration
	AutoRollback *bool
}

// DeploymentRecord is a deployment in the history
// (GET /v2/deployments?embed=history): its plan, how it ended and why.
type DeploymentRecord struct {
	Deployment
	// Status is running, success, failed or canceled.
	Status     string `json:"status"`
	Reason     string `json:"reason,omitempty"`
	StartedAt  string `json:"startedAt"`
	FinishedAt string `json:"finishedAt,omitempty"`
	// RollbackDeploymentID names the deployment that rolled this one back.
	RollbackDeploymentID string `json:"rollbackDeploymentId,omitempty"`
}

// historyLimit bounds the deployment history kept in memory.
const historyLimit = 200

// Deployment statuses in the history.
const (
	DeploymentRunning  = "running"
	DeploymentSuccess  = "success"
	DeploymentFailed   = "failed"
	DeploymentCanceled = "canceled"
)

// newDeployment starts a deployment of action on app id at version;
// prev is the definition before the change. Call with f.mu held.
func (f *Framework) newDeployment(action, id, version string, prev *plan.App, o DeployOptions, now time.Time) *Deployment {
	act := Action{Action: action, App: id, ReadinessCheckResults: []any{}}
	d := &Deployment{ID: newUUID(), Version: version, AffectedApps: []string{id}, AffectedPods: []string{},
		Steps: []Step{{Actions: []Action{act}}}, CurrentActions: []Action{act}, CurrentStep: 1, TotalSteps: 1,
		appID: id, started: now, prev: prev, timeout: f.cfg.DeploymentTimeout,
		autoRollback: !f.cfg.NoAutoRollback, progressAt: now}
	if o.Timeout != 0 {
		d.timeout = o.Timeout
	}
	if o.AutoRollback != nil {
		d.autoRollback = *o.AutoRollback
	}
	d.best = f.progress(d).score()
	f.deployments[d.ID] = d
	f.events.publish("deployment_info", map[string]any{"plan": d, "currentStep": d.Steps[0]})
	return d
}

// lockedBy lists the deployments running on app id. Call with f.mu held.
func (f *Framework) lockedBy(id string) []*Deployment {
	var out []*Deployment
	for _, d := range f.deployments {
		if d.appID == id {
			out = append(out, d)
		}
	}
	return out
}

// cancelDeployments drops the deployments on app id, which a forced
// change overrides. Call with f.mu held.
func (f *Framework) cancelDeployments(id string, now time.Time) {
	for _, d := range f.lockedBy(id) {
		f.endDeployment(d, DeploymentCanceled, "overridden by a forced change", "", now)
		f.events.publish("deployment_failed", map[string]any{"id": d.ID, "plan": d, "reason": "overridden by a forced change"})
	}
}

// endDeployment removes a deployment and records how it ended. Call with
// f.mu held.
func (f *Framework) endDeployment(d *Deployment, status, reason, rollback string, now time.Time) {
	delete(f.deployments, d.ID)
	f.history = append(f.history, DeploymentRecord{Deployment: f.deploymentView(d), Status: status, Reason: reason,
		StartedAt: stamp(d.started), FinishedAt: stamp(now), RollbackDeploymentID: rollback})
	if n := len(f.history) - historyLimit; n > 0 {
		f.history = append(f.history[:0:0], f.history[n:]...)
	}
}

// finishDeployments ends the deployments whose app has reached its
// definition, and fails those past their progress deadline. Call with
// f.mu held.
func (f *Framework) finishDeployments(now time.Time) {
	for _, d := range f.sortedDeployments() {
		if f.settled(d) {
			f.endDeployment(d, DeploymentSuccess, "", "", now)
			f.events.publish("deployment_step_success", map[string]any{"plan": d, "currentStep": d.Steps[0]})
			f.events.publish("deployment_success", map[string]any{"id": d.ID, "plan": d})
			continue
		}
		p := f.progress(d)
		if s := p.score(); s > d.best {
			d.best, d.progressAt = s, now
		}
		if d.timeout > 0 && now.Sub(d.progressAt) > d.timeout {
			f.missedDeadline(d, p, now)
		}
	}
}

// missedDeadline fails a deployment that made no progress for its
// deadline, and rolls it back if it should and can. Call with f.mu held.
func (f *Framework) missedDeadline(d *Deployment, p ActionProgress, now time.Time) {
	act := d.Steps[0].Actions[0].Action
	reason := fmt.Sprintf("no progress for %s (the progress deadline): %d of %d instances of the new version healthy, %d started, %d old still active",
		d.timeout, p.Healthy, p.Instances, p.Started, p.OldActive)
	if act == StopApplication {
		reason = fmt.Sprintf("no progress for %s (the progress deadline): %d instances still to be killed", d.timeout, p.OldActive)
	}
	var back *Deployment
	switch {
	case !d.autoRollback:
		reason += "; not rolled back (autoRollback is off)"
	case d.prev == nil || act == StopApplication:
		reason += "; nothing to roll back to"
	default:
		var err error
		if back, err = f.rollbackLocked(d, now); err != nil {
			reason += "; the rollback failed: " + err.Error()
		} else {
			reason += "; rolled back to version " + d.prev.Version
		}
	}
	f.log.Warn("deployment failed", "deployment", d.ID, "app", d.appID, "reason", reason)
	rollback := ""
	if back != nil {
		rollback = back.ID
	}
	f.endDeployment(d, DeploymentFailed, reason, rollback, now)
	f.events.publish("deployment_step_failure", map[string]any{"plan": d, "currentStep": d.Steps[0], "reason": reason})
	f.events.publish("deployment_failed", map[string]any{"id": d.ID, "plan": d, "reason": reason})
}

// rollbackLocked starts the deployment that undoes d: the app's previous
// definition, or, for a create, the app's removal. The previous
// definition keeps its config version, so that its instances still
// running count as current and are kept. Call with f.mu held, d still
// listed or not.
func (f *Framework) rollbackLocked(d *Deployment, now time.Time) (*Deployment, error) {
	act := d.Steps[0].Actions[0].Action
	a := f.apps[d.appID]
	o := DeployOptions{Timeout: d.timeout, AutoRollback: new(bool)} // a rollback does not roll back
	var back *Deployment
	var err error
	switch {
	case act == StopApplication:
		if a != nil || d.prev == nil {
			return nil, fmt.Errorf("app %s cannot be restored", d.appID)
		}
		back, err = f.putLocked(nil, *d.prev, StartApplication, now, o, true)
	case d.prev == nil:
		if a == nil {
			return nil, fmt.Errorf("app %s is gone", d.appID)
		}
		back, err = f.deleteLocked(a, now)
	default:
		if a == nil {
			return nil, fmt.Errorf("app %s is gone", d.appID)
		}
		action := RestartApplication
		if plan.SameConfig(a.def, *d.prev) {
			action = ScaleApplication
		}
		back, err = f.putLocked(a, *d.prev, action, now, o, true)
	}
	if err != nil {
		return nil, err
	}
	back.RollbackOf = d.ID
	return back, nil
}

// CancelDeployment cancels deployment id (DELETE /v2/deployments/{id}):
// it starts the deployment that rolls the change back and returns it, or,
// with force, only stops it (leaving old and new instances as they are).
func (f *Framework) CancelDeployment(id string, force bool) (*Change, error) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.deployments[id]
	if d == nil {
		return nil, &APIError{Code: http.StatusNotFound, Body: message{fmt.Sprintf("DeploymentPlan %s does not exist", id)}}
	}
	if force {
		f.endDeployment(d, DeploymentCanceled, "canceled with force: not rolled back", "", now)
		f.events.publish("deployment_failed", map[string]any{"id": d.ID, "plan": d, "reason": "canceled"})
		go f.wake()
		return nil, nil
	}
	delete(f.deployments, d.ID) // unlock the app for the rollback
	back, err := f.rollbackLocked(d, now)
	if err != nil {
		f.deployments[d.ID] = d
		return nil, &APIError{Code: http.StatusConflict, Body: message{"cannot roll back: " + err.Error()}}
	}
	reason := "canceled; rolled back by deployment " + back.ID
	f.endDeployment(d, DeploymentCanceled, reason, back.ID, now)
	f.events.publish("deployment_failed", map[string]any{"id": d.ID, "plan": d, "reason": reason})
	return &Change{DeploymentID: back.ID, Version: back.Version}, nil
}

// settled reports whether a deployment's app matches its definition.
// Call with f.mu held.
func (f *Framework) settled(d *Deployment) bool {
	ts := f.tasksOf(d.appID)
	a := f.apps[d.appID]
	if d.Steps[0].Actions[0].Action == StopApplication {
		return len(ts) == 0 && a == nil
	}
	if a == nil {
		return true // deleted since: the delete's own deployment follows it
	}
	healthy := 0
	for _, t := range ts {
		if t.Goal != GoalRunning || t.ConfigVersion != a.configVersion() {
			return false
		}
		if t.healthy() {
			healthy++
		}
	}
	return healthy == a.def.Instances && len(ts) == a.def.Instances
}

// progress counts where a deployment's app stands. Call with f.mu held.
func (f *Framework) progress(d *Deployment) ActionProgress {
	a := f.apps[d.appID]
	var p ActionProgress
	if a != nil {
		p.Instances = a.def.Instances
	}
	for _, t := range f.tasksOf(d.appID) {
		if a == nil || t.ConfigVersion != a.configVersion() || t.Goal != GoalRunning {
			p.OldActive++
			continue
		}
		p.Started++
		if t.healthy() {
			p.Healthy++
		}
	}
	return p
}

// score grows as a deployment progresses: new instances turn healthy,
// old ones go.
func (p ActionProgress) score() int { return p.Healthy - p.OldActive - max(0, p.Started-p.Instances) }

// sortedDeployments lists the running deployments, oldest first. Call
// with f.mu held.
func (f *Framework) sortedDeployments() []*Deployment {
	out := make([]*Deployment, 0, len(f.deployments))
	for _, d := range f.deployments {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].started.Before(out[j].started) })
	return out
}

// deploymentView is d as the API shows it, with its progress. Call with
// f.mu held.
func (f *Framework) deploymentView(d *Deployment) Deployment {
	v := *d
	p := f.progress(d)
	act := v.Steps[0].Actions[0]
	act.Progress = &p
	v.Steps = []Step{{Actions: []Action{act}}}
	v.CurrentActions = []Action{act}
	if d.timeout > 0 {
		v.ProgressDeadline = stamp(d.progressAt.Add(d.timeout))
	}
	return v
}

// Deployments lists the deployments in progress.
func (f *Framework) Deployments() []Deployment {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []Deployment{}
	for _, d := range f.sortedDeployments() {
		out = append(out, f.deploymentView(d))
	}
	return out
}

// DeploymentHistory lists the deployments in progress and those that
// ended (the last historyLimit), newest first.
func (f *Framework) DeploymentHistory() []DeploymentRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []DeploymentRecord{}
	ds := f.sortedDeployments()
	for i := len(ds) - 1; i >= 0; i-- {
		out = append(out, DeploymentRecord{Deployment: f.deploymentView(ds[i]), Status: DeploymentRunning,
			StartedAt: stamp(ds[i].started)})
	}
	for i := len(f.history) - 1; i >= 0; i-- {
		out = append(out, f.history[i])
	}
	return out
}
