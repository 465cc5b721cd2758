package docker

import (
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
	if b.HostConfig.Binds[0] != "/sb:/mnt/mesos/sandbox:rw" {
		t.Errorf("binds = %q", b.HostConfig.Binds)
	}
	b, _ = createConfig(tk, false)
	if b.HostConfig.CPUQuota != 0 {
		t.Errorf("quota without CFS: %d", b.HostConfig.CPUQuota)
	}
}
