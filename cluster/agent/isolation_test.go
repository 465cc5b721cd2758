package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/cluster/containerizer"
)

var isolatedSeq atomic.Int64

// isolatedConfig is testConfig with the native containerizer on a cgroup
// root of the test's own. It skips without root or cgroups.
func isolatedConfig(t *testing.T, fm *fakeMaster) (Config, *containerizer.Native) {
	t.Helper()
	tier.Need(t, tier.Root, tier.RootErr())
	root := fmt.Sprintf("agora-test/agent-%d-%d", os.Getpid(), isolatedSeq.Add(1))
	n, err := containerizer.NewNative(containerizer.NativeConfig{Root: root, Logger: testLogger(t)})
	if err != nil {
		tier.Need(t, tier.Root, fmt.Errorf("no cgroups here: %w", err))
	}
	t.Cleanup(func() {
		for _, dir := range cgroupDirs(root, "") {
			_ = os.Remove(dir)
			_ = os.Remove(filepath.Dir(dir))
		}
	})
	cfg := testConfig(t, fm, "")
	cfg.Containerizer = n
	return cfg, n
}

// cgroupDirs is where container id's cgroup is in each cgroup v1
// controller (or the v2 hierarchy).
func cgroupDirs(root, id string) []string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{filepath.Join("/sys/fs/cgroup", root, id)}
	}
	var out []string
	for _, c := range []string{"cpu", "cpuacct", "memory", "pids"} {
		out = append(out, filepath.Join("/sys/fs/cgroup", c, root, id))
	}
	return out
}

// isolatedTask is a shell task with cpus and mem.
func isolatedTask(id, script string, cpus, mem float64) *api.RunTask {
	rt := shellTask(id, script)
	scalar := func(name string, v float64) mesos.Resource {
		return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v},
			AllocationInfo: &mesos.Resource_AllocationInfo{Role: proto("analytics")}}
	}
	rt.Task.Resources = []mesos.Resource{scalar("cpus", cpus), scalar("mem", mem)}
	return rt
}

// inNamespace lists the live processes that share pid namespace ns,
// scanning /proc.
func inNamespace(t *testing.T, ns string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, _ := os.Readlink(filepath.Join("/proc", e.Name(), "ns", "pid")); l != ns {
			continue
		}
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
			if len(f) > 0 && f[0] != "Z" && f[0] != "X" {
				out = append(out, pid)
			}
		}
	}
	return out
}

// runningContainer waits for the task's TASK_RUNNING and returns its
// container ID and pid namespace.
func runningContainer(t *testing.T, fm *fakeMaster, taskID string) (string, string) {
	t.Helper()
	ups := fm.expectStates(t, taskID, mesos.TASK_STARTING, mesos.TASK_RUNNING)
	cs := ups[1].Status.GetContainerStatus()
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", cs.GetExecutorPID()))
	if err != nil {
		t.Fatalf("task %s: pid namespace of %d: %v", taskID, cs.GetExecutorPID(), err)
	}
	self, _ := os.Readlink("/proc/self/ns/pid")
	if ns == self {
		t.Fatalf("task %s runs in the agent's pid namespace", taskID)
	}
	return cs.GetContainerID().GetValue(), ns
}

func expectNothingLeft(t *testing.T, root, containerID, ns string) {
	t.Helper()
	// Killed processes still show in /proc while the kernel finishes their
	// exit: give them a bounded moment.
	deadline := time.Now().Add(10 * time.Second)
	left := inNamespace(t, ns)
	for len(left) != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		left = inNamespace(t, ns)
	}
	if len(left) != 0 {
		t.Errorf("processes of container %s left: %v", containerID, left)
	}
	for _, dir := range cgroupDirs(root, containerID) {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s is still there (%v)", dir, err)
		}
	}
}

