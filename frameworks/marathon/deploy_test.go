package marathon

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/frameworks/marathon/plan"
)

// healthyApp is an app of n instances with a COMMAND health check the
// agent runs every half second; check is its command.
func healthyApp(id, cmd, check string, n int, strategy string) string {
	return fmt.Sprintf(`{"id":%q,"cmd":%q,"cpus":0.1,"mem":16,"instances":%d,
		"healthChecks":[{"protocol":"COMMAND","command":{"value":%q},"delaySeconds":0,
			"intervalSeconds":0.5,"timeoutSeconds":5,"gracePeriodSeconds":600,"maxConsecutiveFailures":3}],
		"upgradeStrategy":%s}`, id, cmd, n, check, strategy)
}

// waitHealthy waits until app id has exactly n instances, all healthy,
// and no deployment in progress, and returns them.
func (e *env) waitHealthy(id string, n int) []Task {
	e.t.Helper()
	var ts []Task
	e.waitFor(fmt.Sprintf("%s to run %d healthy instances", id, n), func() bool {
		var app struct{ App AppView }
		e.must("GET", "/v2/apps"+id, "", 200, &app)
		if app.App.TasksHealthy != n || app.App.TasksRunning != n || len(app.App.Deployments) != 0 {
			return false
		}
		ts = e.tasks(id)
		return len(ts) == n
	})
	return ts
}

// history reads the deployment history.
func (e *env) history() []DeploymentRecord {
	e.t.Helper()
	var out []DeploymentRecord
	e.must("GET", "/v2/deployments?embed=history", "", 200, &out)
	return out
}

// TestHealthAwareRollingRestart restarts a 10-instance app with a
// health check under minimumHealthCapacity 0.7 and maximumOverCapacity
// 0.2: the event stream never shows fewer than 7 healthy instances nor
// more than 12 running, and every instance is replaced.
func TestHealthAwareRollingRestart(t *testing.T) {
	e := startEnv(t)
	e.must("POST", "/v2/apps", healthyApp("/web", "sleep 300", "true", 10,
		`{"minimumHealthCapacity":0.7,"maximumOverCapacity":0.2}`), http.StatusCreated, nil)
	before := e.waitHealthy("/web", 10)
	for _, tk := range before {
		if len(tk.HealthCheckResults) != 1 || !tk.HealthCheckResults[0].Alive || tk.HealthCheckResults[0].FirstSuccess == nil {
			t.Fatalf("task %s healthCheckResults %+v", tk.ID, tk.HealthCheckResults)
		}
	}
	evs := e.events()
	healthy, running := map[string]bool{}, map[string]bool{}
	for _, id := range ids(before) {
		healthy[id], running[id] = true, true
	}
	e.must("POST", "/v2/apps/web/restart", "", http.StatusOK, nil)
	least, most, replaced := 10, 10, 0
	for replaced < 10 {
		ev := nextEvent(t, evs, "instance event", func(ev map[string]any) bool {
			return ev["eventType"] == "status_update_event" || ev["eventType"] == "health_status_changed_event"
		})
		id, _ := ev["taskId"].(string)
		if ev["eventType"] == "health_status_changed_event" {
			healthy[id] = ev["alive"] == true
		} else {
			switch ev["taskStatus"] {
			case "TASK_RUNNING":
				running[id] = true
			case "TASK_KILLED", "TASK_FAILED", "TASK_FINISHED", "TASK_LOST", "TASK_ERROR":
				if !slices.Contains(ids(before), id) {
					t.Fatalf("a new instance ended: %v", ev)
				}
				delete(running, id)
				delete(healthy, id)
				replaced++
			}
		}
		h := 0
		for _, ok := range healthy {
			if ok {
				h++
			}
		}
		least, most = min(least, h), max(most, len(running))
		if h < 7 || len(running) > 12 {
			t.Fatalf("%d healthy and %d running during the restart; want at least 7 healthy and at most 12 running", h, len(running))
		}
	}
	after := e.waitHealthy("/web", 10)
	for _, id := range ids(after) {
		if slices.Contains(ids(before), id) {
			t.Fatalf("instance %s was not replaced", id)
		}
	}
	t.Logf("healthy never below %d, running never above %d", least, most)
}

