package agent_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/cluster/containerizer"
)

// cgroupFile reads a file of container id's cgroup under root: the v1
// controller's, or the v2 equivalent.
func cgroupFile(t *testing.T, root, id, controller, v1, v2 string) string {
	t.Helper()
	path := filepath.Join("/sys/fs/cgroup", controller, root, id, v1)
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		path = filepath.Join("/sys/fs/cgroup", root, id, v2)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// waitCgroup waits until the cgroup file reads want.
func waitCgroup(t *testing.T, what string, read func() string, want string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for got := read(); got != want; got = read() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s, want %s", what, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestExecutorContainerLimitsFollowItsTasks: a custom executor's container
// gets the executor's resources plus those of its live tasks, as Mesos
// gives it: the memory limit grows as tasks arrive (and, as in Mesos, is
// not lowered when they end), the CFS quota follows the cpus both ways,
// and a task that makes the executor exceed the memory limit fails with
// REASON_CONTAINER_LIMITATION_MEMORY, with every other task of the
// executor.
func TestExecutorContainerLimitsFollowItsTasks(t *testing.T) {
	tier.Need(t, tier.Root, tier.RootErr())
	root := fmt.Sprintf("agora-test/executor-limits-%d", os.Getpid())
	n, err := containerizer.NewNative(containerizer.NativeConfig{Root: root})
	if err != nil {
		tier.Need(t, tier.Root, fmt.Errorf("no cgroups here: %w", err))
	}
	// Registered first, so it runs after the cluster has stopped.
	t.Cleanup(func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + root)
		if d := "/sys/fs/cgroup/" + root; fileExists(d) {
			dirs = append(dirs, d) // the cgroup v2 hierarchy
		}
		for _, dir := range dirs {
			_ = os.Remove(dir)
		}
	})
	markers, err := os.MkdirTemp("/var/tmp", "agora-limits-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(markers) })
	// Containers get a /tmp of their own: the executor's program is
	// copied where they see it.
	b, err := os.ReadFile(testBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	self := filepath.Join(markers, "agent.test")
	if err := os.WriteFile(self, b, 0o755); err != nil {
		t.Fatal(err)
	}
	// The copy is made before the cluster starts anything (a file being
	// written while another goroutine forks could not be executed).
	c := clustertest.Start(t, clustertest.Options{Agent: func(_ int, cfg *agent.Config) { cfg.Containerizer = n }})
	t.Cleanup(c.Stop)
	s := subscribe(t, c.MasterURL, `{"user":"root","name":"limits"}`)
	exec := mesos.ExecutorInfo{Type: mesos.ExecutorInfo_CUSTOM, ExecutorID: mesos.ExecutorID{Value: "limited"},
		Command: &mesos.CommandInfo{Value: &self, Shell: new(bool), Arguments: []string{"sdk-executor"},
			Environment: &mesos.Environment{Variables: []mesos.Environment_Variable{
				{Name: "AGORA_TEST_ROLE", Value: strp("sdk-executor")},
				{Name: "AGORA_TEST_DONE_DIR", Value: strp(markers)},
			}}},
		Resources: resources(t, "cpus:0.2;mem:64")}
	launch := func(id, data, res string) {
		t.Helper()
		o := s.offer()
		s.launch(o, mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: o.AgentID, Executor: &exec,
			Data: []byte(data), Resources: resources(t, res)})
		s.waitState(id, mesos.TASK_RUNNING)
	}
	launch("a", filepath.Join(markers, "a"), "cpus:0.1;mem:64")
	running := s.waitState("a", mesos.TASK_RUNNING)
	id := running.GetContainerStatus().GetContainerID().GetValue()
	mem := func() string {
		return cgroupFile(t, root, id, "memory", "memory.limit_in_bytes", "memory.max")
	}
	period, err := strconv.Atoi(strings.Fields(cgroupFile(t, root, id, "cpu", "cpu.cfs_period_us", "cpu.max") + " x")[0])
	if err != nil || period <= 0 {
		// v2's cpu.max is "quota period".
		f := strings.Fields(cgroupFile(t, root, id, "cpu", "cpu.cfs_period_us", "cpu.max"))
		period, _ = strconv.Atoi(f[len(f)-1])
	}
	quota := func() string {
		return strings.Fields(cgroupFile(t, root, id, "cpu", "cpu.cfs_quota_us", "cpu.max"))[0]
	}
	mb := func(n int) string { return strconv.Itoa(n << 20) }
	cpus := func(c float64) string { return strconv.Itoa(int(c*float64(period) + 0.5)) }

	waitCgroup(t, "memory limit with task a", mem, mb(64+64))
	waitCgroup(t, "CFS quota with task a", quota, cpus(0.2+0.1))
	launch("b", filepath.Join(markers, "b"), "cpus:0.1;mem:32")
	waitCgroup(t, "memory limit with tasks a and b", mem, mb(64+64+32))
	waitCgroup(t, "CFS quota with tasks a and b", quota, cpus(0.2+0.1+0.1))

	if err := os.WriteFile(filepath.Join(markers, "a"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.waitState("a", mesos.TASK_FINISHED)
	waitCgroup(t, "CFS quota once task a ended", quota, cpus(0.2+0.1))
	if got := mem(); got != mb(64+64+32) {
		t.Errorf("memory limit once task a ended: %s, want %s (kept)", got, mb(64+64+32))
	}

	// 512 MB in a container limited to 160 MB.
	launch("hog", "alloc:512", "cpus:0.1;mem:16")
	for _, task := range []string{"hog", "b"} {
		st := s.waitTerminal(task)
		if st.GetState() != mesos.TASK_FAILED || st.GetReason() != mesos.REASON_CONTAINER_LIMITATION_MEMORY || st.GetSource() != mesos.SOURCE_AGENT {
			t.Errorf("task %s: %s", task, describe(s.statuses(task)))
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
