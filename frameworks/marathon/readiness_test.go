package marathon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// readyApp is an app of n instances serving dir over HTTP on its port
// "http-api", with a readiness check on /ready there (a file of dir).
func readyApp(dir string, n int) string {
	return fmt.Sprintf(`{"id":"/api","cmd":"exec busybox httpd -f -p $PORT0 -h %s","cpus":0.1,"mem":16,"instances":%d,
		"portDefinitions":[{"port":0,"name":"http-api"}],
		"readinessChecks":[{"path":"/ready","portName":"http-api","intervalSeconds":1,"timeoutSeconds":0.9,
			"httpStatusCodesForReady":[200,204],"preserveLastResponse":true}],
		"upgradeStrategy":{"minimumHealthCapacity":1,"maximumOverCapacity":0.5}}`, dir, n)
}

// TestReadinessGatesRollingRestart restarts a 2-instance app whose
// readiness endpoint answers 404 for new instances: the new instance
// runs but is not ready, so under minimumHealthCapacity 1 no old
// instance is killed, and /v2/deployments shows the check's results with
// the last response. Once the endpoint answers 200 the restart goes on
// and ends with every instance replaced and ready.
func TestReadinessGatesRollingRestart(t *testing.T) {
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Fatal("needs busybox httpd for the instances' endpoint: make test-deps installs busybox-static")
	}
	e := startEnv(t)
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	if err := os.WriteFile(ready, []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Bad readiness checks are refused, naming the field.
	for _, c := range []struct{ from, to, field string }{
		{`"portName":"http-api"`, `"portName":"nosuch"`, "portName"},
		{`"timeoutSeconds":0.9`, `"timeoutSeconds":2`, "timeoutSeconds"},
		{`"httpStatusCodesForReady":[200,204]`, `"httpStatusCodesForReady":[]`, "httpStatusCodesForReady"},
	} {
		code, b, _ := e.call("POST", "/v2/apps", strings.Replace(readyApp(dir, 2), c.from, c.to, 1))
		if code != 422 || !strings.Contains(string(b), "/readinessChecks(0)/"+c.field) {
			t.Errorf("app with %s: %d %s, want 422 naming /readinessChecks(0)/%s", c.to, code, b, c.field)
		}
	}
	if code, b, _ := e.call("GET", "/v2/apps/api", ""); code != 404 {
		t.Fatalf("a refused app was created: %d %s", code, b)
	}

	e.must("POST", "/v2/apps", readyApp(dir, 2), http.StatusCreated, nil)
	before := e.waitRunning("/api", 2)
	for _, tk := range before {
		if !tk.Ready {
			t.Fatalf("the first deployment ended with instance %s not ready", tk.ID)
		}
	}
	var app struct{ App AppView }
	e.must("GET", "/v2/apps/api", "", 200, &app)
	if rc := app.App.ReadinessChecks; len(rc) != 1 || rc[0].Name != "readinessCheck" || rc[0].Protocol != "HTTP" {
		t.Fatalf("readinessChecks %+v, want one with Marathon's defaults filled in", rc)
	}

	if err := os.Remove(ready); err != nil {
		t.Fatal(err)
	}
	var c Change
	e.must("POST", "/v2/apps/api/restart", "", http.StatusOK, &c)
	var result ReadinessResult
	e.waitFor("a new instance to be checked and found not ready", func() bool {
		var ds []struct {
			ID             string
			CurrentActions []struct {
				ReadinessCheckResults []ReadinessResult `json:"readinessCheckResults"`
			} `json:"currentActions"`
		}
		e.must("GET", "/v2/deployments", "", 200, &ds)
		for _, d := range ds {
			for _, a := range d.CurrentActions {
				for _, r := range a.ReadinessCheckResults {
					if d.ID == c.DeploymentID && !slices.Contains(ids(before), r.TaskID) && r.LastResponse != nil {
						result = r
						return true
					}
				}
			}
		}
		return false
	})
	if result.Ready || result.Name != "readinessCheck" || result.LastResponse.Status != 404 || !strings.Contains(result.LastResponse.Body, "404") {
		t.Fatalf("readiness result %+v (response %+v), want not ready with the 404 kept", result, result.LastResponse)
	}
	var embedded struct {
		Apps []struct {
			ID                    string            `json:"id"`
			ReadinessCheckResults []ReadinessResult `json:"readinessCheckResults"`
		} `json:"apps"`
	}
	e.must("GET", "/v2/apps?embed=apps.readiness", "", 200, &embedded)
	if len(embedded.Apps) != 1 || len(embedded.Apps[0].ReadinessCheckResults) == 0 {
		t.Fatalf("/v2/apps?embed=apps.readiness: %+v, want the readiness results", embedded.Apps)
	}
	// The framework has decided on what it saw: the old instances stay
	// while the new one is not ready.
	e.fw.converge(context.Background())
	ts := e.tasks("/api")
	old := 0
	for _, tk := range ts {
		if slices.Contains(ids(before), tk.ID) {
			if tk.Goal != GoalRunning {
				t.Fatalf("old instance %s is %s while the new one is not ready", tk.ID, tk.Goal)
			}
			old++
		}
	}
	if old != 2 || len(ts) != 3 {
		t.Fatalf("%d instances, %d old: want the 2 old ones and 1 new (maximumOverCapacity 0.5)", len(ts), old)
	}

	if err := os.WriteFile(ready, []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	after := e.waitRunning("/api", 2)
	for _, tk := range after {
		if slices.Contains(ids(before), tk.ID) || !tk.Ready {
			t.Fatalf("after the restart: instance %s (ready %v); want every instance new and ready", tk.ID, tk.Ready)
		}
	}
	for _, r := range e.history() {
		if r.ID == c.DeploymentID && r.Status != DeploymentSuccess {
			t.Fatalf("the restart ended %s: %s", r.Status, r.Reason)
		}
	}
	var raw []map[string]any
	e.must("GET", "/v2/apps/api/tasks", "", 200, &struct{ Tasks *[]map[string]any }{&raw})
	if b, _ := json.Marshal(raw); !strings.Contains(string(b), `"ready":true`) {
		t.Errorf("tasks JSON %s: want ready shown", b)
	}
}
