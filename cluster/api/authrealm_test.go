package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/agora-cluster/agora/cluster/auth"
)

// TestAuthRealm: which --authenticate_* flag covers each of the master's
// and agents' routes. Only /health, /version and the executor API are
// open; a path not named anywhere is read-only for GET and read-write
// otherwise, so a route added later is never left open.
func TestAuthRealm(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         auth.Realm
	}{
		{"GET", "/health", auth.Open},
		{"GET", "/master/health", auth.Open},
		{"GET", "/slave(1)/health", auth.Open},
		{"GET", "/version", auth.Open},
		{"POST", "/api/v1/executor", auth.Open},
		{"POST", "/slave(1)/api/v1/executor", auth.Open},
		{"POST", "/api/v1/scheduler", auth.Frameworks},
		{"POST", "/master/api/v1/scheduler", auth.Frameworks},
		{"POST", AgentPath, auth.Agents},
		{"POST", "/api/v1", auth.ReadWrite},
		{"POST", "/master/api/v1", auth.ReadWrite},
		{"POST", "/slave(1)/api/v1", auth.ReadWrite},
		{"GET", "/weights", auth.ReadWrite},
		{"PUT", "/master/weights", auth.ReadWrite},
		{"POST", "/master/reserve", auth.ReadWrite},
		{"POST", "/unreserve", auth.ReadWrite},
		{"POST", "/create-volumes", auth.ReadWrite},
		{"POST", "/destroy-volumes", auth.ReadWrite},
		{"GET", "/quota", auth.ReadWrite},
		{"DELETE", "/quota/eng", auth.ReadWrite},
		{"POST", "/maintenance/schedule", auth.ReadWrite},
		{"POST", "/machine/down", auth.ReadWrite},
		{"POST", "/machine/up", auth.ReadWrite},
		{"POST", "/teardown", auth.ReadWrite},
		{"POST", "/a-route-added-later", auth.ReadWrite},
		{"GET", "/master/state", auth.ReadOnly},
		{"GET", "/state.json", auth.ReadOnly},
		{"GET", "/slave(1)/state", auth.ReadOnly},
		{"GET", "/master/state-summary", auth.ReadOnly},
		{"GET", "/frameworks", auth.ReadOnly},
		{"GET", "/slaves", auth.ReadOnly},
		{"GET", "/tasks", auth.ReadOnly},
		{"GET", "/flags", auth.ReadOnly},
		{"GET", "/metrics/snapshot", auth.ReadOnly},
		{"GET", "/metrics", auth.ReadOnly},
		{"GET", "/maintenance/status", auth.ReadOnly},
		{"GET", "/explain", auth.ReadOnly},
		{"GET", "/files/read", auth.ReadOnly},
		{"GET", "/monitor/statistics", auth.ReadOnly},
		{"GET", "/agent/S1/files/download", auth.ReadOnly},
		{"GET", "/debug/pprof/", auth.ReadOnly},
		{"GET", "/", auth.ReadOnly},
		{"GET", "/ui/app.js", auth.ReadOnly},
		{"HEAD", "/a-route-added-later", auth.ReadOnly},
		{"GET", "/healthz", auth.ReadOnly},
		{"GET", "/masterful/health", auth.ReadOnly},
	} {
		if got := AuthRealm(httptest.NewRequest(tc.method, tc.path, nil)); got != tc.want {
			t.Errorf("%s %s: realm %s, want %s", tc.method, tc.path, got.Flag(), tc.want.Flag())
		}
	}
}

// TestWrapAuthenticatesFirst: a refused request reaches neither the
// handler nor the profiles.
func TestWrapAuthenticatesFirst(t *testing.T) {
	creds, err := auth.ParseCredentials([]byte("ops pw\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Options{Credentials: creds, HTTPReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	reached := false
	h := HTTPOptions{EnablePprof: true, Auth: authn}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.Principal(r.Context())
		reached = p == "ops"
	}))
	for _, path := range []string{"/debug/pprof/", "/state"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusUnauthorized || reached {
			t.Errorf("GET %s without credentials: %d (handler reached: %v), want 401", path, rec.Code, reached)
		}
	}
	req := httptest.NewRequest("GET", "/state", nil)
	req.SetBasicAuth("ops", "pw")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if !reached {
		t.Error("GET /state with credentials did not reach the handler with the principal")
	}
}
