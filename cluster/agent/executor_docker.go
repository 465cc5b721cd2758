package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/containerizer"
	"github.com/agora-cluster/agora/cluster/containerizer/docker"
)

// Custom executors in Docker containers (an ExecutorInfo whose
// ContainerInfo is DOCKER), as Mesos's Docker containerizer runs them: the
// executor's CommandInfo runs in a container of the image (shell=true
// through /bin/sh -c, otherwise as the image's entrypoint arguments), its
// sandbox mounted at docker.SandboxMount (MESOS_SANDBOX), its URIs fetched
// there before the container starts, with the v1 executor environment and
// the executor's resources (and those of its live tasks) as the
// container's cpu and memory limits. The executor reaches the agent at
// MESOS_AGENT_ENDPOINT: on the HOST network (the default) that is the
// agent's own address; on BRIDGE and USER networks the container has a
// loopback of its own, so the agent must listen on an address the
// container can reach. Killing the executor removes its container, and a
// restarted agent adopts it like any executor (executor_recover.go).

const labelExecutorID = "agora.executor_id"

var errNoDockerExecutor = errors.New("the executor's container is of type DOCKER but this agent runs no Docker containerizer (start it with --containerizers=mesos,docker)")

// isDockerExecutor reports whether an executor runs in a Docker container.
func isDockerExecutor(info *mesos.ExecutorInfo) bool { return isDockerContainer(info.GetContainer()) }

// dockerExecutorLauncher checks a Docker executor and returns the call
// that starts its container; an executor that cannot run fails here,
// before anything is fetched.
func (a *Agent) dockerExecutorLauncher(e *executor) (func(context.Context) (containerizer.Container, error), error) {
	if a.cfg.Docker == nil {
		return nil, errNoDockerExecutor
	}
	dt, err := a.dockerExecutorTask(e)
	if err != nil {
		return nil, err
	}
	return a.dockerLauncher(dt) // docker.go
}

// dockerExecutorTask describes executor e to the Docker containerizer.
// The container gets the executor's environment, not the agent's.
func (a *Agent) dockerExecutorTask(e *executor) (docker.Task, error) {
	endpoint, err := a.dockerExecutorEndpoint(e.info.Container)
	if err != nil {
		return docker.Task{}, err
	}
	env := a.executorEnvAt(e, endpoint, docker.SandboxMount)
	if a.requiresClientCert() { // executor_auth.go
		// A Docker executor has no client certificate to present: it
		// could only call in plain HTTP (downgrade), without a token.
		switch {
		case !a.cfg.TLSDowngrade:
			return docker.Task{}, errors.New("a Docker executor cannot reach this agent: it requires client certificates (--ssl_require_cert), which a Docker executor has none of, and takes no plain HTTP (--ssl_support_downgrade); run the executor natively")
		case a.cfg.AuthenticateHTTPExecutors:
			return docker.Task{}, errors.New("a Docker executor cannot reach this agent: under --ssl_require_cert it calls in plain HTTP, where it is given no token, and the agent requires one (--authenticate_http_executors); run the executor natively")
		}
		env = withoutToken(env)
	} else if tlsEnv, err := a.dockerExecutorTLSEnv(e, endpoint); err != nil {
		return docker.Task{}, err
	} else {
		env = append(env, tlsEnv...)
	}
	env = append(env, "MESOS_CONTAINER_NAME="+docker.Name(e.containerID))
	cmd := e.info.Command
	env, err = appendCommandEnv(env, cmd) // tasks.go
	if err != nil {
		return docker.Task{}, err
	}
	resources, _, _ := a.startingLimits(e) // executor.go
	dt := docker.Task{
		ContainerID: e.containerID,
		Sandbox:     e.sandbox,
		Container:   *e.info.Container,
		Resources:   resources,
		Env:         dedupEnv(env),
		Labels: map[string]string{
			labelAgentID:     a.ID(),
			labelFrameworkID: e.key.framework,
			labelExecutorID:  e.key.executor,
		},
		Owner: a.workDir,
	}
	if cmd != nil {
		dt.Command = *cmd
	}
	return dt, nil
}