// TestDeadlineRollsBack deploys a new version whose health check never
// passes: the deployment makes no progress, fails its deadline with the
// reason in the history, and rolls back to the previous version, whose
// instances kept running throughout.
func TestDeadlineRollsBack(t *testing.T) {
	e := startEnv(t)
	strategy := `{"minimumHealthCapacity":1,"maximumOverCapacity":0}`
	e.must("POST", "/v2/apps", healthyApp("/svc", "sleep 300", "true", 2, strategy), http.StatusCreated, nil)
	before := ids(e.waitHealthy("/svc", 2))
	var v1 struct{ App AppView }
	e.must("GET", "/v2/apps/svc", "", 200, &v1)

	var c Change
	e.must("PUT", "/v2/apps/svc?deploymentTimeout=3s", healthyApp("/svc", "sleep 301", "false", 2, strategy), http.StatusOK, &c)
	var failed DeploymentRecord
	e.waitFor("the deployment to fail", func() bool {
		for _, r := range e.history() {
			if r.ID == c.DeploymentID && r.Status != DeploymentRunning {
				failed = r
				return true
			}
		}
		return false
	})
	if failed.Status != DeploymentFailed || !strings.Contains(failed.Reason, "progress deadline") ||
		!strings.Contains(failed.Reason, "rolled back to the previous version (/svc: "+v1.App.Version+")") || failed.RollbackDeploymentID == "" {
		t.Fatalf("failed deployment %+v", failed)
	}
	after := ids(e.waitHealthy("/svc", 2))
	if !slices.Equal(before, after) {
		t.Fatalf("instances %v after the rollback, want the previous version's %v kept", after, before)
	}
	var app struct{ App AppView }
	e.must("GET", "/v2/apps/svc", "", 200, &app)
	if *app.App.Cmd != "sleep 300" || app.App.VersionInfo.LastConfigChangeAt != v1.App.VersionInfo.LastConfigChangeAt {
		t.Fatalf("after the rollback: cmd %q, config version %s, want %s", *app.App.Cmd,
			app.App.VersionInfo.LastConfigChangeAt, v1.App.VersionInfo.LastConfigChangeAt)
	}
	var rb *DeploymentRecord
	for _, r := range e.history() {
		if r.ID == failed.RollbackDeploymentID {
			rb = &r
		}
	}
	if rb == nil || rb.Status != DeploymentSuccess || rb.RollbackOf != c.DeploymentID {
		t.Fatalf("rollback deployment %+v", rb)
	}

	// Every version is kept and readable.
	var vs struct{ Versions []string }
	e.must("GET", "/v2/apps/svc/versions", "", 200, &vs)
	if len(vs.Versions) != 3 || vs.Versions[2] != v1.App.Version {
		t.Fatalf("versions %v, want 3, oldest %s", vs.Versions, v1.App.Version)
	}
	var bad AppView
	e.must("GET", "/v2/apps/svc/versions/"+vs.Versions[1], "", 200, &bad)
	if *bad.Cmd != "sleep 301" {
		t.Fatalf("version %s: cmd %q", vs.Versions[1], *bad.Cmd)
	}
	e.must("GET", "/v2/apps/svc/versions/2000-01-01T00:00:00.000Z", "", 404, nil)
}

