package marathon

import (
	"context"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/agora-cluster/agora/frameworks/marathon/plan"
)

// Readiness checks are Marathon's: the framework itself polls an HTTP
// endpoint of each new instance of an app that has one (the agent runs
// health checks, but has no readiness probe), from the moment the
// instance runs until it first answers ready; then it is not polled
// again. An instance of the app's current config counts as healthy for a
// deployment (its rolling arithmetic, its progress, its end) only once it
// is ready. Unlike Marathon, instances launched outside a deployment
// (replacements) are checked too, so that an instance never counts before
// it is ready.

const (
	// readinessTick is how often due checks are looked for.
	readinessTick = 100 * time.Millisecond
	// maxReadinessProbes bounds the probes in flight at once.
	maxReadinessProbes = 64
	// maxPreserved bounds a preserved response body.
	maxPreserved = 4 << 10
)

// ReadinessResult is an instance's latest readiness check, as
// /v2/deployments shows it in readinessCheckResults.
type ReadinessResult struct {
	Name   string `json:"name"`
	TaskID string `json:"taskId"`
	Ready  bool   `json:"ready"`
	// LastResponse is the latest answer, when the check preserves it
	// (preserveLastResponse); agora keeps its status code always.
	LastResponse *HTTPResponse `json:"lastResponse"`
}

// HTTPResponse is a readiness check's answer.
type HTTPResponse struct {
	Status      int    `json:"status"`
	ContentType string `json:"contentType"`
	Body        string `json:"body"`
}

// readinessClient keeps no connections to instances between checks.
var readinessClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// needsReadiness says whether instance t of app a waits for its first
// ready answer.
func needsReadiness(a *app, t *Task) bool {
	return len(a.def.ReadinessChecks) > 0 && !t.Ready && t.Goal == GoalRunning && t.ConfigVersion == a.configVersion()
}

// counts says whether instance t of app a counts as healthy for a
// deployment: healthy, and ready when it is of the current config and the
// app has a readiness check.
func counts(a *app, t *Task) bool {
	return t.healthy() && (a == nil || !needsReadiness(a, t))
}

// readinessLoop starts the readiness checks that fall due until ctx
// ends, then waits for those in flight.
func (f *Framework) readinessLoop(ctx context.Context) {
	tk := time.NewTicker(readinessTick)
	defer tk.Stop()
	defer f.probes.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		f.startReadinessChecks(ctx, time.Now())
	}
}

type readinessProbe struct {
	task  *Task
	check plan.ReadinessCheck
	url   string
}

// startReadinessChecks probes the running instances whose check is due.
func (f *Framework) startReadinessChecks(ctx context.Context, now time.Time) {
	var due []readinessProbe
	f.mu.Lock()
	for _, a := range f.sortedApps() {
		if len(a.def.ReadinessChecks) == 0 {
			continue
		}
		rc := a.def.ReadinessChecks[0]
		for _, t := range f.tasksOf(a.def.ID) {
			if f.probing >= maxReadinessProbes {
				break
			}
			if !t.running() || !needsReadiness(a, t) || t.readyChecking || now.Before(t.readyNext) {
				continue
			}
			t.readyChecking, t.readyNext = true, now.Add(seconds(rc.IntervalSeconds))
			f.probing++
			due = append(due, readinessProbe{task: t, check: rc, url: rc.URL(&a.def, t.Host, t.Ports)})
		}
	}
	f.mu.Unlock()
	for _, p := range due {
		f.probes.Add(1)
		go func() {
			defer f.probes.Done()
			f.probeReadiness(ctx, p)
		}()
	}
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// probeReadiness runs one check and records its result.
func (f *Framework) probeReadiness(ctx context.Context, p readinessProbe) {
	res := ReadinessResult{Name: p.check.Name, TaskID: p.task.ID}
	var errText string
	if p.url == "" {
		errText = "the instance has no port named " + p.check.PortName
	} else {
		ctx, cancel := context.WithTimeout(ctx, seconds(p.check.TimeoutSeconds))
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
		resp, err := readinessClient.Do(req)
		if err != nil {
			errText = err.Error()
		} else {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, maxPreserved))
			resp.Body.Close()
			res.Ready = p.check.Ready(resp.StatusCode)
			res.LastResponse = &HTTPResponse{Status: resp.StatusCode}
			if p.check.PreserveLastResponse {
				res.LastResponse.ContentType, _, _ = mime.ParseMediaType(resp.Header.Get("Content-Type"))
				res.LastResponse.Body = string(body)
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.probing--
	t := p.task
	t.readyChecking = false
	if f.tasks[t.ID] != t {
		return // gone meanwhile
	}
	t.readiness = &res
	if !res.Ready {
		f.log.Debug("instance not ready", "task", t.ID, "url", p.url, "err", errText)
		return
	}
	t.Ready = true
	if err := f.store.saveTask(t); err != nil {
		f.log.Error("save instance", "task", t.ID, "err", err)
	}
	f.log.Info("instance ready", "task", t.ID, "app", t.AppID, "url", p.url)
	f.soon()
}

// readinessResults are the latest readiness checks of app id's instances
// of its current config. Call with f.mu held.
func (f *Framework) readinessResults(id string) []any {
	out := []any{}
	a := f.apps[id]
	if a == nil {
		return out
	}
	for _, t := range f.tasksOf(id) {
		if t.readiness != nil && t.ConfigVersion == a.configVersion() {
			out = append(out, *t.readiness)
		}
	}
	return out
}
