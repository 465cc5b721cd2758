package containerizer

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
)

// testV1Group makes an empty cgroup v1 group below a fresh test root.
func testV1Group(t *testing.T) *v1Group {
	t.Helper()
	n := testNativeConfig(t, NativeConfig{})
	h, ok := n.h.(*v1)
	if !ok {
		tier.Need(t, tier.Root, errors.New("kept control files are cgroup v1's; this machine's containers use cgroup v2"))
	}
	g, err := h.mkdir(n.Root() + "/kept-files")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.remove() })
	return g
}

func readPath(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// A group's control files, kept open, read what the kernel holds now
// (not what an earlier read saw), write what a path write would, follow
// the cgroup through a rename and are closed when it is removed.
func TestCgroupV1KeptFilesReadAndWriteTheCgroup(t *testing.T) {
	g := testV1Group(t)
	for _, shares := range []string{"512", "256"} {
		if err := g.write("cpu", "cpu.shares", shares); err != nil {
			t.Fatal(err)
		}
		if got := readPath(t, g.file("cpu", "cpu.shares")); got != shares {
			t.Errorf("cpu.shares on disk = %s after writing %s", got, shares)
		}
		b, err := g.read("cpu", "cpu.shares")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != shares {
			t.Errorf("cpu.shares read through the kept file = %s, want %s", got, shares)
		}
	}
	// One file for writing, one for reading, opened once each.
	if n := len(g.files); n != 2 {
		t.Errorf("the group keeps %d files open, want 2 (%v)", n, g.files)
	}

	// A longer file read whole, twice, through one descriptor.
	for i := 0; i < 2; i++ {
		b, err := g.read("memory", "memory.stat")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), "cache ") || !strings.Contains(string(b), "\ntotal_rss ") {
			t.Fatalf("memory.stat read %d through the kept file:\n%s", i, b)
		}
	}

	if err := g.rename(strings.TrimPrefix(g.name, "/") + "-renamed"); err != nil {
		t.Fatal(err)
	}
	if err := g.write("cpu", "cpu.shares", "128"); err != nil {
		t.Fatal(err)
	}
	if got := readPath(t, g.file("cpu", "cpu.shares")); got != "128" {
		t.Errorf("after a rename, cpu.shares at the new name = %s, want 128", got)
	}

	fds := make([]int, 0, len(g.files))
	for _, fd := range g.files {
		fds = append(fds, fd)
	}
	if err := g.remove(); err != nil {
		t.Fatal(err)
	}
	if g.files != nil {
		t.Errorf("a removed group keeps files open: %v", g.files)
	}
	for _, fd := range fds {
		// The number may have been reused by another open since; it must
		// not still name this group's file.
		if target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd)); err == nil && strings.Contains(target, "kept-files") {
			t.Errorf("descriptor %d still open on %s after the group's removal", fd, target)
		}
	}
	if _, err := os.Stat(g.dir(g.h.subsystems[0])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the group's cgroup is still there: %v", err)
	}
}

// Past the budget a group keeps nothing open and works as before, one
// open per call.
func TestCgroupV1KeptFilesBudget(t *testing.T) {
	g := testV1Group(t)
	old := cgFileBudget
	cgFileBudget = func() int64 { return 0 }
	t.Cleanup(func() { cgFileBudget = old })
	if err := g.write("cpu", "cpu.shares", "300"); err != nil {
		t.Fatal(err)
	}
	b, err := g.read("cpu", "cpu.shares")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "300" {
		t.Errorf("cpu.shares = %s, want 300", got)
	}
	if len(g.files) != 0 {
		t.Errorf("over budget, the group keeps files open: %v", g.files)
	}
	// A write that fails says which file.
	err = g.write("cpu", "cpu.shares", "not-a-number")
	if err == nil || !strings.Contains(err.Error(), "cpu.shares") {
		t.Errorf("bad write = %v, want an error naming cpu.shares", err)
	}
}

// A write refused through a kept file says which file, as a path write
// does.
func TestCgroupV1KeptFileErrorNamesTheFile(t *testing.T) {
	g := testV1Group(t)
	err := g.write("cpu", "cpu.shares", "not-a-number")
	if err == nil || !strings.Contains(err.Error(), g.file("cpu", "cpu.shares")) {
		t.Errorf("bad write = %v, want an error naming %s", err, g.file("cpu", "cpu.shares"))
	}
	if len(g.files) != 1 {
		t.Errorf("the group keeps %d files open, want 1", len(g.files))
	}
}

// A pooled cgroup's files go with it to the pool when its container ends,
// and the ended container can no longer change its limits: the cgroup is
// the next container's. Closing the containerizer closes every file its
// idle cgroups kept.
func TestCgroupV1PooledFilesOutliveTheirContainer(t *testing.T) {
	before := cgFilesOpen.Load()
	n := testNativeConfig(t, NativeConfig{CgroupPool: 2})
	if _, ok := n.h.(*v1); !ok {
		tier.Need(t, tier.Root, errors.New("kept control files are cgroup v1's; this machine's containers use cgroup v2"))
	}
	spec := shell(`exit 0`)
	spec.CPUs, spec.MemMB = 0.25, 64
	c := launchNative(t, n, spec)
	if ex := wait(t, c); ex.Code != 0 {
		t.Fatalf("exit = %+v, want 0", ex)
	}
	n.pool.mu.Lock()
	idle := append([]*v1Group(nil), n.pool.idle...)
	n.pool.mu.Unlock()
	shares := map[string]string{}
	kept := 0
	for _, g := range idle {
		shares[g.name] = readPath(t, g.file("cpu", "cpu.shares"))
		g.mu.Lock()
		kept += len(g.files)
		g.mu.Unlock()
	}
	if kept == 0 {
		t.Error("no idle cgroup keeps the files its container used")
	}
	err := c.(*nativeContainer).Update(1, 128)
	if err == nil || !strings.Contains(err.Error(), "ended") {
		t.Errorf("Update of an ended container = %v, want an error saying it ended", err)
	}
	for _, g := range idle {
		if got := readPath(t, g.file("cpu", "cpu.shares")); got != shares[g.name] {
			t.Errorf("idle cgroup %s: cpu.shares %s → %s after the ended container's update", g.name, shares[g.name], got)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if got := cgFilesOpen.Load() - before; got != 0 {
		t.Errorf("%d control files still counted open after the containerizer closed", got)
	}
}
