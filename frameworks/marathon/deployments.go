package marathon

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/agora-cluster/agora/frameworks/marathon/plan"
)

// Deployment is one change to one app or several (a group), as
// /v2/deployments lists it: it finishes when every app's instances match
// its definition and are healthy (or, for a delete, when none is left).
// Its steps order the apps by their dependencies; an app's new instances
// launch once the apps it depends on are healthy. Unlike Marathon's, a deployment
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

	targets      []target
	started      time.Time
	timeout      time.Duration
	autoRollback bool
	best         int // the most progress seen
	progressAt   time.Time
}

// target is what a deployment does to one app: action, from the
// definition prev (nil for a create).
type target struct {
	app    string
	action string
	prev   *plan.App
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
// the new definition (launched, healthy and, with a readiness check,
// ready) and those of older ones still to be killed.
type ActionProgress struct {
	Instances int `json:"instances"`
	Started   int `json:"started"`
	Healthy   int `json:"healthy"`
	OldActive int `json:"oldActive"`
	// WaitingFor lists the dependencies not yet healthy, which hold the
	// app's new instances back.
	WaitingFor []string `json:"waitingFor,omitempty"`
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

// newDeployment starts a deployment of targets at version. Call with
// f.mu held.
func (f *Framework) newDeployment(targets []target, version string, o DeployOptions, now time.Time) *Deployment {
	d := &Deployment{ID: newUUID(), Version: version, AffectedApps: []string{}, AffectedPods: []string{},
		targets: targets, started: now, timeout: f.cfg.DeploymentTimeout,
		autoRollback: !f.cfg.NoAutoRollback, progressAt: now}
	for _, t := range targets {
		d.AffectedApps = append(d.AffectedApps, t.app)
	}
	d.Steps = f.steps(targets)
	d.TotalSteps, d.CurrentStep = len(d.Steps), 1
	d.CurrentActions = d.Steps[0].Actions
	if o.Timeout != 0 {
		d.timeout = o.Timeout
	}
	if o.AutoRollback != nil {
		d.autoRollback = *o.AutoRollback
	}
	d.best = f.progressOf(d).score()
	f.deployments[d.ID] = d
	if err := f.store.saveDeployment(d.file()); err != nil {
		f.log.Warn("keep the deployment; a restart would forget it", "deployment", d.ID, "err", err)
	}
	f.events.publish("deployment_info", map[string]any{"plan": d, "currentStep": d.Steps[0]})
	return d
}

// steps orders targets by their dependencies among themselves: an app's
// step comes after those of the apps it depends on (a stop's, before).
// Call with f.mu held.
func (f *Framework) steps(targets []target) []Step {
	ids := make([]string, 0, len(targets))
	for _, t := range targets {
		ids = append(ids, t.app)
	}
	level := map[string]int{}
	var levelOf func(id string, seen map[string]bool) int
	levelOf = func(id string, seen map[string]bool) int {
		if l, ok := level[id]; ok {
			return l
		}
		if seen[id] { // a cycle: refused on the way in; never loop
			return 0
		}
		seen[id] = true
		l := 0
		for _, dep := range f.dependenciesOf(id) {
			for _, other := range plan.Under(dep, ids) {
				l = max(l, levelOf(other, seen)+1)
			}
		}
		level[id] = l
		return l
	}
	var steps []Step
	for _, t := range targets {
		l := levelOf(t.app, map[string]bool{})
		for len(steps) <= l {
			steps = append(steps, Step{Actions: []Action{}})
		}
		steps[l].Actions = append(steps[l].Actions, Action{Action: t.action, App: t.app, ReadinessCheckResults: []any{}})
	}
	if len(targets) > 0 && targets[0].action == StopApplication {
		slices.Reverse(steps)
	}
	return steps
}

// dependenciesOf is app id's dependencies, or, for an app being deleted,
// none. Call with f.mu held.
func (f *Framework) dependenciesOf(id string) []string {
	if a := f.apps[id]; a != nil {
		return a.def.Dependencies
	}
	return nil
}

// lockedBy lists the deployments running on app id. Call with f.mu held.
func (f *Framework) lockedBy(id string) []*Deployment {
	var out []*Deployment
	for _, d := range f.deployments {
		for _, t := range d.targets {
			if t.app == id {
				out = append(out, d)
				break
			}
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
	if err := f.store.removeDeployment(d.ID); err != nil {
		f.log.Warn("remove the deployment's file", "deployment", d.ID, "err", err)
	}
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
			f.events.publish("deployment_step_success", map[string]any{"plan": d, "currentStep": d.Steps[len(d.Steps)-1]})
			f.events.publish("deployment_success", map[string]any{"id": d.ID, "plan": d})
			continue
		}
		p := f.progressOf(d)
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
	reason := fmt.Sprintf("no progress for %s (the progress deadline): %d of %d instances of the new version healthy, %d started, %d old still active",
		d.timeout, p.Healthy, p.Instances, p.Started, p.OldActive)
	if len(p.WaitingFor) > 0 {
		reason += fmt.Sprintf(", waiting for dependencies %s", strings.Join(p.WaitingFor, ", "))
	}
	var back *Deployment
	switch {
	case !d.autoRollback:
		reason += "; not rolled back (autoRollback is off)"
	case !d.restorable():
		reason += "; nothing to roll back to"
	default:
		var err error
		if back, err = f.rollbackLocked(d, now); err != nil {
			reason += "; the rollback failed: " + err.Error()
		} else {
			reason += "; rolled back to the previous version"
			for _, t := range d.targets {
				reason += fmt.Sprintf(" (%s: %s)", t.app, t.prev.Version)
			}
		}
	}
	f.log.Warn("deployment failed", "deployment", d.ID, "apps", d.AffectedApps, "reason", reason)
	rollback := ""
	if back != nil {
		rollback = back.ID
	}
	f.endDeployment(d, DeploymentFailed, reason, rollback, now)
	f.events.publish("deployment_step_failure", map[string]any{"plan": d, "currentStep": d.Steps[0], "reason": reason})
	f.events.publish("deployment_failed", map[string]any{"id": d.ID, "plan": d, "reason": reason})
}

// restorable says whether a missed deadline can roll d back without
// removing or recreating apps: every app had a previous definition and
// is still there.
func (d *Deployment) restorable() bool {
	for _, t := range d.targets {
		if t.prev == nil || t.action == StopApplication {
			return false
		}
	}
	return true
}

// rollbackLocked starts the deployment that undoes d: each app's
// previous definition, or, for a create, the app's removal (for a
// delete, its return). A previous definition keeps its config version,
// so that its instances still running count as current and are kept.
// Call with f.mu held, d still listed or not.
func (f *Framework) rollbackLocked(d *Deployment, now time.Time) (*Deployment, error) {
	for _, t := range d.targets {
		a := f.apps[t.app]
		switch {
		case t.action == StopApplication && (a != nil || t.prev == nil):
			return nil, fmt.Errorf("app %s cannot be restored: it exists again", t.app)
		case t.action != StopApplication && a == nil:
			return nil, fmt.Errorf("app %s is gone", t.app)
		}
	}
	var back []target
	for _, t := range d.targets {
		a := f.apps[t.app]
		var bt target
		var err error
		switch {
		case t.action == StopApplication:
			bt, err = f.applyLocked(nil, *t.prev, StartApplication, now, true)
		case t.prev == nil:
			bt, err = f.removeLocked(a)
		default:
			action := RestartApplication
			if plan.SameConfig(a.def, *t.prev) {
				action = ScaleApplication
			}
			bt, err = f.applyLocked(a, *t.prev, action, now, true)
		}
		if err != nil {
			return nil, err
		}
		back = append(back, bt)
	}
	// A rollback does not roll back itself.
	dep := f.newDeployment(back, f.version(now), DeployOptions{Timeout: d.timeout, AutoRollback: new(bool)}, now)
	dep.RollbackOf = d.ID
	return dep, nil
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

// settled reports whether every app of a deployment matches its
// definition. Call with f.mu held.
func (f *Framework) settled(d *Deployment) bool {
	for _, t := range d.targets {
		if !f.appSettled(t) {
			return false
		}
	}
	return true
}

// appSettled reports whether a target's app matches its definition,
// every instance healthy (and ready). Inactive instances (unreachable
// long enough to be replaced) are not waited for: they count again only
// if they come back. Call with f.mu held.
func (f *Framework) appSettled(t target) bool {
	ts := slices.DeleteFunc(f.tasksOf(t.app), func(t *Task) bool { return t.inactive })
	a := f.apps[t.app]
	if t.action == StopApplication {
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
		if counts(a, t) {
			healthy++
		}
	}
	return healthy == a.def.Instances && len(ts) == a.def.Instances
}

// progressOf sums where a deployment's apps stand. Call with f.mu held.
func (f *Framework) progressOf(d *Deployment) ActionProgress {
	var sum ActionProgress
	for _, t := range d.targets {
		p := f.progress(t.app)
		sum.Instances += p.Instances
		sum.Started += p.Started
		sum.Healthy += p.Healthy
		sum.OldActive += p.OldActive
		sum.WaitingFor = append(sum.WaitingFor, p.WaitingFor...)
	}
	return sum
}

// progress counts where app id stands. Call with f.mu held.
func (f *Framework) progress(id string) ActionProgress {
	a := f.apps[id]
	var p ActionProgress
	if a != nil {
		p.Instances = a.def.Instances
		p.WaitingFor = f.waitingFor(a)
	}
	for _, t := range f.tasksOf(id) {
		if t.inactive {
			continue // replaced; not waited for
		}
		if a == nil || t.ConfigVersion != a.configVersion() || t.Goal != GoalRunning {
			p.OldActive++
			continue
		}
		p.Started++
		if counts(a, t) {
			p.Healthy++
		}
	}
	return p
}

// waitingFor lists app a's dependencies (the apps they name) that are
// missing or not yet running all their instances healthy. Call with f.mu
// held.
func (f *Framework) waitingFor(a *app) []string {
	if len(a.def.Dependencies) == 0 {
		return nil
	}
	ids := make([]string, 0, len(f.apps))
	for id := range f.apps {
		ids = append(ids, id)
	}
	var out []string
	for _, dep := range a.def.Dependencies {
		under := plan.Under(dep, ids)
		if len(under) == 0 {
			out = append(out, dep+" (no such app or group)")
		}
		for _, id := range under {
			if id != a.def.ID && !f.appSettled(target{app: id, action: StartApplication}) {
				out = append(out, id)
			}
		}
	}
	return out
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

// deploymentView is d as the API shows it, with each action's progress
// and the current step (the first with an app not yet settled). Call
// with f.mu held.
func (f *Framework) deploymentView(d *Deployment) Deployment {
	v := *d
	v.Steps = make([]Step, len(d.Steps))
	v.CurrentStep = 0
	for i, st := range d.Steps {
		acts := make([]Action, len(st.Actions))
		done := true
		for j, act := range st.Actions {
			p := f.progress(act.App)
			act.Progress = &p
			act.ReadinessCheckResults = f.readinessResults(act.App)
			acts[j] = act
			if !f.appSettled(target{app: act.App, action: act.Action}) {
				done = false
			}
		}
		v.Steps[i] = Step{Actions: acts}
		if !done && v.CurrentStep == 0 {
			v.CurrentStep = i + 1
		}
	}
	if v.CurrentStep == 0 {
		v.CurrentStep = len(v.Steps)
	}
	v.CurrentActions = v.Steps[v.CurrentStep-1].Actions
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

// checkDependencies refuses changes whose dependencies name no app or
// group (among the apps and the changes), or close a cycle; path names a
// change's place in the request ("" for a single app, "/apps(2)" in a
// group). Call with f.mu held.
func (f *Framework) checkDependencies(changes []plan.App, path func(i int) string) error {
	defs := map[string]plan.App{}
	for id, a := range f.apps {
		defs[id] = a.def
	}
	for _, c := range changes {
		defs[c.ID] = c
	}
	ids := make([]string, 0, len(defs))
	for id := range defs {
		ids = append(ids, id)
	}
	var ds []plan.Detail
	for i, c := range changes {
		var had []string
		if a := f.apps[c.ID]; a != nil {
			had = a.def.Dependencies // one whose app went since is waited for, not refused
		}
		for j, dep := range c.Dependencies {
			if len(plan.Under(dep, ids)) == 0 && !slices.Contains(had, dep) {
				ds = append(ds, plan.Detail{Path: fmt.Sprintf("%s/dependencies(%d)", path(i), j),
					Errors: []string{fmt.Sprintf("no app or group %s", dep)}})
			}
		}
	}
	if len(ds) == 0 {
		graph := map[string][]string{}
		for id, d := range defs {
			for _, dep := range d.Dependencies {
				for _, other := range plan.Under(dep, ids) {
					if other != id {
						graph[id] = append(graph[id], other)
					}
				}
			}
		}
		if c := plan.DependencyCycle(graph); c != nil {
			ds = append(ds, plan.Detail{Path: path(0) + "/dependencies",
				Errors: []string{"dependency cycle: " + strings.Join(c, " → ")}})
		}
	}
	if len(ds) == 0 {
		return nil
	}
	return &APIError{Code: http.StatusUnprocessableEntity, Body: &plan.Invalid{Message: "Object is not valid", Details: ds}}
}

// checkPlace refuses an app whose id is a group of other apps, or inside
// another app. Call with f.mu held.
func (f *Framework) checkPlace(id, path string) error {
	for other := range f.apps {
		msg := ""
		switch {
		case strings.HasPrefix(other, id+"/"):
			msg = fmt.Sprintf("%s is a group (it holds the app %s), not an app", id, other)
		case strings.HasPrefix(id, other+"/"):
			msg = fmt.Sprintf("%s is an app: it cannot hold %s", other, id)
		default:
			continue
		}
		return &APIError{Code: http.StatusUnprocessableEntity, Body: &plan.Invalid{Message: "Object is not valid",
			Details: []plan.Detail{{Path: path + "/id", Errors: []string{msg}}}}}
	}
	return nil
}

// file is d as kept on disk.
func (d *Deployment) file() deploymentFile {
	df := deploymentFile{ID: d.ID, Version: d.Version, Started: d.started, Timeout: d.timeout,
		AutoRollback: d.autoRollback, RollbackOf: d.RollbackOf}
	for _, t := range d.targets {
		df.Targets = append(df.Targets, targetFile{App: t.app, Action: t.action, Prev: t.prev})
	}
	return df
}

// restoreDeployment carries on a deployment a previous run of the
// framework kept; its progress deadline starts again. Call with f.mu
// held, the apps loaded.
func (f *Framework) restoreDeployment(df deploymentFile, now time.Time) {
	d := &Deployment{ID: df.ID, Version: df.Version, AffectedApps: []string{}, AffectedPods: []string{},
		RollbackOf: df.RollbackOf, started: df.Started, timeout: df.Timeout, autoRollback: df.AutoRollback,
		progressAt: now, best: math.MinInt}
	for _, t := range df.Targets {
		d.targets = append(d.targets, target{app: t.App, action: t.Action, prev: t.Prev})
		d.AffectedApps = append(d.AffectedApps, t.App)
	}
	if len(d.targets) == 0 {
		return
	}
	d.Steps = f.steps(d.targets)
	d.TotalSteps, d.CurrentStep, d.CurrentActions = len(d.Steps), 1, d.Steps[0].Actions
	f.deployments[d.ID] = d
}