func TestTaskBeyondItsMemoryFailsWithMemoryLimitation(t *testing.T) {
	fm := newFakeMaster(t)
	cfg, n := isolatedConfig(t, fm)
	startRegistered(t, fm, cfg)
	run(fm, isolatedTask("hog", `sleep 100 & python3 -c 'x = bytearray(200 << 20); print("allocated")'`, 0.5, 64))
	cid, ns := runningContainer(t, fm, "hog")
	u := fm.nextUpdate(t, "hog")
	s := u.Status
	if s.GetState() != mesos.TASK_FAILED || s.GetSource() != mesos.SOURCE_AGENT ||
		s.GetReason() != mesos.REASON_CONTAINER_LIMITATION_MEMORY {
		t.Fatalf("got %s source %s reason %s (%q), want TASK_FAILED from the agent with REASON_CONTAINER_LIMITATION_MEMORY",
			s.GetState(), s.GetSource(), s.GetReason(), s.GetMessage())
	}
	if want := "Memory limit exceeded: Requested: 64MB Maximum Used: 64MB"; s.GetMessage() != want {
		t.Errorf("message = %q, want %q", s.GetMessage(), want)
	}
	expectNothingLeft(t, n.Root(), cid, ns)
}

func TestKillAndAgentShutdownLeaveNoContainerBehind(t *testing.T) {
	fm := newFakeMaster(t)
	cfg, n := isolatedConfig(t, fm)
	ta, _ := startRegistered(t, fm, cfg)
	const script = `(setsid sh -c 'trap "" TERM; sleep 100' &); sleep 100 & sleep 100`

	run(fm, isolatedTask("killed", script, 0.1, 32))
	cid, ns := runningContainer(t, fm, "killed")
	waitFor(t, "all processes of the task", func() bool { return len(inNamespace(t, ns)) >= 5 })
	kill(fm, "killed", nil)
	fm.expectStates(t, "killed", mesos.TASK_KILLED)
	expectNothingLeft(t, n.Root(), cid, ns)

	run(fm, isolatedTask("failed", `sleep 100 & (setsid sleep 100 &); sleep 0.2; exit 7`, 0.1, 32))
	cid, ns = runningContainer(t, fm, "failed")
	s := fm.nextUpdate(t, "failed").Status
	if s.GetState() != mesos.TASK_FAILED || s.GetMessage() != "Command exited with status 7" {
		t.Fatalf("got %s %q", s.GetState(), s.GetMessage())
	}
	expectNothingLeft(t, n.Root(), cid, ns)

	run(fm, isolatedTask("stopped", script, 0.1, 32))
	cid, ns = runningContainer(t, fm, "stopped")
	waitFor(t, "all processes of the task", func() bool { return len(inNamespace(t, ns)) >= 5 })
	ta.stop(t)
	expectNothingLeft(t, n.Root(), cid, ns)
}

func TestRestartedAgentDestroysContainersItDoesNotKnow(t *testing.T) {
	fm := newFakeMaster(t)
	cfg, n := isolatedConfig(t, fm)
	cfg.KeepTasksOnStop = true
	ta, _ := startRegistered(t, fm, cfg)
	run(fm, isolatedTask("kept", "sleep 100 & sleep 100", 0.1, 32))
	keptID, keptNS := runningContainer(t, fm, "kept")

	launch := func(id, sandbox string) (containerizer.Container, string) {
		if err := os.MkdirAll(sandbox, 0o755); err != nil {
			t.Fatal(err)
		}
		c, err := n.Launch(context.Background(), containerizer.Spec{
			ID: id, Path: "/bin/sh", Args: []string{"sh", "-c", "sleep 100 & sleep 100"},
			Dir: sandbox, Env: []string{"PATH=/usr/bin:/bin"},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Signal(syscall.SIGKILL); <-c.Done() })
		ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", c.Pid()))
		return c, ns
	}
	// A container of this agent that no checkpoint knows, as a crash right
	// after a launch leaves; and one of another agent on the same root.
	orphanID := "orphan-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	orphan, orphanNS := launch(orphanID, filepath.Join(cfg.WorkDir, "slaves", ta.ID(), "frameworks", testFramework,
		"executors", "orphan", "runs", orphanID))
	foreign, foreignNS := launch("foreign-"+orphanID, t.TempDir())
	waitFor(t, "all containers running", func() bool {
		return len(inNamespace(t, keptNS)) >= 4 && len(inNamespace(t, orphanNS)) >= 4 && len(inNamespace(t, foreignNS)) >= 4
	})
	ta.stop(t)

	startAgent(t, cfg)
	fm.nextRegister(t)
	fm.nextSession(t)
	waitFor(t, "the orphan destroyed", func() bool { return len(inNamespace(t, orphanNS)) == 0 })
	<-orphan.Done()
	expectNothingLeft(t, n.Root(), orphan.ID(), orphanNS)
	if len(inNamespace(t, keptNS)) < 4 {
		t.Fatal("the restarted agent destroyed the container it adopted")
	}
	if len(inNamespace(t, foreignNS)) < 4 {
		t.Fatal("the restarted agent destroyed another agent's container")
	}
	kill(fm, "kept", nil)
	fm.expectAfterResends(t, "kept", mesos.TASK_KILLED)
	expectNothingLeft(t, n.Root(), keptID, keptNS)
	_ = foreign.Signal(syscall.SIGKILL)
	<-foreign.Done()
	expectNothingLeft(t, n.Root(), foreign.ID(), foreignNS)
}

