package docker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/containerizer"
	. "github.com/agora-cluster/agora/cluster/containerizer/docker"
	"github.com/agora-cluster/agora/cluster/containerizer/docker/dockertest"
)

// These tests run real containers in the local Docker Engine from a
// busybox image built for the test (dockertest), and remove both.

type env struct {
	t     *testing.T
	d     *Containerizer
	image string
	owner string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	client := dockertest.Engine(t)
	image := dockertest.BusyboxImage(t, client)
	owner := t.TempDir()
	dockertest.RemoveContainers(t, client, owner)
	return &env{t: t, d: newContainerizer(t), image: image, owner: owner}
}

func newContainerizer(t *testing.T) *Containerizer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := New(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

func ptr[T any](v T) *T { return &v }

var nextID int

// task is a DOCKER task running script with /bin/sh -c in a fresh sandbox.
func (e *env) task(script string) Task {
	e.t.Helper()
	nextID++
	id := strconv.Itoa(os.Getpid()) + "-" + strconv.Itoa(nextID) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	rs, err := api.ParseResources("cpus:0.5;mem:64;ports:[31000-31010]")
	if err != nil {
		e.t.Fatal(err)
	}
	return Task{
		ContainerID: "test-" + id,
		Sandbox:     e.t.TempDir(),
		Container: mesos.ContainerInfo{Type: mesos.ContainerInfo_DOCKER.Enum(), Docker: &mesos.ContainerInfo_DockerInfo{
			Image: e.image,
		}},
		Command:   mesos.CommandInfo{Shell: ptr(true), Value: ptr(script)},
		Resources: rs,
		Env:       []string{"MESOS_SANDBOX=" + SandboxMount, "MESOS_TASK_ID=" + id},
		Labels:    map[string]string{"agora.task_id": id},
		Owner:     e.owner,
	}
}

func (e *env) launch(t Task) containerizer.Container {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := e.d.Launch(ctx, t)
	if err != nil {
		e.t.Fatalf("launch: %v", err)
	}
	return c
}

// wait waits for the container to end; the deadline only turns a hang
// into a failure.
func wait(t *testing.T, c containerizer.Container) containerizer.Exit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	exit, err := c.Wait(ctx)
	if err != nil {
		t.Fatalf("container %s did not end: %v", c.ID(), err)
	}
	return exit
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

func (e *env) exists(name string) bool {
	e.t.Helper()
	ok, err := e.d.Client().ContainerExists(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return ok
}

func TestOutputGoesToTheSandboxAndTheContainerIsRemoved(t *testing.T) {
	e := newEnv(t)
	tk := e.task(`echo hello from docker; echo oops >&2; echo "$MESOS_SANDBOX $(pwd)" > "$MESOS_SANDBOX/where"`)
	c := e.launch(tk)
	if c.ID() != tk.ContainerID || c.State().Docker == "" {
		t.Errorf("container ID %q state %+v", c.ID(), c.State())
	}
	exit := wait(t, c)
	if !exit.Success() {
		t.Fatalf("exit = %v (stderr %q)", exit, read(t, filepath.Join(tk.Sandbox, "stderr")))
	}
	if got := read(t, filepath.Join(tk.Sandbox, "stdout")); got != "hello from docker\n" {
		t.Errorf("stdout = %q", got)
	}
	if got := read(t, filepath.Join(tk.Sandbox, "stderr")); got != "oops\n" {
		t.Errorf("stderr = %q", got)
	}
	if got := read(t, filepath.Join(tk.Sandbox, "where")); got != "/mnt/mesos/sandbox /mnt/mesos/sandbox\n" {
		t.Errorf("MESOS_SANDBOX and working directory = %q", got)
	}
	if e.exists(Name(tk.ContainerID)) {
		t.Error("the container was not removed after it ended")
	}
	if err := c.Signal(syscall.SIGTERM); !errors.Is(err, containerizer.ErrExited) {
		t.Errorf("Signal after the end = %v, want ErrExited", err)
	}
}

func TestExitStatusIsReported(t *testing.T) {
	e := newEnv(t)
	exit := wait(t, e.launch(e.task("exit 3")))
	if exit.Success() || exit.Code != 3 || exit.String() != "exited with status 3" {
		t.Errorf("exit = %+v (%s), want status 3", exit, exit)
	}
}

func TestArgvCommandGoesToTheImageEntrypoint(t *testing.T) {
	e := newEnv(t)
	tk := e.task("")
	tk.Command = mesos.CommandInfo{Shell: ptr(false), Value: ptr("/bin/echo"), Arguments: []string{"a  b", "$HOME;"}}
	if exit := wait(t, e.launch(tk)); !exit.Success() {
		t.Fatalf("exit = %v", exit)
	}
	if got := read(t, filepath.Join(tk.Sandbox, "stdout")); got != "a  b $HOME;\n" {
		t.Errorf("stdout = %q, want the arguments verbatim", got)
	}
	// No value: the image's default command (CMD ["/bin/sh"], which ends
	// at once without input).
	tk = e.task("")
	tk.Command = mesos.CommandInfo{Shell: ptr(false)}
	if exit := wait(t, e.launch(tk)); !exit.Success() {
		t.Errorf("default command: exit = %v", exit)
	}
}

func TestMissingImageIsNamed(t *testing.T) {
	e := newEnv(t)
	tk := e.task("true")
	tk.Container.Docker.Image = "agora-test-no-such-image:42"
	_, err := e.d.Launch(context.Background(), tk)
	if !errors.Is(err, ErrImageNotFound) || !strings.Contains(err.Error(), "image agora-test-no-such-image:42 not found locally") ||
		!strings.Contains(err.Error(), "no registry") {
		t.Errorf("err = %v", err)
	}
	if e.exists(Name(tk.ContainerID)) {
		t.Error("a container was created for a missing image")
	}
}

func TestForcePullUsesTheLocalImage(t *testing.T) {
	e := newEnv(t)
	tk := e.task("echo ran")
	tk.Container.Docker.ForcePullImage = ptr(true)
	if exit := wait(t, e.launch(tk)); !exit.Success() {
		t.Fatalf("exit = %v", exit)
	}
	if got := read(t, filepath.Join(tk.Sandbox, "stderr")); !strings.Contains(got, "force_pull_image is set, but images are never pulled") {
		t.Errorf("stderr = %q, want a note that nothing is pulled", got)
	}
	tk = e.task("true")
	tk.Container.Docker.Image = "agora-test-no-such-image:43"
	tk.Container.Docker.ForcePullImage = ptr(true)
	if _, err := e.d.Launch(context.Background(), tk); !errors.Is(err, ErrImageNotFound) {
		t.Errorf("force_pull_image of a missing image: %v", err)
	}
}

func TestKillStopsAndRemovesTheContainer(t *testing.T) {
	e := newEnv(t)
	tk := e.task("sleep 600")
	c := e.launch(tk)
	name := Name(tk.ContainerID)
	cj, err := e.d.Client().InspectContainer(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	labels := cj.Labels
	if c.Pid() <= 0 || c.Pid() != cj.Pid {
		t.Errorf("Pid() = %d, the Engine says %d", c.Pid(), cj.Pid)
	}
	if labels[LabelContainerID] != tk.ContainerID || labels[LabelOwner] != e.owner || labels[LabelSandbox] != tk.Sandbox || labels["agora.task_id"] == "" {
		t.Errorf("labels = %v", labels)
	}
	// sleep runs as the container's PID 1, which ignores SIGTERM, so the
	// kill takes SIGKILL, as `docker stop` would after its timeout.
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
		t.Fatal("sleep as PID 1 ended on SIGTERM")
	default:
	}
	if err := c.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	exit := wait(t, c)
	if exit.Code != 137 {
		t.Errorf("exit = %v, want status 137 (SIGKILL)", exit)
	}
	if e.exists(name) {
		t.Error("the killed container still exists")
	}
}

func TestSIGTERMLetsATaskExitCleanly(t *testing.T) {
	e := newEnv(t)
	tk := e.task(`trap 'echo terminated; exit 0' TERM; echo ready; while true; do sleep 0.1; done`)
	c := e.launch(tk)
	eventually(t, "the trap to be set", func() bool { return read(t, filepath.Join(tk.Sandbox, "stdout")) == "ready\n" })
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if exit := wait(t, c); !exit.Success() {
		t.Errorf("exit = %v", exit)
	}
	if got := read(t, filepath.Join(tk.Sandbox, "stdout")); got != "ready\nterminated\n" {
		t.Errorf("stdout = %q", got)
	}
}

// withPorts runs try with the first of n consecutive host ports that are
// likely free (clustertest.PortRange: below the ephemeral range). Busybox
// httpd on the host network and Docker's port mapping bind the port they
// are given and cannot report one the system picked, so another process
// may have taken one: try reports that as a port-taken error (see
// portTaken) and runs again on other ports, at most 5 times.
func withPorts(t *testing.T, n int, try func(first int) error) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		first, _ := clustertest.PortRange(n)
		err := try(first)
		switch {
		case err == nil:
			return
		case attempt == 5 || !portTaken(err):
			t.Fatalf("ports from %d (attempt %d): %v", first, attempt, err)
		}
		t.Logf("ports from %d (attempt %d): %v; trying others", first, attempt, err)
	}
}

