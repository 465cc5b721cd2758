package containerizer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

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
	g, err := h.mkdir(name)
	if err != nil {
		return nil, err
	}
	if err := g.set(l); err != nil {
		_ = g.remove()
		return nil, fmt.Errorf("cgroups: create %s: %w", name, err)
	}
	return g, nil
}

// mkdir makes the cgroup name in every controller, without limits. A
// plain mkdir is tried first: the parent exists but for the first cgroup.
func (h *v1) mkdir(name string) (*v1Group, error) {
	g := &v1Group{h: h, name: "/" + name, heldKnown: true}
	for _, s := range h.subsystems {
		dir := filepath.Join(h.mount, string(s.Name()), g.name)
		err := unix.Mkdir(dir, 0o755)
		switch err {
		case unix.EEXIST: // left in some controllers by an earlier agent
			err = nil
		case unix.ENOENT:
			err = os.MkdirAll(dir, 0o755)
		}
		if err != nil {
			_ = g.remove()
			return nil, fmt.Errorf("cgroups: create %s: %w", name, &os.PathError{Op: "mkdir", Path: dir, Err: err})
		}
	}
	return g, nil
}

// update sets the limits in l; zero fields lift a limit.
func (g *v1Group) update(l limits) error { return g.set(l) }

// setCFS sets the CFS quota alone.
func (g *v1Group) setCFS(l limits) error {
	if l.cfsPeriod == 0 || !g.h.has("cpu") {
		return nil
	}
	g.mu.Lock()
	next := g.held
	g.mu.Unlock()
	next.cfsPeriod, next.cfsQuota = l.cfsPeriod, l.cfsQuota
	return g.set(next)
}

// v1LimitFiles are the files that hold a cgroup's limits, in the order
// they are written (the CFS period before its quota).
var v1LimitFiles = [...]struct{ controller, file string }{
	{"cpu", "cpu.shares"},
	{"cpu", "cpu.cfs_period_us"},
	{"cpu", "cpu.cfs_quota_us"},
	{"memory", "memory.limit_in_bytes"},
	{"pids", "pids.max"},
}

// v1LimitValues is what the files of v1LimitFiles hold under limits l.
func v1LimitValues(l limits) [len(v1LimitFiles)]string {
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
	return [...]string{strconv.FormatUint(shares, 10), strconv.FormatUint(period, 10),
		strconv.FormatInt(quota, 10), mem, pids}
}

