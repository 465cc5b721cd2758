package auth

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLoadCredentialsForms: each way of giving a secret verifies that
// secret and no other, and an unknown principal is refused.
func TestLoadCredentialsForms(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "ops.secret", "from-a-file\n")
	hashed, err := bcrypt.GenerateFromPassword([]byte("bcrypted"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, dir, "credentials.json", `{
  "credentials": [
    {"principal": "plain", "secret": "s3cret"},
    {"principal": "ops", "secret_file": "ops.secret"},
    {"principal": "hashed", "secret": "`+HashSecret("sha")+`"},
    {"principal": "bc", "secret": "`+string(hashed)+`"}
  ]
}`)
	c, err := LoadCredentials(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		principal, secret string
		ok                bool
	}{
		{"plain", "s3cret", true},
		{"plain", "s3cret ", false},
		{"plain", "", false},
		{"ops", "from-a-file", true},
		{"ops", "ops.secret", false},
		{"hashed", "sha", true},
		{"hashed", HashSecret("sha"), false}, // the hash is not the secret
		{"bc", "bcrypted", true},
		{"bc", "bcrypted", true}, // the second time from the cache
		{"bc", "other", false},
		{"nobody", "s3cret", false},
		{"", "", false},
	} {
		if got := c.Verify(tc.principal, tc.secret); got != tc.ok {
			t.Errorf("Verify(%q, %q) = %v, want %v", tc.principal, tc.secret, got, tc.ok)
		}
	}
	text, err := ParseCredentials([]byte("alice one\n\nbob two\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if !text.Verify("alice", "one") || !text.Verify("bob", "two") || text.Verify("alice", "two") {
		t.Error("the text form's pairs do not verify as written")
	}
}

// TestLoadCredentialsErrors: every bad file is an error naming what is
// wrong and where.
func TestLoadCredentialsErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "empty.secret", "\n")
	for _, tc := range []struct {
		name, content string
		want          []string
	}{
		{"empty", "  \n", []string{"empty"}},
		{"syntax", "{\n  \"credentials\": [\n    {\"principal\": \"a\" \"secret\": \"b\"}\n  ]\n}", []string{"line 3", "malformed JSON"}},
		{"truncated", "{\"credentials\": [\n", []string{"line 2", "unexpected end"}},
		{"type", "{\"credentials\": [\n {\"principal\": 7, \"secret\": \"b\"}]}", []string{"line 2", `"credentials.principal"`, "string"}},
		{"unknown field", "{\"credentials\": [\n {\"principal\": \"a\", \"password\": \"b\"}]}", []string{"line 2", `"password"`, "known: principal, secret, secret_file"}},
		{"no list", `{"creds": []}`, []string{`unknown field "creds"`}},
		{"missing list", `{}`, []string{`no "credentials" list`}},
		{"empty list", `{"credentials": []}`, []string{"no credentials"}},
		{"duplicate", `{"credentials": [{"principal": "a", "secret": "1"}, {"principal": "a", "secret": "2"}]}`, []string{"credential 2", `"a"`, "duplicate principal"}},
		{"empty principal", `{"credentials": [{"principal": "", "secret": "1"}]}`, []string{"credential 1", "empty principal"}},
		{"empty secret", `{"credentials": [{"principal": "a", "secret": ""}]}`, []string{`principal "a"`, "empty secret"}},
		{"both", `{"credentials": [{"principal": "a", "secret": "1", "secret_file": "x"}]}`, []string{"not both"}},
		{"no secret file", `{"credentials": [{"principal": "a", "secret_file": "missing.secret"}]}`, []string{"secret_file", "missing.secret"}},
		{"empty secret file", `{"credentials": [{"principal": "a", "secret_file": "empty.secret"}]}`, []string{"empty.secret", "is empty"}},
		{"bad sha256", `{"credentials": [{"principal": "a", "secret": "sha256:abc"}]}`, []string{"64 hex digits"}},
		{"bad bcrypt", `{"credentials": [{"principal": "a", "secret": "$2a$xx"}]}`, []string{"bcrypt"}},
		{"trailing", `{"credentials": [{"principal": "a", "secret": "1"}]} {}`, []string{"after the JSON object"}},
		{"text fields", "alice one\nbob\n", []string{"line 2", "principal secret"}},
	} {
		path := writeFile(t, dir, strings.ReplaceAll(tc.name, " ", "_")+".json", tc.content)
		_, err := LoadCredentials(path)
		if err == nil {
			t.Errorf("%s: loaded, want an error", tc.name)
			continue
		}
		for _, w := range append(tc.want, path) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, w)
			}
		}
	}
	if _, err := LoadCredentials(filepath.Join(dir, "absent.json")); err == nil || !strings.Contains(err.Error(), "absent.json") {
		t.Errorf("a missing file: %v, want an error naming it", err)
	}
}

