package containerizer

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/cgroups/v3/cgroup2"
	"golang.org/x/sys/unix"
)

// v2 is the unified cgroup v2 hierarchy.
type v2 struct {
	mount string
	pids  bool // the pids controller is available
}

func newV2(mount string) (*v2, error) {
	b, err := os.ReadFile(filepath.Join(mount, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	have := strings.Fields(string(b))
	for _, c := range []string{"cpu", "memory"} {
		if !contains(have, c) {
			return nil, fmt.Errorf("cgroups: the %s controller is not available in %s", c, mount)
		}
	}
	return &v2{mount: mount, pids: contains(have, "pids")}, nil
}

func (h *v2) version() int { return 2 }

func (h *v2) create(name string, l limits) (cgroup, error) {
	res := &cgroup2.Resources{CPU: &cgroup2.CPU{}, Memory: &cgroup2.Memory{}}
	if l.cpuShares > 0 {
		w := cgroup2.ConvertCPUSharesToCgroupV2Value(l.cpuShares)
		res.CPU.Weight = &w
	}
	if l.cfsPeriod > 0 {
		res.CPU.Max = cgroup2.NewCPUMax(&l.cfsQuota, &l.cfsPeriod)
	}
	if l.memBytes > 0 {
		res.Memory.Max = &l.memBytes
	}
	if l.pids > 0 && h.pids {
		res.Pids = &cgroup2.Pids{Max: l.pids}
	}
	dir := filepath.Join(h.mount, name)
	m, err := cgroup2.NewManager(h.mount, "/"+name, res)
	if err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("cgroups: create %s: %w", name, err)
	}
	if l.memBytes > 0 {
		// Without this a container at its limit swaps instead of being
		// OOM-killed.
		if err := limitSwap(dir, "0"); err != nil {
			_ = m.Delete()
			return nil, fmt.Errorf("cgroups: create %s: %w", name, err)
		}
	}
	return &v2Group{dir: dir, m: m}, nil
}

// limitSwap sets the cgroup's memory.swap.max. A kernel that does not
// account swap (built without it, or booted with swapaccount=0) has no
// such file: there is no swap limit to set, and a container at its memory
// limit may swap rather than be OOM-killed, which is all that kernel can
// do. Any other failure is an error.
func limitSwap(dir, value string) error {
	path := filepath.Join(dir, "memory.swap.max")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		swapUnaccounted.Do(func() {
			slog.Warn("cgroups v2: this kernel does not account swap (no memory.swap.max); containers at their memory limit may swap instead of being OOM-killed")
		})
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err == nil {
		_, err = f.Write([]byte(value))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("set memory.swap.max of %s to %s: %w", dir, value, err)
	}
	return nil
}

// swapUnaccounted says once that the kernel does not account swap.
var swapUnaccounted sync.Once

func (h *v2) load(name string) (cgroup, error) {
	dir := filepath.Join(h.mount, name)
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("cgroups: %s: %w", name, err)
	}
	m, err := cgroup2.Load("/"+name, cgroup2.WithMountpoint(h.mount))
	if err != nil {
		return nil, fmt.Errorf("cgroups: load %s: %w", name, err)
	}
	return &v2Group{dir: dir, m: m}, nil
}

func (h *v2) leaves(dir string) ([]string, error) { return leafDirs(filepath.Join(h.mount, dir)) }

type v2Group struct {
	dir string
	m   *cgroup2.Manager
}

func (g *v2Group) add(pid int) error {
	if err := g.m.AddProc(uint64(pid)); err != nil {
		return fmt.Errorf("cgroups: add pid %d to %s: %w", pid, g.dir, err)
	}
	return nil
}

func (g *v2Group) procsFiles() []string { return []string{filepath.Join(g.dir, "cgroup.procs")} }

func (g *v2Group) threadFiles() []string { return nil }

func (g *v2Group) procs() ([]int, error) {
	return readPidList(filepath.Join(g.dir, "cgroup.procs"))
}

func (g *v2Group) oomKills() uint64 {
	return readKV(filepath.Join(g.dir, "memory.events"))["oom_kill"]
}

