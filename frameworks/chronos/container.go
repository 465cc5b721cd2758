package chronos

import (
	"fmt"
	"path"
	"slices"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/containerizer/docker"
)

// Container is a job's container, in Chronos's JSON. The job's command
// runs in the image through the agents' Docker containerizer.
type Container struct {
	Type           string      `json:"type"`
	Image          string      `json:"image"`
	Network        string      `json:"network,omitempty"`
	NetworkInfos   anyValue    `json:"networkInfos,omitempty"`
	Volumes        []Volume    `json:"volumes,omitempty"`
	ForcePullImage bool        `json:"forcePullImage"`
	Parameters     []Parameter `json:"parameters,omitempty"`
}

// Volume is one of a container's volumes: a host path (absolute, or
// relative to the sandbox) at containerPath.
type Volume struct {
	ContainerPath string   `json:"containerPath"`
	HostPath      string   `json:"hostPath"`
	Mode          string   `json:"mode"`
	External      anyValue `json:"external,omitempty"`
}

// Parameter is a `docker run` option of the container.
type Parameter struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// normalize fills in Chronos's defaults (type DOCKER, network HOST, mode
// RW) and names what the agents cannot run as asked.
func (c *Container) normalize(job string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("job %q: container: %s", job, fmt.Sprintf(format, args...))
	}
	c.Type = strings.ToUpper(c.Type)
	if c.Type == "" {
		c.Type = "DOCKER"
	}
	c.Network = strings.ToUpper(c.Network)
	if c.Network == "" {
		c.Network = "HOST"
	}
	switch {
	case c.Type != "DOCKER":
		return bad("type %q is not supported: the agents provision no images for the MESOS containerizer; use type DOCKER", c.Type)
	case strings.TrimSpace(c.Image) == "":
		return bad("image is required")
	case c.Network != "HOST" && c.Network != "BRIDGE" && c.Network != "NONE":
		return bad("network %q: expected HOST, BRIDGE or NONE", c.Network)
	case len(c.NetworkInfos) > 0 && string(c.NetworkInfos) != "null":
		return bad("networkInfos are not supported (use network HOST, BRIDGE or NONE)")
	}
	for i := range c.Volumes {
		v := &c.Volumes[i]
		v.Mode = strings.ToUpper(v.Mode)
		if v.Mode == "" {
			v.Mode = "RW"
		}
		switch {
		case v.ContainerPath == "":
			return bad("volume %d: containerPath is required", i)
		case len(v.External) > 0 && string(v.External) != "null":
			return bad("volume %s: external volumes are not supported (give a hostPath)", v.ContainerPath)
		case v.HostPath == "":
			return bad("volume %s: hostPath is required", v.ContainerPath)
		case !path.IsAbs(v.HostPath) && (path.Clean(v.HostPath) == ".." || strings.HasPrefix(path.Clean(v.HostPath), "../")):
			return bad("volume %s: hostPath %q leads outside the sandbox", v.ContainerPath, v.HostPath)
		case v.Mode != "RW" && v.Mode != "RO":
			return bad("volume %s: mode %q: expected RW or RO", v.ContainerPath, v.Mode)
		}
	}
	for _, p := range c.Parameters {
		if !slices.Contains(docker.Parameters, strings.TrimLeft(p.Key, "-")) {
			return bad("docker parameter %q is not supported (supported: %s)", p.Key, strings.Join(docker.Parameters, ", "))
		}
	}
	return nil
}

// info is the container's ContainerInfo.
func (c *Container) info() *mesos.ContainerInfo {
	network := mesos.ContainerInfo_DockerInfo_HOST
	switch c.Network {
	case "BRIDGE":
		network = mesos.ContainerInfo_DockerInfo_BRIDGE
	case "NONE":
		network = mesos.ContainerInfo_DockerInfo_NONE
	}
	di := &mesos.ContainerInfo_DockerInfo{Image: c.Image, Network: &network, ForcePullImage: ptr(c.ForcePullImage)}
	for _, p := range c.Parameters {
		di.Parameters = append(di.Parameters, mesos.Parameter{Key: p.Key, Value: p.Value})
	}
	ci := &mesos.ContainerInfo{Type: mesos.ContainerInfo_DOCKER.Enum(), Docker: di}
	for _, v := range c.Volumes {
		mode := mesos.RW
		if v.Mode == "RO" {
			mode = mesos.RO
		}
		ci.Volumes = append(ci.Volumes, mesos.Volume{ContainerPath: v.ContainerPath, HostPath: ptr(v.HostPath), Mode: &mode})
	}
	return ci
}
