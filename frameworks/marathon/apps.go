package marathon

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/agora-cluster/agora/frameworks/marathon/plan"
)

// APIError is an error with the HTTP status and body Marathon answers it
// with.
type APIError struct {
	Code int
	Body any
}

func (e *APIError) Error() string { return fmt.Sprintf("%d %v", e.Code, e.Body) }

type message struct {
	Message string `json:"message"`
}

func notFound(id string) error {
	return &APIError{Code: http.StatusNotFound, Body: message{fmt.Sprintf("App '%s' does not exist", id)}}
}

// DeploymentRef names a deployment.
type DeploymentRef struct {
	ID string `json:"id"`
}

func locked(ds []*Deployment) error {
	refs := make([]DeploymentRef, 0, len(ds))
	for _, d := range ds {
		refs = append(refs, DeploymentRef{d.ID})
	}
	return &APIError{Code: http.StatusConflict, Body: struct {
		Message     string          `json:"message"`
		Deployments []DeploymentRef `json:"deployments"`
	}{fmt.Sprintf("App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/%s'.", ds[0].ID), refs}}
}

// Change is what a deployable call answers: the deployment it started and
// the app's version.
type Change struct {
	DeploymentID string `json:"deploymentId"`
	Version      string `json:"version"`
}

// decodeApp decodes and validates a definition onto base.
func decodeApp(body []byte, base plan.App) (plan.App, error) {
	a, err := plan.Decode(body, base)
	if err != nil {
		var bad *plan.BadJSON
		if errors.As(err, &bad) {
			return a, &APIError{Code: http.StatusBadRequest, Body: bad}
		}
		return a, err
	}
	a.Normalize()
	if err := a.Validate(); err != nil {
		return a, &APIError{Code: http.StatusUnprocessableEntity, Body: err}
	}
	return a, nil
}

// version is a new app version, later than every one given before (two
// changes in one millisecond must still tell their instances apart).
// Call with f.mu held.
func (f *Framework) version(now time.Time) string {
	v := stamp(now)
	for _, a := range f.apps {
		if a.def.Version >= v {
			v = stamp(mustParse(a.def.Version).Add(time.Millisecond))
		}
	}
	return v
}