// portTaken tells whether err says the port was bound by another process:
// a host process (Docker's userland proxy, or httpd) or another
// container's mapping.
func portTaken(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "address already in use") || strings.Contains(msg, "port is already allocated")
}

// getEventually GETs url until it answers 200 (the server in the
// container takes a moment to listen) and returns the body. A container
// that ends first is an error that carries its stderr.
func getEventually(t *testing.T, c containerizer.Container, sandbox, url string) (string, error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-c.Done():
			return "", fmt.Errorf("the server's container ended (%v): stderr %q", wait(t, c), read(t, filepath.Join(sandbox, "stderr")))
		default:
		}
		if resp, err := http.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return string(b), nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("GET %s: no 200 within a minute", url)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHostNetwork(t *testing.T) {
	e := newEnv(t)
	withPorts(t, 1, func(port int) error {
		tk := e.task("exec httpd -f -p 127.0.0.1:" + strconv.Itoa(port) + " -h " + SandboxMount)
		tk.Container.Docker.Network = mesos.ContainerInfo_DockerInfo_HOST.Enum()
		if err := os.WriteFile(filepath.Join(tk.Sandbox, "hello.txt"), []byte("served from the host network"), 0o644); err != nil {
			t.Fatal(err)
		}
		c := e.launch(tk)
		defer func() { c.Signal(syscall.SIGKILL); wait(t, c) }()
		got, err := getEventually(t, c, tk.Sandbox, "http://127.0.0.1:"+strconv.Itoa(port)+"/hello.txt")
		if err == nil && got != "served from the host network" {
			t.Errorf("body = %q", got)
		}
		return err
	})
}

