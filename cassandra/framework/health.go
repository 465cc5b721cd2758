package framework

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Each node's task carries a COMMAND health check that the agent runs
// where the node runs: `agora cassandra probe --host H --port P`, a CQL
// query of system.local on the node's own address (the agent's TCP and
// HTTP checks would dial 127.0.0.1, where a node does not listen). A node
// the agent kills for failing it ends like any failed node: it is launched
// again on its volume.

// Defaults of the health check: a JVM start and a join (which streams
// data) fit in the grace period; a node silent for three checks in a row
// is killed.
const (
	healthGraceDefault    = 10 * time.Minute
	healthIntervalDefault = 30 * time.Second
	healthTimeout         = 20 * time.Second
	healthFailures        = 3
)

// healthCheckLocked is n's health check; nil without an agora binary.
func (f *Framework) healthCheckLocked(n *Node) *mesos.HealthCheck {
	if f.cfg.Agora == "" {
		return nil
	}
	args := []string{f.cfg.Agora, "cassandra", "probe", "--host", n.Host, "--port", strconv.FormatUint(n.NativePort, 10),
		"--timeout", (healthTimeout - 2*time.Second).String()}
	shell := false
	delay, interval, timeout := f.cfg.HealthInterval.Seconds(), f.cfg.HealthInterval.Seconds(), healthTimeout.Seconds()
	grace, failures := f.cfg.HealthGrace.Seconds(), uint32(healthFailures)
	return &mesos.HealthCheck{Type: mesos.HealthCheck_COMMAND,
		Command:      &mesos.CommandInfo{Shell: &shell, Value: &f.cfg.Agora, Arguments: args},
		DelaySeconds: &delay, IntervalSeconds: &interval, TimeoutSeconds: &timeout,
		GracePeriodSeconds: &grace, ConsecutiveFailures: &failures}
}

// underTmp says whether path is below the temporary directory.
func underTmp(path string) bool {
	tmp := filepath.Clean(os.TempDir())
	p := filepath.Clean(path)
	return strings.HasPrefix(p, tmp+string(filepath.Separator))
}

// stageAgora copies an agora binary that lives under /tmp (a test's or
// `go run`'s) into the state directory: agents that isolate tasks give
// each a /tmp of its own, where the health check would not find it. The
// copy is refreshed when the binary changes.
func stageAgora(bin, stateDir string) (string, error) {
	src, err := os.Stat(bin)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(stateDir, "bin", filepath.Base(bin))
	if cur, err := os.Stat(dst); err == nil && cur.Size() == src.Size() && !cur.ModTime().Before(src.ModTime()) {
		return dst, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	in, err := os.Open(bin)
	if err != nil {
		return "", err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".agora-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return "", fmt.Errorf("copy %s: %w", bin, err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return dst, os.Rename(tmp.Name(), dst)
}
