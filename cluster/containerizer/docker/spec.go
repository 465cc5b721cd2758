package docker

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// SandboxMount is where the sandbox appears inside the container; the
// container's MESOS_SANDBOX names it (Mesos's mapped directory).
const SandboxMount = "/mnt/mesos/sandbox"

// NamePrefix starts the name of every container agora launches, as in
// Mesos: "mesos-<container ID>".
const NamePrefix = "mesos-"

// Labels the containerizer puts on its containers; they let a restarted
// agent find them and their sandboxes.
const (
	LabelContainerID = "agora.container_id"
	LabelOwner       = "agora.owner" // the agent's work directory
	LabelSandbox     = "agora.sandbox"
)

// Memory and CPU floors, as Mesos's (MIN_MEMORY, MIN_CPUS).
const (
	minMemory    = 32 << 20
	minCPUShares = 2
	cfsPeriod    = 100000 // µs
	minCFSQuota  = 1000   // µs
)

// Task is a task to run in a Docker container.
type Task struct {
	// ContainerID is agora's container ID; the Docker container is named
	// NamePrefix+ContainerID.
	ContainerID string
	// Sandbox is the task's sandbox on the host. It is bind-mounted at
	// SandboxMount and its stdout and stderr files receive the output.
	Sandbox string
	// Container is the task's ContainerInfo (type DOCKER).
	Container mesos.ContainerInfo
	// Command is run as Mesos's Docker containerizer runs it: shell=true
	// runs `/bin/sh -c value` (overriding the image's entrypoint);
	// shell=false passes value and arguments to the image's entrypoint;
	// no value runs the image's default command.
	Command mesos.CommandInfo
	// Resources are the task's: cpus become CPU shares (and a CFS quota),
	// mem the memory limit, and ports the host ports port mappings may use.
	Resources mesos.Resources
	// Env is the container's environment ("NAME=value"), on top of the
	// image's.
	Env []string
	// Labels are put on the container besides the containerizer's own.
	Labels map[string]string
	// Owner identifies the agent (its work directory): RemoveOrphans only
	// touches containers of its owner.
	Owner string
}

// Parameters lists the DockerInfo parameters (`docker run` options) the
// containerizer supports.
var Parameters = []string{"add-host", "cap-add", "cap-drop", "dns", "entrypoint", "env", "hostname", "init", "label", "privileged", "read-only", "shm-size", "user", "volume", "workdir"}

// createBody is POST /containers/create's body.
type createBody struct {
	Hostname     string              `json:",omitempty"`
	User         string              `json:",omitempty"`
	Env          []string            `json:",omitempty"`
	Cmd          []string            `json:",omitempty"`
	Entrypoint   []string            `json:",omitempty"`
	Image        string              `json:"Image"`
	WorkingDir   string              `json:",omitempty"`
	Labels       map[string]string   `json:",omitempty"`
	ExposedPorts map[string]struct{} `json:",omitempty"`
	AttachStdout bool
	AttachStderr bool
	HostConfig   hostConfig
}

type hostConfig struct {
	// Binds only carries the `volume` parameter, given in `docker run
	// -v` syntax; paths agora builds go in Mounts, which takes a path
	// with ':' in it (every sandbox of a task ID with ':') as it is.
	Binds          []string                 `json:",omitempty"`
	Mounts         []mount                  `json:",omitempty"`
	NetworkMode    string                   `json:",omitempty"`
	PortBindings   map[string][]portBinding `json:",omitempty"`
	Privileged     bool                     `json:",omitempty"`
	CPUShares      int64                    `json:"CpuShares,omitempty"`
	CPUPeriod      int64                    `json:"CpuPeriod,omitempty"`
	CPUQuota       int64                    `json:"CpuQuota,omitempty"`
	Memory         int64                    `json:",omitempty"`
	Init           *bool                    `json:",omitempty"`
	CapAdd         []string                 `json:",omitempty"`
	CapDrop        []string                 `json:",omitempty"`
	DNS            []string                 `json:"Dns,omitempty"`
	ExtraHosts     []string                 `json:",omitempty"`
	ReadonlyRootfs bool                     `json:",omitempty"`
	ShmSize        int64                    `json:",omitempty"`
}

// mount is one of HostConfig.Mounts: a bind of a host path or a named
// Docker volume.
type mount struct {
	Type     string // "bind" or "volume"
	Source   string
	Target   string
	ReadOnly bool `json:",omitempty"`
}

type portBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string
}

// createConfig turns a task into the container to create. Every problem
// with the task is an error here, before anything is created.
func createConfig(t Task, cfsQuota bool) (*createBody, error) {
	di := t.Container.GetDocker()
	if t.Container.Type == nil || *t.Container.Type != mesos.ContainerInfo_DOCKER || di == nil {
		return nil, errors.New("the task's ContainerInfo is not of type DOCKER with a docker field")
	}
	if di.Image == "" {
		return nil, errors.New("docker.image is empty")
	}
	if t.ContainerID == "" || t.Sandbox == "" || !path.IsAbs(t.Sandbox) {
		return nil, errors.New("docker: the container ID and an absolute sandbox path are required")
	}
	b := &createBody{
		Image:        di.Image,
		Env:          append([]string(nil), t.Env...),
		WorkingDir:   SandboxMount,
		AttachStdout: true,
		AttachStderr: true,
		Labels:       map[string]string{},
		HostConfig: hostConfig{
			Mounts:     []mount{{Type: "bind", Source: t.Sandbox, Target: SandboxMount}},
			Privileged: di.GetPrivileged(),
		},
	}
	for k, v := range t.Labels {
		b.Labels[k] = v
	}
	b.Labels[LabelContainerID] = t.ContainerID
	b.Labels[LabelSandbox] = t.Sandbox
	if t.Owner != "" {
		b.Labels[LabelOwner] = t.Owner
	}
	if err := setCommand(b, t.Command); err != nil {
		return nil, err
	}
	setLimits(&b.HostConfig, t.Resources, cfsQuota)
	if err := setNetwork(b, t.Container, di, t.Resources); err != nil {
		return nil, err
	}
	if err := setVolumes(&b.HostConfig, t.Container.Volumes, t.Sandbox); err != nil {
		return nil, err
	}
	if err := setParameters(b, di.Parameters, t.Command.GetShell()); err != nil {
		return nil, err
	}
	if t.Container.GetHostname() != "" && b.Hostname == "" {
		b.Hostname = t.Container.GetHostname()
	}
	return b, nil
}

func setCommand(b *createBody, cmd mesos.CommandInfo) error {
	if cmd.GetShell() {
		if cmd.GetValue() == "" {
			return errors.New("the command has shell=true but no value; set shell=false to run the image's default command")
		}
		b.Entrypoint = []string{"/bin/sh"}
		b.Cmd = []string{"-c", cmd.GetValue()}
		return nil
	}
	if cmd.GetValue() != "" {
		b.Cmd = append(b.Cmd, cmd.GetValue())
	}
	b.Cmd = append(b.Cmd, cmd.Arguments...)
	return nil
}

func setLimits(hc *hostConfig, rs mesos.Resources, cfsQuota bool) {
	var cpus, mem float64
	for _, r := range rs {
		switch r.Name {
		case "cpus":
			cpus += r.GetScalar().GetValue()
		case "mem":
			mem += r.GetScalar().GetValue()
		}
	}
	setCPUMem(hc, cpus, mem, cfsQuota)
}

// setCPUMem sets the CPU shares (and CFS quota) of cpus and the memory
// limit of mem MB; zero leaves a limit out.
func setCPUMem(hc *hostConfig, cpus, mem float64, cfsQuota bool) {
	if cpus > 0 {
		hc.CPUShares = max(minCPUShares, int64(cpus*1024))
		if cfsQuota {
			hc.CPUPeriod = cfsPeriod
			hc.CPUQuota = max(minCFSQuota, int64(cpus*cfsPeriod))
		}
	}
	if mem > 0 {
		hc.Memory = max(minMemory, int64(mem*(1<<20)))
	}
}