func TestBridgeNetworkWithAPortMapping(t *testing.T) {
	e := newEnv(t)
	withPorts(t, 1, func(port int) error {
		tk := e.task("exec httpd -f -p 80 -h " + SandboxMount)
		rs, _ := api.ParseResources("cpus:0.1;mem:32;ports:[" + strconv.Itoa(port) + "-" + strconv.Itoa(port) + "]")
		tk.Resources = rs
		tk.Container.Docker.Network = mesos.ContainerInfo_DockerInfo_BRIDGE.Enum()
		tk.Container.Docker.PortMappings = []mesos.ContainerInfo_DockerInfo_PortMapping{{HostPort: uint32(port), ContainerPort: 80, Protocol: ptr("tcp")}}
		os.WriteFile(filepath.Join(tk.Sandbox, "index.html"), []byte("bridged"), 0o644)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := e.d.Launch(ctx, tk) // Docker binds the host port when it starts the container
		if err != nil {
			return fmt.Errorf("launch: %w", err)
		}
		defer func() { c.Signal(syscall.SIGKILL); wait(t, c) }()
		got, err := getEventually(t, c, tk.Sandbox, "http://127.0.0.1:"+strconv.Itoa(port)+"/index.html")
		if err == nil && got != "bridged" {
			t.Errorf("body = %q", got)
		}
		return err
	})
}