func (g *v2Group) peakMemory() uint64 {
	if v, err := readUintFile(filepath.Join(g.dir, "memory.peak")); err == nil {
		return v
	}
	v, _ := readUintFile(filepath.Join(g.dir, "memory.current"))
	return v
}

// oomEvents watches memory.events with a non-blocking inotify descriptor.
func (g *v2Group) oomEvents() (*os.File, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, filepath.Join(g.dir, "memory.events"), unix.IN_MODIFY); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch memory.events: %w", err)
	}
	return os.NewFile(uintptr(fd), "oom-inotify"), nil
}

func (g *v2Group) usage(u *Usage) error {
	m, err := g.m.Stat()
	if err != nil {
		return err
	}
	if c := m.CPU; c != nil {
		u.CPUsUserTimeSecs = float64(c.UserUsec) / 1e6
		u.CPUsSystemTimeSecs = float64(c.SystemUsec) / 1e6
		u.CPUsNrPeriods = uint32(c.NrPeriods)
		u.CPUsNrThrottled = uint32(c.NrThrottled)
		u.CPUsThrottledTimeSecs = float64(c.ThrottledUsec) / 1e6
	}
	if mem := m.Memory; mem != nil {
		u.MemRSSBytes = mem.Anon
		u.MemAnonBytes = mem.Anon
		u.MemCacheBytes = mem.File
		u.MemFileBytes = mem.File
		u.MemMappedFileBytes = mem.FileMapped
		u.MemUnevictableBytes = mem.Unevictable
		u.MemTotalBytes = mem.Usage
		if mem.UsageLimit < 1<<62 {
			u.MemLimitBytes = mem.UsageLimit
		}
		u.MemSwapBytes = mem.SwapUsage
	}
	if p := m.Pids; p != nil {
		u.Processes = uint32(p.Current)
	}
	return nil
}

func (g *v2Group) remove() error {
	if err := g.m.Delete(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cgroups: remove %s: %w", g.dir, err)
	}
	return nil
}

// update sets the limits in l; zero fields lift a limit.
func (g *v2Group) update(l limits) error {
	weight, max, mem, pids := uint64(100), "max 100000", "max", "max"
	if l.cpuShares > 0 {
		weight = cgroup2.ConvertCPUSharesToCgroupV2Value(l.cpuShares)
	}
	if l.cfsPeriod > 0 {
		max = fmt.Sprintf("%d %d", l.cfsQuota, l.cfsPeriod)
	}
	if l.memBytes > 0 {
		mem = strconv.FormatInt(l.memBytes, 10)
	}
	if l.pids > 0 {
		pids = strconv.FormatInt(l.pids, 10)
	}
	var errs []error
	for _, w := range [][2]string{
		{"cpu.weight", strconv.FormatUint(weight, 10)},
		{"cpu.max", max},
		{"memory.max", mem},
		{"memory.swap.max", map[bool]string{true: "0", false: "max"}[l.memBytes > 0]},
		{"pids.max", pids},
	} {
		path := filepath.Join(g.dir, w[0])
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			continue // controller not enabled here
		}
		if err := os.WriteFile(path, []byte(w[1]), 0); err != nil {
			errs = append(errs, fmt.Errorf("cgroups: set %s of %s to %s: %w", w[0], g.dir, w[1], err))
		}
	}
	return errors.Join(errs...)
}

// setCFS sets the CFS quota (cpu.max) alone.
func (g *v2Group) setCFS(l limits) error {
	if l.cfsPeriod == 0 {
		return nil
	}
	v := fmt.Sprintf("%d %d", l.cfsQuota, l.cfsPeriod)
	if err := os.WriteFile(filepath.Join(g.dir, "cpu.max"), []byte(v), 0); err != nil {
		return fmt.Errorf("cgroups: set cpu.max of %s to %s: %w", g.dir, v, err)
	}
	return nil
}

func (g *v2Group) kill() bool {
	return os.WriteFile(filepath.Join(g.dir, "cgroup.kill"), []byte("1"), 0) == nil
}
