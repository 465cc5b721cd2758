package docker_test

import (
	"context"
	"syscall"
	"testing"

	. "github.com/agora-cluster/agora/cluster/containerizer/docker"
)

// TestUpdateChangesTheLimitsOfARunningContainer: Update sets the CPU
// shares and raises the memory limit of a running container, and never
// lowers the memory limit.
func TestUpdateChangesTheLimitsOfARunningContainer(t *testing.T) {
	e := newEnv(t)
	c := e.launch(e.task("exec sleep 600"))
	defer func() { _ = c.Signal(syscall.SIGKILL); wait(t, c) }()
	u, ok := c.(interface {
		Update(cpus, memMB float64) error
	})
	if !ok {
		t.Fatal("docker containers cannot be updated")
	}
	limits := func() (int64, int64) {
		t.Helper()
		st, err := e.d.Client().InspectContainer(context.Background(), Name(c.ID()))
		if err != nil {
			t.Fatal(err)
		}
		return st.CPUShares, st.Memory
	}
	if shares, mem := limits(); shares != 512 || mem != 64<<20 {
		t.Fatalf("launched with shares %d, memory %d; want 512, 64 MB", shares, mem)
	}
	if err := u.Update(1.5, 128); err != nil {
		t.Fatal(err)
	}
	if shares, mem := limits(); shares != 1536 || mem != 128<<20 {
		t.Errorf("after Update(1.5, 128): shares %d, memory %d", shares, mem)
	}
	if err := u.Update(0.25, 48); err != nil {
		t.Fatal(err)
	}
	if shares, mem := limits(); shares != 256 || mem != 128<<20 {
		t.Errorf("after Update(0.25, 48): shares %d, memory %d; the memory limit must not go down", shares, mem)
	}
}
