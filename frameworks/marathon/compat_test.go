package marathon

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A request gets Marathon's fields only, its times to the millisecond,
// unless it asks for agora's with AgoraFieldsHeader; the views are copies.
func TestMarathonOnlyViews(t *testing.T) {
	for header, want := range map[string]bool{"": true, "true": false, "false": true, "1": true} {
		r := httptest.NewRequest("GET", "/v2/tasks", nil)
		if header != "" {
			r.Header.Set(AgoraFieldsHeader, header)
		}
		if got := marathonOnly(r); got != want {
			t.Errorf("%s: %q: marathonOnly %v, want %v", AgoraFieldsHeader, header, got, want)
		}
	}
	staged := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	ts := []Task{{ID: "a.1", AppID: "/a", State: "TASK_RUNNING", StagedAt: staged, Goal: GoalRunning, ConfigVersion: "v1",
		HealthCheckResults: []HealthResult{{Alive: true, FirstSuccess: &staged}}}}
	ds := []Deployment{{ID: "d", ProgressDeadline: "soon", CurrentActions: []Action{{Action: "ScaleApplication", App: "/a", Progress: &ActionProgress{Instances: 1}}},
		Steps: []Step{{Actions: []Action{{Action: "ScaleApplication", App: "/a", Progress: &ActionProgress{Instances: 1}}}}}}}

	strict := httptest.NewRequest("GET", "/v2/tasks", nil)
	b, _ := json.Marshal(map[string]any{"tasks": tasksFor(strict, ts), "apps": appsFor(strict, []AppView{{Tasks: ts, LastTaskFailure: &TaskFailure{TaskID: "a.0", Timestamp: staged}}}), "deployments": deploymentsFor(strict, ds)})
	for _, field := range []string{"goal", "configVersion", "agent", "progress", "progressDeadline", ".123456789"} {
		if strings.Contains(string(b), field) {
			t.Errorf("Marathon's view has %q: %s", field, b)
		}
	}
	if !strings.Contains(string(b), `"stagedAt":"2026-01-02T03:04:05.123Z"`) ||
		!strings.Contains(string(b), `"firstSuccess":"2026-01-02T03:04:05.123Z"`) || !strings.Contains(string(b), `"timestamp":"2026-01-02T03:04:05.123Z"`) {
		t.Errorf("Marathon's view does not give its times to the millisecond: %s", b)
	}
	if ds[0].CurrentActions[0].Progress == nil || ds[0].Steps[0].Actions[0].Progress == nil || ds[0].ProgressDeadline == "" {
		t.Errorf("the view changed the deployment it was made from: %+v", ds[0])
	}

	agora := httptest.NewRequest("GET", "/v2/tasks", nil)
	agora.Header.Set(AgoraFieldsHeader, "true")
	b, _ = json.Marshal(map[string]any{"tasks": tasksFor(agora, ts), "deployments": deploymentsFor(agora, ds)})
	for _, field := range []string{`"goal"`, `"configVersion"`, `"progress"`, `"progressDeadline"`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("agora's view lacks %s: %s", field, b)
		}
	}
}