// TestLoadCredential: the agent's and clients' single credential.
func TestLoadCredential(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "agent.secret", "pw\n")
	for _, tc := range []struct{ content, principal, secret, err string }{
		{`{"principal": "agent", "secret": "pw"}`, "agent", "pw", ""},
		{`{"principal": "agent", "secret_file": "agent.secret"}`, "agent", "pw", ""},
		{"agent pw\n", "agent", "pw", ""},
		{`{"principal": "agent"}`, "", "", "empty secret"},
		{`{"secret": "pw"}`, "", "", "empty principal"},
		{"a 1\nb 2\n", "", "", "exactly one"},
		{`{"credentials": []}`, "", "", `unknown field "credentials"`},
	} {
		c, err := LoadCredential(writeFile(t, dir, "credential", tc.content))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one saying %q", tc.content, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.content, err)
		case tc.err == "" && (c.Principal != tc.principal || c.Secret != tc.secret):
			t.Errorf("%q: got %+v, want %s/%s", tc.content, c, tc.principal, tc.secret)
		}
	}
}

// TestAuthenticate: a realm that needs credentials answers 401 with Basic's
// challenge and the flag's name without them or with wrong ones, and
// passes the principal on with the right ones; the counters follow.
func TestAuthenticate(t *testing.T) {
	creds, err := ParseCredentials([]byte(`{"credentials": [{"principal": "ops", "secret": "pw"}]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Credentials: creds, HTTPReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var reached []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		realm := ReadOnly
		if r.URL.Path == "/write" {
			realm = ReadWrite
		}
		if r = a.Authenticate(w, r, realm); r == nil {
			return
		}
		p, _ := Principal(r.Context())
		reached = append(reached, r.URL.Path+" as "+p)
	})
	for _, tc := range []struct {
		path, principal, secret string
		code                    int
		body                    string
	}{
		{"/read", "", "", http.StatusUnauthorized, "--authenticate_http_readonly"},
		{"/read", "ops", "wrong", http.StatusUnauthorized, `invalid credentials for principal "ops"`},
		{"/read", "ops", "pw", http.StatusOK, ""},
		{"/write", "", "", http.StatusOK, ""}, // --authenticate_http_readwrite is off
	} {
		req := httptest.NewRequest(http.MethodGet, tc.path, nil)
		if tc.principal != "" {
			req.SetBasicAuth(tc.principal, tc.secret)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("%s as %q: %d %q, want %d saying %q", tc.path, tc.principal, rec.Code, rec.Body, tc.code, tc.body)
		}
		if tc.code == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") != `Basic realm="agora"` {
			t.Errorf("%s: WWW-Authenticate %q", tc.path, rec.Header().Get("WWW-Authenticate"))
		}
	}
	if want := []string{"/read as ops", "/write as "}; strings.Join(reached, ",") != strings.Join(want, ",") {
		t.Errorf("handler reached for %q, want %q", reached, want)
	}
	m := a.Metrics("master")
	if m["master/http_authentication_successes"] != 1 || m["master/http_authentication_failures"] != 2 {
		t.Errorf("metrics %v, want 1 success and 2 failures", m)
	}
	if _, err := New(Options{Agents: true}); err == nil || !strings.Contains(err.Error(), "--authenticate_agents needs --credentials") {
		t.Errorf("a flag without credentials: %v", err)
	}
}

// FuzzParseCredentials: no credentials file makes the parser panic; one
// it accepts holds at least one principal and verifies no secret for a
// principal it does not name.
func FuzzParseCredentials(f *testing.F) {
	for _, seed := range []string{
		`{"credentials": [{"principal": "a", "secret": "s"}]}`,
		`{"credentials": [{"principal": "a", "secret": "sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"}]}`,
		`{"credentials": [{"principal": "a", "secret": "$2b$04$abcdefghijklmnopqrstuu"}]}`,
		`{"credentials": [{"principal": "a", "secret_file": "missing"}]}`,
		"a s\nb t\n",
		`{"credentials": [{"principal": "a",, }]}`,
		`{"credentials": null}`,
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCredentials(data, dir)
		if err != nil {
			return
		}
		if len(c.secrets) == 0 {
			t.Fatalf("accepted %q with no principal", data)
		}
		if c.Verify("\x00not-a-principal\x00", "") {
			t.Fatalf("%q: an unknown principal verified", data)
		}
	})
}