// TestCancelDeployment cancels a deployment that cannot finish: DELETE
// rolls it back (the previous version's instances kept), and with
// ?force=true only stops it, leaving the new instance as it is.
func TestCancelDeployment(t *testing.T) {
	e := startEnv(t)
	strategy := `{"minimumHealthCapacity":1,"maximumOverCapacity":0}`
	e.must("POST", "/v2/apps", healthyApp("/api", "sleep 300", "true", 2, strategy), http.StatusCreated, nil)
	before := ids(e.waitHealthy("/api", 2))
	e.must("DELETE", "/v2/deployments/no-such-deployment", "", 404, nil)

	var c Change
	e.must("PUT", "/v2/apps/api", healthyApp("/api", "sleep 301", "false", 2, strategy), http.StatusOK, &c)
	e.waitFor("the new version's instance", func() bool { return len(e.tasks("/api")) == 3 })
	var ds []Deployment
	e.must("GET", "/v2/deployments", "", 200, &ds)
	if len(ds) != 1 || ds[0].ID != c.DeploymentID || ds[0].CurrentActions[0].Action != RestartApplication ||
		ds[0].CurrentActions[0].Progress == nil || ds[0].CurrentActions[0].Progress.OldActive != 2 || ds[0].ProgressDeadline == "" {
		t.Fatalf("deployments %+v", ds)
	}
	var back Change
	h := e.must("DELETE", "/v2/deployments/"+c.DeploymentID, "", http.StatusOK, &back)
	if back.DeploymentID == "" || h.Get("Marathon-Deployment-Id") != back.DeploymentID {
		t.Fatalf("rollback %+v, header %q", back, h.Get("Marathon-Deployment-Id"))
	}
	if after := ids(e.waitHealthy("/api", 2)); !slices.Equal(before, after) {
		t.Fatalf("instances %v after the rollback, want %v kept", after, before)
	}
	var app struct{ App AppView }
	e.must("GET", "/v2/apps/api", "", 200, &app)
	if *app.App.Cmd != "sleep 300" {
		t.Fatalf("cmd %q after the rollback", *app.App.Cmd)
	}
	if r := e.history(); len(r) < 2 || r[1].ID != c.DeploymentID || r[1].Status != DeploymentCanceled || r[1].RollbackDeploymentID != back.DeploymentID {
		t.Fatalf("history %+v", r)
	}

	// With force the deployment just stops: old and new instances stay.
	e.must("PUT", "/v2/apps/api", healthyApp("/api", "sleep 302", "false", 2, strategy), http.StatusOK, &c)
	e.waitFor("the new version's instance", func() bool { return len(e.tasks("/api")) == 3 })
	e.must("DELETE", "/v2/deployments/"+c.DeploymentID+"?force=true", "", http.StatusAccepted, nil)
	e.must("GET", "/v2/deployments", "", 200, &ds)
	if len(ds) != 0 {
		t.Fatalf("deployments after a forced cancel: %+v", ds)
	}
	e.must("GET", "/v2/apps/api", "", 200, &app)
	if *app.App.Cmd != "sleep 302" || len(e.tasks("/api")) != 3 {
		t.Fatalf("after a forced cancel: cmd %q, %d instances", *app.App.Cmd, len(e.tasks("/api")))
	}
}

// TestUnhealthyInstanceReplaced runs an instance whose health check
// passes twice and then fails: the agent kills it after
// maxConsecutiveFailures, the kill is published, and the framework
// replaces it with a new instance.
func TestUnhealthyInstanceReplaced(t *testing.T) {
	e := startEnv(t)
	evs := e.events()
	check := `n=$(cat checks 2>/dev/null || echo 0); echo $((n+1)) > checks; [ "$n" -lt 2 ]`
	e.must("POST", "/v2/apps", fmt.Sprintf(`{"id":"/flaky","cmd":"sleep 300","cpus":0.1,"mem":16,"instances":1,
		"healthChecks":[{"protocol":"COMMAND","command":{"value":%q},"delaySeconds":0,"intervalSeconds":0.3,
			"timeoutSeconds":5,"gracePeriodSeconds":0,"maxConsecutiveFailures":1}]}`, check), http.StatusCreated, nil)
	alive := nextEvent(t, evs, "health_status_changed_event alive", func(ev map[string]any) bool {
		return ev["eventType"] == "health_status_changed_event" && ev["alive"] == true
	})
	first, _ := alive["taskId"].(string)
	nextEvent(t, evs, "health_status_changed_event not alive", func(ev map[string]any) bool {
		return ev["eventType"] == "health_status_changed_event" && ev["alive"] == false && ev["taskId"] == first
	})
	nextEvent(t, evs, "unhealthy_task_kill_event", func(ev map[string]any) bool {
		return ev["eventType"] == "unhealthy_task_kill_event" && ev["taskId"] == first
	})
	nextEvent(t, evs, "a replacement running", func(ev map[string]any) bool {
		return ev["eventType"] == "status_update_event" && ev["taskStatus"] == "TASK_RUNNING" && ev["taskId"] != first
	})
}

