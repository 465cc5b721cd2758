package agent

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDownloadAndDebugEndpoints(t *testing.T) {
	fm := newFakeMaster(t)
	ta, _ := startRegistered(t, fm, testConfig(t, fm, ""))
	sandbox := sandboxWith(t, fm, ta, "payload", nil)

	code, body := get(t, ta.Agent, "/files/download?path="+url.QueryEscape(filepath.Join(sandbox, "stdout")))
	if code != 200 || string(body) != "payload" {
		t.Fatalf("download: %d %q", code, body)
	}
	if code, body := get(t, ta.Agent, "/files/download?path="+url.QueryEscape(sandbox)); code != 400 || !strings.Contains(string(body), "directory") {
		t.Fatalf("downloading a directory: %d %s", code, body)
	}
	if code, _ := get(t, ta.Agent, "/files/download?path=/etc/passwd"); code != 403 {
		t.Fatalf("downloading outside the sandboxes: %d", code)
	}
	if code, _ := get(t, ta.Agent, "/files/download?path="+url.QueryEscape(sandbox+"/../../../../../../../etc/passwd")); code != 403 {
		t.Fatalf("downloading through '..': %d", code)
	}
	var debug map[string]string
	getJSON(t, ta.Agent, "/files/debug", &debug)
	for virt, real := range debug {
		if virt != real || !strings.HasPrefix(real, filepath.Join(ta.Agent.WorkDir(), "slaves")+"/") {
			t.Fatalf("/files/debug lists %q -> %q outside the sandboxes", virt, real)
		}
	}
}

// TestGarbageCollection removes finished sandboxes older than the allowed
// age and keeps fresh ones; a full disk (all headroom used) shortens the
// age to nothing.
func TestGarbageCollection(t *testing.T) {
	fm := newFakeMaster(t)
	cfg := testConfig(t, fm, "")
	cfg.GCDelay = time.Hour
	ta, _ := startRegistered(t, fm, cfg)
	a := ta.Agent
	a.diskUsage = func(string) float64 { return 0.5 } // the machine's own disk must not decide
	mk := func(name string, age time.Duration) string {
		dir := filepath.Join(a.WorkDir(), "slaves", "S1", "frameworks", "F1", "executors", name, "runs", "r1")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "stdout"), []byte("x"), 0o644)
		old := time.Now().Add(-age)
		if err := os.Chtimes(dir, old, old); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	stale, fresh := mk("stale", 2*time.Hour), mk("fresh", time.Minute)
	if n := a.collectGarbage(time.Now()); n < 1 {
		t.Fatalf("removed %d sandboxes, want the stale one", n)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale sandbox still there: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(filepath.Dir(stale))); !os.IsNotExist(err) {
		t.Fatalf("empty executor directory of the stale sandbox still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("fresh sandbox removed: %v", err)
	}
	// With the disk full beyond its headroom, nothing finished is kept.
	a.diskUsage = func(string) float64 { return 0.95 }
	if age := a.maxSandboxAge(); age != 0 {
		t.Fatalf("max sandbox age with a full disk = %v, want 0", age)
	}
	a.collectGarbage(time.Now())
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Fatalf("fresh sandbox kept although the disk is full: %v", err)
	}
}
