package framework

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
)

// With Auth, the API wants a driver's token or an operator's Basic
// credentials (401 naming what is missing, nothing registered); an
// application belongs to the submission whose token registered it, and
// another submission's token is refused on it (403 naming the
// submission) and does not see it; an operator acts on every one; a token
// of a driver that is no longer running is refused.
func TestAPIAuth(t *testing.T) {
	s := testScheduler(t)
	s.agents = func(context.Context) ([]AgentCapacity, error) {
		return []AgentCapacity{{Hostname: "a1", CPUs: 4, Mem: 4096}}, nil
	}
	signer, err := auth.NewTokenSigner(bytes.Repeat([]byte("k"), auth.MinSecretKey))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := auth.ParseUserPassword("operator:op-secret")
	if err != nil {
		t.Fatal(err)
	}
	running := map[string]bool{"driver-1": true, "driver-2": true}
	s.cfg.Auth = &Auth{Tokens: signer, Credentials: creds, Active: func(sub string) bool { return running[sub] }}
	h := s.Handler()
	token := func(sub, aud string) string {
		tok, err := signer.SignSubject(aud, sub, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	do := func(method, path, body, authz string) (int, string) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	register := `{"appId": "app-1", "driverUrl": "spark://CoarseGrainedScheduler@h:1", "conf": {"spark.executor.memory": "1g"}}`
	basic := func(user, pass string) string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, pass)
		return r.Header.Get("Authorization")
	}
	other, _ := auth.NewTokenSigner(bytes.Repeat([]byte("o"), auth.MinSecretKey))
	forged, _ := other.SignSubject(TokenAudience, "driver-1", time.Now().Add(time.Hour))
	for _, tc := range []struct {
		what, authz string
		code        int
		says        string
	}{
		{"no credentials", "", 401, "authentication required"},
		{"another key's token", "Bearer " + forged, 401, "signature"},
		{"another audience's token", token("driver-1", "hadoop"), 401, "audience"},
		{"a wrong secret", basic("operator", "nope"), 401, "invalid credentials for principal"},
		{"an ended driver's token", token("driver-9", TokenAudience), 401, "driver-9: its driver is not running"},
	} {
		if code, body := do("POST", "/v1/applications", register, tc.authz); code != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("register with %s: %d %s; want %d saying %q", tc.what, code, body, tc.code, tc.says)
		}
	}
	if apps := s.Apps(); len(apps) != 0 {
		t.Fatalf("refused registrations left applications: %+v", apps)
	}

	one, two := token("driver-1", TokenAudience), token("driver-2", TokenAudience)
	if code, body := do("POST", "/v1/applications", register, one); code != 200 {
		t.Fatalf("register with driver-1's token: %d %s", code, body)
	}
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/v1/applications/app-1", ""},
		{"POST", "/v1/applications/app-1/executors", `{"total": 0}`},
		{"POST", "/v1/applications/app-1/kill", `{"executorIds": []}`},
		{"DELETE", "/v1/applications/app-1", ""},
	} {
		if code, body := do(tc.method, tc.path, tc.body, two); code != 403 || !strings.Contains(body, "application app-1 belongs to another submission than driver-2") {
			t.Errorf("%s %s with driver-2's token: %d %s; want 403 naming driver-2", tc.method, tc.path, code, body)
		}
	}
	if st, _ := s.App("app-1"); st.State != AppRunning || st.Submission != "driver-1" {
		t.Errorf("after driver-2's refused calls app-1 is %s of %q, want running, driver-1's", st.State, st.Submission)
	}
	var seen []AppStatus
	if code, body := do("GET", "/v1/applications", "", two); code != 200 || json.Unmarshal([]byte(body), &seen) != nil || len(seen) != 0 {
		t.Errorf("driver-2 lists %d %s; want none of driver-1's", code, body)
	}
	if code, body := do("GET", "/v1/applications", "", basic("operator", "op-secret")); code != 200 || !strings.Contains(body, `"submission": "driver-1"`) {
		t.Errorf("the operator lists %d %s; want app-1 of driver-1", code, body)
	}
	if code, body := do("POST", "/v1/applications/app-1/executors", `{"total": 1}`, one); code != 200 {
		t.Errorf("driver-1 sets its total: %d %s", code, body)
	}
	if code, body := do("DELETE", "/v1/applications/app-1", "", basic("operator", "op-secret")); code != 200 {
		t.Errorf("the operator ends app-1: %d %s", code, body)
	}
	// An ended application's ID is not another submission's to take.
	if code, body := do("POST", "/v1/applications", register, two); code != 403 || !strings.Contains(body, "driver-2") {
		t.Errorf("driver-2 registers app-1 again: %d %s; want 403", code, body)
	}
	running["driver-1"] = false
	if code, body := do("POST", "/v1/applications/app-1/executors", `{"total": 1}`, one); code != 401 || !strings.Contains(body, "not running") {
		t.Errorf("driver-1's token once its driver ended: %d %s; want 401", code, body)
	}
}