// set makes the cgroup's limits l; zero fields lift a limit. Only the
// files whose value differs from what the cgroup holds are written: a new
// cgroup holds no limits, and a pooled one the limits of its last
// container. Where that is not known (an adopted container), every file
// is written.
func (g *v1Group) set(l limits) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.retired {
		return fmt.Errorf("cgroups: %s: %w (its container has ended)", g.name, os.ErrNotExist)
	}
	want := v1LimitValues(l)
	have := v1LimitValues(g.held)
	var errs []error
	for i, f := range v1LimitFiles {
		if (g.heldKnown && want[i] == have[i]) || !g.h.has(f.controller) {
			continue
		}
		if err := g.writeLocked(f.controller, f.file, want[i]); err != nil {
			errs = append(errs, fmt.Errorf("cgroups: set %s of %s to %s: %w", f.file, g.name, want[i], err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		g.heldKnown = false // some writes may have been made
		return err
	}
	g.held, g.heldKnown = l, true
	return nil
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

	mu        sync.Mutex
	held      limits // the limits the cgroup's files hold, if heldKnown
	heldKnown bool
	// base is what the cgroup's cpu.stat counters, which cannot be reset,
	// held when it was taken from the pool; usage subtracts it.
	base CPUStat
	// files are the control files the group keeps open, and retired says
	// it has handed them on or been removed (cgfiles.go).
	files   cgFiles
	retired bool
}

func (g *v1Group) dir(s cgroup1.Subsystem) string {
	return filepath.Join(g.h.mount, string(s.Name()), g.name)
}

// rename moves the cgroup to name in every controller. If a controller
// refuses, the cgroup is left where it was in the others and the renamed
// (empty) directories are removed, so name is not there: an error leaves
// the cgroup partly gone and for the caller to remove.
func (g *v1Group) rename(name string) error {
	to := "/" + name
	for i, s := range g.h.subsystems {
		from := g.dir(s)
		if err := unix.Rename(from, filepath.Join(g.h.mount, string(s.Name()), to)); err != nil {
			for _, done := range g.h.subsystems[:i] {
				_ = unix.Rmdir(filepath.Join(g.h.mount, string(done.Name()), to))
			}
			return fmt.Errorf("cgroups: rename %s to %s: %w", g.name, to, &os.PathError{Op: "rename", Path: from, Err: err})
		}
	}
	g.name = to
	return nil
}

// v1ResetFiles are the counters reset (by writing 0) before a cgroup is
// reused: CPU usage (cpuacct.usage; cpuacct.stat's user and system times
// are not reset with it, and are remembered in base) and the memory peak
// (to what the cgroup holds now).
var v1ResetFiles = []struct{ controller, file string }{
	{"cpuacct", "cpuacct.usage"},
	{"memory", "memory.max_usage_in_bytes"},
}

// reclaimAbove is how much memory an empty cgroup may still be charged
// for (page cache and kernel objects of its last container's files)
// without being reclaimed before reuse: memory.force_empty drains every
// CPU's page lists and reclaims, about half a millisecond even with
// nothing to free, while the few pages a short task leaves are charged to
// nobody's harm (and reclaimed under pressure like any cache).
const reclaimAbove = 1 << 20

// reset readies a cgroup that holds no process for its next container:
// the CFS quota lifted (other limits are kept: the next container writes
// those that differ), the CPU usage and memory peak counters reset and
// the memory still charged to it (page cache) reclaimed if there is much. The CFS
// counters and cpuacct.stat's times, which cannot be reset, are recorded
// in base.
func (g *v1Group) reset() error {
	g.mu.Lock()
	next := g.held
	if !g.heldKnown {
		next = limits{}
	}
	// Without a CFS quota the CFS counters stand still.
	counted := !g.heldKnown || g.held.cfsPeriod > 0
	g.mu.Unlock()
	next.cfsPeriod, next.cfsQuota = 0, 0
	if err := g.set(next); err != nil {
		return err
	}
	for _, w := range v1ResetFiles {
		if !g.h.has(w.controller) {
			continue
		}
		if w.file == "memory.max_usage_in_bytes" {
			// Reclaim first, so that the peak restarts from what is left.
			used, err := g.readUint("memory", "memory.usage_in_bytes")
			if err != nil {
				return fmt.Errorf("cgroups: %s: %w", g.name, err)
			}
			if used > reclaimAbove {
				if err := g.write("memory", "memory.force_empty", "0"); err != nil {
					return fmt.Errorf("cgroups: reclaim the memory of %s: %w", g.name, err)
				}
			}
		}
		if err := g.write(w.controller, w.file, "0"); err != nil {
			return fmt.Errorf("cgroups: reset %s of %s: %w", w.file, g.name, err)
		}
	}
	if g.h.has("cpu") && counted {
		b, err := g.read("cpu", "cpu.stat")
		if err != nil {
			return fmt.Errorf("cgroups: %s: %w", g.name, err)
		}
		kv := parseKV(b)
		g.mu.Lock()
		g.base.NrPeriods, g.base.NrThrottled, g.base.ThrottledTime = kv["nr_periods"], kv["nr_throttled"], kv["throttled_time"]
		g.mu.Unlock()
	}
	if g.h.has("cpuacct") {
		// cpuacct.stat counts on after cpuacct.usage is reset.
		b, err := g.read("cpuacct", "cpuacct.stat")
		if err != nil {
			return fmt.Errorf("cgroups: %s: %w", g.name, err)
		}
		kv := parseKV(b)
		g.mu.Lock()
		g.base.UserTime, g.base.SystemTime = kv["user"]*nsPerClockTick, kv["system"]*nsPerClockTick
		g.mu.Unlock()
	}
	return nil
}

// nsPerClockTick converts cpuacct.stat's USER_HZ ticks (100 a second on
// Linux) to nanoseconds, as the cgroup library's usage does.
const nsPerClockTick = uint64(time.Second) / 100

// snapshot returns the limits the cgroup holds and its counters' base.
func (g *v1Group) snapshot() (held limits, known bool, base CPUStat) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held, g.heldKnown, g.base
}

func (g *v1Group) file(controller, name string) string {
	return filepath.Join(g.h.mount, controller, g.name, name)
}

func (g *v1Group) add(pid int) error {
	p := strconv.Itoa(pid)
	for _, s := range g.h.subsystems {
		if err := g.write(string(s.Name()), "cgroup.procs", p); err != nil {
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

func (g *v1Group) threadFiles() []string {
	var out []string
	for _, s := range g.h.subsystems {
		out = append(out, g.file(string(s.Name()), "tasks"))
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
	b, err := g.read("memory", "memory.oom_control")
	if err != nil {
		return 0
	}
	return parseKV(b)["oom_kill"]
}

// pidsCurrent is the pids controller's count of the cgroup's tasks;
// known is false without that controller or when it cannot be read.
func (g *v1Group) pidsCurrent() (n uint64, known bool) {
	if !g.h.has("pids") {
		return 0, false
	}
	n, err := g.readUint("pids", "pids.current")
	return n, err == nil
}

func (g *v1Group) peakMemory() uint64 {
	v, _ := g.readUint("memory", "memory.max_usage_in_bytes")
	return v
}

// oomEvents registers an eventfd for memory.oom_control through
// cgroup.event_control. The eventfd is non-blocking so reads go through
// the runtime's poller instead of holding a thread per container.
func (g *v1Group) oomEvents() (*os.File, error) {
	// A plain open: os.Open would put the file in the runtime's poller and
	// Fd take it out again, for a descriptor only named to the kernel.
	// The registration names memory.oom_control by a descriptor, which
	// may be the group's open one (cgfiles.go).
	g.mu.Lock()
	defer g.mu.Unlock()
	path := g.file("memory", "memory.oom_control")
	ctl, kept := g.fdLocked(cgFileKey{"memory", "memory.oom_control", false})
	if !kept {
		var err error
		if ctl, err = openRetry(path, unix.O_RDONLY|unix.O_CLOEXEC); err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		defer unix.Close(ctl)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := os.NewFile(uintptr(efd), "oom-eventfd")
	reg := strconv.Itoa(efd) + " " + strconv.Itoa(ctl)
	if err := g.writeLocked("memory", "cgroup.event_control", reg); err != nil {
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
	g.retire()
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