// setNetwork applies DockerInfo.network (default HOST, as in Mesos) and
// the port mappings, whose host ports must be among the task's ports.
func setNetwork(b *createBody, ci mesos.ContainerInfo, di *mesos.ContainerInfo_DockerInfo, rs mesos.Resources) error {
	network := mesos.ContainerInfo_DockerInfo_HOST
	if di.Network != nil {
		network = *di.Network
	}
	switch network {
	case mesos.ContainerInfo_DockerInfo_HOST:
		b.HostConfig.NetworkMode = "host"
	case mesos.ContainerInfo_DockerInfo_BRIDGE:
		b.HostConfig.NetworkMode = "bridge"
	case mesos.ContainerInfo_DockerInfo_NONE:
		b.HostConfig.NetworkMode = "none"
	case mesos.ContainerInfo_DockerInfo_USER:
		if len(ci.NetworkInfos) != 1 || ci.NetworkInfos[0].GetName() == "" {
			return errors.New("a USER network needs exactly one network_infos entry naming the Docker network")
		}
		b.HostConfig.NetworkMode = ci.NetworkInfos[0].GetName()
	default:
		return fmt.Errorf("docker network %v is not supported", network)
	}
	if len(di.PortMappings) == 0 {
		return nil
	}
	if network != mesos.ContainerInfo_DockerInfo_BRIDGE && network != mesos.ContainerInfo_DockerInfo_USER {
		return fmt.Errorf("port mappings need the BRIDGE or USER network, not %v", network)
	}
	offered := portRanges(rs)
	b.ExposedPorts = map[string]struct{}{}
	b.HostConfig.PortBindings = map[string][]portBinding{}
	for _, pm := range di.PortMappings {
		if pm.ContainerPort == 0 || pm.ContainerPort > 65535 || pm.HostPort > 65535 {
			return fmt.Errorf("port mapping %d→%d: ports must be within 1-65535", pm.HostPort, pm.ContainerPort)
		}
		if !inRanges(offered, uint64(pm.HostPort)) {
			return fmt.Errorf("port mapping %d→%d: host port %d is not among the task's ports resources %s", pm.HostPort, pm.ContainerPort, pm.HostPort, formatRanges(offered))
		}
		protos := pm.GetProtocol()
		if protos == "" {
			protos = "tcp"
		}
		for _, proto := range strings.Split(protos, ",") {
			proto = strings.ToLower(strings.TrimSpace(proto))
			if proto != "tcp" && proto != "udp" && proto != "sctp" {
				return fmt.Errorf("port mapping %d→%d: protocol %q is not tcp, udp or sctp", pm.HostPort, pm.ContainerPort, proto)
			}
			key := strconv.Itoa(int(pm.ContainerPort)) + "/" + proto
			b.ExposedPorts[key] = struct{}{}
			b.HostConfig.PortBindings[key] = append(b.HostConfig.PortBindings[key], portBinding{HostPort: strconv.Itoa(int(pm.HostPort))})
		}
	}
	return nil
}

func portRanges(rs mesos.Resources) []mesos.Value_Range {
	var out []mesos.Value_Range
	for _, r := range rs {
		if r.Name == "ports" {
			out = append(out, r.GetRanges().GetRange()...)
		}
	}
	return out
}

func inRanges(rs []mesos.Value_Range, p uint64) bool {
	for _, r := range rs {
		if p >= r.Begin && p <= r.End {
			return true
		}
	}
	return false
}

