package containerizer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"golang.org/x/sys/unix"
)

var testRootSeq atomic.Int64

// testNative returns a native containerizer with a cgroup root of its
// own, removed when the test ends. Tests skip without root or cgroups.
// Its containers reuse cgroups from a small pool (on cgroup v1), so every
// test of a native container also covers pooled cgroups.
func testNative(t *testing.T) *Native {
	t.Helper()
	return testNativeConfig(t, NativeConfig{CgroupPool: 2})
}

// testNativeConfig is testNative with cfg (its Root is set here).
func testNativeConfig(t *testing.T, cfg NativeConfig) *Native {
	t.Helper()
	tier.Need(t, tier.Root, tier.RootErr())
	cfg.Root = fmt.Sprintf("agora-test/%d-%d", os.Getpid(), testRootSeq.Add(1))
	n, err := NewNative(cfg)
	if err != nil {
		tier.Need(t, tier.Root, fmt.Errorf("no cgroups here: %w", err))
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		for _, dir := range cgroupDirs(n, "") {
			_ = os.Remove(dir)
			_ = os.Remove(filepath.Dir(dir)) // agora-test, if empty
		}
	})
	if n.pool != nil {
		// Launches take pooled cgroups, not new ones made while the
		// pool fills.
		waitFor(t, "the cgroup pool to fill", func() bool { return len(n.pool.idleNames()) == n.pool.size })
	}
	return n
}

// cgroupDirs lists where container id's cgroup lives in every controller
// ("" for the root), found independently of the code under test.
func cgroupDirs(n *Native, id string) []string {
	rel := filepath.Join(n.Root(), id)
	if n.h.version() == 2 {
		return []string{filepath.Join("/sys/fs/cgroup", rel)}
	}
	var out []string
	for _, c := range []string{"cpu", "cpuacct", "memory", "pids"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", c)); err == nil {
			out = append(out, filepath.Join("/sys/fs/cgroup", c, rel))
		}
	}
	return out
}

func launchNative(t *testing.T, n *Native, spec Spec) Container {
	t.Helper()
	if spec.ID == "" {
		spec.ID = fmt.Sprintf("c%d", time.Now().UnixNano())
	}
	if spec.Dir == "" {
		spec.Dir = t.TempDir()
	}
	if spec.Stdout == "" {
		spec.Stdout = filepath.Join(spec.Dir, "stdout")
		spec.Stderr = filepath.Join(spec.Dir, "stderr")
	}
	if spec.Env == nil {
		spec.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	}
	c, err := n.Launch(context.Background(), spec)
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	t.Cleanup(func() {
		_ = c.Signal(syscall.SIGKILL)
		wait(t, c)
	})
	return c
}

func shell(script string) Spec {
	return Spec{Path: "/bin/sh", Args: []string{"sh", "-c", script}}
}

// pidNamespace is the pid namespace of a process, as /proc shows it.
func pidNamespace(pid int) string {
	ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	return ns
}

// liveInNamespace scans /proc for live processes in pid namespace ns.
func liveInNamespace(t *testing.T, ns string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pidNamespace(pid) != ns {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 0 && f[0] != "Z" && f[0] != "X" {
			out = append(out, pid)
		}
	}
	return out
}

// expectGone checks that no process of the container is left and that
// its cgroup is gone from every controller.
func expectGone(t *testing.T, n *Native, id, ns string) {
	t.Helper()
	// The kernel kills a namespace's processes when its init exits, but a
	// process can still be on its way out when Wait returns: poll, bounded.
	deadline := time.Now().Add(10 * time.Second)
	left := liveInNamespace(t, ns)
	for len(left) != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		left = liveInNamespace(t, ns)
	}
	if len(left) != 0 {
		t.Errorf("processes of container %s left: %v", id, left)
	}
	for _, dir := range cgroupDirs(n, id) {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s is still there (%v)", dir, err)
		}
	}
}

func TestNativeTaskSeesOnlyItsOwnProcessesAndRunsInItsCgroup(t *testing.T) {
	eachInit(t, testNativeTaskSeesOnlyItsOwnProcessesAndRunsInItsCgroup)
}

