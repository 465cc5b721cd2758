package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	wordcount "github.com/agora-cluster/agora/examples/storm-wordcount"
)

// TestCommandsExplainUnauthorized: the commands that read the master
// before anything else (storm's, to find Nimbus or the native
// topologies), the services that subscribe with it, and spark kill,
// meeting a 401 exit 1 saying which flags carry credentials; meeting a
// 403 they print the answer, which names the principal refused.
func TestCommandsExplainUnauthorized(t *testing.T) {
	t.Setenv("AGORA_PRINCIPAL", "")
	t.Setenv("AGORA_SECRET", "")
	t.Setenv("AGORA_CA_FILE", "")
	// The master's and the services' answers, as cluster/auth and the
	// master's authorizer write them.
	refusing := func(code int, msg string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Basic realm="agora"`)
			}
			http.Error(w, msg, code)
		}))
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://")
	}
	unauthorized := refusing(http.StatusUnauthorized, "authentication required: --authenticate_http_readwrite is on; send HTTP Basic credentials")
	forbidden := refusing(http.StatusForbidden, "not authorized: principal 'ops' may not view frameworks (--acls)")

	topology, err := wordcount.WriteTo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(topology), "resources", "storm.py"), []byte("# storm.py\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The services end when the master refuses their subscription for
	// good; the deadline only bounds a run that would not.
	service := func(run func(context.Context, []string, io.Writer) int) func([]string, *bytes.Buffer, *bytes.Buffer) int {
		return func(a []string, _, e *bytes.Buffer) int {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			return run(ctx, a, e)
		}
	}
	sparkKillCmd := func(a []string, o, e *bytes.Buffer) int { return sparkKill(a, o, e) }
	storm := func(master string, args ...string) []string {
		return append(args, "--master", master)
	}
	native := func(master string, args ...string) []string {
		return storm(master, append(args, "--runtime", "native")...)
	}
	hint := "--principal=NAME --secret_file=FILE"
	for _, tc := range []struct {
		name string
		cmd  func([]string, *bytes.Buffer, *bytes.Buffer) int
		args []string
		want []string
	}{
		{"storm submit --runtime native", stormSubmitCmd, native(unauthorized, topology, "--storm_home", t.TempDir()), []string{"401", hint}},
		{"storm list (Nimbus through the master)", stormListCmd, storm(unauthorized), []string{"401", hint}},
		{"storm list --runtime native", stormListCmd, native(unauthorized), []string{"401", hint}},
		{"storm info --runtime native", stormInfoCmd, native(unauthorized, "wordcount"), []string{"401", hint}},
		{"storm kill --runtime native", stormKillCmd, native(unauthorized, "wordcount"), []string{"401", hint}},
		{"storm activate --runtime native", stormActivateCmd, native(unauthorized, "wordcount"), []string{"401", hint}},
		{"storm rebalance --runtime native", stormRebalanceCmd, native(unauthorized, "wordcount", "-n", "2"), []string{"401", hint}},
		{"storm workers --runtime native", stormWorkersCmd, native(unauthorized), []string{"401", hint}},
		{"spark kill", sparkKillCmd, []string{"--dispatcher", unauthorized, "driver-1"}, []string{"the dispatcher asks for credentials", hint}},
		{"marathon", service(marathonCommand), []string{"--master", unauthorized, "--work_dir", t.TempDir(), "--http_port=0", "--hostname=127.0.0.1"},
			[]string{"401", "The master at " + unauthorized + " asks for credentials", hint}},
		{"chronos", service(chronosCommand), []string{"--master", unauthorized, "--work_dir", t.TempDir(), "--http_port=0", "--hostname=127.0.0.1"},
			[]string{"401", "The master at " + unauthorized + " asks for credentials", hint}},
		{"storm submit --runtime native, refused by the ACLs", stormSubmitCmd, native(forbidden, topology, "--storm_home", t.TempDir()),
			[]string{"403", "principal 'ops' may not view frameworks"}},
		{"spark kill, refused by the ACLs", sparkKillCmd, []string{"--dispatcher", forbidden, "driver-1"}, []string{"principal 'ops' may not view frameworks"}},
	} {
		code, _, stderr := runStormCmd(tc.cmd, tc.args...)
		if code != 1 {
			t.Errorf("agora %s: exit %d, want 1 (stderr %q)", tc.name, code, stderr)
		}
		wantHint := false
		for _, w := range tc.want {
			wantHint = wantHint || w == hint
			if !strings.Contains(stderr, w) {
				t.Errorf("agora %s: stderr %q does not say %q", tc.name, stderr, w)
			}
		}
		// Credentials were refused, not missing: no flags to add.
		if !wantHint && strings.Contains(stderr, hint) {
			t.Errorf("agora %s: stderr %q asks for credentials after a 403", tc.name, stderr)
		}
	}
}
