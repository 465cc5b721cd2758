package containerizer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The weight of the agent's containers together. Each container's cgroup
// weighs its cpus (cpu.shares 1024 per CPU) against its siblings, but
// their parent, the agent's cgroups root, competes as one entity with its
// own siblings: with the default weight, all the agent's containers
// together weigh what one default-weighted sibling does — one thread of a
// process in the root cgroup on cgroup v1 (where an agent started by hand
// or by agora dev runs), a whole slice on a systemd machine. On a busy
// machine a container's start (its init joining its cgroup, the exec of
// the task) then waits behind the agent's own threads, and the launch's
// tail with it (benchmarks/RESULTS.md). The agent gives each level of its
// root the weight of the CPUs it offers (RootCPUShares), so that its
// containers together weigh what the CPUs offered to them are worth, as
// the kubelet sizes its pods' cgroup. It only ever raises a weight: agents
// sharing a parent do not undo each other (agora dev gives every agent
// the whole cluster's CPUs, so that the shared parent weighs them all),
// and an operator's higher weight stays.

// maxCPUShares is the largest cpu.shares the kernel keeps (v1).
const maxCPUShares = 262144

// DefaultRootCPUShares is the weight of an agent's cgroups root that
// offers cpus: 1024 a CPU, as a container's cpu.shares, and never less
// than the default weight (1024) nor more than the kernel keeps.
func DefaultRootCPUShares(cpus float64) uint64 {
	if !(cpus > 1) { // also NaN
		return 1024
	}
	return uint64(min(cpus*1024, maxCPUShares))
}

// rootWeightV2 is cpu.weight for cpu.shares on cgroup v2, in proportion
// to the default weights (100 there, 1024 on v1), so that the root weighs
// the same number of default-weighted siblings on both.
func rootWeightV2(shares uint64) uint64 {
	return min(max(shares*100/1024, 1), 10000)
}

// weighRoot raises the CPU weight of each level of the containers' root
// (<root> and its parents below the hierarchy) to shares (cpu.shares on
// v1, rootWeightV2 as cpu.weight on v2, after turning the cpu controller
// on for the levels). It returns the levels it changed.
func (n *Native) weighRoot(shares uint64) ([]string, error) {
	shares = min(max(shares, 2), maxCPUShares)
	var dirs []string
	var file string
	var want uint64
	var enable func(dir string) error
	switch h := n.h.(type) {
	case *v1:
		if !h.has("cpu") {
			return nil, nil
		}
		file, want = "cpu.shares", shares
		for p := n.cfg.Root; p != "." && p != "/" && p != ""; p = filepath.Dir(p) {
			dirs = append(dirs, filepath.Join(h.mount, "cpu", p))
		}
	case *v2:
		file, want = "cpu.weight", rootWeightV2(shares)
		for p := n.cfg.Root; p != "." && p != "/" && p != ""; p = filepath.Dir(p) {
			dirs = append(dirs, filepath.Join(h.mount, p))
		}
		// A level has cpu.weight once its parent hands the cpu
		// controller down (as the containers' cgroups will need anyway).
		enable = func(dir string) error {
			return writeCgroupFile(filepath.Join(filepath.Dir(dir), "cgroup.subtree_control"), "+cpu")
		}
	default:
		return nil, nil
	}
	var changed []string
	var errs []error
	// Parents first: a level is made before its children.
	for i := len(dirs) - 1; i >= 0; i-- {
		dir := dirs[i]
		if err := os.MkdirAll(dir, 0o755); err != nil {
			errs = append(errs, err)
			break
		}
		path := filepath.Join(dir, file)
		b, err := readCgroupFile(path)
		if errors.Is(err, fs.ErrNotExist) && enable != nil {
			if eerr := enable(dir); eerr != nil {
				errs = append(errs, fmt.Errorf("hand the cpu controller down to %s: %w", dir, eerr))
				break
			}
			b, err = readCgroupFile(path)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		have, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q: %w", path, b, err))
			continue
		}
		if have >= want {
			continue
		}
		if err := writeCgroupFile(path, strconv.FormatUint(want, 10)); err != nil {
			errs = append(errs, err)
			continue
		}
		changed = append(changed, path)
	}
	return changed, errors.Join(errs...)
}