func testNativeTaskSeesOnlyItsOwnProcessesAndRunsInItsCgroup(t *testing.T, cfg NativeConfig) {
	n := testNativeConfig(t, cfg)
	// Below /tmp (whatever TMPDIR says): the init mounts it back over the
	// container's private /tmp.
	dir := tempDirIn(t, "/tmp")
	spec := shell(`echo "pid=$$"; ps -e -o pid=,comm= > ps.out; cat /proc/self/cgroup > cgroup.out; ` +
		`tr '\0' ' ' < /proc/1/cmdline > init.out; cat /proc/1/cgroup > init-cgroup.out; echo private > /tmp/agora-tmp-check; echo ok`)
	spec.Dir, spec.CPUs, spec.MemMB = dir, 0.5, 64
	c := launchNative(t, n, spec)
	if e := wait(t, c); !e.Success() {
		errb, _ := os.ReadFile(filepath.Join(dir, "stderr"))
		t.Fatalf("exit = %+v (%s); stderr: %s", e, e, errb)
	}
	out, _ := os.ReadFile(filepath.Join(dir, "stdout"))
	shPid, ok := strings.CutPrefix(strings.Split(string(out), "\n")[0], "pid=")
	if !ok || !strings.HasSuffix(string(out), "\nok\n") {
		t.Fatalf("stdout = %q", out)
	}
	// Namespace PIDs are small: the init's threads take a few after 1.
	ps, _ := os.ReadFile(filepath.Join(dir, "ps.out"))
	lines := strings.Split(strings.TrimSpace(string(ps)), "\n")
	if len(lines) != 3 {
		t.Errorf("ps -e inside the container lists %d processes, want init, sh and ps:\n%s", len(lines), ps)
	}
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) != 2 {
			t.Fatalf("ps line %q", l)
		}
		pid, _ := strconv.Atoi(f[0])
		switch {
		case i == 0 && pid != 1:
			t.Errorf("first process inside is %s (%s), want the init as pid 1", f[0], f[1])
		case i == 1 && (f[0] != shPid || f[1] != "sh"):
			t.Errorf("second process inside is %s (%s), want the task's shell, pid %s", f[0], f[1], shPid)
		case pid > 100:
			t.Errorf("ps inside the container sees pid %s (%s)", f[0], f[1])
		}
	}
	initCmd, _ := os.ReadFile(filepath.Join(dir, "init.out"))
	if !strings.Contains(string(initCmd), " "+InitCommand+" "+c.ID()) {
		t.Errorf("pid 1 is %q, want the container init", initCmd)
	}
	want := "/" + n.Root() + "/" + c.ID()
	// The init too, whether the agent moved it or it joined by itself.
	for _, who := range []string{"the task", "the init"} {
		file := map[string]string{"the task": "cgroup.out", "the init": "init-cgroup.out"}[who]
		cg, _ := os.ReadFile(filepath.Join(dir, file))
		for _, ctl := range []string{"memory", "cpu", "pids"} {
			found := false
			for _, line := range strings.Split(string(cg), "\n") {
				parts := strings.SplitN(line, ":", 3)
				if len(parts) == 3 && (contains(strings.Split(parts[1], ","), ctl) || parts[1] == "") && parts[2] == want {
					found = true
				}
			}
			if !found {
				t.Errorf("%s is not in cgroup %s of %s:\n%s", who, want, ctl, cg)
			}
		}
	}
	if _, err := os.Stat("/tmp/agora-tmp-check"); err == nil {
		os.Remove("/tmp/agora-tmp-check")
		t.Error("the task's /tmp is the host's")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "tmp", "agora-tmp-check")); err != nil || string(b) != "private\n" {
		t.Errorf("the task's /tmp is not the sandbox's tmp: %q %v", b, err)
	}
	for _, d := range cgroupDirs(n, c.ID()) {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s outlived its container", d)
		}
	}
}

