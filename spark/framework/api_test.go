package framework

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func call(t *testing.T, h http.Handler, method, path, body string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	var v map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &v)
	return rec.Code, v
}

func TestAPI(t *testing.T) {
	s := testScheduler(t)
	s.agents = func(context.Context) ([]AgentCapacity, error) {
		return []AgentCapacity{{Hostname: "a1", CPUs: 4, Mem: 4096}}, nil
	}
	h := s.Handler()
	for _, tc := range []struct {
		method, path, body string
		code               int
		msg                string
	}{
		{"GET", "/v1/applications/app-x", "", 404, "no application app-x"},
		{"POST", "/v1/applications/app-x/executors", `{"total": 2}`, 404, "no application app-x"},
		{"POST", "/v1/applications/app-x/kill", `{"executorIds": ["1"]}`, 404, "no application app-x"},
		{"DELETE", "/v1/applications/app-x", "", 404, "no application app-x"},
		{"POST", "/v1/applications", `{"appId": `, 400, "malformed request"},
		{"POST", "/v1/applications", `{"appId": "a"}`, 400, "appId and driverUrl are required"},
		{"POST", "/v1/applications", `{"appId": "a", "driverUrl": "x"}`, 400, "is not spark://"},
		{"POST", "/v1/applications", `{"appId": "big", "driverUrl": "spark://CoarseGrainedScheduler@h:1", "conf": {"spark.executor.memory": "8g"}}`,
			400, "more than any agent has (the largest: 4 cpus, 4096 MB mem on a1)"},
		{"POST", "/v1/applications", `{"appId": "role", "driverUrl": "spark://CoarseGrainedScheduler@h:1", "conf": {"spark.mesos.role": "ops"}}`,
			400, "spark.mesos.role=ops is not a role of this scheduler"},
		{"POST", "/v1/applications", `{"appId": "ok", "driverUrl": "spark://CoarseGrainedScheduler@h:1", "conf": {"spark.executor.memory": "1g"}}`, 200, ""},
		{"POST", "/v1/applications", `{"appId": "ok", "driverUrl": "spark://CoarseGrainedScheduler@h:1"}`, 409, "already registered"},
		{"POST", "/v1/applications/ok/executors", `{}`, 400, "total is required"},
		{"POST", "/v1/applications/ok/executors", `{"total": -1}`, 400, "must be >= 0"},
		{"POST", "/v1/applications/ok/executors", `{"total": 2, "hostToLocalTaskCount": {"": 1}}`, 400, "want a host name"},
		{"POST", "/v1/applications/ok/executors", `{"total": 2, "hostToLocalTaskCount": {"h1": -1}}`, 400, `"h1": -1`},
		{"POST", "/v1/applications/ok/executors", `{"total": 3, "hostToLocalTaskCount": {"H1": 4, "h2": 0}}`, 200, ""},
		{"POST", "/v1/applications/ok/kill", `{"executorIds": ["7"]}`, 404, "has no executor 7"},
		{"DELETE", "/v1/applications/ok", "", 200, ""},
		{"POST", "/v1/applications/ok/executors", `{"total": 3}`, 409, "application ok is ended"},
	} {
		code, v := call(t, h, tc.method, tc.path, tc.body)
		msg, _ := v["message"].(string)
		if code != tc.code || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s %s %s = %d %q; want %d %q", tc.method, tc.path, tc.body, code, msg, tc.code, tc.msg)
		}
	}
	code, v := call(t, h, "GET", "/v1/applications/big", "")
	if code != 200 || v["state"] != AppRefused || !strings.Contains(v["message"].(string), "spark.executor.memory 8192 MB") {
		t.Errorf("the refused application: %d %v", code, v)
	}
	if a, _ := s.App("ok"); a.Limit != 3 || a.State != AppEnded || len(a.PreferredHosts) != 1 || a.PreferredHosts["h1"] != 4 {
		t.Errorf("application ok = %+v; want limit 3, ENDED, preferred hosts map[h1:4]", a)
	}
}

// A registered application is shown to the dispatcher's page tied to its
// driver by spark.mesos.driver.frameworkId, with the Spark UI the
// registration named and the scheduler's framework for its executors.
func TestDispatcherApps(t *testing.T) {
	s := testScheduler(t)
	s.agents = func(context.Context) ([]AgentCapacity, error) {
		return []AgentCapacity{{Hostname: "a1", CPUs: 4, Mem: 4096}}, nil
	}
	s.frameworkID = "fw-exec"
	body := `{"appId": "app-1", "appName": "pi", "driverUrl": "spark://CoarseGrainedScheduler@h:1", "uiUrl": "http://h:4040",
		"conf": {"spark.executor.memory": "512m", "spark.mesos.driver.frameworkId": "fw-disp-driver-1"}}`
	if code, v := call(t, s.Handler(), "POST", "/v1/applications", body); code != 200 {
		t.Fatalf("register: %d %v", code, v)
	}
	got := s.DispatcherApps()
	if len(got) != 1 || got[0].ID != "app-1" || got[0].Name != "pi" || got[0].State != AppRunning || got[0].DriverFrameworkID != "fw-disp-driver-1" ||
		got[0].UIURL != "http://h:4040" || got[0].FrameworkID != "fw-exec" || got[0].Executors == nil {
		t.Errorf("DispatcherApps = %+v", got)
	}
}
