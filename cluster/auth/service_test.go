package auth

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestServiceGuard: a guarded API answers 401 with Basic's challenge and
// a message naming what is wrong for missing or wrong credentials, and
// the handler is not reached; right credentials reach it with the
// principal; open paths need none, but not through "..".
func TestServiceGuard(t *testing.T) {
	creds, err := ParseCredentials([]byte(`{"credentials":[{"principal":"ops","secret":"`+HashSecret("s3cret")+`"}]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewServiceGuard(ServiceOptions{Credentials: creds, Realm: "marathon", Open: []string{"/ping", "/umbilical/v1/"}})
	if err != nil {
		t.Fatal(err)
	}
	var reached []string
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := Principal(r.Context())
		reached = append(reached, r.Method+" "+r.URL.Path+" as "+p)
		w.WriteHeader(http.StatusCreated)
	}))
	for _, c := range []struct {
		name, method, path string
		user, pass         string
		code               int
		body               string
	}{
		{"no credentials", "POST", "/v2/apps", "", "", 401, "authentication required: the marathon API"},
		{"wrong secret", "POST", "/v2/apps", "ops", "guess", 401, `invalid credentials for principal "ops"`},
		{"unknown principal", "POST", "/v2/apps", "eve", "s3cret", 401, `invalid credentials for principal "eve"`},
		{"the hash is not the secret", "POST", "/v2/apps", "ops", HashSecret("s3cret"), 401, "invalid credentials"},
		{"dot-dot out of an open path", "POST", "/umbilical/v1/../../v2/apps", "", "", 401, "authentication required"},
		{"right credentials", "POST", "/v2/apps", "ops", "s3cret", 201, ""},
		{"ping is open", "GET", "/ping", "", "", 201, ""},
		{"open prefix", "POST", "/umbilical/v1/commit", "", "", 201, ""},
		{"an open prefix's sibling is not", "GET", "/umbilical/v2", "", "", 401, "authentication required"},
	} {
		t.Run(c.name, func(t *testing.T) {
			reached = nil
			req := httptest.NewRequest(c.method, "http://svc"+c.path, nil)
			req.URL.Path = c.path // keep it as sent, ".." included
			if c.user != "" {
				req.SetBasicAuth(c.user, c.pass)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != c.code || !strings.Contains(string(body), c.body) {
				t.Fatalf("%s %s: %d %q; want %d containing %q", c.method, c.path, rec.Code, body, c.code, c.body)
			}
			if c.code == 401 {
				if got := rec.Header().Get("WWW-Authenticate"); got != `Basic realm="marathon"` {
					t.Errorf("WWW-Authenticate %q", got)
				}
				if len(reached) != 0 {
					t.Errorf("a refused request reached the handler: %v", reached)
				}
			} else if len(reached) != 1 {
				t.Errorf("handler reached %v, want once", reached)
			} else if c.user != "" && !strings.HasSuffix(reached[0], " as ops") {
				t.Errorf("handler saw %q, want principal ops", reached[0])
			}
		})
	}
	if ok, failed := g.Counts(); ok != 1 || failed != 6 {
		t.Errorf("counts: %d authenticated, %d refused; want 1 and 6", ok, failed)
	}
}

func TestServiceGuardOptions(t *testing.T) {
	creds, _ := ParseUserPassword("ops:pw")
	for _, o := range []ServiceOptions{
		{Realm: "marathon"},
		{Credentials: creds},
		{Credentials: creds, Realm: `a"b`},
		{Credentials: creds, Realm: "x", Open: []string{"ping"}},
	} {
		if _, err := NewServiceGuard(o); err == nil {
			t.Errorf("NewServiceGuard(%+v): no error", o)
		}
	}
	var g *ServiceGuard
	if h := g.Wrap(http.NotFoundHandler()); h == nil {
		t.Error("a nil guard wraps nothing")
	}
}

func TestParseUserPassword(t *testing.T) {
	c, err := ParseUserPassword("ops:pa:ss")
	if err != nil || !c.Verify("ops", "pa:ss") || c.Verify("ops", "pa") {
		t.Fatalf("ops:pa:ss: %v; want principal ops with password pa:ss", err)
	}
	for in, want := range map[string]string{"ops": "user:password", ":pw": "empty user", "ops:": `empty password for user "ops"`} {
		if _, err := ParseUserPassword(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseUserPassword(%q): %v, want %q", in, err, want)
		}
	}
}
