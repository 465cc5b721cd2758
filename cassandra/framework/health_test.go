package framework

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cassandra/plan"
)

// runCheck runs a node's health check command as the agent does (sh -c)
// and returns its exit code and stderr.
func runCheck(t *testing.T, hcCmd string) (int, string) {
	return runCheckIn(t, t.TempDir(), hcCmd)
}

// runCheckIn runs it with sandbox as its MESOS_SANDBOX.
func runCheckIn(t *testing.T, sandbox, hcCmd string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "/bin/sh", "-c", hcCmd)
	c.Env = append(os.Environ(), "MESOS_SANDBOX="+sandbox)
	var stderr strings.Builder
	c.Stderr = &stderr
	err := c.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		return exit.ExitCode(), stderr.String()
	default:
		t.Fatalf("sh -c %q: %v", hcCmd, err)
		return -1, ""
	}
}

// fakeAgora is an executable standing in for agora: it records its
// arguments in a file beside it and exits with code.
func fakeAgora(t *testing.T, code string) (bin, argsFile string) {
	t.Helper()
	dir := t.TempDir()
	bin, argsFile = filepath.Join(dir, "agora it's"), filepath.Join(dir, "args")
	script := "#!/bin/sh\necho \"$@\" > '" + argsFile + "'\nexit " + code + "\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, argsFile
}

// The health check counts only the probe's own verdict: an agora binary
// missing on the agent, or a probe that refuses its arguments, passes
// with a message saying the health was not checked, so that one bad path
// cannot fail every node's check at once.
func TestHealthCommand(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-agora")
	sandbox := t.TempDir()
	msg := missing + " not found or not executable on this agent: health not checked"
	for range 2 {
		code, stderr := runCheckIn(t, sandbox, healthCommand(missing, "10.0.0.1", 9042, 18*time.Second))
		if code != 0 || !strings.Contains(stderr, msg) {
			t.Errorf("agora missing: exit %d, stderr %q; want 0 and a message naming it", code, stderr)
		}
	}
	// The node's own stderr says so once, however many checks ran.
	if b, err := os.ReadFile(filepath.Join(sandbox, "stderr")); err != nil || strings.Count(string(b), msg) != 1 {
		t.Errorf("the sandbox's stderr: %q, %v; want the message once", b, err)
	}

	usage, _ := fakeAgora(t, "2")
	code, stderr := runCheck(t, healthCommand(usage, "10.0.0.1", 9042, 18*time.Second))
	if code != 0 || !strings.Contains(stderr, "cassandra probe could not run (exit 2): health not checked") {
		t.Errorf("probe refusing its arguments: exit %d, stderr %q; want 0 and a message", code, stderr)
	}

	unhealthy, _ := fakeAgora(t, "1")
	if code, stderr = runCheck(t, healthCommand(unhealthy, "10.0.0.1", 9042, 18*time.Second)); code != 1 {
		t.Errorf("probe finding the node unhealthy: exit %d (stderr %q); want 1", code, stderr)
	}

	healthy, args := fakeAgora(t, "0")
	if code, stderr = runCheck(t, healthCommand(healthy, "node 'a'", 9142, 18*time.Second)); code != 0 {
		t.Errorf("probe finding the node healthy: exit %d (stderr %q); want 0", code, stderr)
	}
	b, err := os.ReadFile(args)
	if want := "cassandra probe --host node 'a' --port 9142 --timeout 18s\n"; err != nil || string(b) != want {
		t.Errorf("the probe's arguments: %q, %v; want %q", b, err, want)
	}
}

// A node's task carries the spec's health check, in a shell; none
// without an agora binary or when the spec turns it off.
func TestHealthCheckOfSpec(t *testing.T) {
	spec, err := plan.Parse([]byte(`{"health_check":{"grace":"6h","interval":"15s","consecutive_failures":4}}`))
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{Host: "10.0.0.1", NativePort: 9042}
	f := &Framework{cfg: Config{Agora: "/usr/local/bin/agora"}, spec: spec}
	hc := f.healthCheckLocked(n)
	if hc == nil || hc.Command == nil || !hc.Command.GetShell() {
		t.Fatalf("health check %+v; want a shell command", hc)
	}
	if hc.GetGracePeriodSeconds() != 6*3600 || hc.GetIntervalSeconds() != 15 || hc.GetConsecutiveFailures() != 4 {
		t.Errorf("grace %v s, interval %v s, failures %d; want the spec's 6h, 15s, 4", hc.GetGracePeriodSeconds(), hc.GetIntervalSeconds(), hc.GetConsecutiveFailures())
	}
	if want := healthCommand("/usr/local/bin/agora", "10.0.0.1", 9042, healthTimeout-2*time.Second); hc.Command.GetValue() != want {
		t.Errorf("command %q, want %q", hc.Command.GetValue(), want)
	}
	if hc := (&Framework{cfg: Config{}, spec: spec}).healthCheckLocked(n); hc != nil {
		t.Errorf("no agora binary: health check %+v, want none", hc)
	}
	spec.HealthCheck.Disabled = true
	if hc := (&Framework{cfg: f.cfg, spec: spec}).healthCheckLocked(n); hc != nil {
		t.Errorf("health_check disabled: health check %+v, want none", hc)
	}
}
