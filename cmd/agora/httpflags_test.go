package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/master"
)

// TestMasterHTTPFlags: --enable_pprof and --cors_allowed_origins reach the
// master's HTTP endpoints; without them, neither profiles nor CORS.
func TestMasterHTTPFlags(t *testing.T) {
	const dash = "https://dash.example.com"
	for _, tc := range []struct {
		args   []string
		pprof  int
		origin string
	}{
		{nil, http.StatusNotFound, ""},
		{[]string{"--enable_pprof", "--cors_allowed_origins=" + dash}, http.StatusOK, dash},
	} {
		cfg, err := masterWithFlags(t, tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		m, err := master.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(m.Handler(nil))
		resp, err := http.Get(srv.URL + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.pprof {
			t.Errorf("%q: /debug/pprof/ = %d, want %d", tc.args, resp.StatusCode, tc.pprof)
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/health", nil)
		req.Header.Set("Origin", dash)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.origin {
			t.Errorf("%q: Access-Control-Allow-Origin %q, want %q", tc.args, got, tc.origin)
		}
		srv.Close()
	}
}

// --recovery_gc_percent reaches the master (0: the collector left alone),
// and a negative one is refused naming the flag.
func TestMasterRecoveryGCPercentFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
		err  string
	}{
		{nil, master.DefaultRecoveryGCPercent, ""},
		{[]string{"--recovery_gc_percent=1600"}, 1600, ""},
		{[]string{"--recovery_gc_percent=0"}, -1, ""},
		{[]string{"--recovery_gc_percent=-5"}, 0, "--recovery_gc_percent=-5"},
	} {
		cfg, err := masterWithFlags(t, tc.args...)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one naming %s", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if cfg.RecoveryGCPercent != tc.want {
			t.Errorf("%q: RecoveryGCPercent %d, want %d", tc.args, cfg.RecoveryGCPercent, tc.want)
		}
	}
}