func TestPortMappingsMustUseTheTasksPorts(t *testing.T) {
	e := newEnv(t)
	tk := e.task("true")
	tk.Container.Docker.Network = mesos.ContainerInfo_DockerInfo_BRIDGE.Enum()
	tk.Container.Docker.PortMappings = []mesos.ContainerInfo_DockerInfo_PortMapping{{HostPort: 8080, ContainerPort: 80}}
	_, err := e.d.Launch(context.Background(), tk)
	if err == nil || !strings.Contains(err.Error(), "host port 8080 is not among the task's ports resources [31000-31010]") {
		t.Errorf("err = %v", err)
	}
	tk.Container.Docker.Network = mesos.ContainerInfo_DockerInfo_HOST.Enum()
	tk.Container.Docker.PortMappings[0].HostPort = 31000
	if _, err := e.d.Launch(context.Background(), tk); err == nil || !strings.Contains(err.Error(), "need the BRIDGE or USER network") {
		t.Errorf("port mapping on HOST: err = %v", err)
	}
	if e.exists(Name(tk.ContainerID)) {
		t.Error("a refused task left a container")
	}
}

func TestVolumes(t *testing.T) {
	e := newEnv(t)
	data := t.TempDir()
	os.WriteFile(filepath.Join(data, "in.txt"), []byte("from the host"), 0o644)
	scratch := t.TempDir()
	tk := e.task(`cat /data/in.txt > "$MESOS_SANDBOX/copy.txt" &&
		if touch /data/new 2>/dev/null; then echo read-only volume was writable; exit 1; fi &&
		echo written > /scratch/out.txt && echo inside > cache/x.txt && echo new > /fresh/n.txt`)
	tk.Container.Volumes = []mesos.Volume{
		{ContainerPath: "/data", HostPath: ptr(data), Mode: mesos.RO.Enum()},
		{ContainerPath: "/scratch", HostPath: ptr(scratch), Mode: mesos.RW.Enum()},
		// Relative: host path in the sandbox, container path in the mount.
		{ContainerPath: "cache", HostPath: ptr("cachedir"), Mode: mesos.RW.Enum()},
		// A missing host directory is created, as `docker run -v` does.
		{ContainerPath: "/fresh", HostPath: ptr(filepath.Join(scratch, "not", "yet")), Mode: mesos.RW.Enum()},
	}
	os.Mkdir(filepath.Join(tk.Sandbox, "cachedir"), 0o755)
	if exit := wait(t, e.launch(tk)); !exit.Success() {
		t.Fatalf("exit = %v, stdout %q stderr %q", exit, read(t, filepath.Join(tk.Sandbox, "stdout")), read(t, filepath.Join(tk.Sandbox, "stderr")))
	}
	for p, want := range map[string]string{
		filepath.Join(tk.Sandbox, "copy.txt"):          "from the host",
		filepath.Join(scratch, "out.txt"):              "written\n",
		filepath.Join(tk.Sandbox, "cachedir", "x.txt"): "inside\n",
		filepath.Join(scratch, "not", "yet", "n.txt"):  "new\n",
	} {
		if got := read(t, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "new")); err == nil {
		t.Error("a file was created through the read-only volume")
	}
}

func TestParameters(t *testing.T) {
	e := newEnv(t)
	tk := e.task(`echo "$GREETING|$(hostname)|$(pwd)|$(id -u)"`)
	tk.Container.Docker.Network = mesos.ContainerInfo_DockerInfo_BRIDGE.Enum()
	tk.Container.Docker.Parameters = []mesos.Parameter{
		{Key: "env", Value: "GREETING=hi there"},
		{Key: "hostname", Value: "agora-box"},
		{Key: "workdir", Value: "/tmp"},
		{Key: "user", Value: "nobody"},
		{Key: "label", Value: "team=data"},
		{Key: "init", Value: "true"},
	}
	if exit := wait(t, e.launch(tk)); !exit.Success() {
		t.Fatalf("exit = %v, stderr %q", exit, read(t, filepath.Join(tk.Sandbox, "stderr")))
	}
	if got := read(t, filepath.Join(tk.Sandbox, "stdout")); got != "hi there|agora-box|/tmp|65534\n" {
		t.Errorf("stdout = %q", got)
	}
	tk = e.task("true")
	tk.Container.Docker.Parameters = []mesos.Parameter{{Key: "pid", Value: "host"}}
	_, err := e.d.Launch(context.Background(), tk)
	if err == nil || !strings.Contains(err.Error(), `docker parameter "pid" is not supported (supported: add-host, cap-add`) {
		t.Errorf("unknown parameter: err = %v", err)
	}
}

