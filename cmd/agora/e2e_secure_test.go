package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSecureDevAndClientCredentials: `agora dev --secure` asks for
// credentials; the CLI without them exits 1 telling which flags to pass,
// and with them (flags or environment) lists the agent and runs a task.
func TestSecureDevAndClientCredentials(t *testing.T) {
	work := t.TempDir()
	_, master := startBound(t, "dev", "--secure", "--port=0", "--work_dir", work)
	secretFile := filepath.Join(work, "secure", "operator.secret")
	secret, err := os.ReadFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get("http://" + master + "/master/state"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /master/state without credentials: %s, want 401", resp.Status)
	}
	_, stderr, code := runClient(t, master, "agents")
	if code != 1 || !strings.Contains(stderr, "401") || !strings.Contains(stderr, "--principal=NAME --secret_file=FILE") {
		t.Fatalf("agora agents without credentials: exit %d, stderr %q; want 1 and the flags to pass", code, stderr)
	}
	_, stderr, code = runClient(t, master, "agents", "--principal=operator", "--secret_file="+secretFile+".missing")
	if code != 2 || !strings.Contains(stderr, "--secret_file") {
		t.Errorf("agora agents with a missing secret file: exit %d, stderr %q; want 2 naming --secret_file", code, stderr)
	}
	// The agent presented its generated credential: the master lists it.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, stderr, code := runClient(t, master, "agents", "--principal=operator", "--secret_file="+secretFile)
		if code != 0 {
			t.Fatalf("agora agents --principal --secret_file: exit %d: %s", code, stderr)
		}
		if strings.Contains(out, "true") { // its ACTIVE column
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agora agents lists no active agent within 60 s: %s", out)
		}
	}
	t.Setenv("AGORA_PRINCIPAL", "operator")
	t.Setenv("AGORA_SECRET", strings.TrimSpace(string(secret)))
	out, stderr, code := runClient(t, master, "run", "--", "echo", "authenticated-hello")
	if code != 0 || !strings.Contains(out, "authenticated-hello") {
		t.Fatalf("agora run with AGORA_PRINCIPAL/AGORA_SECRET: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}

// TestMasterRefusesBadCredentials: a bad credentials file, or an
// authenticate flag without one, stops the master at start with exit 2
// and a message naming the flag and the problem.
func TestMasterRefusesBadCredentials(t *testing.T) {
	dir := t.TempDir()
	dup := filepath.Join(dir, "dup.json")
	if err := os.WriteFile(dup, []byte(`{"credentials": [{"principal": "a", "secret": "1"},`+"\n"+`{"principal": "a", "secret": "2"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.json")
	if err := os.WriteFile(broken, []byte("{\"credentials\": [\n{\"principal\": \"a\",, }]}"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		says []string
	}{
		{[]string{"--authenticate_agents"}, []string{"--authenticate_agents needs --credentials"}},
		{[]string{"--credentials=" + filepath.Join(dir, "absent.json")}, []string{"--credentials", "absent.json", "no such file"}},
		{[]string{"--credentials=" + dup, "--authenticate_http_readonly"}, []string{"--credentials", `principal "a"`, "duplicate principal"}},
		{[]string{"--credentials=" + broken}, []string{"--credentials", "line 2", "malformed JSON"}},
	} {
		_, stderr, code := runClient(t, "127.0.0.1:1", append([]string{"master", "--port=0", "--work_dir=" + filepath.Join(dir, "master")}, tc.args...)...)
		if code != 2 {
			t.Errorf("agora master %q: exit %d, want 2 (stderr %q)", tc.args, code, stderr)
		}
		for _, s := range tc.says {
			if !strings.Contains(stderr, s) {
				t.Errorf("agora master %q: stderr %q does not say %q", tc.args, stderr, s)
			}
		}
	}
}
