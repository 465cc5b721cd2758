package docker_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
	. "github.com/agora-cluster/agora/cluster/containerizer/docker"
	"github.com/agora-cluster/agora/cluster/containerizer/docker/dockertest"
)

// End-to-end: a real in-process master and agent (clustertest), a
// framework speaking the v1 scheduler API in JSON, tasks with a DOCKER
// ContainerInfo run in the local Docker Engine.

// rawScheduler is a minimal JSON scheduler over real HTTP.

// dockerTask is a task with a DOCKER container running script in image.
func dockerTask(t *testing.T, id string, offer mesos.Offer, image, script, res string) mesos.TaskInfo {
	t.Helper()
	rs, err := api.ParseResources(res)
	if err != nil {
		t.Fatal(err)
	}
	return mesos.TaskInfo{
		Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: offer.AgentID, Resources: rs,
		Command:   &mesos.CommandInfo{Value: ptr(script)},
		Container: &mesos.ContainerInfo{Type: mesos.ContainerInfo_DOCKER.Enum(), Docker: &mesos.ContainerInfo_DockerInfo{Image: image}},
	}
}

// dockerCluster is a one-agent cluster whose agent runs Docker tasks.
type dockerCluster struct {
	*clustertest.Cluster
	d     *Containerizer
	image string
	sched *clustertest.Scheduler
}

func startDockerCluster(t *testing.T, ports string, withDocker bool, adjust ...func(*agent.Config)) *dockerCluster {
	t.Helper()
	client := dockertest.Engine(t)
	image := dockertest.BusyboxImage(t, client)
	d := newContainerizer(t)
	c := clustertest.Start(t, clustertest.Options{
		AgentResources: "cpus:2;mem:1024;disk:1000;ports:" + ports,
		Agent: func(_ int, cfg *agent.Config) {
			if withDocker {
				cfg.Docker = d
			}
			dockertest.RemoveContainers(t, client, cfg.WorkDir)
			for _, f := range adjust {
				f(cfg)
			}
		},
	})
	s := clustertest.SubscribeTo(t, c.MasterURL, `{"user":"root","name":"docker-e2e","checkpoint":true}`)
	return &dockerCluster{Cluster: c, d: d, image: image, sched: s}
}

// sandbox is where the agent keeps the task's sandbox.
func (dc *dockerCluster) sandbox(taskID string) string {
	a := dc.Agents[0]
	return filepath.Join(a.WorkDir(), "slaves", a.ID(), "frameworks", dc.sched.ID, "executors", taskID, "runs", "latest")
}

func TestDockerTaskRunsToCompletion(t *testing.T) {
	dc := startDockerCluster(t, "[31000-31010]", true)
	s := dc.sched
	offer := s.Offer()
	s.Launch(offer,
		dockerTask(t, "hello", offer, dc.image, `echo "hello from $MESOS_TASK_ID in $MESOS_SANDBOX"; echo warn >&2`, "cpus:0.1;mem:32"),
		dockerTask(t, "exit3", offer, dc.image, "exit 3", "cpus:0.1;mem:32"),
		dockerTask(t, "noimage", offer, "agora-test-never-built:1", "true", "cpus:0.1;mem:32"),
	)
	running := s.Until("hello", mesos.TASK_RUNNING)
	if running.GetContainerStatus().GetContainerID().GetValue() == "" {
		t.Error("TASK_RUNNING has no container ID")
	}
	if st := s.Until("hello", mesos.TASK_FINISHED); st.GetMessage() != "Command exited with status 0" {
		t.Errorf("TASK_FINISHED message %q", st.GetMessage())
	}
	if got := read(t, filepath.Join(dc.sandbox("hello"), "stdout")); got != "hello from hello in /mnt/mesos/sandbox\n" {
		t.Errorf("sandbox stdout = %q", got)
	}
	if got := read(t, filepath.Join(dc.sandbox("hello"), "stderr")); got != "warn\n" {
		t.Errorf("sandbox stderr = %q", got)
	}
	if st := s.Until("exit3", mesos.TASK_FAILED); !strings.Contains(st.GetMessage(), "exited with status 3") {
		t.Errorf("TASK_FAILED message %q", st.GetMessage())
	}
	st := s.Until("noimage", mesos.TASK_FAILED)
	if st.GetReason() != mesos.REASON_CONTAINER_LAUNCH_FAILED || st.GetSource() != mesos.SOURCE_AGENT ||
		!strings.Contains(st.GetMessage(), "image agora-test-never-built:1 not found locally; build or load it on the agent (no registry is configured)") {
		t.Errorf("missing image: %v %v %q", st.GetReason(), st.GetSource(), st.GetMessage())
	}
}

