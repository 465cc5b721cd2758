package marathon

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/containerizer/docker"
	"github.com/agora-cluster/agora/cluster/containerizer/docker/dockertest"
)

// startDockerEnv is startEnv with agents that run DOCKER containers in
// the local Docker Engine (one containerizer for the three, as an agent
// started with --containerizers=mesos,docker has), and a busybox image
// built for the test. It returns the image's reference.
func startDockerEnv(t *testing.T) (*env, string) {
	t.Helper()
	client := dockertest.Engine(t)
	image := dockertest.BusyboxImage(t, client)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := docker.New(ctx, docker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	e := startEnv(t, func(cfg *agent.Config) {
		cfg.Docker = d
		dockertest.RemoveContainers(t, client, cfg.WorkDir)
	})
	return e, image
}

// get answers a GET of url: its body, or the error.
func get(url string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s %s", url, resp.Status, b)
	}
	return string(b), err
}

// served waits until every instance of ts answers on its first host port
// with a page naming its own task and the container's sandbox mount.
func (e *env) served(ts []Task) {
	e.t.Helper()
	for _, tk := range ts {
		url := fmt.Sprintf("http://%s:%d/", tk.Host, tk.Ports[0])
		e.waitFor(tk.ID+" to serve its page", func() bool {
			body, err := get(url)
			return err == nil && body == "task "+tk.ID+" in /mnt/mesos/sandbox\n"
		})
	}
}

// TestDockerApps runs apps in Docker containers as Marathon's Docker
// docs give them: a BRIDGE app whose container port 80 is mapped to a
// host port from the offer and health-checked over HTTP by the agent is
// created, scaled, restarted and deleted; a HOST-network app with args
// (handed to the image's command, not a shell) sees
// MARATHON_APP_DOCKER_IMAGE and its PORT0; a MESOS container with an
// image runs that image; a BRIDGE app with container port 0 serves on
// its host port.
func TestDockerApps(t *testing.T) {
	e, image := startDockerEnv(t)
	page := `mkdir -p /www && echo "task $MESOS_TASK_ID in $MESOS_SANDBOX" > /www/index.html && exec httpd -f -p 80 -h /www`
	web := fmt.Sprintf(`{
		"id": "/web",
		"cmd": %q,
		"cpus": 0.1, "mem": 32, "instances": 2,
		"container": {
			"type": "DOCKER",
			"docker": {"image": %q, "network": "BRIDGE",
				"portMappings": [{"containerPort": 80, "hostPort": 0, "protocol": "tcp", "name": "http"}]}
		},
		"healthChecks": [{"protocol": "HTTP", "portIndex": 0, "path": "/index.html",
			"gracePeriodSeconds": 60, "intervalSeconds": 1, "timeoutSeconds": 5, "maxConsecutiveFailures": 3}]
	}`, page, image)
	e.must("POST", "/v2/apps", web, http.StatusCreated, nil)
	two := e.waitHealthy("/web", 2)
	for _, tk := range two {
		if len(tk.Ports) != 1 {
			t.Fatalf("instance %s has ports %v, want the one mapped port", tk.ID, tk.Ports)
		}
	}
	e.served(two)

	e.must("PUT", "/v2/apps/web", `{"instances": 3}`, http.StatusOK, nil)
	three := e.waitHealthy("/web", 3)
	for _, tk := range two {
		if !slices.Contains(ids(three), tk.ID) {
			t.Fatalf("scaling up replaced %s: %v", tk.ID, ids(three))
		}
	}
	e.served(three)

	e.must("POST", "/v2/apps/web/restart", "", http.StatusOK, nil)
	e.waitFor("every instance replaced", func() bool {
		ts := e.waitHealthy("/web", 3)
		for _, tk := range ts {
			if slices.Contains(ids(three), tk.ID) {
				return false
			}
		}
		return true
	})
	restarted := e.waitHealthy("/web", 3)
	e.served(restarted)

	e.must("DELETE", "/v2/apps/web", "", http.StatusOK, nil)
	e.waitFor("the master to run no task", func() bool { return e.masterRunning() == 0 })
	for _, tk := range restarted {
		url := fmt.Sprintf("http://%s:%d/", tk.Host, tk.Ports[0])
		e.waitFor(tk.ID+"'s port to close", func() bool { _, err := get(url); return err != nil })
	}

	// HOST networking with args: no shell is put in front, so the args
	// name the program (the image has no entrypoint).
	script := `echo "$MARATHON_APP_DOCKER_IMAGE $PORT0 $PORT_ADMIN" > /tmp/env && exec httpd -f -p $PORT0 -h /tmp`
	host := fmt.Sprintf(`{"id": "/tools/host", "args": ["sh", "-c", %q], "cpus": 0.1, "mem": 32,
		"portDefinitions": [{"port": 0, "name": "admin"}],
		"healthChecks": [{"protocol": "TCP", "portIndex": 0, "delaySeconds": 0, "intervalSeconds": 1, "gracePeriodSeconds": 60}],
		"container": {"type": "DOCKER", "docker": {"image": %q}}}`, script, image)
	e.must("POST", "/v2/apps", host, http.StatusCreated, nil)
	ts := e.waitHealthy("/tools/host", 1) // the agent's TCP check reaches the container's port
	url := fmt.Sprintf("http://%s:%d/env", ts[0].Host, ts[0].Ports[0])
	want := fmt.Sprintf("%s %d %d\n", image, ts[0].Ports[0], ts[0].Ports[0])
	var got string
	e.waitFor("the HOST-network instance to serve its environment", func() bool {
		var err error
		got, err = get(url)
		return err == nil
	})
	if got != want {
		t.Fatalf("the instance's environment: %q, want %q", got, want)
	}

	// A MESOS container with a Docker image (Marathon's Universal
	// Container Runtime form) runs the image on the host's network.
	ucr := fmt.Sprintf(`{"id": "/ucr", "cmd": %q, "cpus": 0.1, "mem": 32,
		"container": {"type": "MESOS", "docker": {"image": %q}}}`,
		`mkdir -p /www && echo "task $MESOS_TASK_ID in $MESOS_SANDBOX" > /www/index.html && exec httpd -f -p $PORT0 -h /www`, image)
	e.must("POST", "/v2/apps", ucr, http.StatusCreated, nil)
	e.served(e.waitRunning("/ucr", 1))

	// BRIDGE with container port 0: the container listens on the host
	// port it is given (PORT0), mapped to the same port. It serves its
	// page from a volume whose paths have a ':' (bound as a mount, not a
	// `-v` string).
	same := fmt.Sprintf(`{"id": "/same", "cmd": %q, "cpus": 0.1, "mem": 32,
		"container": {"type": "DOCKER", "docker": {"image": %q, "network": "BRIDGE",
			"portMappings": [{"containerPort": 0, "hostPort": 0}]},
			"volumes": [{"containerPath": "/www:1", "hostPath": "www:1", "mode": "RW"}]}}`,
		`echo "task $MESOS_TASK_ID in $MESOS_SANDBOX" > /www:1/index.html && exec httpd -f -p $PORT0 -h /www:1`, image)
	e.must("POST", "/v2/apps", same, http.StatusCreated, nil)
	e.served(e.waitRunning("/same", 1))
}