func formatRanges(rs []mesos.Value_Range) string {
	if len(rs) == 0 {
		return "(none)"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%d-%d", r.Begin, r.End)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// setVolumes binds ContainerInfo.volumes as Mesos's Docker containerizer
// does: a relative host_path is inside the sandbox, a relative
// container_path inside the sandbox mount.
func setVolumes(hc *hostConfig, vols []mesos.Volume, sandbox string) error {
	for _, v := range vols {
		if v.ContainerPath == "" {
			return errors.New("a volume has no container_path")
		}
		if v.Image != nil {
			return fmt.Errorf("volume %s: image volumes are not supported by the Docker containerizer", v.ContainerPath)
		}
		cpath := v.ContainerPath
		if !path.IsAbs(cpath) {
			cpath = path.Join(SandboxMount, cpath)
		}
		m := mount{Type: "bind", Target: cpath, ReadOnly: v.GetMode() == mesos.RO}
		switch {
		case v.GetHostPath() != "":
			source := v.GetHostPath()
			if !path.IsAbs(source) {
				clean := path.Clean(source)
				if clean == ".." || strings.HasPrefix(clean, "../") {
					return fmt.Errorf("volume %s: the relative host_path %q leads outside the sandbox", v.ContainerPath, source)
				}
				source = path.Join(sandbox, clean)
			}
			m.Source = source
		case v.Source != nil && v.Source.GetType() == mesos.Volume_Source_DOCKER_VOLUME:
			dv := v.Source.GetDockerVolume()
			if dv == nil || dv.Name == "" {
				return fmt.Errorf("volume %s: a DOCKER_VOLUME source needs a name", v.ContainerPath)
			}
			if d := dv.GetDriver(); (d != "" && d != "local") || len(dv.GetDriverOptions().GetParameter()) > 0 {
				return fmt.Errorf("volume %s: only local Docker volumes without driver options are supported", v.ContainerPath)
			}
			m.Type, m.Source = "volume", dv.Name
		default:
			return fmt.Errorf("volume %s: a host_path or a DOCKER_VOLUME source is required", v.ContainerPath)
		}
		if strings.ContainsRune(m.Source+cpath, 0) {
			return fmt.Errorf("volume %s: paths may not contain a NUL byte", v.ContainerPath)
		}
		hc.Mounts = append(hc.Mounts, m)
	}
	return nil
}

// setParameters applies DockerInfo.parameters, refusing any not in
// Parameters.
func setParameters(b *createBody, params []mesos.Parameter, shell bool) error {
	for _, p := range params {
		key := strings.TrimLeft(p.Key, "-")
		val := p.Value
		switch key {
		case "env", "e":
			if !strings.Contains(val, "=") {
				return fmt.Errorf("docker parameter env=%q: give NAME=value", val)
			}
			b.Env = append(b.Env, val)
		case "label", "l":
			k, v, _ := strings.Cut(val, "=")
			if k == "" || strings.HasPrefix(k, "agora.") {
				return fmt.Errorf("docker parameter label=%q: give a name=value label outside agora.*", val)
			}
			b.Labels[k] = v
		case "hostname", "h":
			b.Hostname = val
		case "workdir", "w":
			if !path.IsAbs(val) {
				return fmt.Errorf("docker parameter workdir=%q: give an absolute path", val)
			}
			b.WorkingDir = val
		case "user", "u":
			b.User = val
		case "entrypoint":
			if shell {
				return errors.New("docker parameter entrypoint: the command has shell=true, which runs /bin/sh as the entrypoint; set shell=false")
			}
			b.Entrypoint = []string{val}
		case "init", "privileged", "read-only":
			on, err := boolValue(val)
			if err != nil {
				return fmt.Errorf("docker parameter %s=%q: %w", key, val, err)
			}
			switch key {
			case "init":
				b.HostConfig.Init = &on
			case "privileged":
				b.HostConfig.Privileged = b.HostConfig.Privileged || on
			default:
				b.HostConfig.ReadonlyRootfs = on
			}
		case "cap-add":
			b.HostConfig.CapAdd = append(b.HostConfig.CapAdd, val)
		case "cap-drop":
			b.HostConfig.CapDrop = append(b.HostConfig.CapDrop, val)
		case "dns":
			b.HostConfig.DNS = append(b.HostConfig.DNS, val)
		case "add-host":
			if !strings.Contains(val, ":") {
				return fmt.Errorf("docker parameter add-host=%q: give host:ip", val)
			}
			b.HostConfig.ExtraHosts = append(b.HostConfig.ExtraHosts, val)
		case "shm-size":
			n, err := parseBytes(val)
			if err != nil {
				return fmt.Errorf("docker parameter shm-size=%q: %w", val, err)
			}
			b.HostConfig.ShmSize = n
		case "volume", "v":
			parts := strings.Split(val, ":")
			if len(parts) < 2 || len(parts) > 3 || !path.IsAbs(parts[1]) || (len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw") {
				return fmt.Errorf("docker parameter volume=%q: give host_path:container_path[:ro|rw]", val)
			}
			b.HostConfig.Binds = append(b.HostConfig.Binds, val)
		default:
			supported := append([]string(nil), Parameters...)
			sort.Strings(supported)
			return fmt.Errorf("docker parameter %q is not supported (supported: %s)", p.Key, strings.Join(supported, ", "))
		}
	}
	return nil
}

func boolValue(s string) (bool, error) {
	if s == "" {
		return true, nil
	}
	return strconv.ParseBool(s)
}

// parseBytes reads "64m", "1g", "512k" or a plain number of bytes.
func parseBytes(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "kb"):
		mult = 1 << 10
	case strings.HasSuffix(s, "m"), strings.HasSuffix(s, "mb"):
		mult = 1 << 20
	case strings.HasSuffix(s, "g"), strings.HasSuffix(s, "gb"):
		mult = 1 << 30
	}
	n, err := strconv.ParseInt(strings.TrimRight(s, "kmgb"), 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("give a size such as 64m")
	}
	return n * mult, nil
}