func mustParse(s string) time.Time {
	t, err := time.Parse(timeFormat, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// CreateApp adds an app (POST /v2/apps) and starts its deployment.
func (f *Framework) CreateApp(body []byte, o DeployOptions) (AppView, *Deployment, error) {
	d, err := decodeApp(body, plan.Defaults())
	if err != nil {
		return AppView{}, nil, err
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.apps[d.ID]; ok {
		return AppView{}, nil, &APIError{Code: http.StatusConflict,
			Body: message{fmt.Sprintf("An app with id [%s] already exists.", d.ID)}}
	}
	if err := f.checkPlace(d.ID, ""); err != nil {
		return AppView{}, nil, err
	}
	if err := f.checkDependencies([]plan.App{d}, func(int) string { return "" }); err != nil {
		return AppView{}, nil, err
	}
	dep, err := f.putLocked(nil, d, StartApplication, now, o, false)
	if err != nil {
		return AppView{}, nil, err
	}
	f.events.publish("api_post_event", map[string]any{"clientIp": "", "uri": "/v2/apps", "appDefinition": d})
	return f.viewLocked(f.apps[d.ID], false), dep, nil
}

// putLocked stores d as the app's definition and starts its deployment.
// Call with f.mu held.
func (f *Framework) putLocked(prev *app, d plan.App, action string, now time.Time, o DeployOptions, restore bool) (*Deployment, error) {
	t, err := f.applyLocked(prev, d, action, now, restore)
	if err != nil {
		return nil, err
	}
	return f.newDeployment([]target{t}, f.apps[d.ID].def.Version, o, now), nil
}

// applyLocked stores d as the app's definition (durably first) and keeps
// it as a version; it returns the change as a deployment's target.
// restore (a rollback) keeps d's config version, so that the instances
// still running it are kept. Call with f.mu held.
func (f *Framework) applyLocked(prev *app, d plan.App, action string, now time.Time, restore bool) (target, error) {
	var before *plan.App
	if prev != nil {
		b := prev.def
		before = &b
	}
	restored := d.VersionInfo
	d.Version = f.version(now)
	configChanged := prev == nil || !plan.SameConfig(prev.def, d) || action == RestartApplication
	vi := plan.VersionInfo{LastScalingAt: d.Version, LastConfigChangeAt: d.Version}
	switch {
	case restore && restored != nil:
		vi.LastConfigChangeAt = restored.LastConfigChangeAt
	case !configChanged && prev.def.VersionInfo != nil:
		vi.LastConfigChangeAt = prev.def.VersionInfo.LastConfigChangeAt
	}
	d.VersionInfo = &vi
	if err := f.store.saveApp(&d); err != nil {
		return target{}, &APIError{Code: http.StatusServiceUnavailable, Body: message{"the app could not be stored: " + err.Error()}}
	}
	if err := f.store.saveVersion(&d, f.cfg.MaxVersions); err != nil {
		f.log.Warn("keep the app's version", "app", d.ID, "err", err)
	}
	a := prev
	if a == nil {
		a = &app{}
		f.apps[d.ID] = a
	}
	a.def, a.cons = d, d.ParsedConstraints()
	if configChanged {
		a.failures, a.delayUntil = 0, time.Time{}
	}
	go f.wake()
	return target{app: d.ID, action: action, prev: before}, nil
}

// PutApp replaces or updates app id (PUT /v2/apps/{id}): the body is
// applied over the current definition, so {"instances": N} scales. An app
// that does not exist is created.
func (f *Framework) PutApp(id string, body []byte, o DeployOptions) (Change, bool, error) {
	id = plan.CanonicalID(id)
	f.mu.Lock()
	prev := f.apps[id]
	base := plan.Defaults()
	base.ID = id // the URL names the app when the body does not
	if prev != nil {
		base = prev.def
	}
	f.mu.Unlock()
	d, err := decodeApp(body, base)
	if err != nil {
		return Change{}, false, err
	}
	if d.ID != id {
		return Change{}, false, &APIError{Code: http.StatusUnprocessableEntity, Body: &plan.Invalid{Message: "Object is not valid",
			Details: []plan.Detail{{Path: "/id", Errors: []string{fmt.Sprintf("the id %s differs from the URL's %s", d.ID, id)}}}}}
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.apps[id] != prev {
		return Change{}, false, &APIError{Code: http.StatusConflict, Body: message{"the app changed meanwhile; try again"}}
	}
	if prev == nil {
		if err := f.checkPlace(id, ""); err != nil {
			return Change{}, false, err
		}
	}
	if err := f.checkDependencies([]plan.App{d}, func(int) string { return "" }); err != nil {
		return Change{}, false, err
	}
	action := StartApplication
	if prev != nil {
		if ds := f.lockedBy(id); len(ds) > 0 {
			if !o.Force {
				return Change{}, false, locked(ds)
			}
			f.cancelDeployments(id, now)
		}
		action = RestartApplication
		if plan.SameConfig(prev.def, d) {
			action = ScaleApplication
		}
	}
	dep, err := f.putLocked(prev, d, action, now, o, false)
	if err != nil {
		return Change{}, false, err
	}
	return Change{DeploymentID: dep.ID, Version: dep.Version}, prev == nil, nil
}

// RestartApp replaces every instance of app id (POST .../restart), by
// the app's upgrade strategy.
func (f *Framework) RestartApp(id string, o DeployOptions) (Change, error) {
	id = plan.CanonicalID(id)
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.apps[id]
	if a == nil {
		return Change{}, notFound(id)
	}
	if ds := f.lockedBy(id); len(ds) > 0 {
		if !o.Force {
			return Change{}, locked(ds)
		}
		f.cancelDeployments(id, now)
	}
	dep, err := f.putLocked(a, a.def, RestartApplication, now, o, false)
	if err != nil {
		return Change{}, err
	}
	return Change{DeploymentID: dep.ID, Version: dep.Version}, nil
}

// DeleteApp removes app id and kills all its instances (DELETE
// /v2/apps/{id}).
func (f *Framework) DeleteApp(id string, force bool) (Change, error) {
	id = plan.CanonicalID(id)
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.apps[id]
	if a == nil {
		return Change{}, notFound(id)
	}
	if ds := f.lockedBy(id); len(ds) > 0 {
		if !force {
			return Change{}, locked(ds)
		}
		f.cancelDeployments(id, now)
	}
	dep, err := f.deleteLocked(a, now)
	if err != nil {
		return Change{}, err
	}
	return Change{DeploymentID: dep.ID, Version: dep.Version}, nil
}

// deleteLocked removes app a and starts killing its instances, as a
// deployment. Call with f.mu held.
func (f *Framework) deleteLocked(a *app, now time.Time) (*Deployment, error) {
	t, err := f.removeLocked(a)
	if err != nil {
		return nil, err
	}
	return f.newDeployment([]target{t}, f.version(now), DeployOptions{}, now), nil
}

// removeLocked removes app a and decommissions its instances; it
// returns the change as a deployment's target. Call with f.mu held.
func (f *Framework) removeLocked(a *app) (target, error) {
	id := a.def.ID
	// Decommission first, then forget the app: a crash in between leaves
	// the app with instances being killed, not instances nobody owns.
	for _, t := range f.tasksOf(id) {
		t.Goal = GoalDecommissioned
		if err := f.store.saveTask(t); err != nil {
			return target{}, &APIError{Code: http.StatusServiceUnavailable, Body: message{"could not record the kill: " + err.Error()}}
		}
	}
	if err := f.store.removeApp(id); err != nil {
		return target{}, &APIError{Code: http.StatusServiceUnavailable, Body: message{"could not remove the app: " + err.Error()}}
	}
	if err := f.store.removeVersions(id); err != nil {
		f.log.Warn("remove the app's versions", "app", id, "err", err)
	}
	delete(f.apps, id)
	before := a.def
	go f.wake()
	return target{app: id, action: StopApplication, prev: &before}, nil
}

// KillTask kills one instance of app id (DELETE .../tasks/{taskId}); with
// scale the app's count drops by one and it is not replaced.
func (f *Framework) KillTask(id, taskID string, scale, force bool) (any, error) {
	id = plan.CanonicalID(id)
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.apps[id]
	if a == nil {
		return nil, notFound(id)
	}
	t := f.tasks[taskID]
	if t == nil || t.AppID != id {
		return nil, &APIError{Code: http.StatusNotFound, Body: message{fmt.Sprintf("Task '%s' does not exist", taskID)}}
	}
	view := *t
	if !scale {
		// Killed as it is; planApp launches its replacement when it ends.
		t.killSent = time.Time{}
		t.Goal = GoalDecommissioned
		if err := f.store.saveTask(t); err != nil {
			return nil, &APIError{Code: http.StatusServiceUnavailable, Body: message{err.Error()}}
		}
		go f.wake()
		return struct {
			Task Task `json:"task"`
		}{view}, nil
	}
	if ds := f.lockedBy(id); len(ds) > 0 {
		if !force {
			return nil, locked(ds)
		}
		f.cancelDeployments(id, now)
	}
	t.Goal = GoalDecommissioned
	if err := f.store.saveTask(t); err != nil {
		return nil, &APIError{Code: http.StatusServiceUnavailable, Body: message{err.Error()}}
	}
	d := a.def
	d.Instances = max(0, d.Instances-1)
	dep, err := f.putLocked(a, d, ScaleApplication, now, DeployOptions{}, false)
	if err != nil {
		return nil, err
	}
	return Change{DeploymentID: dep.ID, Version: dep.Version}, nil
}

// ResetDelay ends app id's launch backoff (DELETE /v2/queue/{id}/delay).
func (f *Framework) ResetDelay(id string) error {
	id = plan.CanonicalID(id)
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.apps[id]
	if a == nil {
		return notFound(id)
	}
	a.failures, a.delayUntil = 0, time.Time{}
	go f.wake()
	return nil
}

// Versions lists app id's kept versions, newest first
// (GET /v2/apps/{id}/versions).
func (f *Framework) Versions(id string) ([]string, error) {
	id = plan.CanonicalID(id)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.apps[id] == nil {
		return nil, notFound(id)
	}
	vs, err := f.store.versions(id)
	if err != nil {
		return nil, err
	}
	if vs == nil {
		vs = []string{}
	}
	return vs, nil
}

// Version is app id's definition as it was at version v
// (GET /v2/apps/{id}/versions/{v}).
func (f *Framework) Version(id, v string) (plan.App, error) {
	id = plan.CanonicalID(id)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.apps[id] == nil {
		return plan.App{}, notFound(id)
	}
	a, err := f.store.version(id, v)
	if errors.Is(err, os.ErrNotExist) {
		return a, &APIError{Code: http.StatusNotFound, Body: message{fmt.Sprintf("App '%s' does not exist in version %s", id, v)}}
	}
	return a, err
}
