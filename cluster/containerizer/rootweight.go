package containerizer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup2"
)

// The weight of the agent's containers together. Each container's cgroup
// weighs its cpus (cpu.shares 1024 per CPU) against its siblings, but
// their parent, the agent's cgroups root, competes as one entity with the
// machine's other processes: with the default weight (1024), all the
// agent's containers together weigh what one busy thread of another
// process weighs. On a busy machine a container's start (its init joining
// its cgroup, the exec of the task) then waits behind the agent's own
// threads, and the launch's tail with it (benchmarks/RESULTS.md). The
// agent gives each level of its root the weight of the CPUs it offers
// (RootCPUShares), so that its containers together weigh what the CPUs
// offered to them are worth. It only ever raises a weight: agents sharing
// a parent (agora dev's) do not undo each other, and an operator's higher
// weight stays.

// DefaultRootCPUShares is the weight of an agent's cgroups root that
// offers cpus: 1024 a CPU, as a container's cpu.shares.
func DefaultRootCPUShares(cpus float64) uint64 {
	return uint64(max(1024, cpus*1024))
}

// weighRoot raises the CPU weight of each level of the containers' root
// (<root> and its parents below the hierarchy) to shares (cpu.shares on
// v1, the equivalent cpu.weight on v2). It returns the levels it changed.
func (n *Native) weighRoot(shares uint64) ([]string, error) {
	var dirs []string
	var file string
	var want uint64
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
		file, want = "cpu.weight", cgroup2.ConvertCPUSharesToCgroupV2Value(shares)
		for p := n.cfg.Root; p != "." && p != "/" && p != ""; p = filepath.Dir(p) {
			dirs = append(dirs, filepath.Join(h.mount, p))
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
		if errors.Is(err, fs.ErrNotExist) {
			continue // v2 without the cpu controller delegated to this level
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