// TestDockerAppRefusals: container definitions the agents cannot run as
// asked are Marathon's 422 naming the field, and create nothing.
func TestDockerAppRefusals(t *testing.T) {
	e := startEnv(t)
	for _, c := range []struct{ body, path, want string }{
		{`{"id":"/a","container":{"type":"DOCKER","docker":{"network":"BRIDGE"}}}`, "/container/docker/image", "needs docker.image"},
		{`{"id":"/a","cmd":"sleep 1","container":{"type":"MESOS","docker":{"image":"busybox","portMappings":[{"containerPort":80}]}}}`, "/container/docker/portMappings", "use portDefinitions"},
		{`{"id":"/a","container":{"type":"DOCKER","docker":{"image":"busybox","network":"HOST","portMappings":[{"containerPort":80}]}}}`, "/container/docker/portMappings", "BRIDGE"},
		{`{"id":"/a","container":{"type":"DOCKER","docker":{"image":"busybox","parameters":[{"key":"pid","value":"host"}]}}}`, "/container/docker/parameters(0)/key", "not supported"},
	} {
		var inv struct {
			Message string
			Details []struct {
				Path   string
				Errors []string
			}
		}
		e.must("POST", "/v2/apps", c.body, http.StatusUnprocessableEntity, &inv)
		found := false
		for _, d := range inv.Details {
			found = found || d.Path == c.path && strings.Contains(strings.Join(d.Errors, " "), c.want)
		}
		if inv.Message != "Object is not valid" || !found {
			t.Errorf("%s: %+v, want %s with %q", c.body, inv, c.path, c.want)
		}
	}
	var apps struct{ Apps []AppView }
	e.must("GET", "/v2/apps", "", http.StatusOK, &apps)
	if len(apps.Apps) != 0 {
		t.Fatalf("refused apps were created: %+v", apps.Apps)
	}
}
