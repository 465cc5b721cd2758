package agent

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/cluster/clustertest/users"
	"github.com/agora-cluster/agora/cluster/containerizer"
)

// userTask is a shell task of framework fw, which runs as user.
func userTask(fw, user, id, script string) *api.RunTask {
	rt := shellTask(id, script)
	rt.Framework = &mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: fw}, Name: fw, User: user,
		Role: proto("analytics"), Checkpoint: proto(true)}
	return rt
}

func TestTaskCannotReadAnotherFrameworksSandbox(t *testing.T) {
	tier.Need(t, tier.Root, tier.RootErr())
	for _, isolation := range []string{"posix", "native"} {
		t.Run(isolation, func(t *testing.T) {
			fm := newFakeMaster(t)
			cfg := testConfig(t, fm, "")
			if isolation == "native" {
				cfg, _ = isolatedConfig(t, fm)
			} else {
				cfg.Containerizer = containerizer.Process{}
			}
			cfg.WorkDir = users.TraversableDir(t)
			cfg.SwitchUser = true
			// b shares a's primary group, as users in "users" do: the
			// group must not open b's sandbox to a either.
			userA := users.Add(t, "a")
			userB := users.Add(t, "b", users.InGroupOf(userA))
			ta, _ := startRegistered(t, fm, cfg)
			sandbox := func(fw, task string, running *api.StatusUpdate) string {
				cid := running.Status.GetContainerStatus().GetContainerID().GetValue()
				return filepath.Join(ta.WorkDir(), "slaves", ta.ID(), "frameworks", fw, "executors", task, "runs", cid)
			}

			// Framework B's task keeps a secret in its sandbox and its stdout.
			run(fm, userTask("fw-b", userB, "b", "echo b-secret > secret; echo b-secret; exec sleep 300"))
			sandboxB := sandbox("fw-b", "b", fm.expectStates(t, "b", mesos.TASK_STARTING, mesos.TASK_RUNNING)[1])
			t.Cleanup(func() { // before the agent stops and user b goes
				fm.send(&api.AgentEvent{Type: api.AgentKillTask, KillTask: &api.KillTask{FrameworkID: "fw-b", TaskID: "b"}})
				fm.expectStates(t, "b", mesos.TASK_KILLED)
			})
			waitFor(t, "b-secret on disk", func() bool {
				b, _ := os.ReadFile(filepath.Join(sandboxB, "stdout"))
				return strings.Contains(string(b), "b-secret")
			})

			// Framework A's task tries each way in, and reads its own sandbox.
			try := func(what, cmd string) string {
				return fmt.Sprintf("if %s >/dev/null 2>&1; then echo 'read %s'; else echo 'refused %s'; fi; ", cmd, what, what)
			}
			meta := filepath.Join(ta.WorkDir(), "meta")
			script := "echo mine > own; " +
				try("own sandbox", "cat \"$MESOS_SANDBOX/own\"") +
				try("b-runs directory", "test -d "+filepath.Dir(sandboxB)) +
				try("b-sandbox listing", "ls "+sandboxB) +
				try("b-secret", "cat "+filepath.Join(sandboxB, "secret")) +
				try("b-stdout", "cat "+filepath.Join(sandboxB, "stdout")) +
				try("the metadata directory", "ls "+meta) +
				try("the checkpoint journal", "cat "+filepath.Join(meta, "journal")) +
				"id -un"
			run(fm, userTask("fw-a", userA, "a", script))
			ups := fm.expectStates(t, "a", mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
			sandboxA := sandbox("fw-a", "a", ups[1])
			out := readFile(t, filepath.Join(sandboxA, "stdout"))
			for _, want := range []string{
				"read own sandbox", "read b-runs directory",
				"refused b-sandbox listing", "refused b-secret", "refused b-stdout",
				"refused the metadata directory", "refused the checkpoint journal",
				userA + "\n",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("task a's stdout lacks %q:\n%s", want, out)
				}
			}
			for dir, owner := range map[string]string{sandboxA: userA, sandboxB: userB} {
				st, err := os.Stat(dir)
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != sandboxMode {
					t.Errorf("sandbox %s has mode %v, want %v", dir, st.Mode().Perm(), os.FileMode(sandboxMode))
				}
				if got := fileOwner(t, dir); got != owner {
					t.Errorf("sandbox %s belongs to %s, want %s", dir, got, owner)
				}
			}
		})
	}
}

// fileOwner names the user that owns path.
func fileOwner(t *testing.T, path string) string {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	u, err := user.LookupId(strconv.Itoa(int(st.Sys().(*syscall.Stat_t).Uid)))
	if err != nil {
		t.Fatalf("owner of %s: %v", path, err)
	}
	return u.Username
}
