package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
)

// startSmallCluster starts a master and one agent as real processes and
// returns the master's address once the agent has registered.
func startSmallCluster(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	_, master := startBound(t, "master", "--work_dir="+filepath.Join(dir, "master"), "--port=0", "--allocation_interval=100ms")
	startBound(t, "agent", "--master="+master, "--work_dir="+filepath.Join(dir, "agent"), "--port=0",
		"--resources=cpus:2;mem:1024;disk:1024", "--switch_user=false")
	waitState(t, "http://"+master, "agent registered", func(s *masterState) bool { return len(s.Slaves) == 1 })
	return master
}

// startRun starts `agora run ARGS` in the background, until the test ends.
func startRun(t *testing.T, master string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(agoraBin, append([]string{"run"}, args...)...)
	cmd.Env = append(os.Environ(), "AGORA_MASTER="+master)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("agora run did not exit after SIGKILL")
		}
	})
	return cmd
}

// waitTaskID waits until `agora tasks --all --json` lists a task named
// name in state, and returns its ID.
func waitTaskID(t *testing.T, master, name, state string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		out, _, code := runClient(t, master, "tasks", "--all", "--json")
		var tasks []struct {
			ID    string `json:"id"`
			Name  string `json:"name"`
			State string `json:"state"`
		}
		if code == 0 && json.Unmarshal([]byte(out), &tasks) == nil {
			for _, tk := range tasks {
				if tk.Name == name && tk.State == state {
					return tk.ID
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no task %s in %s", name, state)
	return ""
}

// agora logs -f follows a running task that prints a line a second, sees
// every line in order, and ends when the task does, with its exit code;
// afterwards agora logs prints the whole file and exits 0, --stderr reads
// the other file, and an unknown task is an error.
func TestLogsFollowsATaskToItsExitCode(t *testing.T) {
	master := startSmallCluster(t)
	startRun(t, master, "--name=ticker", "--", "sh", "-c",
		"for i in 1 2 3 4 5; do echo line $i; sleep 1; done; echo oops >&2; exit 3")
	id := waitTaskID(t, master, "ticker", "TASK_RUNNING")

	out, errOut, code := runClient(t, master, "logs", id, "-f")
	want := "line 1\nline 2\nline 3\nline 4\nline 5\n"
	if out != want || code != 3 {
		t.Fatalf("agora logs %s -f: exit %d, stdout %q (want exit 3, %q); stderr %q", id, code, out, want, errOut)
	}
	if !strings.Contains(errOut, "TASK_FAILED") {
		t.Errorf("agora logs -f of a failed task: stderr %q does not say how it ended", errOut)
	}

	out, errOut, code = runClient(t, master, "logs", id)
	if out != want || code != 0 {
		t.Errorf("agora logs %s of the ended task: exit %d, stdout %q; stderr %q", id, code, out, errOut)
	}
	out, _, code = runClient(t, master, "logs", "--stderr", id)
	if out != "oops\n" || code != 0 {
		t.Errorf("agora logs --stderr %s: exit %d, stdout %q", id, code, out)
	}
	out, errOut, code = runClient(t, master, "logs", "--via_master", id)
	if out != want || code != 0 {
		t.Errorf("agora logs --via_master %s: exit %d, stdout %q; stderr %q", id, code, out, errOut)
	}
	out, _, code = runClient(t, master, "logs", "-f", id)
	if out != want || code != 3 {
		t.Errorf("agora logs -f of an ended task: exit %d (want 3), stdout %q", code, out)
	}

	_, errOut, code = runClient(t, master, "logs", "no-such-task")
	if code != 1 || !strings.Contains(errOut, `no task "no-such-task"`) {
		t.Errorf("agora logs no-such-task: exit %d, stderr %q", code, errOut)
	}
}

// A task that finishes ends agora logs -f with 0.
func TestLogsFollowExitsZeroForFinished(t *testing.T) {
	master := startSmallCluster(t)
	startRun(t, master, "--name=short", "--", "sh", "-c", "echo start; sleep 2; echo done")
	id := waitTaskID(t, master, "short", "TASK_RUNNING")
	out, errOut, code := runClient(t, master, "logs", "-f", id)
	if out != "start\ndone\n" || code != 0 {
		t.Fatalf("agora logs -f %s: exit %d, stdout %q, stderr %q", id, code, out, errOut)
	}
}

// A task of a group, on the default executor, has a sandbox of its own
// inside the executor's: agora logs reads that one, not its neighbour's.
func TestLogsOfATaskGroupTask(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{AgentResources: "cpus:2;mem:1024;disk:100"})
	s := clustertest.SubscribeTo(t, c.MasterURL, `{"user":"root","name":"grouped"}`)
	offer := s.Offer()
	res := func(text string) []mesos.Resource {
		r, err := api.ParseResources(text)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	task := func(id, script string) mesos.TaskInfo {
		return mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: offer.AgentID,
			Command: &mesos.CommandInfo{Value: &script}, Resources: res("cpus:0.1;mem:32")}
	}
	exec := mesos.ExecutorInfo{Type: mesos.ExecutorInfo_DEFAULT, ExecutorID: mesos.ExecutorID{Value: "group-exec"}, Resources: res("cpus:0.1;mem:32")}
	s.MustCall(&scheduler.Call{Type: scheduler.Call_ACCEPT, Accept: &scheduler.Call_Accept{OfferIDs: []mesos.OfferID{offer.ID},
		Operations: []mesos.Offer_Operation{{Type: mesos.Offer_Operation_LAUNCH_GROUP, LaunchGroup: &mesos.Offer_Operation_LaunchGroup{
			Executor: exec, TaskGroup: mesos.TaskGroupInfo{Tasks: []mesos.TaskInfo{
				task("left", "echo from left; sleep 2"), task("right", "echo from right; sleep 2")}}}}}}})
	s.Until("left", mesos.TASK_RUNNING)
	out, errOut, code := runClient(t, c.MasterAddr, "logs", "-f", "right")
	if out != "from right\n" || code != 0 {
		t.Fatalf("agora logs -f right: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
