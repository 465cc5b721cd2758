package containerizer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/containerd/cgroups/v3/cgroup1"
	"golang.org/x/sys/unix"
)

// v1 is a cgroup v1 hierarchy: pids, cpu, cpuacct and memory, each
// mounted at <mount>/<controller>. (No freezer: killing a container's init
// makes the kernel kill the rest of its pid namespace, which forks cannot
// outrun.)
type v1 struct {
	mount      string
	subsystems []cgroup1.Subsystem
}

func newV1(mount string) (*v1, error) {
	h := &v1{mount: mount}
	required := map[cgroup1.Name]bool{cgroup1.Cpu: true, cgroup1.Cpuacct: true, cgroup1.Memory: true}
	for _, s := range []cgroup1.Subsystem{
		cgroup1.NewPids(mount),
		cgroup1.NewCpu(mount), cgroup1.NewCpuacct(mount), cgroup1.NewMemory(mount),
	} {
		dir := filepath.Join(mount, string(s.Name()))
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil || st.Type != unix.CGROUP_SUPER_MAGIC {
			if required[s.Name()] {
				return nil, fmt.Errorf("cgroups: the %s controller is not mounted at %s", s.Name(), dir)
			}
			continue
		}
		h.subsystems = append(h.subsystems, s)
	}
	return h, nil
}

func (h *v1) version() int { return 1 }

func (h *v1) hier() ([]cgroup1.Subsystem, error) { return h.subsystems, nil }

// create makes the cgroup in every controller with plain mkdir and writes
// (the cgroup library's generic create costs several times as much: it
// writes every field of every controller and walks the tree on delete,
// and containers are created and removed at launch rates).
func (h *v1) create(name string, l limits) (cgroup, error) {
	g := &v1Group{h: h, name: "/" + name}
	for _, s := range h.subsystems {
		dir := filepath.Join(h.mount, string(s.Name()), g.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			_ = g.remove()
			return nil, fmt.Errorf("cgroups: create %s: %w", name, err)
		}
	}
	if err := g.set(l, true); err != nil {
		_ = g.remove()
		return nil, fmt.Errorf("cgroups: create %s: %w", name, err)
	}
	return g, nil
}

// update sets the limits in l; zero fields lift a limit.
func (g *v1Group) update(l limits) error { return g.set(l, false) }

// setCFS sets the CFS quota alone.
func (g *v1Group) setCFS(l limits) error {
	if l.cfsPeriod == 0 || !g.h.has("cpu") {
		return nil
	}
	for _, w := range [][2]string{
		{"cpu.cfs_period_us", strconv.FormatUint(l.cfsPeriod, 10)},
		{"cpu.cfs_quota_us", strconv.FormatInt(l.cfsQuota, 10)},
	} {
		if err := os.WriteFile(g.file("cpu", w[0]), []byte(w[1]), 0); err != nil {
			return fmt.Errorf("cgroups: set %s of %s to %s: %w", w[0], g.name, w[1], err)
		}
	}
	return nil
}

// set writes the limits in l; zero fields lift a limit. A new cgroup
// (fresh) starts without limits, so only the limits l sets are written.
func (g *v1Group) set(l limits, fresh bool) error {
	write := func(controller, file, v string) error {
		if !g.h.has(controller) {
			return nil
		}
		if err := os.WriteFile(g.file(controller, file), []byte(v), 0); err != nil {
			return fmt.Errorf("cgroups: set %s of %s to %s: %w", file, g.name, v, err)
		}
		return nil
	}
	shares, quota, period := uint64(1024), int64(-1), uint64(100000)
	if l.cpuShares > 0 {
		shares = l.cpuShares
	}
	if l.cfsPeriod > 0 {
		quota, period = l.cfsQuota, l.cfsPeriod
	}
	mem, pids := "-1", "max"
	if l.memBytes > 0 {
		mem = strconv.FormatInt(l.memBytes, 10)
	}
	if l.pids > 0 {
		pids = strconv.FormatInt(l.pids, 10)
	}
	var errs []error
	for _, w := range []struct {
		controller, file, value string
		unset                   bool // what a new cgroup has already
	}{
		{"cpu", "cpu.shares", strconv.FormatUint(shares, 10), l.cpuShares == 0},
		{"cpu", "cpu.cfs_period_us", strconv.FormatUint(period, 10), l.cfsPeriod == 0},
		{"cpu", "cpu.cfs_quota_us", strconv.FormatInt(quota, 10), l.cfsPeriod == 0},
		{"memory", "memory.limit_in_bytes", mem, l.memBytes == 0},
		{"pids", "pids.max", pids, l.pids == 0},
	} {
		if fresh && w.unset {
			continue
		}
		errs = append(errs, write(w.controller, w.file, w.value))
	}
	return errors.Join(errs...)
}

// has reports whether the controller is in use.
func (h *v1) has(controller string) bool {
	for _, s := range h.subsystems {
		if string(s.Name()) == controller {
			return true
		}
	}
	return false
}

