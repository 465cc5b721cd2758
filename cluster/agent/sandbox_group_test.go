package agent_test

import (
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/clustertest/users"
)

// With --switch_user, the sandbox of a task in a task group (the default
// executor) belongs to the framework's user with mode 0700, as a command
// task's does (TestTaskCannotReadAnotherFrameworksSandbox): the task runs
// as that user and writes into it.
func TestTaskGroupSandboxBelongsToItsUser(t *testing.T) {
	owner := users.Add(t, "g")
	work := users.TraversableDir(t)
	c := startCluster(t, clustertest.Options{Agent: func(_ int, cfg *agent.Config) {
		cfg.SwitchUser = true
		cfg.WorkDir = work
	}})
	s := subscribe(t, c.MasterURL, `{"user":"`+owner+`","name":"group-owner"}`)
	offer := s.offer()
	exec := mesos.ExecutorInfo{Type: mesos.ExecutorInfo_DEFAULT, ExecutorID: mesos.ExecutorID{Value: "pod"},
		Resources: resources(t, "cpus:0.1;mem:32")}
	s.launchGroup(offer, exec, shellTask(t, "g1", offer.AgentID, "id -un > who", "cpus:0.1;mem:16"))
	s.waitState("g1", mesos.TASK_FINISHED)

	var who []string
	err := filepath.WalkDir(filepath.Join(work, "slaves"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "who" {
			who = append(who, p)
		}
		return err
	})
	if err != nil || len(who) != 1 {
		t.Fatalf("task g1's file in the work directory: %v, %v", who, err)
	}
	b, err := os.ReadFile(who[0])
	if err != nil || strings.TrimSpace(string(b)) != owner {
		t.Errorf("task g1 ran as %q (%v), want %s", b, err, owner)
	}
	sandbox := filepath.Dir(who[0])
	st, err := os.Stat(sandbox)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("task g1's sandbox %s has mode %v, want 0700", sandbox, st.Mode().Perm())
	}
	if u, err := user.LookupId(strconv.Itoa(int(st.Sys().(*syscall.Stat_t).Uid))); err != nil || u.Username != owner {
		t.Errorf("task g1's sandbox %s belongs to %v (%v), want %s", sandbox, u, err, owner)
	}
}
