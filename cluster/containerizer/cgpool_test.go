package containerizer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pooledNative is a native containerizer with a pool of size idle cgroups,
// full; tests of the pool skip where there is none (cgroup v2).
func pooledNative(t *testing.T, size int) *Native {
	t.Helper()
	n := testNativeConfig(t, NativeConfig{CgroupPool: size})
	if n.pool == nil {
		t.Skip("no cgroup pool on cgroup v2")
	}
	return n
}

// cgFile reads a cgroup v1 file of cgroup rel (below the hierarchy).
func cgFile(t *testing.T, controller, rel, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, rel, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func cgUint(t *testing.T, controller, rel, file string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(cgFile(t, controller, rel, file), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// inode identifies a cgroup directory, which keeps it through renames.
func inode(t *testing.T, controller, rel string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join("/sys/fs/cgroup", controller, rel), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// idleByInode maps the memory-controller inode of each idle pooled
// cgroup to its name.
func idleByInode(t *testing.T, n *Native) map[uint64]string {
	out := map[uint64]string{}
	for _, name := range n.pool.idleNames() {
		out[inode(t, "memory", name)] = name
	}
	return out
}

func TestLaunchReusesAPooledCgroupAndItComesBackReset(t *testing.T) {
	n := pooledNative(t, 2)
	before := idleByInode(t, n)
	spec := shell(`dd if=/dev/zero of=f bs=1M count=8 2>/dev/null; while :; do :; done`)
	spec.CPUs, spec.MemMB = 0.5, 64
	c := launchNative(t, n, spec)
	rel := n.Root() + "/" + c.ID()
	ino := inode(t, "memory", rel)
	if _, ok := before[ino]; !ok {
		t.Fatalf("container cgroup %s (inode %d) is not one of the pool's %v", rel, ino, before)
	}
	for _, ctl := range []string{"cpu", "cpuacct", "pids"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", ctl, rel)); err != nil {
			t.Errorf("the pooled cgroup is not in %s: %v", ctl, err)
		}
	}
	if got := cgFile(t, "memory", rel, "memory.limit_in_bytes"); got != strconv.Itoa(64<<20) {
		t.Errorf("memory.limit_in_bytes = %s, want %d", got, 64<<20)
	}
	waitFor(t, "the task to use memory and CPU", func() bool {
		return cgUint(t, "memory", rel, "memory.max_usage_in_bytes") >= 8<<20 &&
			cgUint(t, "cpuacct", rel, "cpuacct.usage") > 0 && cgFile(t, "cpu", rel, "cpu.cfs_quota_us") == "50000" &&
			parseKV([]byte(cgFile(t, "cpu", rel, "cpu.stat")))["nr_periods"] >= 2
	})
	if err := c.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wait(t, c)

	after := idleByInode(t, n)
	back, ok := after[ino]
	if !ok {
		t.Fatalf("the container's cgroup (inode %d) did not come back to the pool %v", ino, after)
	}
	for _, dir := range cgroupDirs(n, c.ID()) {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there under the container's name (%v)", dir, err)
		}
	}
	if v := cgUint(t, "cpuacct", back, "cpuacct.usage"); v != 0 {
		t.Errorf("cpuacct.usage = %d, want 0 (reset)", v)
	}
	if v := cgUint(t, "memory", back, "memory.usage_in_bytes"); v >= 1<<20 {
		t.Errorf("memory.usage_in_bytes = %d: the 8 MiB the task charged were not reclaimed", v)
	}
	if v := cgUint(t, "memory", back, "memory.usage_in_bytes"); v > reclaimAbove {
		t.Errorf("memory.usage_in_bytes = %d, more than the %d a reused cgroup may keep", v, reclaimAbove)
	}
	if v := cgUint(t, "memory", back, "memory.max_usage_in_bytes"); v >= 1<<20 {
		t.Errorf("memory.max_usage_in_bytes = %d, want it reset", v)
	}
	if v := cgFile(t, "cpu", back, "cpu.cfs_quota_us"); v != "-1" {
		t.Errorf("cpu.cfs_quota_us = %s, want -1: the next init must start without a quota", v)
	}
	if v := cgFile(t, "memory", back, "cgroup.procs"); v != "" {
		t.Errorf("pooled cgroup holds processes %q", v)
	}
	// The other limits stay, and the pool knows them: the next launch
	// writes only those that differ.
	for _, g := range n.pool.idle {
		if strings.TrimPrefix(g.name, "/") != back {
			continue
		}
		held, known, base := g.snapshot()
		if !known {
			t.Fatal("the pool does not know the limits the cgroup holds")
		}
		want := v1LimitValues(held)
		for i, f := range v1LimitFiles {
			if got := cgFile(t, f.controller, back, f.file); got != want[i] {
				t.Errorf("%s holds %s, the pool thinks %s", f.file, got, want[i])
			}
		}
		if base.NrPeriods == 0 {
			t.Errorf("base = %+v: the CFS counters of the last container were not recorded", base)
		}
	}
}

func TestPooledCgroupTakesNewLimitsAndEnforcesThem(t *testing.T) {
	n := pooledNative(t, 1)
	first := shell(`exit 0`)
	first.CPUs, first.MemMB = 2, 512
	c := launchNative(t, n, first)
	ino := inode(t, "memory", n.Root()+"/"+c.ID())
	wait(t, c)

	// The same cgroup, a lower memory limit: tail keeps its whole
	// newline-free input in memory.
	hog := shell(`head -c 200m /dev/zero | tail; echo survived`)
	hog.CPUs, hog.MemMB = 1, 64
	c = launchNative(t, n, hog)
	rel := n.Root() + "/" + c.ID()
	if got := inode(t, "memory", rel); got != ino {
		t.Fatalf("second container got cgroup inode %d, want the pooled %d", got, ino)
	}
	e := wait(t, c)
	if e.Limitation == nil || e.Limitation.Resource != "mem" {
		t.Fatalf("exit = %+v (%s), want a memory limitation", e, e)
	}
	if want := "Memory limit exceeded: Requested: 64MB Maximum Used: 64MB"; e.Limitation.Message != want {
		t.Errorf("message = %q, want %q", e.Limitation.Message, want)
	}
	// Its OOM-kill counter cannot be reset: the cgroup is removed, not
	// pooled, and the next container gets a new one.
	expectNoCgroup(t, n, c.ID())
	if idle := n.pool.idleNames(); len(idle) != 0 {
		t.Errorf("a cgroup with an OOM kill went back to the pool: %v", idle)
	}
	ok := shell(`exit 0`)
	ok.MemMB = 64
	c = launchNative(t, n, ok)
	if got := inode(t, "memory", n.Root()+"/"+c.ID()); got == ino {
		t.Error("the OOM-killed container's cgroup was reused")
	}
	if e := wait(t, c); !e.Success() {
		t.Errorf("a container after the OOM-killed one: %v", e)
	}
	if idle := n.pool.idleNames(); len(idle) != 1 {
		t.Errorf("pool = %v, want the last container's cgroup back", idle)
	}
}

func TestRestartedContainerizerRecoversAContainerInAPooledCgroup(t *testing.T) {
	n := pooledNative(t, 1)
	// A first container leaves CFS counters behind in the cgroup.
	busy := shell(`while :; do :; done`)
	busy.CPUs = 0.5
	c := launchNative(t, n, busy)
	waitFor(t, "CFS periods", func() bool {
		return parseKV([]byte(cgFile(t, "cpu", n.Root()+"/"+c.ID(), "cpu.stat")))["nr_periods"] >= 2
	})
	if err := c.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wait(t, c)
	spec := shell(`sleep 100 & sleep 100`)
	spec.CPUs, spec.MemMB = 0.5, 48
	spec.ID = fmt.Sprintf("pooled-%d", os.Getpid())
	running := launchNative(t, n, spec)
	st := running.State()
	if st.CPUStatBase == nil || st.CPUStatBase.NrPeriods == 0 {
		t.Fatalf("state = %+v: the pooled cgroup's counters are not recorded", st)
	}
	if st.Cgroup != n.Root()+"/"+spec.ID {
		t.Fatalf("cgroup = %s, want %s/%s", st.Cgroup, n.Root(), spec.ID)
	}
	ns := pidNamespace(running.Pid())
	waitFor(t, "the task's processes", func() bool { return len(liveInNamespace(t, ns)) >= 3 })

	// A restarted agent: a new containerizer on the same root, with a
	// pool of its own, adopts the container from its checkpointed State.
	again, err := NewNative(NativeConfig{Root: n.Root(), CgroupPool: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = again.Close() })
	adopted, err := again.Recover(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if adopted.Pid() != running.Pid() {
		t.Fatalf("adopted pid %d, want %d", adopted.Pid(), running.Pid())
	}
	u, err := adopted.(UsageReporter).Usage()
	if err != nil {
		t.Fatal(err)
	}
	raw := cgUint(t, "memory", st.Cgroup, "memory.limit_in_bytes")
	if u.Processes < 3 || u.MemLimitBytes != 48<<20 || raw != 48<<20 {
		t.Errorf("adopted usage = %+v (limit file %d)", u, raw)
	}
	if uint64(u.CPUsNrPeriods) >= st.CPUStatBase.NrPeriods {
		t.Errorf("usage counts %d CFS periods: the %d of the cgroup's earlier container were not subtracted",
			u.CPUsNrPeriods, st.CPUStatBase.NrPeriods)
	}
	if gone, err := again.CleanupOrphans(func(id string) bool { return id == spec.ID }); err != nil || len(gone) != 0 {
		t.Errorf("cleanup removed %v (%v); the pool's idle cgroups and the adopted container are not orphans", gone, err)
	}
	if err := adopted.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wait(t, adopted)
	wait(t, running)
	expectGone(t, n, spec.ID, ns)
}

// leftover makes an idle pooled cgroup as an agent that is gone left it,
// in the given controllers (all if none).
func leftover(t *testing.T, n *Native, seq int, controllers ...string) string {
	t.Helper()
	// This process's pid with another start time: a process that is gone.
	name := fmt.Sprintf("%s%d-1-%d", poolPrefix, os.Getpid(), seq)
	if len(controllers) == 0 {
		for _, s := range n.pool.h.subsystems {
			controllers = append(controllers, string(s.Name()))
		}
	}
	for _, ctl := range controllers {
		if err := os.Mkdir(filepath.Join("/sys/fs/cgroup", ctl, n.Root(), name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return name
}

func TestIdlePooledCgroupsAreRemovedAtCloseAndTakenOverAtStartUp(t *testing.T) {
	n := pooledNative(t, 2)
	c := launchNative(t, n, shell(`sleep 100`))
	idle := n.pool.idleNames()
	if len(idle) == 0 {
		t.Fatal("the pool has no idle cgroup left")
	}

	// Left by an agent that is gone: two complete ones (one with a
	// limit), one in the memory controller only.
	a, b := leftover(t, n, 1), leftover(t, n, 2)
	if err := os.WriteFile(filepath.Join("/sys/fs/cgroup/memory", n.Root(), a, "memory.limit_in_bytes"), []byte("33554432"), 0); err != nil {
		t.Fatal(err)
	}
	partial := leftover(t, n, 3, "memory")

	again, err := NewNative(NativeConfig{Root: n.Root(), CgroupPool: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = again.Close() })
	for _, name := range []string{a, b, partial} {
		for _, dir := range cgroupDirs(n, name) {
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s is still there (%v)", dir, err)
			}
		}
	}
	taken := again.pool.idleNames()
	if len(taken) != 1 {
		t.Fatalf("the restarted containerizer's pool = %v, want one taken-over cgroup", taken)
	}
	if v := cgFile(t, "memory", taken[0], "memory.limit_in_bytes"); v == "33554432" {
		t.Error("a taken-over cgroup kept the limit of the gone agent's container")
	}
	// A live agent's idle cgroups, and its container, are left alone.
	for _, name := range idle {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", name)); err != nil {
			t.Errorf("the live pool's %s was touched: %v", name, err)
		}
	}
	if err := c.Signal(0); err != nil {
		t.Errorf("the live container was hurt: %v", err)
	}

	// Close removes the idle cgroups and nothing else.
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range idle {
		for _, s := range n.pool.h.subsystems {
			if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", string(s.Name()), name)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("idle cgroup %s outlived Close in %s (%v)", name, s.Name(), err)
			}
		}
	}
	if err := c.Signal(0); err != nil {
		t.Errorf("Close hurt a running container: %v", err)
	}
	// A container that ends after Close has its cgroup removed.
	if err := c.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wait(t, c)
	expectNoCgroup(t, n, c.ID())
	if got := n.pool.idleNames(); len(got) != 0 {
		t.Errorf("a closed pool took back %v", got)
	}
}

func TestPoolRemovesACgroupItCannotReset(t *testing.T) {
	n := pooledNative(t, 2)
	saved := v1ResetFiles
	t.Cleanup(func() { v1ResetFiles = saved })
	v1ResetFiles = append(append([]struct{ controller, file string }{}, saved...),
		struct{ controller, file string }{"memory", "memory.no_such_counter"})

	c := launchNative(t, n, shell(`exit 0`))
	ino := inode(t, "memory", n.Root()+"/"+c.ID())
	if e := wait(t, c); !e.Success() {
		t.Fatalf("exit = %v", e)
	}
	expectNoCgroup(t, n, c.ID())
	if _, reused := idleByInode(t, n)[ino]; reused {
		t.Error("a cgroup whose reset failed went back to the pool")
	}

	// An idle cgroup someone removed: the launch makes a new cgroup.
	v1ResetFiles = saved
	for _, name := range n.pool.idleNames() {
		if err := os.Remove(filepath.Join("/sys/fs/cgroup/memory", name)); err != nil {
			t.Fatal(err)
		}
	}
	c = launchNative(t, n, shell(`exit 0`))
	if e := wait(t, c); !e.Success() {
		t.Fatalf("launch with a broken pool: %v", e)
	}
}

func TestContainerIDsCannotTakePooledNames(t *testing.T) {
	n := pooledNative(t, 1)
	_, err := n.Launch(context.Background(), Spec{ID: poolPrefix + "1-2-3", Path: "/bin/true"})
	if err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("launch with a pooled name: %v", err)
	}
}

// A pooled cgroup can have been idle for long; once a launch has taken
// it, another agent's orphan cleanup must see a launch in progress, not an
// abandoned cgroup, while the init has not joined it yet.
func TestATakenPooledCgroupIsNotMistakenForAnAbandonedOne(t *testing.T) {
	n := pooledNative(t, 1)
	old := time.Now().Add(-time.Hour)
	for _, name := range n.pool.idleNames() {
		for _, s := range n.pool.h.subsystems {
			if err := os.Chtimes(filepath.Join("/sys/fs/cgroup", string(s.Name()), name), old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	cg, base, err := n.newCgroup(n.Root()+"/taken", limits{})
	if err != nil || base == nil {
		t.Fatalf("newCgroup = %v, base %v; want a pooled cgroup", err, base)
	}
	t.Cleanup(func() { _ = removeCgroup(cg) })
	if n.removeAbandoned("taken") {
		t.Fatal("orphan cleanup removed a cgroup a launch had just taken from the pool")
	}
}

// A container in a reused cgroup reports its own CPU time, not that of
// the containers before it: cpuacct.stat (user and system time), unlike
// cpuacct.usage, is not reset by writing 0 to cpuacct.usage.
func TestPooledCgroupReportsOnlyItsContainersCPUTime(t *testing.T) {
	n := pooledNative(t, 1)
	first := launchNative(t, n, shell(`while :; do :; done`))
	rel := n.Root() + "/" + first.ID()
	ino := inode(t, "memory", rel)
	var used float64
	waitFor(t, "the first container to use 0.3 s of CPU", func() bool {
		u, err := first.(UsageReporter).Usage()
		used = u.CPUsUserTimeSecs + u.CPUsSystemTimeSecs
		return err == nil && used >= 0.3
	})
	if err := first.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wait(t, first)
	waitFor(t, "the cgroup back in the pool", func() bool { _, ok := idleByInode(t, n)[ino]; return ok })

	second := launchNative(t, n, shell(`exec sleep 100`))
	defer func() { _ = second.Signal(syscall.SIGKILL); wait(t, second) }()
	if got := inode(t, "memory", n.Root()+"/"+second.ID()); got != ino {
		t.Fatalf("the second container did not get the pooled cgroup (inode %d, want %d)", got, ino)
	}
	u, err := second.(UsageReporter).Usage()
	if err != nil {
		t.Fatal(err)
	}
	if got := u.CPUsUserTimeSecs + u.CPUsSystemTimeSecs; got > used/2 {
		t.Fatalf("a sleeping container reports %.2f s of CPU; the container before it in the cgroup used %.2f s", got, used)
	}
}