// statistics fetches /monitor/statistics and returns the entry of task id.
func statistics(t *testing.T, a *Agent, id string) (map[string]any, bool) {
	t.Helper()
	var all []map[string]any
	getJSON(t, a, "/monitor/statistics", &all)
	for _, e := range all {
		if e["executor_id"] == id {
			return e, true
		}
	}
	return nil, false
}

func TestMonitorStatisticsReportsUsageFromCgroupsAndProc(t *testing.T) {
	for _, isolated := range []bool{true, false} {
		t.Run(map[bool]string{true: "cgroups", false: "posix"}[isolated], func(t *testing.T) {
			fm := newFakeMaster(t)
			cfg := testConfig(t, fm, "")
			if isolated {
				cfg, _ = isolatedConfig(t, fm)
			}
			ta, _ := startRegistered(t, fm, cfg)
			run(fm, isolatedTask("busy", `python3 -c 'import itertools; x = b"x" * (20 << 20); any(itertools.repeat(0))'`, 0.5, 64))
			fm.expectStates(t, "busy", mesos.TASK_STARTING, mesos.TASK_RUNNING)
			var st map[string]any
			waitFor(t, "CPU time and memory in /monitor/statistics", func() bool {
				e, ok := statistics(t, ta.Agent, "busy")
				if !ok {
					return false
				}
				st, _ = e["statistics"].(map[string]any)
				cpu, _ := st["cpus_user_time_secs"].(float64)
				rss, _ := st["mem_rss_bytes"].(float64)
				return cpu > 0.2 && rss >= 20<<20
			})
			t.Logf("statistics: %v", st)
			e, _ := statistics(t, ta.Agent, "busy")
			if e["framework_id"] != testFramework || e["source"] != "busy" ||
				!strings.HasPrefix(e["executor_name"].(string), "Command Executor (Task: busy)") {
				t.Errorf("entry = %v", e)
			}
			if st["cpus_limit"] != 0.5 || st["mem_limit_bytes"] != float64(64<<20) || st["timestamp"].(float64) <= 0 {
				t.Errorf("statistics = %v", st)
			}
			for _, f := range []string{"cpus_system_time_secs", "cpus_nr_periods", "cpus_nr_throttled",
				"cpus_throttled_time_secs", "mem_total_bytes", "processes", "threads"} {
				if _, ok := st[f]; !ok {
					t.Errorf("statistics lack %s: %v", f, st)
				}
			}
			if isolated && st["cpus_nr_periods"].(float64) == 0 {
				t.Errorf("no CFS periods counted: %v", st)
			}
			kill(fm, "busy", nil)
			fm.expectStates(t, "busy", mesos.TASK_KILLED)
			if _, ok := statistics(t, ta.Agent, "busy"); ok {
				t.Error("a killed task is still in /monitor/statistics")
			}
		})
	}
}

