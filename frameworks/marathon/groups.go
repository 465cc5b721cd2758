package marathon

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/agora-cluster/agora/frameworks/marathon/plan"
)

// Groups are the branches of the app namespace: an app /prod/db/pg is in
// the groups /prod/db, /prod and /. They are not stored on their own: a
// group exists while an app is in it, and a group's dependencies are
// handed down to its apps when the group is posted.

// GroupView is a group as GET /v2/groups shows it.
type GroupView struct {
	ID           string      `json:"id"`
	Apps         []AppView   `json:"apps"`
	Groups       []GroupView `json:"groups"`
	Dependencies []string    `json:"dependencies"`
	Version      string      `json:"version,omitempty"`
}

// GroupDef is a group as POST and PUT /v2/groups take it: apps and
// subgroups (their ids absolute, or relative to the group), dependencies
// for all of them (relative to the group's own group), or scaleBy alone.
type GroupDef struct {
	ID           string            `json:"id"`
	Apps         []json.RawMessage `json:"apps"`
	Groups       []GroupDef        `json:"groups"`
	Dependencies []string          `json:"dependencies"`
	ScaleBy      *float64          `json:"scaleBy"`
}

// Group is the view of group id ("/" for the root).
func (f *Framework) Group(id string) (GroupView, error) {
	id = plan.CanonicalID(id)
	f.mu.Lock()
	defer f.mu.Unlock()
	if id != "/" && len(f.appsUnder(id)) == 0 {
		return GroupView{}, groupNotFound(id)
	}
	return f.groupViewLocked(id), nil
}

func groupNotFound(id string) error {
	return &APIError{Code: http.StatusNotFound, Body: message{fmt.Sprintf("Group '%s' does not exist", id)}}
}

// appsUnder lists the ids of the apps in group id, sorted. Call with
// f.mu held.
func (f *Framework) appsUnder(id string) []string {
	var out []string
	prefix := strings.TrimSuffix(id, "/") + "/"
	for other := range f.apps {
		if strings.HasPrefix(other, prefix) {
			out = append(out, other)
		}
	}
	slices.Sort(out)
	return out
}

// groupViewLocked builds group id's tree. Call with f.mu held.
func (f *Framework) groupViewLocked(id string) GroupView {
	g := GroupView{ID: id, Apps: []AppView{}, Groups: []GroupView{}, Dependencies: []string{}}
	var subs []string
	for _, other := range f.appsUnder(id) {
		a := f.apps[other]
		if a.def.Version > g.Version {
			g.Version = a.def.Version
		}
		if plan.Parent(other) == id {
			g.Apps = append(g.Apps, f.viewLocked(a, false))
			continue
		}
		rest := strings.TrimPrefix(other, strings.TrimSuffix(id, "/")+"/")
		sub := strings.TrimSuffix(id, "/") + "/" + strings.SplitN(rest, "/", 2)[0]
		if !slices.Contains(subs, sub) {
			subs = append(subs, sub)
		}
	}
	for _, sub := range subs {
		g.Groups = append(g.Groups, f.groupViewLocked(sub))
	}
	return g
}

// groupApp is one app of a posted group: its definition (raw, with its
// absolute id), where it is in the request, and the dependencies its
// groups hand down.
type groupApp struct {
	raw       json.RawMessage
	id        string
	path      string
	inherited []string
}

// flatten lists the apps of g (in group id, at request path at) and of
// its subgroups.
func flatten(g GroupDef, id, at string, inherited []string) ([]groupApp, error) {
	for _, d := range g.Dependencies {
		inherited = append(slices.Clone(inherited), plan.ResolvePath(plan.Parent(id), d))
	}
	var out []groupApp
	for i, raw := range g.Apps {
		path := fmt.Sprintf("%s/apps(%d)", at, i)
		var fields map[string]json.RawMessage
		var appID string
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, badJSON(path, err)
		}
		if err := json.Unmarshal(fields["id"], &appID); err != nil || strings.TrimSpace(appID) == "" {
			return nil, &APIError{Code: http.StatusUnprocessableEntity, Body: &plan.Invalid{Message: "Object is not valid",
				Details: []plan.Detail{{Path: path + "/id", Errors: []string{"must be a non-empty string"}}}}}
		}
		appID = plan.ResolvePath(id, appID)
		fields["id"], _ = json.Marshal(appID)
		b, _ := json.Marshal(fields)
		out = append(out, groupApp{raw: b, id: appID, path: path, inherited: inherited})
	}
	for j, sub := range g.Groups {
		if strings.TrimSpace(sub.ID) == "" {
			return nil, &APIError{Code: http.StatusUnprocessableEntity, Body: &plan.Invalid{Message: "Object is not valid",
				Details: []plan.Detail{{Path: fmt.Sprintf("%s/groups(%d)/id", at, j), Errors: []string{"must not be empty"}}}}}
		}
		more, err := flatten(sub, plan.ResolvePath(id, sub.ID), fmt.Sprintf("%s/groups(%d)", at, j), inherited)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	return out, nil
}

