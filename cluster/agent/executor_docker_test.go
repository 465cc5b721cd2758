package agent_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/containerizer/docker"
	"github.com/agora-cluster/agora/cluster/containerizer/docker/dockertest"
	"github.com/agora-cluster/agora/cluster/tlsconf"
)

// TestDockerExecutorReattachesAfterAgentKill9: a checkpointing
// framework's custom executor runs in a Docker container (the static
// example executor on a busybox image, HOST network) with six tasks; the
// agent process is killed with SIGKILL, half the tasks finish while no
// agent runs, a new agent process on the same work_dir and port adopts the
// container, the executor re-subscribes from inside it, and every task
// reaches TASK_FINISHED with nothing failed or lost. Shutting the executor
// down then removes its container.
func TestDockerExecutorReattachesAfterAgentKill9(t *testing.T) {
	client := dockertest.Engine(t)
	image := dockertest.BusyboxImage(t, client)
	bin := dockertest.StaticExecutor(t)
	executable := true
	f := newRecoveryFixture(t, `{"user":"root","name":"docker-reattach","checkpoint":true,"failover_timeout":3600}`,
		func(pc *agentProcessConfig) {
			pc.Docker = true
			dockertest.RemoveContainers(t, client, pc.WorkDir)
		})
	f.executor = mesos.ExecutorInfo{Type: mesos.ExecutorInfo_CUSTOM, ExecutorID: mesos.ExecutorID{Value: "in-docker"},
		Command: &mesos.CommandInfo{Value: strp(`exec "$MESOS_SANDBOX/` + filepath.Base(bin) + `"`),
			URIs: []mesos.CommandInfo_URI{{Value: "file://" + bin, Executable: &executable}}},
		Container: &mesos.ContainerInfo{Type: mesos.ContainerInfo_DOCKER.Enum(), Docker: &mesos.ContainerInfo_DockerInfo{
			Image: image, Network: mesos.ContainerInfo_DockerInfo_HOST.Enum()}},
		Resources: resources(t, "cpus:0.1;mem:64")}

	// Task i waits, in the executor's sandbox, for the file early or late.
	const n = 6
	var ids, scripts []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("task-%d", i)
		marker := map[bool]string{true: "early", false: "late"}[i%2 == 0]
		ids = append(ids, id)
		scripts = append(scripts, `while [ ! -f `+marker+` ]; do sleep 0.05; done; touch `+id+`.done`)
	}
	f.launch(t, ids, scripts)
	for _, id := range ids {
		f.s.waitState(id, mesos.TASK_RUNNING)
	}
	runs, _ := filepath.Glob(filepath.Join(f.pc.WorkDir, "slaves", "*", "frameworks", "*", "executors", "in-docker", "runs", "latest"))
	if len(runs) != 1 {
		t.Fatalf("executor sandboxes: %v", runs)
	}
	sandbox := runs[0]
	cid, err := os.Readlink(sandbox)
	if err != nil {
		t.Fatal(err)
	}
	name := docker.Name(cid)
	before, err := client.InspectContainer(context.Background(), name)
	if err != nil || !before.Running {
		t.Fatalf("the executor's container %s while it runs: %+v, %v", name, before, err)
	}

	f.agent.kill()
	if err := os.WriteFile(filepath.Join(sandbox, "early"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for i := 0; i < n; i += 2 {
		for {
			if _, err := os.Stat(filepath.Join(sandbox, ids[i]+".done")); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %s did not finish while the agent was down", ids[i])
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	f.agent = startAgentProcess(t, f.pc, "agent-2.log")
	if err := os.WriteFile(filepath.Join(sandbox, "late"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if st := f.s.waitTerminal(id); st.GetState() != mesos.TASK_FINISHED {
			t.Errorf("task %s: %s", id, describe(f.s.statuses(id)))
		}
	}
	after, err := client.InspectContainer(context.Background(), name)
	if err != nil || !after.Running || after.ID != before.ID || after.Pid != before.Pid {
		t.Fatalf("the executor's container after the restart: %+v, %v; before: %+v", after, err, before)
	}

	f.s.mustCall(&scheduler.Call{Type: scheduler.Call_SHUTDOWN, Shutdown: &scheduler.Call_Shutdown{
		ExecutorID: f.executor.ExecutorID, AgentID: *f.s.statuses(ids[0])[0].AgentID}})
	deadline = time.Now().Add(wait)
	for {
		ok, err := client.ContainerExists(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the adopted executor's container was not removed after its shutdown")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDockerExecutorOverTLS: an agent that serves only TLS, with a
// certificate that names only a DNS name, and requires executors' tokens,
// runs a custom executor in a Docker container: the executor reaches the
// agent over TLS with the CA bundle copied into its sandbox and the name
// the agent passes, its token never in cleartext, and runs its tasks.
func TestDockerExecutorOverTLS(t *testing.T) {
	client := dockertest.Engine(t)
	image := dockertest.BusyboxImage(t, client)
	bin := dockertest.StaticExecutor(t)
	files, err := tlsconf.GenerateCA(filepath.Join(t.TempDir(), "tls"), []string{"agent.example"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f := newRecoveryFixture(t, `{"user":"root","name":"docker-tls"}`,
		func(pc *agentProcessConfig) {
			pc.Docker = true
			pc.TLSCert, pc.TLSKey, pc.TLSCA = files.Cert, files.Key, files.CA
			pc.ExecutorKey = []byte(strings.Repeat("k", 32))
			dockertest.RemoveContainers(t, client, pc.WorkDir)
		})
	executable := true
	f.executor = mesos.ExecutorInfo{Type: mesos.ExecutorInfo_CUSTOM, ExecutorID: mesos.ExecutorID{Value: "tls-docker"},
		Command: &mesos.CommandInfo{Value: strp(`exec "$MESOS_SANDBOX/` + filepath.Base(bin) + `"`),
			URIs: []mesos.CommandInfo_URI{{Value: "file://" + bin, Executable: &executable}}},
		Container: &mesos.ContainerInfo{Type: mesos.ContainerInfo_DOCKER.Enum(), Docker: &mesos.ContainerInfo_DockerInfo{
			Image: image, Network: mesos.ContainerInfo_DockerInfo_HOST.Enum()}},
		Resources: resources(t, "cpus:0.1;mem:64")}
	ids := []string{"t-1", "t-2"}
	f.launch(t, ids, []string{"true", "true"})
	for _, id := range ids {
		if st := f.s.waitTerminal(id); st.GetState() != mesos.TASK_FINISHED {
			t.Errorf("task %s: %s", id, describe(f.s.statuses(id)))
		}
	}
}

// TestDockerExecutorOnTheBridgeNetwork: an agent listening on an address
// containers can reach (here the Docker bridge's gateway) runs a custom
// executor in a container on the BRIDGE network; the executor reaches the
// agent at that address and runs its tasks.
func TestDockerExecutorOnTheBridgeNetwork(t *testing.T) {
	client := dockertest.Engine(t)
	// Only whether the gateway address exists here: the agent binds a
	// port of its own on it.
	ln, err := net.Listen("tcp", "172.17.0.1:0")
	if err != nil {
		t.Skipf("no Docker bridge gateway at 172.17.0.1 to listen on: %v", err)
	}
	ln.Close()
	image := dockertest.BusyboxImage(t, client)
	bin := dockertest.StaticExecutor(t)
	f := newRecoveryFixture(t, `{"user":"root","name":"docker-bridge","checkpoint":true}`,
		func(pc *agentProcessConfig) {
			pc.Docker, pc.Listen = true, "172.17.0.1:0"
			dockertest.RemoveContainers(t, client, pc.WorkDir)
		})
	executable := true
	f.executor = mesos.ExecutorInfo{Type: mesos.ExecutorInfo_CUSTOM, ExecutorID: mesos.ExecutorID{Value: "on-bridge"},
		Command: &mesos.CommandInfo{Value: strp(`exec "$MESOS_SANDBOX/` + filepath.Base(bin) + `"`),
			URIs: []mesos.CommandInfo_URI{{Value: "file://" + bin, Executable: &executable}}},
		Container: &mesos.ContainerInfo{Type: mesos.ContainerInfo_DOCKER.Enum(), Docker: &mesos.ContainerInfo_DockerInfo{
			Image: image, Network: mesos.ContainerInfo_DockerInfo_BRIDGE.Enum()}},
		Resources: resources(t, "cpus:0.1;mem:64")}
	ids := []string{"b-1", "b-2"}
	f.launch(t, ids, []string{`echo "$MESOS_AGENT_ENDPOINT" > endpoint`, "true"})
	for _, id := range ids {
		if st := f.s.waitTerminal(id); st.GetState() != mesos.TASK_FINISHED {
			t.Errorf("task %s: %s", id, describe(f.s.statuses(id)))
		}
	}
	runs, _ := filepath.Glob(filepath.Join(f.pc.WorkDir, "slaves", "*", "frameworks", "*", "executors", "on-bridge", "runs", "latest", "endpoint"))
	if len(runs) != 1 {
		t.Fatalf("endpoint files: %v", runs)
	}
	listen := f.pc.Listen // the address the agent bound
	if b, _ := os.ReadFile(runs[0]); string(b) != listen+"\n" {
		t.Errorf("the executor reached the agent at %q, want %s", b, listen)
	}
}
