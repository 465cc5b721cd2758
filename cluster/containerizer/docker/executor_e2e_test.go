package docker_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	. "github.com/agora-cluster/agora/cluster/containerizer/docker"
	"github.com/agora-cluster/agora/cluster/containerizer/docker/dockertest"
)

// dockerExecutor is a CUSTOM ExecutorInfo that runs the static example
// executor (fetched into the sandbox from bin) in a container of image.
func dockerExecutor(t *testing.T, id, bin, image string, network mesos.ContainerInfo_DockerInfo_Network) mesos.ExecutorInfo {
	t.Helper()
	rs, err := api.ParseResources("cpus:0.1;mem:64")
	if err != nil {
		t.Fatal(err)
	}
	return mesos.ExecutorInfo{
		Type: mesos.ExecutorInfo_CUSTOM, ExecutorID: mesos.ExecutorID{Value: id}, Resources: rs,
		Command: &mesos.CommandInfo{
			Value: ptr(`exec "$MESOS_SANDBOX/` + filepath.Base(bin) + `"`),
			URIs:  []mesos.CommandInfo_URI{{Value: "file://" + bin, Executable: ptr(true)}},
		},
		Container: &mesos.ContainerInfo{Type: mesos.ContainerInfo_DOCKER.Enum(), Docker: &mesos.ContainerInfo_DockerInfo{
			Image: image, Network: network.Enum(),
		}},
	}
}

// executorTask is a task for the example executor: it runs script with
// /bin/sh -c in the executor's sandbox.
func executorTask(t *testing.T, id string, offer mesos.Offer, exec mesos.ExecutorInfo, script string) mesos.TaskInfo {
	t.Helper()
	rs, err := api.ParseResources("cpus:0.1;mem:16")
	if err != nil {
		t.Fatal(err)
	}
	return mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: offer.AgentID, Resources: rs,
		Executor: &exec, Data: []byte(script)}
}

// TestCustomExecutorRunsInADockerContainer: a custom executor with a
// DOCKER ContainerInfo (a static Go executor on the busybox image, handed
// over by a file:// URI, HOST network) subscribes from inside its
// container and runs five tasks to TASK_FINISHED, seeing its sandbox at
// the mount point; its container exists while it runs and is removed
// once the scheduler shuts the executor down.
func TestCustomExecutorRunsInADockerContainer(t *testing.T) {
	dc := startDockerCluster(t, "[31000-31010]", true)
	bin := dockertest.StaticExecutor(t)
	s := dc.sched
	offer := s.Offer()
	ex := dockerExecutor(t, "in-docker", bin, dc.image, mesos.ContainerInfo_DockerInfo_HOST)
	var tasks []mesos.TaskInfo
	for i := 0; i < 5; i++ {
		id := fmt.Sprintf("task-%d", i)
		tasks = append(tasks, executorTask(t, id, offer, ex,
			`echo "$MESOS_SANDBOX $MESOS_AGENT_ENDPOINT $MESOS_EXECUTOR_ID $MESOS_CHECKPOINT $(pwd)" > `+id+`.out`))
	}
	s.Launch(offer, tasks...)
	for _, tk := range tasks {
		s.Until(tk.TaskID.Value, mesos.TASK_FINISHED)
	}

	sandbox := dc.sandbox("in-docker")
	cid, err := os.Readlink(sandbox)
	if err != nil {
		t.Fatal(err)
	}
	name := Name(cid)
	if !exists(t, dc.d, name) {
		t.Fatalf("the executor's container %s does not exist while the executor runs", name)
	}
	endpoint := dc.Agents[0].Addr()
	for _, tk := range tasks {
		want := SandboxMount + " " + endpoint + " in-docker 1 " + SandboxMount + "\n"
		if got := read(t, filepath.Join(sandbox, tk.TaskID.Value+".out")); got != want {
			t.Errorf("task %s saw %q, want %q", tk.TaskID.Value, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(sandbox, filepath.Base(bin))); err != nil {
		t.Errorf("the executor binary was not fetched into the sandbox: %v", err)
	}

	s.MustCall(&scheduler.Call{Type: scheduler.Call_SHUTDOWN, Shutdown: &scheduler.Call_Shutdown{
		ExecutorID: mesos.ExecutorID{Value: "in-docker"}, AgentID: offer.AgentID}})
	eventually(t, "the executor's container removed after its shutdown", func() bool { return !exists(t, dc.d, name) })
	if out := read(t, filepath.Join(sandbox, "stderr")); !strings.Contains(out, "executor shut down") {
		t.Errorf("the executor's stderr (copied from the container) does not show its shutdown:\n%s", out)
	}
}

// TestDockerExecutorsThatCannotRunFailTheirTasks: without the Docker
// containerizer, or on a network from which the executor could not reach
// an agent listening on loopback, the executor is refused and its tasks
// fail with REASON_CONTAINER_LAUNCH_FAILED and a message saying why.
func TestDockerExecutorsThatCannotRunFailTheirTasks(t *testing.T) {
	for _, c := range []struct {
		name       string
		withDocker bool
		network    mesos.ContainerInfo_DockerInfo_Network
		want       string
	}{
		{"nodocker", false, mesos.ContainerInfo_DockerInfo_HOST, "--containerizers=mesos,docker"},
		{"bridge", true, mesos.ContainerInfo_DockerInfo_BRIDGE, "cannot reach the agent, which listens on 127.0.0.1:"},
		{"none", true, mesos.ContainerInfo_DockerInfo_NONE, "on the NONE network cannot reach the agent"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dc := startDockerCluster(t, "[31000-31010]", c.withDocker)
			s := dc.sched
			offer := s.Offer()
			ex := dockerExecutor(t, "refused", "/var/tmp/never-fetched", dc.image, c.network)
			s.Launch(offer, executorTask(t, "doomed", offer, ex, "true"))
			st := s.Until("doomed", mesos.TASK_FAILED)
			if st.GetReason() != mesos.REASON_CONTAINER_LAUNCH_FAILED || !strings.Contains(st.GetMessage(), c.want) {
				t.Errorf("%v %q, want a message with %q", st.GetReason(), st.GetMessage(), c.want)
			}
		})
	}
}