// A task ID with ':' (Chronos's ct:<time>:<attempt>:<job>) is in the
// sandbox path; the sandbox (and a volume inside it) is still mounted.
func TestDockerTaskWithColonsInItsIDWritesToItsSandbox(t *testing.T) {
	dc := startDockerCluster(t, "[31000-31010]", true)
	s := dc.sched
	offer := s.Offer()
	id := "ct:1700000000000:0:nightly"
	tk := dockerTask(t, id, offer, dc.image, `echo "$MESOS_TASK_ID" > "$MESOS_SANDBOX/out.txt" && echo kept > cache/x.txt`, "cpus:0.1;mem:32")
	tk.Container.Volumes = []mesos.Volume{{ContainerPath: "cache", HostPath: ptr("cache:dir"), Mode: mesos.RW.Enum()}}
	s.Launch(offer, tk)
	if st := s.Until(id, mesos.TASK_FINISHED); st.GetMessage() != "Command exited with status 0" {
		t.Errorf("TASK_FINISHED message %q", st.GetMessage())
	}
	sandbox := dc.sandbox(id)
	if !strings.Contains(sandbox, id) {
		t.Fatalf("sandbox %s does not name the task", sandbox)
	}
	if got := read(t, filepath.Join(sandbox, "out.txt")); got != id+"\n" {
		t.Errorf("out.txt = %q", got)
	}
	if got := read(t, filepath.Join(sandbox, "cache:dir", "x.txt")); got != "kept\n" {
		t.Errorf("cache:dir/x.txt = %q", got)
	}
}

func TestDockerTaskSeesItsFetchedURIs(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "#!/bin/sh\necho fetched script ran in $(pwd)\n")
	}))
	defer srv.Close()
	dc := startDockerCluster(t, "[31000-31010]", true)
	s := dc.sched
	offer := s.Offer()
	tk := dockerTask(t, "fetched", offer, dc.image, `"$MESOS_SANDBOX/greet.sh"`, "cpus:0.1;mem:32")
	tk.Command.URIs = []mesos.CommandInfo_URI{{Value: srv.URL + "/scripts/greet.sh", Executable: ptr(true)}}
	s.Launch(offer, tk)
	s.Until("fetched", mesos.TASK_FINISHED)
	if got := read(t, filepath.Join(dc.sandbox("fetched"), "stdout")); got != "fetched script ran in /mnt/mesos/sandbox\n" {
		t.Errorf("stdout = %q", got)
	}
}

func TestKillingADockerTaskRemovesItsContainer(t *testing.T) {
	dc := startDockerCluster(t, "[31000-31010]", true)
	s := dc.sched
	offer := s.Offer()
	tk := dockerTask(t, "sleeper", offer, dc.image, "sleep 600", "cpus:0.1;mem:32")
	tk.KillPolicy = &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(500 * time.Millisecond)}}
	s.Launch(offer, tk)
	running := s.Until("sleeper", mesos.TASK_RUNNING)
	name := Name(running.GetContainerStatus().GetContainerID().GetValue())
	if !exists(t, dc.d, name) {
		t.Fatalf("container %s does not exist while the task runs", name)
	}
	s.MustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: "sleeper"}, AgentID: &offer.AgentID}})
	s.Until("sleeper", mesos.TASK_KILLED)
	if _, err := dc.d.Client().InspectContainer(context.Background(), name); !IsNotFound(err) {
		t.Errorf("docker inspect %s after the kill: %v, want 404", name, err)
	}
}