func TestNativeAppliesCPUAndMemoryLimits(t *testing.T) {
	n := testNative(t)
	spec := shell(`sleep 100`)
	spec.CPUs, spec.MemMB = 0.25, 48
	c := launchNative(t, n, spec)
	read := func(ctl, file string) string {
		b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", ctl, n.Root(), c.ID(), file))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	if n.h.version() != 1 {
		t.Skip("checks cgroup v1 files")
	}
	for _, c := range []struct{ ctl, file, want string }{
		{"cpu", "cpu.shares", "256"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpu", "cpu.cfs_quota_us", "25000"},
		{"memory", "memory.limit_in_bytes", strconv.Itoa(48 << 20)},
		{"pids", "pids.max", "4096"},
	} {
		if got := read(c.ctl, c.file); got != c.want {
			t.Errorf("%s = %s, want %s", c.file, got, c.want)
		}
	}
}

// A busy loop with cpus=0.5 is held to about half a core: cgroup CPU
// accounting over 3 s of wall time, a ratio rather than a speed.
func TestNativeCFSQuotaHoldsABusyLoopToItsCPUs(t *testing.T) {
	n := testNative(t)
	spec := shell(`while :; do :; done`)
	spec.CPUs, spec.MemMB = 0.5, 32
	c := launchNative(t, n, spec)
	uc := c.(UsageReporter)
	usage := func() float64 {
		u, err := uc.Usage()
		if err != nil {
			t.Fatal(err)
		}
		return u.CPUsUserTimeSecs + u.CPUsSystemTimeSecs
	}
	acct := func() float64 {
		var path string
		if n.h.version() == 1 {
			path = filepath.Join("/sys/fs/cgroup/cpuacct", n.Root(), c.ID(), "cpuacct.usage")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ns, _ := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
			return ns / 1e9
		}
		return usage()
	}
	// The kernel throttles the loop: wait (bounded) until it says so. How
	// soon depends on how busy the machine is, so nothing is timed.
	deadline := time.Now().Add(60 * time.Second)
	for {
		u, err := uc.Usage()
		if err != nil {
			t.Fatal(err)
		}
		if u.CPUsNrThrottled > 0 && u.CPUsThrottledTimeSecs > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the busy loop was never throttled in 60 s: %+v", u)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The quota caps the loop at half a core over any window, however busy
	// the machine is: an upper bound holds under load (a lower one would
	// not, so none is asserted).
	a0, u0, t0 := acct(), usage(), time.Now()
	time.Sleep(time.Second) // the window measured, not a wait for a condition
	a1, u1, t1 := acct(), usage(), time.Now()
	ratio := (a1 - a0) / t1.Sub(t0).Seconds()
	t.Logf("busy loop with cpus=0.5 used %.3f of a core (cpuacct); user+system %.3f", ratio, (u1-u0)/t1.Sub(t0).Seconds())
	if ratio > 0.6 {
		t.Fatalf("busy loop with cpus=0.5 used %.2f of a core, above its quota", ratio)
	}
	if u, _ := uc.Usage(); u.CPUsLimit != 0.5 {
		t.Errorf("usage = %+v, want cpus_limit 0.5", u)
	}
}

func TestNativeMemoryLimitKillsTheContainerAndReportsTheLimitation(t *testing.T) {
	n := testNative(t)
	// tail keeps the whole newline-free input in memory.
	spec := shell(`sleep 100 & head -c 200m /dev/zero | tail; echo survived`)
	spec.CPUs, spec.MemMB = 1, 64
	c := launchNative(t, n, spec)
	ns := pidNamespace(c.Pid())
	e := wait(t, c)
	if e.Limitation == nil || e.Limitation.Resource != "mem" {
		t.Fatalf("exit = %+v (%s), want a memory limitation", e, e)
	}
	if want := "Memory limit exceeded: Requested: 64MB Maximum Used: 64MB"; e.Limitation.Message != want {
		t.Errorf("message = %q, want %q", e.Limitation.Message, want)
	}
	if e.Success() {
		t.Error("an OOM-killed container counts as a success")
	}
	expectGone(t, n, c.ID(), ns)
}

func TestNativeKillLeavesNoProcessBehind(t *testing.T) {
	eachInit(t, testNativeKillLeavesNoProcessBehind)
}

func testNativeKillLeavesNoProcessBehind(t *testing.T, cfg NativeConfig) {
	n := testNativeConfig(t, cfg)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			// A daemon that leaves the task's session and process group.
			c := launchNative(t, n, shell(`(setsid sh -c 'trap "" TERM; sleep 100' &); sleep 100 & sleep 100`))
			ns := pidNamespace(c.Pid())
			waitFor(t, "init, shell, daemon and sleeps", func() bool { return len(liveInNamespace(t, ns)) >= 5 })
			expectInit(t, c, cfg)
			if err := c.Signal(sig); err != nil {
				t.Fatal(err)
			}
			e := wait(t, c)
			if sig == syscall.SIGTERM && e.Signal != syscall.SIGTERM {
				t.Errorf("exit = %+v, want the task terminated by SIGTERM", e)
			}
			if sig == syscall.SIGKILL && e.Signal != syscall.SIGKILL {
				t.Errorf("exit = %+v, want SIGKILL", e)
			}
			expectGone(t, n, c.ID(), ns)
			if err := c.Signal(syscall.SIGTERM); !errors.Is(err, ErrExited) {
				t.Errorf("Signal after exit = %v, want ErrExited", err)
			}
		})
	}
}

