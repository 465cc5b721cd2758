package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/containerizer/docker"
	"github.com/agora-cluster/agora/cluster/containerizer/docker/dockertest"
)

// TestDevRunsDockerApps: with a Docker Engine on the default socket,
// `agora dev` runs a Marathon app of container type DOCKER in it (it used
// to fail "no Docker containerizer" and be relaunched with backoff
// forever), and its banner says so.
func TestDevRunsDockerApps(t *testing.T) {
	client := dockertest.Engine(t) // the docker tier
	image := dockertest.BusyboxImage(t, client)
	work := t.TempDir()
	dockertest.RemoveContainers(t, client, filepath.Join(work, "agent0"))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	marathon := l.Addr().String()
	_, marathonPort, _ := net.SplitHostPort(marathon)
	l.Close()
	dev, _ := startBound(t, "dev", "--agents", "1", "--port=0", "--ip=127.0.0.1", "--work_dir", work,
		"--resources", "cpus:2;mem:1024;disk:1024;ports:[31000-31100]", "--hadoop_port", "0", "--spark_port", "0",
		"--marathon_port", marathonPort, "--chronos_port", "0", "--dns_port", "0")
	waitUntil(t, "the banner to name the Docker Engine", 2*time.Minute, func() bool {
		return strings.Contains(dev.out.String(), devDockerLine(docker.DefaultSocket))
	})

	app := fmt.Sprintf(`{"id":"/boxed","cmd":"echo \"$MESOS_SANDBOX\" > \"$MESOS_SANDBOX/where\"; exec sleep 600",
		"cpus":0.1,"mem":32,"instances":1,"container":{"type":"DOCKER","docker":{"image":%q}}}`, image)
	resp, err := http.Post("http://"+marathon+"/v2/apps", "application/json", strings.NewReader(app))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v2/apps: %d %s", resp.StatusCode, body)
	}
	var a struct {
		App struct {
			TasksRunning    int `json:"tasksRunning"`
			LastTaskFailure *struct {
				Message string `json:"message"`
			} `json:"lastTaskFailure"`
		} `json:"app"`
	}
	waitUntil(t, "the DOCKER app to run", 2*time.Minute, func() bool {
		resp, err := http.Get("http://" + marathon + "/v2/apps/boxed")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if json.NewDecoder(resp.Body).Decode(&a) != nil {
			return false
		}
		if f := a.App.LastTaskFailure; f != nil {
			t.Fatalf("the DOCKER app's task failed: %s", f.Message)
		}
		return a.App.TasksRunning == 1
	})
	// It runs in a container: its sandbox is at Docker's mount point.
	var where []byte
	waitUntil(t, "the task to write to its sandbox", time.Minute, func() bool {
		files, _ := filepath.Glob(filepath.Join(work, "agent0", "slaves", "*", "frameworks", "*", "executors", "*", "runs", "latest", "where"))
		if len(files) == 1 {
			where, _ = os.ReadFile(files[0])
		}
		return len(where) > 0
	})
	if got := string(where); got != docker.SandboxMount+"\n" {
		t.Errorf("the task's MESOS_SANDBOX is %q, want %q (the Docker mount point)", got, docker.SandboxMount)
	}
}

// Without a Docker Engine, `agora dev` starts its agents without Docker
// and says nothing of it.
func TestDevDockerIsOffWithoutAnEngine(t *testing.T) {
	if d := devDocker(filepath.Join(t.TempDir(), "no-docker.sock"), true, newLogger()); d != nil {
		d.Close()
		t.Fatal("a Docker containerizer without an Engine")
	}
	if devDocker("", true, newLogger()) != nil {
		t.Fatal(`a Docker containerizer with --docker_socket=""`)
	}
}
