package plan

import (
	"fmt"
	"path"
	"slices"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/containerizer/docker"
)

// Container is an app's `container` as Marathon takes it: the image its
// instances run in and how they reach the network and the host's files.
type Container struct {
	Type    string   `json:"type"`
	Docker  *Docker  `json:"docker,omitempty"`
	Volumes []Volume `json:"volumes,omitempty"`
}

// Docker is a container's `docker` part.
type Docker struct {
	Image          string        `json:"image"`
	Network        string        `json:"network,omitempty"`
	PortMappings   []PortMapping `json:"portMappings,omitempty"`
	Privileged     bool          `json:"privileged"`
	Parameters     []Parameter   `json:"parameters,omitempty"`
	ForcePullImage bool          `json:"forcePullImage"`
}

// PortMapping maps a container port to a host port (0: one from the
// offer) in BRIDGE networking. Container port 0 is, as in Marathon, the
// same as the host port.
type PortMapping struct {
	ContainerPort int               `json:"containerPort"`
	HostPort      int               `json:"hostPort"`
	ServicePort   int               `json:"servicePort"`
	Protocol      string            `json:"protocol,omitempty"`
	Name          string            `json:"name,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
}

// Parameter is one `docker run` option.
type Parameter struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Volume is a host path bound into the container.
type Volume struct {
	ContainerPath string `json:"containerPath"`
	HostPath      string `json:"hostPath"`
	Mode          string `json:"mode"`
}

// Container types and Docker networks, as Marathon spells them.
const (
	ContainerDocker = "DOCKER"
	ContainerMesos  = "MESOS"
	NetworkHost     = "HOST"
	NetworkBridge   = "BRIDGE"
)

// clone copies the container's slices and maps.
func (c *Container) clone() *Container {
	if c == nil {
		return nil
	}
	out := *c
	out.Volumes = slices.Clone(c.Volumes)
	if c.Docker != nil {
		d := *c.Docker
		d.PortMappings = slices.Clone(d.PortMappings)
		d.Parameters = slices.Clone(d.Parameters)
		out.Docker = &d
	}
	return &out
}

// bridged reports whether the instances get their ports from port
// mappings (BRIDGE networking) rather than from portDefinitions.
func (c *Container) bridged() bool {
	return c != nil && c.Docker != nil && c.Docker.Network == NetworkBridge
}

// normalize fills in Marathon's defaults: HOST networking, tcp, RW.
func (c *Container) normalize() {
	if c == nil {
		return
	}
	if c.Type == "" {
		c.Type = ContainerDocker
	}
	if d := c.Docker; d != nil {
		if d.Network == "" {
			d.Network = NetworkHost
		}
		for i := range d.PortMappings {
			if d.PortMappings[i].Protocol == "" {
				d.PortMappings[i].Protocol = "tcp"
			}
		}
	}
	for i := range c.Volumes {
		if c.Volumes[i].Mode == "" {
			c.Volumes[i].Mode = "RW"
		}
	}
}

// validate names what is wrong with the container, or what the agents
// cannot run as asked.
func (c *Container) validate(a *App, bad func(path, format string, args ...any)) {
	switch c.Type {
	case ContainerDocker:
		if c.Docker == nil || strings.TrimSpace(c.Docker.Image) == "" {
			bad("/container/docker/image", "a DOCKER container needs docker.image")
			return
		}
	case ContainerMesos:
		if c.Docker == nil || c.Docker.Image == "" {
			if len(c.Volumes) > 0 {
				bad("/container/volumes", "the agents' Mesos containerizer mounts no volumes without an image: give docker.image, or use type DOCKER")
			}
			return
		}
		// The agents provision no images themselves: their Docker
		// containerizer runs the image, on the host's network as the
		// Mesos containerizer would. What only Docker has is refused.
		d := c.Docker
		if d.Network != NetworkHost {
			bad("/container/docker/network", "a MESOS container uses the host's network; network is for type DOCKER")
		}
		if len(d.PortMappings) > 0 {
			bad("/container/docker/portMappings", "a MESOS container has no port mappings (it uses the host's network): use portDefinitions")
		}
		if len(d.Parameters) > 0 || d.Privileged {
			bad("/container/docker", "parameters and privileged are for type DOCKER")
		}
		c.validateVolumes(bad)
		return
	default:
		bad("/container/type", "got %q, expected DOCKER or MESOS", c.Type)
		return
	}
	d := c.Docker
	switch d.Network {
	case NetworkHost, NetworkBridge:
	case "USER":
		bad("/container/docker/network", "USER networks are not supported yet (use HOST or BRIDGE)")
	default:
		bad("/container/docker/network", "got %q, expected HOST or BRIDGE", d.Network)
	}
	if len(d.PortMappings) > 0 && d.Network != NetworkBridge {
		bad("/container/docker/portMappings", "port mappings need BRIDGE networking, not %s", d.Network)
	}
	if d.Network == NetworkBridge && (len(a.PortDefinitions) > 0 || len(a.Ports) > 0) {
		bad("/portDefinitions", "an app in BRIDGE networking gets its ports from container.docker.portMappings: give no portDefinitions or ports")
	}
	names := map[string]bool{}
	for i, m := range d.PortMappings {
		p := fmt.Sprintf("/container/docker/portMappings(%d)", i)
		if m.ContainerPort < 0 || m.ContainerPort > 65535 {
			bad(p+"/containerPort", "got %d, expected between 0 and 65535", m.ContainerPort)
		}
		if m.HostPort != 0 {
			bad(p+"/hostPort", "got %d: fixed host ports are not supported yet (0 takes one from the offer; PORT%d says which)", m.HostPort, i)
		}
		if m.Protocol != "tcp" && m.Protocol != "udp" && m.Protocol != "udp,tcp" && m.Protocol != "tcp,udp" {
			bad(p+"/protocol", "got %q, expected tcp, udp or udp,tcp", m.Protocol)
		}
		if m.Name != "" {
			if names[m.Name] {
				bad(p+"/name", "port names must be unique; %q is used twice", m.Name)
			}
			names[m.Name] = true
		}
	}
	for i, pm := range d.Parameters {
		if !slices.Contains(docker.Parameters, strings.TrimLeft(pm.Key, "-")) {
			bad(fmt.Sprintf("/container/docker/parameters(%d)/key", i), "docker parameter %q is not supported (supported: %s)", pm.Key, strings.Join(docker.Parameters, ", "))
		}
	}
	c.validateVolumes(bad)
}

// validateVolumes checks what the agents' Docker containerizer needs of
// a host volume. It binds paths as mounts, not `-v` strings, so any
// character but NUL may be in them; a relative path is in the sandbox
// (the container's sandbox mount for containerPath) and may not lead
// out of it.
func (c *Container) validateVolumes(bad func(path, format string, args ...any)) {
	for i, v := range c.Volumes {
		p := fmt.Sprintf("/container/volumes(%d)", i)
		if v.ContainerPath == "" {
			bad(p+"/containerPath", "must not be empty")
		} else {
			checkVolumePath(p+"/containerPath", v.ContainerPath, bad)
		}
		if v.HostPath == "" {
			bad(p+"/hostPath", "must not be empty (persistent and external volumes are not supported yet)")
		} else {
			checkVolumePath(p+"/hostPath", v.HostPath, bad)
		}
		if v.Mode != "RW" && v.Mode != "RO" {
			bad(p+"/mode", "got %q, expected RW or RO", v.Mode)
		}
	}
}

// checkVolumePath refuses a NUL byte, and a relative path that leads
// outside the sandbox.
func checkVolumePath(field, p string, bad func(path, format string, args ...any)) {
	if strings.ContainsRune(p, 0) {
		bad(field, "%q contains a NUL byte", p)
		return
	}
	if path.IsAbs(p) {
		return
	}
	if c := path.Clean(p); c == ".." || strings.HasPrefix(c, "../") {
		bad(field, "%q leads outside the sandbox", p)
	}
}

// Image is the Docker image the app's instances run in, or "".
func (a *App) Image() string {
	if a.Container == nil || a.Container.Docker == nil {
		return ""
	}
	return a.Container.Docker.Image
}

// MesosContainer is the ContainerInfo of an instance whose host ports
// (in the order of the app's ports) are hostPorts, or nil when the app
// runs its command on the agent itself. An image runs in the agents'
// Docker containerizer whatever the container's type (a MESOS one on
// the host's network).
func (a *App) MesosContainer(hostPorts []uint64) *mesos.ContainerInfo {
	if a.Image() == "" {
		return nil
	}
	d := a.Container.Docker
	network := mesos.ContainerInfo_DockerInfo_HOST
	if d.Network == NetworkBridge {
		network = mesos.ContainerInfo_DockerInfo_BRIDGE
	}
	di := &mesos.ContainerInfo_DockerInfo{Image: d.Image, Network: &network,
		Privileged: &d.Privileged, ForcePullImage: &d.ForcePullImage}
	for i, m := range d.PortMappings {
		if i >= len(hostPorts) {
			break
		}
		cp := uint32(m.ContainerPort)
		if cp == 0 {
			cp = uint32(hostPorts[i])
		}
		// Docker publishes one protocol per binding: "udp,tcp" maps both.
		for _, proto := range strings.Split(m.Protocol, ",") {
			di.PortMappings = append(di.PortMappings, mesos.ContainerInfo_DockerInfo_PortMapping{
				HostPort: uint32(hostPorts[i]), ContainerPort: cp, Protocol: ptr(proto)})
		}
	}
	for _, p := range d.Parameters {
		di.Parameters = append(di.Parameters, mesos.Parameter{Key: p.Key, Value: p.Value})
	}
	ci := &mesos.ContainerInfo{Type: mesos.ContainerInfo_DOCKER.Enum(), Docker: di}
	for _, v := range a.Container.Volumes {
		mode := mesos.RW
		if v.Mode == "RO" {
			mode = mesos.RO
		}
		ci.Volumes = append(ci.Volumes, mesos.Volume{ContainerPath: v.ContainerPath, HostPath: ptr(v.HostPath), Mode: &mode})
	}
	return ci
}

func ptr[T any](v T) *T { return &v }
