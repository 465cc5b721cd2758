package main

import (
	"flag"
	"fmt"
	"log/slog"
	"runtime"
	"strings"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/containerizer"
)

// isolationFlags choose and configure the agent's containerizer (Mesos's
// flag names), shared by `agora agent` and `agora dev`.
type isolationFlags struct {
	containerizers, isolation, cgroupsHierarchy, cgroupsRoot string
	cgroupsEnableCFS, cgroupsFavorDynMods                    bool
	cgroupsPidsLimit, cgroupsRootCPUShares                   int64
	cgroupsPoolSize                                          int
}

func (f *isolationFlags) register(fs *flag.FlagSet, defaultRoot string) {
	fs.StringVar(&f.containerizers, "containerizers", "mesos", "containerizers to use, in order (mesos: agora's native containerizer;\ndocker: tasks with a DOCKER ContainerInfo, run through the Docker Engine)")
	fs.StringVar(&f.isolation, "isolation", "", "cgroups: every container gets its own cgroup (cpu shares, CFS quota, memory and pids limits)\n"+
		"and its own pid, mount, IPC and UTS namespaces (needs root); posix: plain processes, no limits.\n"+
		"Default: cgroups when running as root, else posix (with a warning)")
	fs.StringVar(&f.cgroupsHierarchy, "cgroups_hierarchy", "/sys/fs/cgroup", "where the cgroup file systems are mounted (cgroup v1 or v2)")
	fs.StringVar(&f.cgroupsRoot, "cgroups_root", defaultRoot, "cgroup the containers are created in (/sys/fs/cgroup/<controller>/<root>/<container> on cgroup v1)")
	fs.BoolVar(&f.cgroupsEnableCFS, "cgroups_enable_cfs", true, "cap each container's CPU time at its cpus with a CFS quota (else cpus only weigh containers\nagainst each other)")
	fs.Int64Var(&f.cgroupsPidsLimit, "cgroups_pids_limit", 4096, "most processes and threads in one container (0: no limit)")
	fs.BoolVar(&f.cgroupsFavorDynMods, "cgroups_favor_dynmods", true, "turn on the machine's cgroup2 mount option favordynmods (Linux 6.0+, on any mounted cgroup2\n"+
		"hierarchy; it holds for cgroup v1 controllers too), so that a container joining its cgroup does not\n"+
		"wait for an RCU grace period (~10 ms after a quiet moment), for a little more work in every fork;\n"+
		"false leaves the machine's setting as it is")
	fs.Int64Var(&f.cgroupsRootCPUShares, "cgroups_root_cpu_shares", -1, "least CPU weight of each level of the containers' root (--cgroups_root): cpu.shares, or on cgroup v2\n"+
		"cpu.weight in proportion (100 for 1024). It is the weight of all containers together against the root's\n"+
		"siblings: another process's threads in the root cgroup on cgroup v1, slices on a systemd machine.\n"+
		"-1: 1024 per CPU the agent offers; 0: leave it as it is. A weight is only ever raised")
	fs.IntVar(&f.cgroupsPoolSize, "cgroups_pool_size", 16, "empty cgroups kept ready for new containers and reused after containers end\n(cgroup v1; 0: every container's cgroup is created at launch and removed at its end)")
}

// containerizer builds the containerizer the flags ask for, with its
// cgroups in root, for an agent that offers cpus.
func (f *isolationFlags) containerizer(root string, cpus float64, logger *slog.Logger) (containerizer.Containerizer, error) {
	mesos := false
	for _, c := range strings.Split(f.containerizers, ",") {
		switch c = strings.TrimSpace(c); c {
		case "mesos":
			mesos = true
		case "docker": // the Docker containerizer, set up in agent_docker.go
		case "":
		default:
			return nil, fmt.Errorf("--containerizers: %q is not available (use mesos, or mesos,docker)", c)
		}
	}
	if !mesos {
		return nil, fmt.Errorf("--containerizers=%s: the mesos containerizer is required", f.containerizers)
	}
	pids := f.cgroupsPidsLimit
	if pids <= 0 {
		pids = -1
	}
	var rootShares uint64
	switch {
	case f.cgroupsRootCPUShares < 0:
		rootShares = containerizer.DefaultRootCPUShares(cpus)
	case f.cgroupsRootCPUShares > 0:
		rootShares = uint64(max(f.cgroupsRootCPUShares, 2))
	}
	return containerizer.New(containerizer.Options{
		Isolation: f.isolation,
		Native: containerizer.NativeConfig{
			Hierarchy:     f.cgroupsHierarchy,
			Root:          root,
			DisableCFS:    !f.cgroupsEnableCFS,
			PidsLimit:     pids,
			CgroupPool:    max(f.cgroupsPoolSize, 0),
			FavorDynMods:  f.cgroupsFavorDynMods,
			RootCPUShares: rootShares,
			Logger:        logger,
		},
	})
}

// closeContainerizer removes what the containerizer keeps for launches to
// come (the native one's idle pooled cgroups) once its agent has stopped.
func closeContainerizer(c containerizer.Containerizer, logger *slog.Logger) {
	if cl, ok := c.(interface{ Close() error }); ok {
		if err := cl.Close(); err != nil {
			logger.Warn("cannot remove the containerizer's idle cgroups", "err", err)
		}
	}
}

// describeIsolation says how the containerizer isolates, for the log.
func describeIsolation(c containerizer.Containerizer) string {
	if d, ok := c.(interface{ Describe() string }); ok {
		return d.Describe()
	}
	return "none: plain processes"
}

// offeredCPUs is the cpus of resources given in Mesos syntax (--resources),
// or the machine's CPUs where they name none (as the agent detects them).
func offeredCPUs(resources string) float64 {
	rs, err := api.ParseResources(resources)
	if err == nil {
		if cpus, ok := scalarSums(rs)["cpus"]; ok {
			return cpus
		}
	}
	return float64(runtime.NumCPU())
}
