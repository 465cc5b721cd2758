package docker

import (
	"fmt"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

func ptr[T any](v T) *T { return &v }

func TestLimitsFromResources(t *testing.T) {
	rs, _ := api.ParseResources("cpus:1.5;mem:128")
	tk := Task{ContainerID: "x", Sandbox: "/sb", Resources: rs, Container: mesos.ContainerInfo{
		Type: mesos.ContainerInfo_DOCKER.Enum(), Docker: &mesos.ContainerInfo_DockerInfo{Image: "img"}},
		Command: mesos.CommandInfo{Shell: ptr(true), Value: ptr("true")}}
	b, err := createConfig(tk, true)
	if err != nil {
		t.Fatal(err)
	}
	hc := b.HostConfig
	if hc.CPUShares != 1536 || hc.CPUPeriod != 100000 || hc.CPUQuota != 150000 || hc.Memory != 128<<20 || hc.NetworkMode != "host" {
		t.Errorf("host config = %+v", hc)
	}
	if b.Entrypoint[0] != "/bin/sh" || strings.Join(b.Cmd, " ") != "-c true" {
		t.Errorf("entrypoint %q cmd %q", b.Entrypoint, b.Cmd)
	}
	if want := (mount{Type: "bind", Source: "/sb", Target: "/mnt/mesos/sandbox"}); len(hc.Mounts) != 1 || hc.Mounts[0] != want {
		t.Errorf("mounts = %+v, want the sandbox's %+v", hc.Mounts, want)
	}
	b, _ = createConfig(tk, false)
	if b.HostConfig.CPUQuota != 0 {
		t.Errorf("quota without CFS: %d", b.HostConfig.CPUQuota)
	}
}

// A task ID with ':' (Chronos's are ct:<time>:<attempt>:<job>) is in the
// sandbox path; a bind in `src:dst:mode` syntax cannot carry it, a mount
// takes it as it is.
func TestPathsWithColonsAreMountedAsTheyAre(t *testing.T) {
	sandbox := "/var/lib/agora/agent/executors/ct:1700000000000:0:job/runs/1"
	tk := Task{ContainerID: "x", Sandbox: sandbox, Container: mesos.ContainerInfo{
		Type: mesos.ContainerInfo_DOCKER.Enum(), Docker: &mesos.ContainerInfo_DockerInfo{Image: "img"},
		Volumes: []mesos.Volume{
			{ContainerPath: "/data", HostPath: ptr("/srv/a:b"), Mode: mesos.RO.Enum()},
			{ContainerPath: "cache", HostPath: ptr("c:d"), Mode: mesos.RW.Enum()},
			{ContainerPath: "/vol", Mode: mesos.RW.Enum(), Source: &mesos.Volume_Source{
				Type: mesos.Volume_Source_DOCKER_VOLUME, DockerVolume: &mesos.Volume_Source_DockerVolume{Name: "named"}}},
		}},
		Command: mesos.CommandInfo{Shell: ptr(true), Value: ptr("true")}}
	b, err := createConfig(tk, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []mount{
		{Type: "bind", Source: sandbox, Target: SandboxMount},
		{Type: "bind", Source: "/srv/a:b", Target: "/data", ReadOnly: true},
		{Type: "bind", Source: sandbox + "/c:d", Target: SandboxMount + "/cache"},
		{Type: "volume", Source: "named", Target: "/vol"},
	}
	if fmt.Sprint(b.HostConfig.Mounts) != fmt.Sprint(want) || len(b.HostConfig.Binds) != 0 {
		t.Errorf("mounts = %+v binds = %q, want mounts %+v", b.HostConfig.Mounts, b.HostConfig.Binds, want)
	}
}