// TestGroupDependencies posts a group whose web app depends on its db:
// one deployment in two steps, web's instances launched only once db's
// are healthy; a cycle is a 422 naming it and creates nothing; the group
// scales and deletes as a whole.
func TestGroupDependencies(t *testing.T) {
	e := startEnv(t)
	evs := e.events()
	app := func(id, deps string) string {
		return fmt.Sprintf(`{"id":%q,"cmd":"sleep 300","cpus":0.1,"mem":16,"instances":1,"dependencies":%s,
			"healthChecks":[{"protocol":"COMMAND","command":{"value":"true"},"delaySeconds":1,"intervalSeconds":0.5,
				"gracePeriodSeconds":60}]}`, id, deps)
	}
	var c Change
	e.must("POST", "/v2/groups", `{"id":"/shop","apps":[`+app("web", `["db"]`)+`,`+app("db", `[]`)+`]}`, http.StatusCreated, &c)
	var ds []Deployment
	e.must("GET", "/v2/deployments", "", 200, &ds)
	if len(ds) != 1 || ds[0].ID != c.DeploymentID || ds[0].TotalSteps != 2 ||
		ds[0].Steps[0].Actions[0].App != "/shop/db" || ds[0].Steps[1].Actions[0].App != "/shop/web" {
		t.Fatalf("deployments %+v", ds)
	}
	dbHealthy := false
	for {
		ev := nextEvent(t, evs, "the web app's instance", func(ev map[string]any) bool {
			return ev["eventType"] == "status_update_event" || ev["eventType"] == "health_status_changed_event"
		})
		if ev["appId"] == "/shop/db" && ev["eventType"] == "health_status_changed_event" && ev["alive"] == true {
			dbHealthy = true
		}
		if ev["appId"] == "/shop/web" {
			if !dbHealthy {
				t.Fatalf("web's instance reported before db was healthy: %v", ev)
			}
			break
		}
	}
	e.waitHealthy("/shop/web", 1)
	var g GroupView
	e.must("GET", "/v2/groups", "", 200, &g)
	if g.ID != "/" || len(g.Groups) != 1 || g.Groups[0].ID != "/shop" || len(g.Groups[0].Apps) != 2 {
		t.Fatalf("root group %+v", g)
	}

	var inv struct {
		Details []struct {
			Path   string
			Errors []string
		}
	}
	e.must("POST", "/v2/groups", `{"id":"/cyc","apps":[`+app("a", `["b"]`)+`,`+app("b", `["../cyc/a"]`)+`]}`, 422, &inv)
	if len(inv.Details) != 1 || !strings.Contains(inv.Details[0].Errors[0], "dependency cycle: /cyc/a → /cyc/b → /cyc/a") {
		t.Fatalf("cycle 422 %+v", inv)
	}
	e.must("GET", "/v2/groups/cyc", "", 404, nil)
	e.must("PUT", "/v2/apps/shop/db", `{"dependencies":["/shop/web"]}`, 422, &inv)
	if !strings.Contains(inv.Details[0].Errors[0], "dependency cycle") {
		t.Fatalf("cycle 422 %+v", inv)
	}
	e.must("PUT", "/v2/apps/shop/db", `{"dependencies":["/nowhere"]}`, 422, &inv)
	if inv.Details[0].Path != "/dependencies(0)" || !strings.Contains(inv.Details[0].Errors[0], "no app or group /nowhere") {
		t.Fatalf("unknown dependency 422 %+v", inv)
	}

	e.must("PUT", "/v2/groups/shop", `{"scaleBy":2}`, http.StatusOK, nil)
	e.waitHealthy("/shop/db", 2)
	e.waitHealthy("/shop/web", 2)
	e.must("DELETE", "/v2/groups/shop", "", http.StatusOK, nil)
	e.waitFor("the group to go", func() bool {
		code, _, _ := e.call("GET", "/v2/groups/shop", "")
		return code == 404 && e.masterRunning() == 0
	})
}

