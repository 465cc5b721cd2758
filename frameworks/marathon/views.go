package marathon

import (
	"sort"
	"strings"
	"time"

	"github.com/agora-cluster/agora/frameworks/marathon/plan"
)

// AppView is an app as GET /v2/apps shows it: its definition and the
// state of its instances.
type AppView struct {
	plan.App
	TasksStaged     int             `json:"tasksStaged"`
	TasksRunning    int             `json:"tasksRunning"`
	TasksHealthy    int             `json:"tasksHealthy"`
	TasksUnhealthy  int             `json:"tasksUnhealthy"`
	Deployments     []DeploymentRef `json:"deployments"`
	Tasks           []Task          `json:"tasks,omitempty"`
	LastTaskFailure *TaskFailure    `json:"lastTaskFailure,omitempty"`
	// ReadinessCheckResults are the latest readiness checks of the
	// current config's instances (?embed=apps.readiness).
	ReadinessCheckResults []any `json:"readinessCheckResults,omitempty"`
}

// WithReadiness adds the apps' readiness results to views (Marathon's
// embed=apps.readiness).
func (f *Framework) WithReadiness(vs []AppView) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range vs {
		vs[i].ReadinessCheckResults = f.readinessResults(vs[i].ID)
	}
}

// viewLocked is a's view, with its tasks when withTasks. Call with f.mu
// held.
func (f *Framework) viewLocked(a *app, withTasks bool) AppView {
	v := AppView{App: a.def, Deployments: []DeploymentRef{}, LastTaskFailure: a.lastFail}
	for _, t := range f.tasksOf(a.def.ID) {
		switch {
		case t.running():
			v.TasksRunning++
		case t.State == "TASK_STAGING" || t.State == "TASK_STARTING":
			v.TasksStaged++
		}
		switch {
		case t.HealthChecked && t.healthy():
			v.TasksHealthy++
		case t.unhealthy():
			v.TasksUnhealthy++
		}
		if withTasks {
			v.Tasks = append(v.Tasks, *t)
		}
	}
	for _, d := range f.lockedBy(a.def.ID) {
		v.Deployments = append(v.Deployments, DeploymentRef{d.ID})
	}
	if withTasks && v.Tasks == nil {
		v.Tasks = []Task{}
	}
	return v
}

// Apps lists the apps whose ID contains idFilter (and cmd cmdFilter).
func (f *Framework) Apps(idFilter, cmdFilter string, withTasks bool) []AppView {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []AppView{}
	for _, a := range f.sortedApps() {
		if idFilter != "" && !strings.Contains(a.def.ID, idFilter) {
			continue
		}
		if cmdFilter != "" && (a.def.Cmd == nil || !strings.Contains(*a.def.Cmd, cmdFilter)) {
			continue
		}
		out = append(out, f.viewLocked(a, withTasks))
	}
	return out
}

// App is app id's view.
func (f *Framework) App(id string, withTasks bool) (AppView, error) {
	id = plan.CanonicalID(id)
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.apps[id]
	if a == nil {
		return AppView{}, notFound(id)
	}
	return f.viewLocked(a, withTasks), nil
}

// Tasks lists app id's instances, or every instance with id "".
func (f *Framework) Tasks(id string) ([]Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id != "" {
		id = plan.CanonicalID(id)
		if f.apps[id] == nil {
			return nil, notFound(id)
		}
	}
	out := []Task{}
	for _, t := range f.tasks {
		if id == "" || t.AppID == id {
			out = append(out, *t)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].AppID != out[j].AppID {
			return out[i].AppID < out[j].AppID
		}
		return out[i].StagedAt.Before(out[j].StagedAt)
	})
	return out, nil
}

// QueueEntry is one app waiting for offers, as GET /v2/queue shows it,
// with Marathon 1.4's placement diagnostics.
type QueueEntry struct {
	Count                  int                `json:"count"`
	Delay                  QueueDelay         `json:"delay"`
	Since                  string             `json:"since"`
	App                    plan.App           `json:"app"`
	ProcessedOffersSummary OffersSummary      `json:"processedOffersSummary"`
	LastUnusedOffers       []plan.UnusedOffer `json:"lastUnusedOffers,omitempty"`
}

// QueueDelay is an app's launch backoff.
type QueueDelay struct {
	TimeLeftSeconds int  `json:"timeLeftSeconds"`
	Overdue         bool `json:"overdue"`
}

// OffersSummary counts the offers processed for a queue entry and why
// the unused ones were not used.
type OffersSummary struct {
	ProcessedOffersCount       int                  `json:"processedOffersCount"`
	UnusedOffersCount          int                  `json:"unusedOffersCount"`
	LastUnusedOfferAt          string               `json:"lastUnusedOfferAt,omitempty"`
	LastUsedOfferAt            string               `json:"lastUsedOfferAt,omitempty"`
	RejectSummaryLastOffers    []plan.RejectSummary `json:"rejectSummaryLastOffers"`
	RejectSummaryLaunchAttempt []plan.RejectSummary `json:"rejectSummaryLaunchAttempt"`
}

// Queue lists the apps with instances waiting to launch.
func (f *Framework) Queue(withOffers bool) []QueueEntry {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []QueueEntry{}
	for _, a := range f.sortedApps() {
		if a.want <= 0 {
			continue
		}
		left := a.delayUntil.Sub(now)
		e := QueueEntry{Count: a.want, Since: stamp(a.since), App: a.def,
			Delay: QueueDelay{TimeLeftSeconds: max(0, int(left.Seconds()+0.999)), Overdue: left <= 0},
			ProcessedOffersSummary: OffersSummary{
				ProcessedOffersCount: a.stats.Processed, UnusedOffersCount: a.stats.Unused,
				RejectSummaryLastOffers:    a.stats.LastOffers(),
				RejectSummaryLaunchAttempt: a.stats.SinceLaunchAttempt(),
			}}
		if !a.stats.LastUnused.IsZero() {
			e.ProcessedOffersSummary.LastUnusedOfferAt = stamp(a.stats.LastUnused)
		}
		if !a.stats.LastUsed.IsZero() {
			e.ProcessedOffersSummary.LastUsedOfferAt = stamp(a.stats.LastUsed)
		}
		if withOffers {
			e.LastUnusedOffers = a.stats.LastUnusedOffers()
		}
		out = append(out, e)
	}
	return out
}
