package agent_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/cluster/containerizer"
)

// TestTaskGroupsSurviveAgentKill9: a checkpointing framework runs three
// task groups on the built-in default executor of an agent process with
// the native containerizer; the agent is killed with SIGKILL, two tasks
// finish while no agent runs, and a new agent process on the same
// work_dir adopts the groups' containers. Every task then ends as it
// would have without the restart: the tasks that finished while the agent
// was down are TASK_FINISHED (from the exit status their container init
// kept), a running task finishes, a task killed after the restart is
// TASK_KILLED, and a task that fails after the restart takes the rest of
// its group with it. No task is reported failed or lost for the restart.
func TestTaskGroupsSurviveAgentKill9(t *testing.T) {
	tier.Need(t, tier.Root, tier.RootErr())
	root := fmt.Sprintf("agora-test/groups-%d-%d", os.Getpid(), time.Now().UnixNano())
	if _, err := containerizer.NewNative(containerizer.NativeConfig{Root: root}); err != nil {
		tier.Need(t, tier.Root, fmt.Errorf("no cgroups here: %w", err))
	}
	t.Cleanup(func() { destroyCgroupRoot(root) }) // after the agent process is killed
	f := newRecoveryFixture(t, `{"user":"root","name":"groups","checkpoint":true,"failover_timeout":3600}`,
		func(pc *agentProcessConfig) { pc.NativeRoot = root })
	m := f.markers
	waitFor := func(marker string) string {
		return `while [ ! -f "` + m + `/` + marker + `" ]; do sleep 0.05; done; touch "` + m + `/$MESOS_TASK_ID.done"`
	}
	exec := mesos.ExecutorInfo{Type: mesos.ExecutorInfo_DEFAULT, ExecutorID: mesos.ExecutorID{Value: "pod"},
		Resources: resources(t, "cpus:0.1;mem:32")}
	groups := [][]mesos.TaskInfo{}
	o := f.s.offerFrom(f.pc.Hostname)
	g := []mesos.TaskInfo{
		shellTask(t, "g-early-1", o.AgentID, waitFor("early"), "cpus:0.1;mem:16"),
		shellTask(t, "g-early-2", o.AgentID, waitFor("early"), "cpus:0.1;mem:16"),
		shellTask(t, "g-late", o.AgentID, waitFor("late"), "cpus:0.1;mem:16"),
	}
	f.s.launchGroup(o, exec, g...)
	groups = append(groups, g)
	for _, tk := range g {
		f.s.waitState(tk.TaskID.Value, mesos.TASK_RUNNING)
	}
	o = f.s.offerFrom(f.pc.Hostname)
	h := []mesos.TaskInfo{
		shellTask(t, "h-fail", o.AgentID, waitFor("late")+"; exit 3", "cpus:0.1;mem:16"),
		shellTask(t, "h-sleeper", o.AgentID, "exec sleep 600", "cpus:0.1;mem:16"),
	}
	f.s.launchGroup(o, exec, h...)
	groups = append(groups, h)
	o = f.s.offerFrom(f.pc.Hostname)
	k := []mesos.TaskInfo{shellTask(t, "k-sleeper", o.AgentID, "exec sleep 600", "cpus:0.1;mem:16")}
	f.s.launchGroup(o, exec, k...)
	groups = append(groups, k)
	for _, tk := range append(h, k...) {
		f.s.waitState(tk.TaskID.Value, mesos.TASK_RUNNING)
	}

	f.agent.kill()
	if err := os.WriteFile(filepath.Join(m, "early"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for _, id := range []string{"g-early-1", "g-early-2"} {
		for {
			if _, err := os.Stat(filepath.Join(m, id+".done")); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %s did not finish while the agent was down", id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	f.agent = startAgentProcess(t, f.pc, "agent-2.log")
	for _, id := range []string{"g-early-1", "g-early-2"} {
		if st := f.s.waitTerminal(id); st.GetState() != mesos.TASK_FINISHED {
			t.Errorf("task %s, which finished while the agent was down: %s", id, describe(f.s.statuses(id)))
		}
	}
	f.s.mustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: "k-sleeper"}, AgentID: &o.AgentID}})
	if st := f.s.waitTerminal("k-sleeper"); st.GetState() != mesos.TASK_KILLED {
		t.Errorf("k-sleeper, killed after the restart: %s", describe(f.s.statuses("k-sleeper")))
	}
	if err := os.WriteFile(filepath.Join(m, "late"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	want := map[string]mesos.TaskState{
		"g-early-1": mesos.TASK_FINISHED, "g-early-2": mesos.TASK_FINISHED, "g-late": mesos.TASK_FINISHED,
		"h-fail": mesos.TASK_FAILED, "h-sleeper": mesos.TASK_KILLED, "k-sleeper": mesos.TASK_KILLED,
	}
	for _, g := range groups {
		for _, tk := range g {
			id := tk.TaskID.Value
			st := f.s.waitTerminal(id)
			if st.GetState() != want[id] {
				t.Errorf("task %s ended %s, want %v: %s", id, st.GetState(), want[id], describe(f.s.statuses(id)))
			}
			var terminalUUID []byte
			for _, st := range f.s.statuses(id) {
				switch state := st.GetState(); {
				case state == mesos.TASK_STARTING || state == mesos.TASK_RUNNING:
				case state == want[id]:
					if terminalUUID != nil && string(terminalUUID) != string(st.UUID) {
						t.Errorf("task %s: two different terminal updates: %s", id, describe(f.s.statuses(id)))
					}
					terminalUUID = st.UUID
				default:
					t.Errorf("task %s: unexpected %v: %s", id, state, describe(f.s.statuses(id)))
				}
			}
		}
	}
	if st := f.s.statuses("h-fail"); !strings.Contains(st[len(st)-1].GetMessage(), "exited with status 3") {
		t.Errorf("h-fail: %s", describe(st))
	}
	// With every group ended, the executor is done.
	if fl := f.s.next(scheduler.Event_FAILURE).Failure; fl.GetExecutorID().GetValue() != "pod" {
		t.Errorf("FAILURE: %+v", fl)
	}
}

// destroyCgroupRoot kills whatever still runs in the containers of a
// native containerizer's cgroup root (left when a test fails) and removes
// their cgroups.
func destroyCgroupRoot(root string) {
	var dirs []string
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		dirs = []string{filepath.Join("/sys/fs/cgroup", root)}
	} else {
		for _, c := range []string{"cpu", "cpuacct", "memory", "pids"} {
			dirs = append(dirs, filepath.Join("/sys/fs/cgroup", c, root))
		}
	}
	for _, dir := range dirs {
		subs, _ := filepath.Glob(filepath.Join(dir, "*", "cgroup.procs"))
		for _, procs := range subs {
			b, _ := os.ReadFile(procs)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, dir := range dirs {
		subs, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, sub := range subs {
			if fi, err := os.Stat(sub); err != nil || !fi.IsDir() {
				continue
			}
			for os.Remove(sub) != nil && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
		}
		_ = os.Remove(dir)
	}
}

// TestTaskGroupsOfTheFormerAgentAreDestroyed: a task group does not
// survive an agent restart when its framework does not checkpoint, nor
// with --recover=cleanup: its containers are destroyed (and, without
// checkpointing, the master reports the tasks lost).
func TestTaskGroupsOfTheFormerAgentAreDestroyed(t *testing.T) {
	for _, c := range []struct {
		name, framework, recover string
	}{
		{"no-checkpoint", `{"user":"root","name":"transient-group","checkpoint":false}`, ""},
		{"recover-cleanup", `{"user":"root","name":"cleanup-group","checkpoint":true,"failover_timeout":3600}`, "cleanup"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newRecoveryFixture(t, c.framework)
			o := f.s.offerFrom(f.pc.Hostname)
			exec := mesos.ExecutorInfo{Type: mesos.ExecutorInfo_DEFAULT, ExecutorID: mesos.ExecutorID{Value: "pod"},
				Resources: resources(t, "cpus:0.1;mem:32")}
			ids := []string{"p-1", "p-2"}
			f.s.launchGroup(o, exec,
				shellTask(t, ids[0], o.AgentID, "exec sleep 600", "cpus:0.1;mem:16"),
				shellTask(t, ids[1], o.AgentID, "exec sleep 600", "cpus:0.1;mem:16"))
			var pids []int
			for _, id := range ids {
				st := f.s.waitState(id, mesos.TASK_RUNNING)
				pid := st.GetContainerStatus().GetExecutorPID()
				killExecutorAtCleanup(t, pid)
				pids = append(pids, int(pid))
			}
			f.agent.kill()
			f.pc.Recover = c.recover
			p := startAgentProcess(t, f.pc, "agent-2.log")
			deadline := time.Now().Add(wait)
			for _, pid := range pids {
				for !processGone(pid) {
					if time.Now().After(deadline) {
						t.Fatalf("task process %d of the former agent survived its restart (--recover=%s)", pid, c.recover)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			if c.recover == "cleanup" {
				select {
				case <-p.done:
				case <-time.After(wait):
					t.Fatal("the agent did not exit after --recover=cleanup")
				}
				return
			}
			for _, id := range ids {
				if st := f.s.waitTerminal(id); st.GetState() != mesos.TASK_LOST {
					t.Errorf("task %s of the destroyed group: %s", id, describe(f.s.statuses(id)))
				}
			}
		})
	}
}
