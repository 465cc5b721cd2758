package agent_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/cluster/containerizer"
)

// TestCommandTaskOutcomeSurvivesAgentKill9DuringItsLaunch kills an agent
// process (native containerizer) with SIGKILL at the moments of a command
// task's launch that a real crash may separate, and restarts it on the
// same work directory each time. The task's checkpoint names its
// container before the container starts, so the restarted agent reports
// what really happened:
//
//   - killed right after the container started, before its pid was
//     checkpointed, the task ending while no agent runs: the task's real
//     exit status (TASK_FINISHED for 0);
//   - the same, the task still running: the container is adopted, reported
//     TASK_RUNNING, and ends with its real status (TASK_FAILED for 1);
//   - killed before the container was created: TASK_DROPPED, as a task
//     that never started.
func TestCommandTaskOutcomeSurvivesAgentKill9DuringItsLaunch(t *testing.T) {
	tier.Need(t, tier.Root, tier.RootErr())
	root := fmt.Sprintf("agora-test/launch-crash-%d-%d", os.Getpid(), time.Now().UnixNano())
	if _, err := containerizer.NewNative(containerizer.NativeConfig{Root: root}); err != nil {
		tier.Need(t, tier.Root, fmt.Errorf("no cgroups here: %w", err))
	}
	t.Cleanup(func() { destroyCgroupRoot(root) }) // after the agent process is killed
	crashAt := func(point agent.CrashPoint, task string) func(*agentProcessConfig) {
		return func(pc *agentProcessConfig) {
			pc.NativeRoot = root
			pc.CrashAt, pc.CrashMatch = string(point), "/executors/"+task+"/"
		}
	}
	f := newRecoveryFixture(t, `{"user":"root","name":"launch-crash","checkpoint":true,"failover_timeout":3600,`+
		`"capabilities":[{"type":"PARTITION_AWARE"}]}`, crashAt(agent.CrashAfterContainerStart, "ended"))
	launchCrashing := func(id, script string) {
		t.Helper()
		o := f.s.liveOffer(f.pc.Hostname)
		f.s.launch(o, shellTask(t, id, o.AgentID, script, "cpus:0.1;mem:32"))
		select {
		case <-f.agent.done:
		case <-time.After(wait):
			t.Fatalf("the agent did not crash while launching %s", id)
		}
	}
	restart := func(log string, adjust ...func(*agentProcessConfig)) {
		t.Helper()
		f.pc.CrashAt, f.pc.CrashMatch = "", ""
		for _, fn := range adjust {
			fn(&f.pc)
		}
		f.agent = startAgentProcess(t, f.pc, log)
	}
	exact := func(id string, want mesos.TaskState, message string) {
		t.Helper()
		st := f.s.waitTerminal(id)
		if st.GetState() != want || st.Reason != nil || !strings.Contains(st.GetMessage(), message) {
			t.Errorf("task %s ended %s (%s, %q), want %s with %q: %s", id, st.GetState(), st.GetReason(), st.GetMessage(),
				want, message, describe(f.s.statuses(id)))
		}
	}

	// Ended while no agent ran: the exit status its container's init kept.
	launchCrashing("ended", `exit 0`)
	waitForFile(t, filepath.Join(f.pc.WorkDir, "slaves", "*", "frameworks", "*", "executors", "ended", "runs", "*",
		".agora-exit-status")) // the init's exit-status file (containerizer)
	restart("agent-2.log", crashAt(agent.CrashAfterContainerStart, "running"))
	exact("ended", mesos.TASK_FINISHED, "exited with status 0")

	// Still running when the agent came back: adopted through its cgroup.
	gate := filepath.Join(f.markers, "gate")
	launchCrashing("running", `while [ ! -f "`+gate+`" ]; do sleep 0.05; done; exit 1`)
	restart("agent-3.log", crashAt(agent.CrashBeforeContainerStart, "never"))
	if st := f.s.waitState("running", mesos.TASK_RUNNING); st.GetContainerStatus().GetExecutorPID() == 0 {
		t.Errorf("adopted task reported running without its pid: %s", describe(f.s.statuses("running")))
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	exact("running", mesos.TASK_FAILED, "exited with status 1")

	// Killed before its container existed: it never ran.
	launchCrashing("never", `touch "`+f.markers+`/never-ran"`)
	restart("agent-4.log")
	if st := f.s.waitTerminal("never"); st.GetState() != mesos.TASK_DROPPED || st.GetReason() != mesos.REASON_AGENT_RESTARTED {
		t.Errorf("task never started ended %s (%s, %q): %s", st.GetState(), st.GetReason(), st.GetMessage(), describe(f.s.statuses("never")))
	}
	if _, err := os.Stat(filepath.Join(f.markers, "never-ran")); err == nil {
		t.Error("the task reported never started did run")
	}
}

// waitForFile waits until a file matching pattern exists.
func waitForFile(t *testing.T, pattern string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no file %s", pattern)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// liveOffer is an offer of the agent with the given hostname that the
// master has not rescinded: those queued before an agent restart were
// (call it once the restarted agent is known to have re-registered).
func (s *sched) liveOffer(hostname string) mesos.Offer {
	s.t.Helper()
	var queued []mesos.Offer
	rescinded := map[string]bool{}
	for drained := false; !drained; {
		select {
		case ev := <-s.other:
			switch ev.GetType() {
			case scheduler.Event_OFFERS:
				queued = append(queued, ev.Offers.Offers...)
			case scheduler.Event_RESCIND:
				rescinded[ev.Rescind.OfferID.Value] = true
			}
		default:
			drained = true
		}
	}
	for _, o := range queued {
		if o.Hostname == hostname && !rescinded[o.ID.Value] {
			return o
		}
	}
	return s.offerFrom(hostname)
}