// TestRestartKeepsDeployment restarts the framework in the middle of a
// deployment that cannot finish: the deployment is still there after
// the restart, the instances are adopted (the old version's not killed
// while their health is re-learned), and cancelling it still rolls back.
func TestRestartKeepsDeployment(t *testing.T) {
	e := startEnv(t)
	strategy := `{"minimumHealthCapacity":1,"maximumOverCapacity":0}`
	e.must("POST", "/v2/apps", healthyApp("/kept", "sleep 300", "true", 2, strategy), http.StatusCreated, nil)
	before := ids(e.waitHealthy("/kept", 2))
	var c Change
	e.must("PUT", "/v2/apps/kept", healthyApp("/kept", "sleep 301", "false", 2, strategy), http.StatusOK, &c)
	e.waitFor("the new version's instance", func() bool {
		ts := e.tasks("/kept")
		return len(ts) == 3 && !slices.ContainsFunc(ts, func(tk Task) bool { return tk.State != "TASK_RUNNING" })
	})
	all := ids(e.tasks("/kept"))
	e.stop()
	e.startFramework()
	var ds []Deployment
	e.must("GET", "/v2/deployments", "", 200, &ds)
	if len(ds) != 1 || ds[0].ID != c.DeploymentID {
		t.Fatalf("deployments after a restart %+v, want %s", ds, c.DeploymentID)
	}
	e.waitFor("the instances' health re-learned", func() bool {
		var app struct{ App AppView }
		e.must("GET", "/v2/apps/kept", "", 200, &app)
		return app.App.TasksHealthy == 2
	})
	if now := ids(e.tasks("/kept")); !slices.Equal(now, all) {
		t.Fatalf("instances %v after the restart, want %v adopted", now, all)
	}
	e.must("DELETE", "/v2/deployments/"+c.DeploymentID, "", http.StatusOK, nil)
	if after := ids(e.waitHealthy("/kept", 2)); !slices.Equal(before, after) {
		t.Fatalf("instances %v after the rollback, want %v kept", after, before)
	}
}

// TestVersionsPruned: an app keeps its newest MaxVersions versions; an
// older one is gone from /v2/apps/ID/versions and answers 404.
func TestVersionsPruned(t *testing.T) {
	fw, err := New(Config{Masters: []string{"127.0.0.1:1"}, WorkDir: t.TempDir(), MaxVersions: 3})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fw.Handler())
	defer srv.Close()
	e := &env{t: t, fw: fw, url: srv.URL}
	e.must("POST", "/v2/apps", `{"id":"/v","cmd":"sleep 1","cpus":0.1,"mem":16,"instances":0}`, http.StatusCreated, nil)
	var first struct{ Versions []string }
	e.must("GET", "/v2/apps/v/versions", "", http.StatusOK, &first)
	for i := 2; i <= 5; i++ {
		e.must("PUT", "/v2/apps/v?force=true", fmt.Sprintf(`{"cmd":"sleep %d"}`, i), http.StatusOK, nil)
	}
	var vs struct{ Versions []string }
	e.must("GET", "/v2/apps/v/versions", "", http.StatusOK, &vs)
	if len(first.Versions) != 1 || len(vs.Versions) != 3 || slices.Contains(vs.Versions, first.Versions[0]) {
		t.Fatalf("versions %v after 5 definitions (first %v), want the newest 3", vs.Versions, first.Versions)
	}
	var newest plan.App
	e.must("GET", "/v2/apps/v/versions/"+vs.Versions[0], "", http.StatusOK, &newest)
	if newest.Cmd == nil || *newest.Cmd != "sleep 5" {
		t.Fatalf("the first listed version runs %v, want the newest (sleep 5)", newest.Cmd)
	}
	e.must("GET", "/v2/apps/v/versions/"+first.Versions[0], "", http.StatusNotFound, nil)
}