func TestNativeFailureReportsStatusAndLeavesNoProcessBehind(t *testing.T) {
	eachInit(t, testNativeFailureReportsStatusAndLeavesNoProcessBehind)
}

func testNativeFailureReportsStatusAndLeavesNoProcessBehind(t *testing.T, cfg NativeConfig) {
	n := testNativeConfig(t, cfg)
	c := launchNative(t, n, shell(`sleep 100 & (setsid sleep 100 &); exit 3`))
	ns := pidNamespace(c.Pid())
	e := wait(t, c)
	if e.Code != 3 || e.Signal != 0 || e.Limitation != nil {
		t.Fatalf("exit = %+v, want status 3", e)
	}
	expectGone(t, n, c.ID(), ns)
}

func TestNativeLaunchFailureLeavesNothing(t *testing.T) {
	eachInit(t, testNativeLaunchFailureLeavesNothing)
}

func testNativeLaunchFailureLeavesNothing(t *testing.T, cfg NativeConfig) {
	n := testNativeConfig(t, cfg)
	dir := t.TempDir()
	for _, tc := range []struct{ path, want string }{
		// The init's exec fails: it reports the error as Go's exec does.
		{"/nonexistent/program", "fork/exec /nonexistent/program: no such file or directory"},
		{dir, "fork/exec " + dir + ": permission denied"},
		// The agent's own PATH lookup fails before any init starts.
		{"no-such-program-agora", "executable file not found"},
	} {
		_, err := n.Launch(context.Background(), Spec{ID: "bad", Path: tc.path, Dir: dir, Env: []string{"PATH=" + dir}})
		if err == nil {
			t.Fatalf("launch %s succeeded", tc.path)
		}
		t.Logf("launch %s: %v", tc.path, err)
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("launch %s: error %q, want %q in it", tc.path, err, tc.want)
		}
	}
	for _, d := range cgroupDirs(n, "bad") {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s left by failed launches", d)
		}
	}
}

func TestNativeRecoverAdoptsAndCleanupDestroysOrphans(t *testing.T) {
	n := testNative(t)
	kept := launchNative(t, n, shell(`sleep 100 & sleep 100`))
	orphan := launchNative(t, n, shell(`sleep 100 & sleep 100`))
	keptNS, orphanNS := pidNamespace(kept.Pid()), pidNamespace(orphan.Pid())
	waitFor(t, "both containers running", func() bool {
		return len(liveInNamespace(t, keptNS)) >= 4 && len(liveInNamespace(t, orphanNS)) >= 4
	})

	// A restarted agent: a new containerizer on the same root.
	again, err := NewNative(NativeConfig{Root: n.Root()})
	if err != nil {
		t.Fatal(err)
	}
	st := kept.State()
	if st.Cgroup != n.Root()+"/"+kept.ID() || st.StartTime == 0 {
		t.Fatalf("state = %+v", st)
	}
	adopted, err := again.Recover(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	gone, err := again.CleanupOrphans(func(id string) bool { return id == kept.ID() })
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 1 || gone[0] != orphan.ID() {
		t.Fatalf("cleanup destroyed %v, want only %s", gone, orphan.ID())
	}
	wait(t, orphan)
	expectGone(t, n, orphan.ID(), orphanNS)
	if len(liveInNamespace(t, keptNS)) < 4 {
		t.Fatal("cleanup hurt the recovered container")
	}
	if u, err := adopted.(UsageReporter).Usage(); err != nil || u.Processes < 3 || u.MemLimitBytes != 0 {
		t.Errorf("adopted usage = %+v, %v", u, err)
	}
	if err := adopted.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, adopted); !e.Unknown {
		t.Errorf("adopted exit = %+v, want Unknown", e)
	}
	wait(t, kept)
	expectGone(t, n, kept.ID(), keptNS)
	if _, err := again.Recover(context.Background(), st); !errors.Is(err, ErrGone) {
		t.Fatalf("recover of a destroyed container: %v, want ErrGone", err)
	}
}

