package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/cluster/clustertest/users"
	"github.com/agora-cluster/agora/cluster/containerizer"
)

// With --switch_user, a persistent volume's directory belongs to the user
// its task runs as, mode 0750, as its sandbox does: the task writes into
// it, another framework's user cannot list it, and what the volume
// already held keeps its owner and mode (nothing is changed recursively).
func TestPersistentVolumeBelongsToItsTasksUser(t *testing.T) {
	tier.Need(t, tier.Root, tier.RootErr())
	fm := newFakeMaster(t)
	cfg := testConfig(t, fm, "")
	cfg.Containerizer = containerizer.Process{}
	cfg.WorkDir = users.TraversableDir(t)
	cfg.SwitchUser = true
	userA, userB := users.Add(t, "va"), users.Add(t, "vb")
	ta, _ := startRegistered(t, fm, cfg)

	// The volume's data from before: a file root wrote, readable by all.
	vol := filepath.Join(cfg.WorkDir, "volumes", "roles", "analytics", "vol-a")
	if err := os.MkdirAll(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	seed := filepath.Join(vol, "seed")
	if err := os.WriteFile(seed, []byte("seed\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	rt := userTask("fw-a", userA, "a", `[ "$(cat data/seed)" = seed ] || exit 1; echo mine > data/new`)
	rt.Task.Resources = append(rt.Task.Resources, volumeResource("vol-a", mesos.RW))
	run(fm, rt)
	fm.expectStates(t, "a", mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)

	st, err := os.Stat(vol)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != sandboxMode || fileOwner(t, vol) != userA {
		t.Errorf("volume %s: mode %v owner %s, want %v and %s", vol, st.Mode().Perm(), fileOwner(t, vol), os.FileMode(sandboxMode), userA)
	}
	if got := readFile(t, filepath.Join(vol, "new")); got != "mine\n" {
		t.Errorf("the task wrote %q into its volume, want mine", got)
	}
	if st, err := os.Stat(seed); err != nil || st.Mode().Perm() != 0o644 || fileOwner(t, seed) != "root" {
		t.Errorf("the volume's earlier file %s changed: %v %v", seed, st.Mode(), err)
	}

	// Framework B's task, as user b, reaches the role's directory (so the
	// refusal is the volume's own mode) but cannot list the volume or read it.
	run(fm, userTask("fw-b", userB, "b", "ls "+filepath.Dir(vol)+" >/dev/null 2>&1 && echo reached; "+
		"if ls "+vol+" >/dev/null 2>&1 || cat "+seed+" >/dev/null 2>&1; then echo read; else echo refused; fi"))
	ups := fm.expectStates(t, "b", mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
	cid := ups[1].Status.GetContainerStatus().GetContainerID().GetValue()
	out := readFile(t, filepath.Join(ta.WorkDir(), "slaves", ta.ID(), "frameworks", "fw-b", "executors", "b", "runs", cid, "stdout"))
	if !strings.Contains(out, "reached") || !strings.Contains(out, "refused") {
		t.Errorf("user b's task reached user a's volume: %q", out)
	}

	// A task of user b given user a's volume does not take it from a: the
	// volume stays a's (b's task cannot write into it), and a's data stays.
	rt = userTask("fw-b", userB, "b2", "echo theirs > data/new")
	rt.Task.Resources = append(rt.Task.Resources, volumeResource("vol-a", mesos.RW))
	run(fm, rt)
	fm.expectStates(t, "b2", mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FAILED)
	if st, err := os.Stat(vol); err != nil || st.Mode().Perm() != sandboxMode || fileOwner(t, vol) != userA {
		t.Errorf("user b's task took user a's volume: %v owner %s (%v); want %v and %s", st.Mode(), fileOwner(t, vol), err, os.FileMode(sandboxMode), userA)
	}
	if got := readFile(t, filepath.Join(vol, "new")); got != "mine\n" {
		t.Errorf("user a's file in its volume now holds %q, want mine", got)
	}
}
