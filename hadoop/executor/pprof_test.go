package executor

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/agora-cluster/agora/hadoop/shuffle"
)

// The TaskTracker's profiles are served only when the operator opts in.
func TestPprofIsOptIn(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want int
	}{{"", http.StatusNotFound}, {"false", http.StatusNotFound}, {"true", http.StatusOK}} {
		t.Setenv(EnvEnablePprof, tc.env)
		on, err := parsePprofEnv()
		if err != nil {
			t.Fatal(err)
		}
		tt := &TaskTracker{cfg: Config{EnablePprof: on}, srv: shuffle.NewServer()}
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1"} {
			rec := httptest.NewRecorder()
			tt.handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != tc.want {
				t.Errorf("%s=%q: GET %s = %d, want %d", EnvEnablePprof, tc.env, path, rec.Code, tc.want)
			}
		}
	}
	t.Setenv(EnvEnablePprof, "yes please")
	if _, err := parsePprofEnv(); err == nil {
		t.Errorf("%s=%q was accepted", EnvEnablePprof, "yes please")
	}
}