func badJSON(path string, err error) error {
	return &APIError{Code: http.StatusBadRequest, Body: &plan.BadJSON{Message: "Invalid JSON",
		Details: []plan.Detail{{Path: path, Errors: []string{err.Error()}}}}}
}

// prefixed puts a request path before the paths of a decoding error.
func prefixed(err error, path string) error {
	var e *APIError
	if !errors.As(err, &e) {
		return err
	}
	switch b := e.Body.(type) {
	case *plan.Invalid:
		for i := range b.Details {
			b.Details[i].Path = path + b.Details[i].Path
		}
	case *plan.BadJSON:
		for i := range b.Details {
			b.Details[i].Path = path + b.Details[i].Path
		}
	}
	return err
}

// DeployGroup creates (POST /v2/groups; create) or changes (PUT
// /v2/groups/{id}) group id's apps as one deployment, its steps in the
// order of the apps' dependencies. A PUT with scaleBy scales every app
// of the group.
func (f *Framework) DeployGroup(id string, body []byte, create bool, o DeployOptions) (Change, error) {
	var g GroupDef
	if err := json.Unmarshal(body, &g); err != nil {
		return Change{}, badJSON("/", err)
	}
	if create || id == "" {
		id = g.ID
	}
	if strings.TrimSpace(id) == "" {
		return Change{}, &APIError{Code: http.StatusUnprocessableEntity, Body: &plan.Invalid{Message: "Object is not valid",
			Details: []plan.Detail{{Path: "/id", Errors: []string{"a group needs an id"}}}}}
	}
	id = plan.CanonicalID(id)
	if g.ScaleBy != nil {
		return f.scaleGroup(id, *g.ScaleBy, o)
	}
	apps, err := flatten(g, id, "", nil)
	if err != nil {
		return Change{}, err
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if create && len(f.appsUnder(id)) > 0 {
		return Change{}, &APIError{Code: http.StatusConflict,
			Body: message{fmt.Sprintf("Group %s is already created. Use PUT to change this group.", id)}}
	}
	if len(apps) == 0 {
		return Change{}, &APIError{Code: http.StatusUnprocessableEntity, Body: &plan.Invalid{Message: "Object is not valid",
			Details: []plan.Detail{{Path: "/apps", Errors: []string{"a group needs at least one app (groups exist by their apps)"}}}}}
	}
	defs := make([]plan.App, 0, len(apps))
	for i, ga := range apps {
		if i > 0 && slices.ContainsFunc(apps[:i], func(o groupApp) bool { return o.id == ga.id }) {
			return Change{}, prefixed(&APIError{Code: http.StatusUnprocessableEntity, Body: &plan.Invalid{Message: "Object is not valid",
				Details: []plan.Detail{{Path: "/id", Errors: []string{fmt.Sprintf("%s is given twice", ga.id)}}}}}, ga.path)
		}
		base := plan.Defaults()
		if a := f.apps[ga.id]; a != nil {
			base = a.def
		}
		d, err := decodeApp(ga.raw, base)
		if err != nil {
			return Change{}, prefixed(err, ga.path)
		}
		for _, dep := range ga.inherited {
			if dep != d.ID && !strings.HasPrefix(d.ID, dep+"/") && !slices.Contains(d.Dependencies, dep) {
				d.Dependencies = append(d.Dependencies, dep)
			}
		}
		if f.apps[d.ID] == nil {
			if err := f.checkPlace(d.ID, ga.path); err != nil {
				return Change{}, err
			}
		}
		defs = append(defs, d)
	}
	for i := range defs {
		for j := range defs {
			if strings.HasPrefix(defs[j].ID, defs[i].ID+"/") {
				return Change{}, prefixed(&APIError{Code: http.StatusUnprocessableEntity, Body: &plan.Invalid{Message: "Object is not valid",
					Details: []plan.Detail{{Path: "/id", Errors: []string{fmt.Sprintf("%s is an app: it cannot hold %s", defs[i].ID, defs[j].ID)}}}}}, apps[i].path)
			}
		}
	}
	if err := f.checkDependencies(defs, func(i int) string { return apps[i].path }); err != nil {
		return Change{}, err
	}
	if err := f.unlock(defs, o.Force, now); err != nil {
		return Change{}, err
	}
	var targets []target
	for _, d := range defs {
		prev := f.apps[d.ID]
		action := StartApplication
		if prev != nil {
			action = RestartApplication
			if plan.SameConfig(prev.def, d) {
				action = ScaleApplication
			}
		}
		t, err := f.applyLocked(prev, d, action, now, false)
		if err != nil {
			return Change{}, err
		}
		targets = append(targets, t)
	}
	dep := f.newDeployment(targets, f.version(now), o, now)
	return Change{DeploymentID: dep.ID, Version: dep.Version}, nil
}

// unlock refuses changes to apps that deployments hold, or, with force,
// cancels those deployments. Call with f.mu held.
func (f *Framework) unlock(defs []plan.App, force bool, now time.Time) error {
	for _, d := range defs {
		if ds := f.lockedBy(d.ID); len(ds) > 0 {
			if !force {
				return locked(ds)
			}
			f.cancelDeployments(d.ID, now)
		}
	}
	return nil
}

// scaleGroup multiplies the instances of every app in group id by
// factor, rounding up, as one deployment.
func (f *Framework) scaleGroup(id string, factor float64, o DeployOptions) (Change, error) {
	if factor < 0 || math.IsNaN(factor) || math.IsInf(factor, 0) {
		return Change{}, &APIError{Code: http.StatusUnprocessableEntity, Body: &plan.Invalid{Message: "Object is not valid",
			Details: []plan.Detail{{Path: "/scaleBy", Errors: []string{fmt.Sprintf("got %g, expected 0 or more", factor)}}}}}
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := f.appsUnder(id)
	if len(ids) == 0 {
		return Change{}, groupNotFound(id)
	}
	defs := make([]plan.App, 0, len(ids))
	for _, aid := range ids {
		d := f.apps[aid].def
		d.Instances = int(math.Ceil(float64(d.Instances) * factor))
		defs = append(defs, d)
	}
	if err := f.unlock(defs, o.Force, now); err != nil {
		return Change{}, err
	}
	var targets []target
	for _, d := range defs {
		t, err := f.applyLocked(f.apps[d.ID], d, ScaleApplication, now, false)
		if err != nil {
			return Change{}, err
		}
		targets = append(targets, t)
	}
	dep := f.newDeployment(targets, f.version(now), o, now)
	return Change{DeploymentID: dep.ID, Version: dep.Version}, nil
}

// DeleteGroup removes every app of group id (DELETE /v2/groups/{id}) as
// one deployment.
func (f *Framework) DeleteGroup(id string, force bool) (Change, error) {
	id = plan.CanonicalID(id)
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := f.appsUnder(id)
	if len(ids) == 0 {
		return Change{}, groupNotFound(id)
	}
	for _, aid := range ids {
		if ds := f.lockedBy(aid); len(ds) > 0 {
			if !force {
				return Change{}, locked(ds)
			}
			f.cancelDeployments(aid, now)
		}
	}
	var targets []target
	for _, aid := range ids {
		t, err := f.removeLocked(f.apps[aid])
		if err != nil {
			return Change{}, err
		}
		targets = append(targets, t)
	}
	dep := f.newDeployment(targets, f.version(now), DeployOptions{}, now)
	return Change{DeploymentID: dep.ID, Version: dep.Version}, nil
}