func TestIsolationFlagChoosesTheContainerizer(t *testing.T) {
	for _, c := range []struct {
		iso  string
		mode string
		bad  bool
	}{
		{"", "auto", false},
		{"posix", "posix", false},
		{"posix/cpu,posix/mem", "posix", false},
		{"cgroups", "native", false},
		{"cgroups/cpu,cgroups/mem,namespaces/pid,filesystem/linux", "native", false},
		{"docker/runtime", "", true},
	} {
		mode, err := isolationMode(c.iso)
		if (err != nil) != c.bad || mode != c.mode {
			t.Errorf("isolationMode(%q) = %q, %v", c.iso, mode, err)
		}
	}
	p, err := New(Options{Isolation: "posix"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.(Process); !ok {
		t.Fatalf("--isolation=posix gave %T", p)
	}
	if w := p.(Process).Warnings(); len(w) != 1 || !strings.Contains(w[0], "isolation disabled") {
		t.Errorf("warnings = %q", w)
	}
}

// The v2 code path, as far as this machine allows: a cgroup2 mount without
// the cpu and memory controllers is refused with a clear error; with them,
// a container cgroup is created with its limits and removed.
func TestCgroupV2Hierarchy(t *testing.T) {
	tier.Need(t, tier.Root, tier.RootErr())
	mount := "/sys/fs/cgroup"
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(b), " /sys/fs/cgroup/unified ") {
		mount = "/sys/fs/cgroup/unified"
	}
	h, err := detectHierarchy(mount)
	if err != nil {
		if !strings.Contains(err.Error(), "controller is not available") {
			t.Fatalf("detectHierarchy(%s): %v", mount, err)
		}
		t.Skipf("cgroup v2 at %s has no cpu and memory controllers: %v", mount, err)
	}
	if h.version() != 2 {
		t.Skipf("%s is cgroup v1", mount)
	}
	name := fmt.Sprintf("agora-test/v2-%d", os.Getpid())
	cg, err := h.create(name+"/c", limits{cpuShares: 512, cfsPeriod: 100000, cfsQuota: 50000, memBytes: 64 << 20, pids: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(filepath.Join(mount, name))
	for file, want := range map[string]string{"cpu.max": "50000 100000", "memory.max": strconv.Itoa(64 << 20)} {
		b, _ := os.ReadFile(filepath.Join(mount, name, "c", file))
		if strings.TrimSpace(string(b)) != want {
			t.Errorf("%s = %q, want %q", file, b, want)
		}
	}
	if err := removeCgroup(cg); err != nil {
		t.Fatal(err)
	}
}

// An empty cgroup in the root that has been there longer than a launch
// takes (an agent killed before it removed it) is removed by any agent's
// orphan cleanup, even one that must leave other agents' containers alone;
// a fresh empty one (a launch in progress) and a live container are not.
func TestCleanupRemovesAbandonedEmptyCgroups(t *testing.T) {
	n := testNative(t)
	live := launchNative(t, n, shell("sleep 100"))
	if _, err := n.h.create(n.Root()+"/abandoned", limits{memBytes: 32 << 20}); err != nil {
		t.Fatal(err)
	}
	theirs := func(string) bool { return true } // nothing here is this agent's
	gone, err := n.CleanupOrphans(theirs)
	if err != nil || len(gone) != 0 {
		t.Fatalf("cleanup removed %v (%v); a fresh empty cgroup may be a launch in progress", gone, err)
	}
	defer func(age time.Duration) { abandonedAge = age }(abandonedAge)
	abandonedAge = 0
	gone, err = n.CleanupOrphans(theirs)
	if err != nil || len(gone) != 1 || gone[0] != "abandoned" {
		t.Fatalf("cleanup removed %v (%v), want only the abandoned cgroup", gone, err)
	}
	for _, dir := range cgroupDirs(n, "abandoned") {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there (%v)", dir, err)
		}
	}
	if err := live.Signal(0); err != nil {
		t.Errorf("the live container was hurt: %v", err)
	}
}

func TestNativeConfigurationLargerThanThePipe(t *testing.T) {
	eachInit(t, testNativeConfigurationLargerThanThePipe)
}

// testNativeConfigurationLargerThanThePipe: a task whose environment is
// more than the init's configuration pipe holds (the agent writes a
// configuration that fits before the init starts, a bigger one after)
// starts with all of it.
func testNativeConfigurationLargerThanThePipe(t *testing.T, cfg NativeConfig) {
	n := testNativeConfig(t, cfg)
	dir := t.TempDir()
	spec := shell(`echo "${#BIG1} ${#BIG2} ${#BIG3} ${#BIG4}"`)
	spec.Dir = dir
	value := strings.Repeat("x", 40<<10)
	for i := 1; i <= 4; i++ {
		spec.Env = append(spec.Env, fmt.Sprintf("BIG%d=%s", i, value))
	}
	c := launchNative(t, n, spec)
	if e := wait(t, c); !e.Success() {
		errb, _ := os.ReadFile(filepath.Join(dir, "stderr"))
		t.Fatalf("exit = %+v; stderr: %s", e, errb)
	}
	out, _ := os.ReadFile(filepath.Join(dir, "stdout"))
	if want := strings.Repeat(strconv.Itoa(40<<10)+" ", 3) + strconv.Itoa(40<<10) + "\n"; string(out) != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
}

// TestInitPipeEnds: of a pipe to a container's init, only the agent's
// end is in the runtime's poller (a deadline can cut its reads or
// writes); the init's end is blocking, as the init expects.
func TestInitPipeEnds(t *testing.T) {
	for _, agentReads := range []bool{true, false} {
		r, w, err := initPipe(agentReads)
		if err != nil {
			t.Fatal(err)
		}
		agent, init := w, r
		if agentReads {
			agent, init = r, w
		}
		var deadlineErr error
		if agentReads {
			deadlineErr = agent.SetReadDeadline(time.Now().Add(time.Hour))
		} else {
			deadlineErr = agent.SetWriteDeadline(time.Now().Add(time.Hour))
		}
		if deadlineErr != nil {
			t.Errorf("agentReads=%v: the agent's end takes no deadline: %v", agentReads, deadlineErr)
		}
		if err := init.SetDeadline(time.Now()); !errors.Is(err, os.ErrNoDeadline) {
			t.Errorf("agentReads=%v: the init's end is in the poller (SetDeadline: %v)", agentReads, err)
		}
		// Read through SyscallConn: Fd would make the file blocking.
		rc, err := init.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		fl, flErr := 0, error(nil)
		_ = rc.Control(func(fd uintptr) { fl, flErr = unix.FcntlInt(fd, unix.F_GETFL, 0) })
		if flErr != nil || fl&unix.O_NONBLOCK != 0 {
			t.Errorf("agentReads=%v: the init's end is non-blocking (flags %#x, %v)", agentReads, fl, flErr)
		}
		// The pipe carries bytes from the write end to the read end.
		if _, err := w.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		var b [1]byte
		if n, err := r.Read(b[:]); n != 1 || err != nil || b[0] != 'x' {
			t.Errorf("agentReads=%v: read %d %q %v", agentReads, n, b[:n], err)
		}
		r.Close()
		w.Close()
	}
}