func TestDockerNetworksAndVolumes(t *testing.T) {
	www := t.TempDir()
	os.WriteFile(filepath.Join(www, "index.html"), []byte("from a volume"), 0o644)
	// The agent offers two host ports that are likely free; a round that
	// loses one to another process runs again on a new cluster with other
	// ports (withPorts).
	withPorts(t, 2, func(hostPort int) error {
		bridgePort := hostPort + 1
		ports := "[" + strconv.Itoa(hostPort) + "-" + strconv.Itoa(hostPort) + "," + strconv.Itoa(bridgePort) + "-" + strconv.Itoa(bridgePort) + "]"
		dc := startDockerCluster(t, ports, true)
		s := dc.sched
		offer := s.Offer()

		host := dockerTask(t, "host", offer, dc.image, "exec httpd -f -p 127.0.0.1:"+strconv.Itoa(hostPort)+" -h /www",
			"cpus:0.1;mem:32;ports:["+strconv.Itoa(hostPort)+"-"+strconv.Itoa(hostPort)+"]")
		host.Container.Docker.Network = mesos.ContainerInfo_DockerInfo_HOST.Enum()
		host.Container.Volumes = []mesos.Volume{{ContainerPath: "/www", HostPath: ptr(www), Mode: mesos.RO.Enum()}}

		bridge := dockerTask(t, "bridge", offer, dc.image, "exec httpd -f -p 8080 -h /www",
			"cpus:0.1;mem:32;ports:["+strconv.Itoa(bridgePort)+"-"+strconv.Itoa(bridgePort)+"]")
		bridge.Container.Docker.Network = mesos.ContainerInfo_DockerInfo_BRIDGE.Enum()
		bridge.Container.Docker.PortMappings = []mesos.ContainerInfo_DockerInfo_PortMapping{{HostPort: uint32(bridgePort), ContainerPort: 8080}}
		bridge.Container.Volumes = host.Container.Volumes
		s.Launch(offer, host, bridge)

		for _, id := range []string{"host", "bridge"} {
			port := map[string]int{"host": hostPort, "bridge": bridgePort}[id]
			if err := untilRunning(s, id); err != nil {
				return err // Docker's port mapping failed to bind, say
			}
			body, err := serving(filepath.Join(dc.sandbox(id), "stderr"), "http://127.0.0.1:"+strconv.Itoa(port)+"/index.html")
			if err != nil {
				return fmt.Errorf("%s network: %w", id, err)
			}
			if body != "from a volume" {
				t.Errorf("%s network: body %q", id, body)
			}
			s.MustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: id}, AgentID: &offer.AgentID}})
			s.Until(id, mesos.TASK_KILLED)
		}
		return nil
	})
}

// untilRunning waits for task id to run; a task that ends first is an
// error carrying its state and message.
func untilRunning(s *clustertest.Scheduler, id string) error {
	for {
		st := s.Update(id)
		switch st.GetState() {
		case mesos.TASK_RUNNING:
			return nil
		case mesos.TASK_STAGING, mesos.TASK_STARTING:
			continue
		}
		return fmt.Errorf("task %s: %v (%v) %q", id, st.GetState(), st.GetReason(), st.GetMessage())
	}
}