func TestMemoryLimitIsEnforced(t *testing.T) {
	e := newEnv(t)
	tk := e.task(`head -c 200m /dev/zero | tail > /dev/null`)
	rs, _ := api.ParseResources("cpus:0.5;mem:32")
	tk.Resources = rs
	exit := wait(t, e.launch(tk))
	if exit.Success() {
		t.Fatalf("a task holding 200 MB under a 32 MB limit succeeded")
	}
	if exit.Limitation == nil || exit.Limitation.Resource != "mem" {
		t.Errorf("exit = %+v, want a memory limitation", exit)
	}
}

func TestRecoverAdoptsARunningContainer(t *testing.T) {
	e := newEnv(t)
	tk := e.task(`echo before; while [ ! -f "$MESOS_SANDBOX/go" ]; do sleep 0.05; done; echo after; exit 7`)
	c := e.launch(tk)
	st := c.State()
	stdout := filepath.Join(tk.Sandbox, "stdout")
	eventually(t, "output before the restart", func() bool { return read(t, stdout) == "before\n" })
	// The agent stops with its tasks left running; a new agent process
	// (a new containerizer) adopts the container.
	e.d.Close()
	d2 := newContainerizer(t)
	c2, err := d2.Recover(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Pid() != c.Pid() || c2.State().Docker != st.Docker {
		t.Errorf("adopted pid %d state %+v, want pid %d docker %s", c2.Pid(), c2.State(), c.Pid(), st.Docker)
	}
	os.WriteFile(filepath.Join(tk.Sandbox, "go"), nil, 0o644)
	exit := wait(t, c2)
	if exit.Code != 7 {
		t.Errorf("exit = %v, want status 7", exit)
	}
	if got := read(t, stdout); got != "before\nafter\n" {
		t.Errorf("stdout = %q: output written after the restart must be appended once", got)
	}
	if ok, _ := d2.Client().ContainerExists(context.Background(), Name(tk.ContainerID)); ok {
		t.Error("the adopted container was not removed when it ended")
	}
	if _, err := d2.Recover(context.Background(), st); !errors.Is(err, containerizer.ErrGone) {
		t.Errorf("recovering a removed container: %v, want ErrGone", err)
	}
}

func TestRecoverReportsAContainerThatEndedWhileTheAgentWasDown(t *testing.T) {
	e := newEnv(t)
	tk := e.task(`while [ ! -f "$MESOS_SANDBOX/go" ]; do sleep 0.05; done; echo finished; exit 5`)
	c := e.launch(tk)
	st := c.State()
	e.d.Close()
	os.WriteFile(filepath.Join(tk.Sandbox, "go"), nil, 0o644)
	client := dockertest.Engine(t)
	eventually(t, "the container to stop", func() bool {
		cj, err := client.InspectContainer(context.Background(), st.Docker)
		return err == nil && !cj.Running
	})
	d2 := newContainerizer(t)
	c2, err := d2.Recover(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if exit := wait(t, c2); exit.Code != 5 {
		t.Errorf("exit = %v, want status 5", exit)
	}
	if got := read(t, filepath.Join(tk.Sandbox, "stdout")); got != "finished\n" {
		t.Errorf("stdout = %q", got)
	}
	if ok, _ := client.ContainerExists(context.Background(), st.Docker); ok {
		t.Error("the ended container was not removed")
	}
}

func TestOrphansOfTheAgentAreRemoved(t *testing.T) {
	e := newEnv(t)
	known := e.launch(e.task("sleep 600"))
	orphan := e.task("sleep 600")
	e.launch(orphan)
	other := newEnv(t) // another agent's container is not touched
	theirs := other.launch(other.task("sleep 600"))
	removed, err := e.d.RemoveOrphans(context.Background(), e.owner, func(id string) bool { return id == known.ID() })
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != Name(orphan.ContainerID) {
		t.Errorf("removed %v, want only %s", removed, Name(orphan.ContainerID))
	}
	if !e.exists(Name(known.ID())) || !e.exists(Name(theirs.ID())) {
		t.Error("a known container or another agent's container was removed")
	}
	for _, c := range []containerizer.Container{known, theirs} {
		c.Signal(syscall.SIGKILL)
		wait(t, c)
	}
}
