package containerizer

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// limits are what a container's cgroup enforces.
type limits struct {
	cpuShares uint64 // cpu.shares (v1); converted to cpu.weight on v2
	cfsPeriod uint64 // µs; 0 = no CFS quota
	cfsQuota  int64  // µs
	memBytes  int64  // 0 = unlimited
	pids      int64  // 0 = unlimited
}

// hierarchy is the cgroup file system containers are created in: cgroup
// v1 (one mount per controller) or v2 (the unified hierarchy).
type hierarchy interface {
	// version is 1 or 2.
	version() int
	// create makes the cgroup name (a path below the hierarchy's root,
	// "agora/<container>") with limits l.
	create(name string, l limits) (cgroup, error)
	// load opens an existing cgroup; an error wrapping os.ErrNotExist says
	// it is not there.
	load(name string) (cgroup, error)
	// leaves lists the cgroups directly below dir that have no cgroups of
	// their own: the containers of a root.
	leaves(dir string) ([]string, error)
}

// cgroup is one container's control group.
type cgroup interface {
	// add moves process pid (and its future children) into the cgroup.
	add(pid int) error
	// procs lists the processes in the cgroup.
	procs() ([]int, error)
	// oomKills counts the processes the kernel's OOM killer killed here.
	oomKills() uint64
	// peakMemory is the most memory the cgroup used, in bytes (0 if the
	// kernel does not say).
	peakMemory() uint64
	// oomEvents returns a file that becomes readable when the OOM killer
	// acts in the cgroup (and, on v1, when the cgroup is removed).
	oomEvents() (*os.File, error)
	// usage fills u's cgroup-backed fields.
	usage(u *Usage) error
	// remove deletes the cgroup; it must hold no processes.
	remove() error
	// kill sends SIGKILL to every process in the cgroup, if the kernel
	// can do that in one step (v2's cgroup.kill); false means the caller
	// must signal the processes one by one.
	kill() bool
}

// detectHierarchy opens the cgroup hierarchy mounted at mount
// (/sys/fs/cgroup): v2 if mount is a cgroup2 file system, else v1 with one
// directory per controller.
func detectHierarchy(mount string) (hierarchy, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(mount, &st); err != nil {
		return nil, fmt.Errorf("cgroups: %s: %w", mount, err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return newV2(mount)
	}
	return newV1(mount)
}

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

func (h *v1) create(name string, l limits) (cgroup, error) {
	res := &specs.LinuxResources{CPU: &specs.LinuxCPU{}}
	if l.cpuShares > 0 {
		res.CPU.Shares = &l.cpuShares
	}
	if l.cfsPeriod > 0 {
		res.CPU.Period, res.CPU.Quota = &l.cfsPeriod, &l.cfsQuota
	}
	if l.memBytes > 0 {
		res.Memory = &specs.LinuxMemory{Limit: &l.memBytes}
	}
	if l.pids > 0 {
		res.Pids = &specs.LinuxPids{Limit: &l.pids}
	}
	path := "/" + name
	cg, err := cgroup1.New(cgroup1.StaticPath(path), res, cgroup1.WithHierarchy(h.hier))
	if err != nil {
		// Leave nothing half-made behind.
		if old, lerr := cgroup1.Load(cgroup1.StaticPath(path), cgroup1.WithHierarchy(h.hier)); lerr == nil {
			_ = old.Delete()
		}
		return nil, fmt.Errorf("cgroups: create %s: %w", name, err)
	}
	return &v1Group{h: h, name: path, cg: cg}, nil
}

func (h *v1) load(name string) (cgroup, error) {
	path := "/" + name
	if _, err := os.Stat(filepath.Join(h.mount, "memory", path)); err != nil {
		return nil, fmt.Errorf("cgroups: %s: %w", name, err)
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(path), cgroup1.WithHierarchy(h.hier))
	if errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return nil, fmt.Errorf("cgroups: %s: %w", name, os.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("cgroups: load %s: %w", name, err)
	}
	return &v1Group{h: h, name: path, cg: cg}, nil
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
	cg   cgroup1.Cgroup
}

func (g *v1Group) file(controller, name string) string {
	return filepath.Join(g.h.mount, controller, g.name, name)
}

func (g *v1Group) add(pid int) error {
	if err := g.cg.AddProc(uint64(pid)); err != nil {
		return fmt.Errorf("cgroups: add pid %d to %s: %w", pid, g.name, err)
	}
	return nil
}

func (g *v1Group) procs() ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for _, s := range g.h.subsystems {
		pids, err := readPidList(filepath.Join(g.h.mount, string(s.Name()), g.name, "cgroup.procs"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
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
	m, err := g.cg.Stat(cgroup1.IgnoreNotExist)
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
	if err := g.cg.Delete(); err != nil && !errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return fmt.Errorf("cgroups: remove %s: %w", g.name, err)
	}
	return nil
}

func (g *v1Group) kill() bool { return false }

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
		// OOM-killed (where the kernel accounts swap at all).
		_ = os.WriteFile(filepath.Join(dir, "memory.swap.max"), []byte("0"), 0)
	}
	return &v2Group{dir: dir, m: m}, nil
}

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

func (g *v2Group) kill() bool {
	return os.WriteFile(filepath.Join(g.dir, "cgroup.kill"), []byte("1"), 0) == nil
}

// killCgroup kills every process in cg and waits until none is left.
// Processes are signalled one by one unless the kernel can do it at once;
// a process that forks while being killed is caught on the next round.
func killCgroup(cg cgroup) error {
	var last []int
	for i := 0; i < 1000; i++ {
		pids, err := cg.procs()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		last = pids
		if !cg.kill() {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(time.Duration(min(i+1, 10)) * time.Millisecond)
	}
	return fmt.Errorf("cgroups: processes %v survive SIGKILL", last)
}

// removeCgroup retries removal briefly: the kernel may still be tearing
// down the last killed process.
func removeCgroup(cg cgroup) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = cg.remove(); err == nil {
			return nil
		}
		time.Sleep(time.Duration(min(i+1, 20)) * time.Millisecond)
	}
	return err
}

// leafDirs lists the directories in dir that have no subdirectories.
func leafDirs(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
outer:
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		sub, err := os.ReadDir(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		for _, s := range sub {
			if s.IsDir() {
				continue outer
			}
		}
		out = append(out, e.Name())
	}
	return out, nil
}

func readPidList(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out, nil
}

// readKV reads a cgroup "key value" file; missing keys read as 0.
func readKV(path string) map[string]uint64 {
	out := map[string]uint64{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}

func readUintFile(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}