// dockerCAFile is where, in a Docker executor's sandbox, the agent puts
// a copy of its CA bundle: the container sees its sandbox, not the
// agent's files.
const dockerCAFile = ".agent-ca.pem"

// dockerExecutorTLSEnv is the TLS environment of a Docker executor on a
// TLS agent, as a native executor gets it (so that its token does not
// travel in cleartext), with the CA bundle copied into its sandbox. An
// executor that does not read LIBPROCESS_SSL_* still calls in plain
// HTTP, which the agent accepts only with downgrade.
//
// Under --ssl_require_cert a Docker executor gets neither TLS nor a
// token: the agent's key stays out of containers, so it could not
// complete the handshake, and its calls (plain HTTP, with downgrade)
// must not carry a token in cleartext.
func (a *Agent) dockerExecutorTLSEnv(e *executor, endpoint string) ([]string, error) {
	if a.cfg.TLS == nil {
		return nil, nil
	}
	caFile := ""
	if a.cfg.TLSCAFile != "" {
		ca, err := os.ReadFile(a.cfg.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("the executor needs the agent's CA bundle in its container: %w", err)
		}
		if err := os.WriteFile(filepath.Join(e.sandbox, dockerCAFile), ca, 0o644); err != nil {
			return nil, fmt.Errorf("copy the agent's CA bundle into the executor's sandbox: %w", err)
		}
		caFile = docker.SandboxMount + "/" + dockerCAFile
	}
	return a.executorTLSEnvAt(endpoint, caFile, false), nil // executor_auth.go
}

// withoutToken is env without the executor's token.
func withoutToken(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, auth.EnvExecutorToken+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// dockerExecutorEndpoint is the agent's address as an executor in a
// Docker container with ContainerInfo ci reaches it. On the HOST network
// it is the address native executors use; other networks have their own
// loopback, so a loopback address will not do: when the agent listens on
// every interface the address of its hostname is used, and when there is
// no address the container can reach, the executor is refused.
func (a *Agent) dockerExecutorEndpoint(ci *mesos.ContainerInfo) (string, error) {
	network := mesos.ContainerInfo_DockerInfo_HOST
	if di := ci.GetDocker(); di != nil && di.Network != nil {
		network = *di.Network
	}
	endpoint := a.executorEndpoint()
	switch network {
	case mesos.ContainerInfo_DockerInfo_HOST:
		return endpoint, nil
	case mesos.ContainerInfo_DockerInfo_NONE:
		return "", errors.New("an executor in a Docker container on the NONE network cannot reach the agent; use the HOST (default) or BRIDGE network")
	}
	tcp, ok := a.ln.Addr().(*net.TCPAddr)
	if !ok {
		return "", fmt.Errorf("an executor in a Docker container on the %v network cannot reach the agent at %s", network, endpoint)
	}
	if tcp.IP != nil && !tcp.IP.IsUnspecified() && !tcp.IP.IsLoopback() {
		return endpoint, nil
	}
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		if addrs, err := net.LookupIP(a.cfg.Hostname); err == nil {
			for _, ip := range addrs {
				if ip.To4() != nil && !ip.IsLoopback() && !ip.IsUnspecified() {
					return net.JoinHostPort(ip.String(), strconv.Itoa(tcp.Port)), nil
				}
			}
		}
	}
	return "", fmt.Errorf("an executor in a Docker container on the %v network cannot reach the agent, which listens on %s "+
		"(inside the container that is the container's own loopback); run the executor on the HOST network, "+
		"or start the agent with an --ip the container can reach (or 0.0.0.0 with a --hostname that resolves to such an address)",
		network, a.ln.Addr())
}