// serving GETs url until it answers 200, at most a minute, and returns the
// body; what the server wrote on stderr (which says when its port was
// taken) ends the wait as an error.
func serving(stderr, url string) (string, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		if resp, err := http.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return string(b), nil
			}
		}
		if b, _ := os.ReadFile(stderr); strings.Contains(string(b), "httpd:") {
			return "", fmt.Errorf("the server failed: %s", b)
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("GET %s: no 200 within a minute", url)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBadDockerTasksFailClearly(t *testing.T) {
	dc := startDockerCluster(t, "[31000-31010]", true)
	s := dc.sched
	offer := s.Offer()
	badParam := dockerTask(t, "badparam", offer, dc.image, "true", "cpus:0.1;mem:32")
	badParam.Container.Docker.Parameters = []mesos.Parameter{{Key: "ipc", Value: "host"}}
	badPort := dockerTask(t, "badport", offer, dc.image, "true", "cpus:0.1;mem:32;ports:[31000-31000]")
	badPort.Container.Docker.Network = mesos.ContainerInfo_DockerInfo_BRIDGE.Enum()
	badPort.Container.Docker.PortMappings = []mesos.ContainerInfo_DockerInfo_PortMapping{{HostPort: 31005, ContainerPort: 80}}
	s.Launch(offer, badParam, badPort)
	for id, want := range map[string]string{
		"badparam": `docker parameter "ipc" is not supported`,
		"badport":  "host port 31005 is not among the task's ports resources [31000-31000]",
	} {
		st := s.Until(id, mesos.TASK_FAILED)
		if st.GetReason() != mesos.REASON_CONTAINER_LAUNCH_FAILED || !strings.Contains(st.GetMessage(), want) {
			t.Errorf("%s: %v %q, want %q", id, st.GetReason(), st.GetMessage(), want)
		}
	}
}

func TestDockerTasksNeedTheDockerContainerizer(t *testing.T) {
	dc := startDockerCluster(t, "[31000-31010]", false)
	s := dc.sched
	offer := s.Offer()
	s.Launch(offer, dockerTask(t, "nodocker", offer, dc.image, "true", "cpus:0.1;mem:32"))
	st := s.Until("nodocker", mesos.TASK_FAILED)
	if st.GetReason() != mesos.REASON_CONTAINER_LAUNCH_FAILED || !strings.Contains(st.GetMessage(), "--containerizers=mesos,docker") {
		t.Errorf("%v %q", st.GetReason(), st.GetMessage())
	}
}

func TestRestartedAgentRecoversDockerTasksAndRemovesOrphans(t *testing.T) {
	dc := startDockerCluster(t, "[31000-31010]", true, func(cfg *agent.Config) { cfg.KeepTasksOnStop = true })
	s := dc.sched
	offer := s.Offer()
	s.Launch(offer, dockerTask(t, "survivor", offer, dc.image,
		`echo before; while [ ! -f "$MESOS_SANDBOX/go" ]; do sleep 0.05; done; echo after; exit 0`, "cpus:0.1;mem:32"))
	running := s.Until("survivor", mesos.TASK_RUNNING)
	cid := running.GetContainerStatus().GetContainerID().GetValue()
	sandbox := dc.sandbox("survivor")
	eventually(t, "output before the restart", func() bool { return read(t, filepath.Join(sandbox, "stdout")) == "before\n" })

	// A container of this agent the restarted agent will not know.
	workDir := dc.Agents[0].WorkDir()
	rs, _ := api.ParseResources("cpus:0.1;mem:32")
	orphan, err := dc.d.Launch(context.Background(), Task{
		ContainerID: "orphan-" + strconv.FormatInt(time.Now().UnixNano(), 36), Sandbox: t.TempDir(), Owner: workDir,
		Container: mesos.ContainerInfo{Type: mesos.ContainerInfo_DOCKER.Enum(), Docker: &mesos.ContainerInfo_DockerInfo{Image: dc.image}},
		Command:   mesos.CommandInfo{Shell: ptr(true), Value: ptr("sleep 600")}, Resources: rs,
	})
	if err != nil {
		t.Fatal(err)
	}

	// The agent stops leaving its tasks; the new agent process gets a new
	// containerizer, as after a real restart.
	dc.Agents[0].Stop()
	dc.d.Close()
	d2 := newContainerizer(t)
	dc.Agents[0].Config.Docker = d2
	dc.Agents[0].Config.KeepTasksOnStop = false
	dc.StartAgent(0, "")

	eventually(t, "the orphan removed", func() bool { return !exists(t, d2, Name(orphan.ID())) })
	if !exists(t, d2, Name(cid)) {
		t.Fatal("the recovered task's container was removed")
	}
	os.WriteFile(filepath.Join(sandbox, "go"), nil, 0o644)
	s.Until("survivor", mesos.TASK_FINISHED)
	if got := read(t, filepath.Join(sandbox, "stdout")); got != "before\nafter\n" {
		t.Errorf("stdout = %q, want the output before and after the restart once each", got)
	}
	if exists(t, d2, Name(cid)) {
		t.Error("the finished container was not removed")
	}
}

func exists(t *testing.T, d *Containerizer, name string) bool {
	t.Helper()
	ok, err := d.Client().ContainerExists(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}
