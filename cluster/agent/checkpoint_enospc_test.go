package agent_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/clustertest/tier"
)

// mountTmpfs mounts a tmpfs of size at a new directory and unmounts it
// when the test ends (after the cluster, which is stopped first), within
// a bound.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	tier.Need(t, tier.Root, tier.RootErr())
	dir := filepath.Join(t.TempDir(), "work")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "agora-test-full", dir).CombinedOutput(); err != nil {
		tier.Need(t, tier.Root, fmt.Errorf("cannot mount a tmpfs: %v: %s", err, out))
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := syscall.Unmount(dir, 0)
			if err == nil || errors.Is(err, syscall.EINVAL) {
				return
			}
			if time.Now().After(deadline) {
				// Processes of the test still hold it: detach it, so it
				// goes once they end.
				t.Errorf("unmount %s: %v; detaching it", dir, err)
				_ = syscall.Unmount(dir, syscall.MNT_DETACH)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	return dir
}

// checkpointFile returns the content of the one file of the agent's
// checkpoint (its journal) in workDir whose path matches pattern, or "".
func checkpointFile(t *testing.T, workDir, pattern string) string {
	t.Helper()
	files, err := agent.ReadCheckpoint(workDir)
	if err != nil {
		return ""
	}
	var found []string
	for path, b := range files {
		if ok, _ := filepath.Match(pattern, path); ok {
			found = append(found, string(b))
		}
	}
	if len(found) != 1 {
		return ""
	}
	return found[0]
}

// fill writes a file into dir until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v, want ENOSPC", dir, err)
			}
			break
		}
	}
	// The last pages may be partly free: fill them byte by byte.
	for {
		if _, err := f.Write([]byte{0}); err != nil {
			break
		}
	}
	return path
}

// On a real file system filled to ENOSPC (a small tmpfs as the agent's
// work directory), a launch is refused with a reason naming the disk, an
// executor's status update is answered 503 and not forwarded, and once
// space is freed the executor's retry goes through; what was acknowledged
// before is still in the checkpoint.
func TestFullDiskRefusesLaunchesAndUpdatesUntilFreed(t *testing.T) {
	work := mountTmpfs(t, "4m")
	c := startCluster(t, clustertest.Options{Agent: func(i int, cfg *agent.Config) {
		quickShutdown(i, cfg)
		cfg.WorkDir = work
	}})
	s := subscribe(t, c.MasterURL, `{"user":"tester","name":"full-disk","checkpoint":true}`)
	offer := s.offer()
	raw := standIn(t, "raw", "sleep 600")
	s.launch(offer, execTask(t, "t0", offer.AgentID, raw, "cpus:0.1;mem:16"), execTask(t, "t1", offer.AgentID, raw, "cpus:0.1;mem:16"))
	url := executorURL(c.Agents[0])
	awaitExecutor(t, url, s.id, "raw")
	x := subscribeRaw(t, url, s.id, "raw")
	x.next(executor.Event_SUBSCRIBED)
	x.next(executor.Event_LAUNCH)
	x.next(executor.Event_LAUNCH)

	// t0 runs, and the scheduler's acknowledgement is on disk.
	running0 := uuid16(1)
	if code, body := x.call(update("t0", mesos.TASK_RUNNING, running0, mesos.SOURCE_EXECUTOR)); code != http.StatusAccepted {
		t.Fatalf("UPDATE t0: %d %s", code, body)
	}
	s.waitState("t0", mesos.TASK_RUNNING)
	updates0 := func() string {
		return checkpointFile(t, work, filepath.Join(work, "meta", "slaves", "*", "frameworks", s.id, "executors", "raw", "runs", "*", "tasks", "t0", "task.updates"))
	}
	waitFor(t, "t0's acknowledgement in its checkpoint", func() bool { return strings.Contains(updates0(), `"ack"`) })
	before := updates0()

	filler := fill(t, work)

	// An executor's update: refused, not forwarded. (Its data makes its
	// record larger than a page, so it cannot fit in the free end of the
	// last page of the checkpoint journal.)
	running1 := uuid16(2)
	big := bytes.Repeat([]byte("d"), 64<<10)
	running1Update := update("t1", mesos.TASK_RUNNING, running1, mesos.SOURCE_EXECUTOR)
	running1Update.Update.Status.Data = big
	code, body := x.call(running1Update)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no space left on device") {
		t.Fatalf("UPDATE on a full disk: %d %q; want 503 naming the disk's error", code, body)
	}
	for _, st := range s.statuses("t1") {
		t.Fatalf("the scheduler got an update the agent could not checkpoint: %v", describe([]mesos.TaskStatus{st}))
	}

	// A launch: refused, naming the disk.
	offer = s.offer()
	cmd := "exec sleep 600"
	s.launch(offer, mesos.TaskInfo{Name: "c", TaskID: mesos.TaskID{Value: "c"}, AgentID: offer.AgentID,
		Command: &mesos.CommandInfo{Value: &cmd}, Resources: resources(t, "cpus:0.1;mem:16"), Data: big})
	st := s.waitTerminal("c")
	if st.GetState() != mesos.TASK_FAILED || st.GetReason() != mesos.REASON_CONTAINER_LAUNCH_FAILED ||
		!strings.Contains(st.GetMessage(), "could not checkpoint") || !strings.Contains(st.GetMessage(), "no space left on device") {
		t.Fatalf("launch on a full disk: %v %v %q; want TASK_FAILED, REASON_CONTAINER_LAUNCH_FAILED naming the disk", st.GetState(), st.GetReason(), st.GetMessage())
	}
	for _, st := range s.statuses("c") {
		if st.GetState() == mesos.TASK_RUNNING || st.GetState() == mesos.TASK_STARTING {
			t.Fatalf("the refused task was reported %v", st.GetState())
		}
	}

	// Space is freed: the executor's retry goes through.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if code, body := x.call(running1Update); code != http.StatusAccepted {
		t.Fatalf("the retried UPDATE: %d %q", code, body)
	}
	for {
		ack := x.next(executor.Event_ACKNOWLEDGED).Acknowledged
		if bytes.Equal(ack.UUID, running1) {
			break
		}
	}
	s.waitState("t1", mesos.TASK_RUNNING)
	if after := updates0(); !strings.HasPrefix(after, before) {
		t.Fatalf("t0's checkpoint lost what was acknowledged:\n%s\nwas:\n%s", after, before)
	}
}