func TestPsInsideATaskSeesOnlyTheTask(t *testing.T) {
	fm := newFakeMaster(t)
	cfg, _ := isolatedConfig(t, fm)
	ta, _ := startRegistered(t, fm, cfg)
	// ps runs once the background child has become sleep: until it execs,
	// it is a second sh (seen under load).
	run(fm, isolatedTask("ps", `sleep 100 & until [ "$(cat /proc/$!/comm)" = sleep ]; do :; done; ps -e -o pid=,comm=`, 0.1, 32))
	ups := fm.expectStates(t, "ps", mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
	out := readFile(t, filepath.Join(sandboxOf(ta.Agent, "ps", ups[1]), "stdout"))
	var comms []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("ps output %q", out)
		}
		if pid, _ := strconv.Atoi(f[0]); pid > 100 {
			t.Errorf("ps inside the task sees pid %s (%s)", f[0], f[1])
		}
		comms = append(comms, f[1])
	}
	if want := []string{"agora-init", "sh", "sleep", "ps"}; strings.Join(comms, " ") != strings.Join(want, " ") {
		t.Errorf("ps inside the task sees %v, want %v", comms, want)
	}
}

// TestCommandHealthCheckRunsInsideTheTasksContainer: under native
// isolation a COMMAND check runs where the task does (as in Mesos): it
// passes only if it sees the file the task wrote to its private /tmp and
// the task's init as pid 1, which no process on the host does.
func TestCommandHealthCheckRunsInsideTheTasksContainer(t *testing.T) {
	fm := newFakeMaster(t)
	cfg, _ := isolatedConfig(t, fm)
	startRegistered(t, fm, cfg)
	rt := isolatedTask("svc", `echo up > /tmp/svc-ready; exec sleep 100`, 0.1, 32)
	check := `test "$(cat /tmp/svc-ready)" = up && test "$(cat /proc/1/comm)" = agora-init`
	zero, interval, timeout, failures := 0.0, 0.1, 5.0, uint32(3)
	rt.Task.HealthCheck = &mesos.HealthCheck{Type: mesos.HealthCheck_COMMAND,
		Command:      &mesos.CommandInfo{Value: &check},
		DelaySeconds: &zero, IntervalSeconds: &interval, TimeoutSeconds: &timeout,
		ConsecutiveFailures: &failures, GracePeriodSeconds: &timeout}
	run(fm, rt)
	runningContainer(t, fm, "svc")
	s := fm.nextUpdate(t, "svc").Status
	if s.GetState() != mesos.TASK_RUNNING || s.GetReason() != mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED ||
		s.Healthy == nil || !*s.Healthy {
		t.Fatalf("got %s reason %s healthy %v (%q), want TASK_RUNNING marked healthy by the check",
			s.GetState(), s.GetReason(), s.Healthy, s.GetMessage())
	}
	if _, err := os.Stat("/tmp/svc-ready"); err == nil {
		t.Error("the task's /tmp file is visible on the host: the check proves nothing")
	}
	kill(fm, "svc", nil)
	fm.expectStates(t, "svc", mesos.TASK_KILLED)
}

// volumeResource is 16 MB of disk reserved for the role "analytics" with
// persistent volume id on it, at container path "data".
func volumeResource(id string, mode mesos.Volume_Mode) mesos.Resource {
	return mesos.Resource{Name: "disk", Type: mesos.SCALAR.Enum(),
		Scalar:         &mesos.Value_Scalar{Value: 16},
		Reservations:   []mesos.Resource_ReservationInfo{{Type: mesos.Resource_ReservationInfo_DYNAMIC.Enum(), Role: proto("analytics")}},
		AllocationInfo: &mesos.Resource_AllocationInfo{Role: proto("analytics")},
		Disk: &mesos.Resource_DiskInfo{Persistence: &mesos.Resource_DiskInfo_Persistence{ID: id},
			Volume: &mesos.Volume{ContainerPath: "data", Mode: mode.Enum()}}}
}