func (h *v1) load(name string) (cgroup, error) {
	path := "/" + name
	if _, err := os.Stat(filepath.Join(h.mount, "memory", path)); err != nil {
		return nil, fmt.Errorf("cgroups: %s: %w", name, err)
	}
	return &v1Group{h: h, name: path}, nil
}

// leaves looks at every controller: a crash may leave a container's
// cgroup in some controllers only.
func (h *v1) leaves(dir string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, s := range h.subsystems {
		names, err := leafDirs(filepath.Join(h.mount, string(s.Name()), dir))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out, nil
}

type v1Group struct {
	h    *v1
	name string // "/agora/<id>"
}

func (g *v1Group) file(controller, name string) string {
	return filepath.Join(g.h.mount, controller, g.name, name)
}

func (g *v1Group) add(pid int) error {
	p := []byte(strconv.Itoa(pid))
	for _, s := range g.h.subsystems {
		if err := os.WriteFile(g.file(string(s.Name()), "cgroup.procs"), p, 0); err != nil {
			return fmt.Errorf("cgroups: add pid %d to %s: %w", pid, g.name, err)
		}
	}
	return nil
}

func (g *v1Group) procsFiles() []string {
	var out []string
	for _, s := range g.h.subsystems {
		out = append(out, g.file(string(s.Name()), "cgroup.procs"))
	}
	return out
}

func (g *v1Group) procs() ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for _, s := range g.h.subsystems {
		pids, err := readPidList(filepath.Join(g.h.mount, string(s.Name()), g.name, "cgroup.procs"))
		if err != nil {
			if cgroupGone(err) {
				continue // not in this controller, or being removed from it: no processes there
			}
			return nil, err
		}
		for _, p := range pids {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out, nil
}

func (g *v1Group) oomKills() uint64 {
	return readKV(g.file("memory", "memory.oom_control"))["oom_kill"]
}

func (g *v1Group) peakMemory() uint64 {
	v, _ := readUintFile(g.file("memory", "memory.max_usage_in_bytes"))
	return v
}

// oomEvents registers an eventfd for memory.oom_control through
// cgroup.event_control. The eventfd is non-blocking so reads go through
// the runtime's poller instead of holding a thread per container.
func (g *v1Group) oomEvents() (*os.File, error) {
	ctl, err := os.Open(g.file("memory", "memory.oom_control"))
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := os.NewFile(uintptr(efd), "oom-eventfd")
	reg := fmt.Sprintf("%d %d", efd, ctl.Fd())
	if err := os.WriteFile(g.file("memory", "cgroup.event_control"), []byte(reg), 0); err != nil {
		ev.Close()
		return nil, fmt.Errorf("register OOM notification: %w", err)
	}
	return ev, nil
}

func (g *v1Group) usage(u *Usage) error {
	cg, err := cgroup1.Load(cgroup1.StaticPath(g.name), cgroup1.WithHierarchy(g.h.hier))
	if errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return fmt.Errorf("cgroups: %s: %w", g.name, os.ErrNotExist)
	}
	if err != nil {
		return fmt.Errorf("cgroups: load %s: %w", g.name, err)
	}
	m, err := cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return err
	}
	if c := m.CPU; c != nil {
		if c.Usage != nil {
			u.CPUsUserTimeSecs = float64(c.Usage.User) / 1e9
			u.CPUsSystemTimeSecs = float64(c.Usage.Kernel) / 1e9
		}
		if t := c.Throttling; t != nil {
			u.CPUsNrPeriods = uint32(t.Periods)
			u.CPUsNrThrottled = uint32(t.ThrottledPeriods)
			u.CPUsThrottledTimeSecs = float64(t.ThrottledTime) / 1e9
		}
	}
	if mem := m.Memory; mem != nil {
		// Mesos: rss is anonymous memory (total_rss), total is usage.
		u.MemRSSBytes = mem.TotalRSS
		u.MemCacheBytes = mem.TotalCache
		u.MemAnonBytes = mem.TotalRSS
		u.MemFileBytes = mem.TotalCache
		u.MemMappedFileBytes = mem.TotalMappedFile
		u.MemUnevictableBytes = mem.TotalUnevictable
		if mem.Usage != nil {
			u.MemTotalBytes = mem.Usage.Usage
			if mem.Usage.Limit < 1<<62 {
				u.MemLimitBytes = mem.Usage.Limit
			}
		}
	}
	if p := m.Pids; p != nil {
		u.Processes = uint32(p.Current)
	}
	return nil
}

func (g *v1Group) remove() error {
	var errs []error
	for _, s := range g.h.subsystems {
		err := syscall.Rmdir(filepath.Join(g.h.mount, string(s.Name()), g.name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("cgroups: remove %s from %s: %w", g.name, s.Name(), err))
		}
	}
	return errors.Join(errs...)
}

func (g *v1Group) kill() bool { return false }