// TestPersistentVolumeUnderTmpReachesIsolatedTask: with the work
// directory below /tmp, an isolated task (which gets a /tmp of its own)
// still writes through its sandbox's link into WORK_DIR/volumes, as the
// containerizer mounts the volume back at its path.
func TestPersistentVolumeUnderTmpReachesIsolatedTask(t *testing.T) {
	fm := newFakeMaster(t)
	cfg, _ := isolatedConfig(t, fm)
	if !strings.HasPrefix(cfg.WorkDir, "/tmp/") {
		t.Skipf("the test's work directory %s is not below /tmp", cfg.WorkDir)
	}
	ta, _ := startRegistered(t, fm, cfg)
	rt := isolatedTask("writer", `echo kept > data/file`, 0.1, 32)
	rt.Task.Resources = append(rt.Task.Resources, volumeResource("vol-1", mesos.RW))
	run(fm, rt)
	ups := fm.expectStates(t, "writer", mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
	if got := readFile(t, filepath.Join(cfg.WorkDir, "volumes", "roles", "analytics", "vol-1", "file")); got != "kept\n" {
		t.Errorf("WORK_DIR/volumes/roles/analytics/vol-1/file holds %q, want what the task wrote", got)
	}
	if _, err := os.Lstat(filepath.Join(sandboxOf(ta.Agent, "writer", ups[1]), "tmp", strings.TrimPrefix(cfg.WorkDir, "/tmp/"), "volumes", "roles", "analytics", "vol-1", "file")); err == nil {
		t.Error("the task's write landed in its own /tmp, not in the volume")
	}
}

// TestReadOnlyPersistentVolumeIsReadOnlyInIsolatedTask: an isolated task
// reads its read-only (RO) persistent volume through its sandbox's link
// and cannot write to it, wherever the work directory is.
func TestReadOnlyPersistentVolumeIsReadOnlyInIsolatedTask(t *testing.T) {
	fm := newFakeMaster(t)
	cfg, _ := isolatedConfig(t, fm)
	_, _ = startRegistered(t, fm, cfg)
	vol := filepath.Join(cfg.WorkDir, "volumes", "roles", "analytics", "vol-ro")
	if err := os.MkdirAll(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vol, "seed"), []byte("seed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rt := isolatedTask("reader", `[ "$(cat data/seed)" = seed ] || exit 1; if echo x > data/new; then exit 2; fi`, 0.1, 32)
	rt.Task.Resources = append(rt.Task.Resources, volumeResource("vol-ro", mesos.RO))
	run(fm, rt)
	fm.expectStates(t, "reader", mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
	if _, err := os.Lstat(filepath.Join(vol, "new")); err == nil {
		t.Error("the task wrote into its read-only volume")
	}
}

// TestFetchedLinkOnAVolumesPathFailsTheLaunch: a fetched archive may hold
// a link that stays inside the sandbox on the host but, seen from the
// task's /tmp (the sandbox's tmp), leads out of it. One on the path where
// the volume is mounted back fails the launch, naming the link, and the
// directory it leads to is left untouched.
func TestFetchedLinkOnAVolumesPathFailsTheLaunch(t *testing.T) {
	fm := newFakeMaster(t)
	cfg, _ := isolatedConfig(t, fm)
	if !strings.HasPrefix(cfg.WorkDir, "/tmp/") {
		t.Skipf("the test's work directory %s is not below /tmp", cfg.WorkDir)
	}
	_, _ = startRegistered(t, fm, cfg)
	victim, err := os.MkdirTemp("/var/tmp", "agora-victim-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(victim) })
	// tmp/<work dir below /tmp>/volumes/roles/analytics, up to the
	// sandbox (the container's root), then down to the victim.
	rel := strings.TrimPrefix(cfg.WorkDir, "/tmp/")
	name := path.Join("tmp", rel, "volumes", "roles", "analytics")
	target := strings.Repeat("../", strings.Count(name, "/")) + strings.TrimPrefix(victim, "/")
	archive := filepath.Join(t.TempDir(), "links.tar")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(archive, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	rt := isolatedTask("linked", `echo escaped > data/file`, 0.1, 32)
	rt.Task.Command.URIs = []mesos.CommandInfo_URI{{Value: archive}}
	rt.Task.Resources = append(rt.Task.Resources, volumeResource("vol-1", mesos.RW))
	run(fm, rt)
	ups := fm.expectStates(t, "linked", mesos.TASK_STARTING, mesos.TASK_FAILED)
	link := path.Join("/tmp", rel, "volumes", "roles", "analytics")
	if msg := ups[1].Status.GetMessage(); !strings.Contains(msg, link+" is a symbolic link") {
		t.Errorf("TASK_FAILED says %q, want it to name the link %s", msg, link)
	}
	if ents, err := os.ReadDir(victim); err != nil || len(ents) != 0 {
		t.Errorf("the link's target %s holds %v (%v), want it untouched", victim, ents, err)
	}
}
