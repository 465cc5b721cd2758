package containerizer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/cluster/containerizer/containerinit"
	"golang.org/x/sys/unix"
)

// NativeConfig configures the native containerizer. Zero values mean the
// defaults.
type NativeConfig struct {
	// Hierarchy is where the cgroup file systems are mounted
	// (--cgroups_hierarchy, default /sys/fs/cgroup).
	Hierarchy string
	// Root is the cgroup containers are created in, below each controller
	// (--cgroups_root, default "agora": /sys/fs/cgroup/memory/agora/<id>
	// on cgroup v1).
	Root string
	// DisableCFS turns off the CFS quota (--cgroups_enable_cfs=false), so
	// cpus only weigh a container against others (cpu shares) instead of
	// also capping it.
	DisableCFS bool
	// CFSPeriod is the CFS enforcement period (default 100ms).
	CFSPeriod time.Duration
	// PidsLimit caps the processes and threads of a container (default
	// 4096; negative: no limit).
	PidsLimit int64
	// InitPath is the program started as each container's init with the
	// arguments InitCommand and the container ID. Default: agora-init
	// beside this program's binary (the C or the Go init, see
	// InitBinaryName) when it is the one this binary was built with (see
	// BundledInit), else /proc/self/exe: this binary, which serves as the
	// init because it links package containerinit.
	InitPath string
	// CgroupPool is how many empty cgroups are kept ready for new
	// containers, created off the launch path and reused (reset) after
	// their containers end (cgroup v1 only). 0: none; every container's
	// cgroup is created at its launch and removed at its end.
	CgroupPool int
	// FavorDynMods turns on the machine's cgroup2 option favordynmods
	// (--cgroups_favor_dynmods), so that an init joining its cgroup does
	// not wait for an RCU grace period (favordynmods.go). Where it cannot,
	// the containerizer works as before and logs why.
	FavorDynMods bool
	// RootCPUShares, if not 0, is the least CPU weight (cpu.shares; on v2
	// cpu.weight in proportion, 100 for 1024) of each level of Root: the
	// weight of all the containers together against the root's siblings
	// (rootweight.go; DefaultRootCPUShares). 0 leaves the levels' weight
	// as it is.
	RootCPUShares uint64
	// Logger receives cleanup problems (default slog.Default()).
	Logger *slog.Logger
}

func (c *NativeConfig) setDefaults() {
	if c.Hierarchy == "" {
		c.Hierarchy = "/sys/fs/cgroup"
	}
	c.Root = strings.Trim(filepath.Clean("/"+c.Root), "/")
	if c.Root == "" {
		c.Root = "agora"
	}
	if c.CFSPeriod <= 0 {
		c.CFSPeriod = 100 * time.Millisecond
	}
	if c.PidsLimit == 0 {
		c.PidsLimit = 4096
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.InitPath == "" {
		c.InitPath = BundledInit(c.Logger)
	}
}

// Native isolates every container in its own cgroup (cpu shares and a CFS
// quota from the container's cpus, a memory limit from its mem, a pids
// limit) and its own pid, mount, IPC and UTS namespaces, with this binary
// as the container's init. It needs root. A container that runs out of
// memory is killed by the kernel and ends with Exit.Limitation set.
type Native struct {
	cfg     NativeConfig
	h       hierarchy
	mountNS string  // the agent's mount namespace, which inits must not touch
	pool    *cgPool // nil: no pool
	dynmods bool    // favordynmods is on (FavorDynMods)
}

var _ Containerizer = (*Native)(nil)

// NewNative checks that the machine can isolate containers (root, cgroup
// controllers mounted) and returns the containerizer.
func NewNative(cfg NativeConfig) (*Native, error) {
	cfg.setDefaults()
	if os.Geteuid() != 0 {
		return nil, errors.New("containerizer: cgroups and namespaces need root")
	}
	h, err := detectHierarchy(cfg.Hierarchy)
	if err != nil {
		return nil, fmt.Errorf("containerizer: %w", err)
	}
	mountNS, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return nil, fmt.Errorf("containerizer: %w", err)
	}
	n := &Native{cfg: cfg, h: h, mountNS: mountNS}
	if cfg.FavorDynMods {
		changed, at, err := setFavorDynMods(true) // favordynmods.go
		switch {
		case err != nil:
			cfg.Logger.Warn("cgroups: cannot turn on favordynmods, so a container's init may wait for an RCU grace period (~10 ms) to join its cgroup", "err", err)
		case changed:
			cfg.Logger.Info("cgroups: turned on the machine's favordynmods (cgroup2 mount option) so that a container's init joins its cgroup without waiting for an RCU grace period; --cgroups_favor_dynmods=false leaves it alone", "hierarchy", at)
		}
		n.dynmods = err == nil
	}
	if cfg.RootCPUShares > 0 {
		changed, err := n.weighRoot(cfg.RootCPUShares) // rootweight.go
		if err != nil {
			cfg.Logger.Warn("cgroups: cannot give the containers' root its CPU weight; containers together may weigh what one process's thread does", "root", cfg.Root, "cpu_shares", cfg.RootCPUShares, "err", err)
		}
		for _, path := range changed {
			cfg.Logger.Info("cgroups: raised the CPU weight of the containers' root to the CPUs the agent offers", "file", path, "cpu_shares", cfg.RootCPUShares)
		}
	}
	if v1, ok := h.(*v1); ok {
		// Idle pooled cgroups of agents that are gone are taken over or
		// removed even without a pool of our own.
		if n.pool, err = newPool(v1, cfg.Root, max(cfg.CgroupPool, 0), cfg.Logger); err != nil {
			return nil, fmt.Errorf("containerizer: %w", err)
		}
	}
	return n, nil
}

// Close removes the containerizer's idle pooled cgroups. Containers, and
// their cgroups, are left alone: a later agent may adopt them.
func (n *Native) Close() error {
	if n.pool == nil {
		return nil
	}
	return n.pool.close()
}

// newCgroup gives container name (<root>/<id>) its cgroup with limits l:
// one from the pool if there is one, else a new one. It returns the CFS
// counters the cgroup already holds (nil for a new one).
func (n *Native) newCgroup(name string, l limits) (cgroup, *CPUStat, error) {
	if n.pool != nil {
		g, err := n.pool.take(name, l)
		if err == nil {
			_, _, base := g.snapshot()
			return g, &base, nil
		}
		if !errors.Is(err, errPoolEmpty) {
			n.cfg.Logger.Debug("cannot use a pooled cgroup; creating one", "cgroup", name, "err", err)
		}
	}
	cg, err := n.h.create(name, l)
	return cg, nil, err
}

// Describe says how containers are isolated, for logs and banners.
func (n *Native) Describe() string {
	cfs := "CFS quota on"
	if n.cfg.DisableCFS {
		cfs = "CFS quota off"
	}
	pool := ""
	if n.pool != nil && n.pool.size > 0 {
		pool = fmt.Sprintf("; %d pooled cgroups", n.pool.size)
	}
	if n.dynmods {
		pool += "; favordynmods"
	}
	initPath := n.cfg.InitPath
	if initPath == "/proc/self/exe" {
		initPath = "this binary"
	}
	return fmt.Sprintf("cgroups v%d (cpu, memory, pids; %s%s) under %q; pid, mount, IPC and UTS namespaces; container init: %s",
		n.h.version(), cfs, pool, n.cfg.Root, initPath)
}

// Root is the cgroup containers are created in.
func (n *Native) Root() string { return n.cfg.Root }

func (n *Native) limits(spec Spec) limits {
	var l limits
	if spec.CPUs > 0 {
		l.cpuShares = uint64(max(2, math.Round(spec.CPUs*1024)))
		if !n.cfg.DisableCFS {
			l.cfsPeriod = uint64(n.cfg.CFSPeriod.Microseconds())
			l.cfsQuota = max(1000, int64(math.Round(spec.CPUs*float64(l.cfsPeriod))))
		}
	}
	if spec.MemMB > 0 {
		l.memBytes = int64(spec.MemMB * (1 << 20))
	}
	if n.cfg.PidsLimit > 0 {
		l.pids = n.cfg.PidsLimit
	}
	return l
}

// Launch creates the container's cgroup, starts its init in new
// namespaces, has the init in the cgroup (moved there, or joined by
// itself) and only then lets it start spec's program.
func (n *Native) Launch(ctx context.Context, spec Spec) (_ Container, err error) {
	if spec.ID == "" {
		return nil, errors.New("containerizer: container ID is empty")
	}
	if err := validContainerID(spec.ID); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("container %s: %w", spec.ID, err)
	}
	wrap := func(err error) error { return fmt.Errorf("container %s: %w", spec.ID, err) }
	path, err := lookPath(spec.Path, spec.Env)
	if err != nil {
		return nil, wrap(err)
	}
	args := spec.Args
	if len(args) == 0 {
		args = []string{spec.Path}
	}
	cred, err := credential(spec.User)
	if err != nil {
		return nil, wrap(err)
	}
	cfg := containerinit.Config{Path: path, Args: args, Env: spec.Env, Sandbox: spec.Dir,
		SandboxInTmp: spec.Dir != "" && under(spec.Dir, "/tmp"), AgentMountNS: n.mountNS}
	if cfg.SandboxInTmp && filepath.Clean(spec.Dir) == "/tmp" {
		return nil, wrap(errors.New("the sandbox is /tmp itself, which the container replaces with its own"))
	}
	if err := volumeMounts(&cfg, spec); err != nil {
		return nil, wrap(err)
	}
	if spec.Dir != "" && !spec.NoExitFile {
		cfg.ExitFile = filepath.Join(spec.Dir, exitFileName)
	}
	if cred != nil {
		cfg.UID, cfg.GID, cfg.Groups = &cred.Uid, cred.Gid, cred.Groups
	}
	if spec.Dir != "" {
		cfg.Tmp = filepath.Join(spec.Dir, "tmp")
		if err := mkdirIn(cfg.Tmp); err != nil {
			return nil, wrap(fmt.Errorf("create the sandbox's tmp: %w", err))
		}
		if err := os.Chmod(cfg.Tmp, 0o777|os.ModeSticky); err != nil {
			return nil, wrap(err)
		}
		if cred != nil {
			if err := os.Chown(spec.Dir, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, wrap(fmt.Errorf("hand sandbox to %s: %w", spec.User, err))
			}
		}
	}
	stdout, err := openOutput(spec.Stdout, cred)
	if err != nil {
		return nil, wrap(err)
	}
	defer stdout.Close()
	stderr, err := openOutput(spec.Stderr, cred)
	if err != nil {
		return nil, wrap(err)
	}
	defer stderr.Close()

	name := n.cfg.Root + "/" + spec.ID
	// The CFS quota is set once the task runs (see handshake): at a
	// hundredth of a core, the init's fork and the task's exec would
	// otherwise wait out whole CFS periods before the launch completes.
	lim := n.limits(spec)
	startLim := lim
	startLim.cfsPeriod, startLim.cfsQuota = 0, 0
	cg, base, err := n.newCgroup(name, startLim)
	if err != nil {
		return nil, wrap(err)
	}
	c := &nativeContainer{
		n: n, id: spec.ID, cgName: name, cg: cg, cpus: spec.CPUs, memMB: spec.MemMB,
		done: make(chan struct{}), exitFile: cfg.ExitFile, cpuBase: base,
	}
	var cmd *exec.Cmd
	defer func() {
		if err == nil {
			return
		}
		if cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		c.destroy()
	}()

	cfgR, cfgW, err := initPipe(false)
	if err != nil {
		return nil, wrap(err)
	}
	defer cfgW.Close()
	statusR, statusW, err := initPipe(true)
	if err != nil {
		cfgR.Close()
		return nil, wrap(err)
	}
	// The configuration goes into the pipe before the init starts when
	// the pipe holds it whole, so that the init reads it at once instead
	// of waiting for the agent to run again (bigger ones follow the start).
	cfg.Cgroup = cg.threadFiles()
	framed := cfg.EncodeFramed()
	early := len(framed) <= pipeCapacity(cfgW)
	if early {
		if _, err := cfgW.Write(framed); err != nil {
			cfgR.Close()
			statusR.Close()
			statusW.Close()
			return nil, wrap(fmt.Errorf("configure the container init: %w", err))
		}
	}
	cmd = &exec.Cmd{
		Path: n.cfg.InitPath,
		Args: []string{"agora", InitCommand, spec.ID},
		// One P: the init needs no parallelism, and a runtime that starts
		// fewer threads (and skips sizing itself from the cgroup) starts
		// faster. The task gets spec.Env, not this.
		Env:        []string{"GOMAXPROCS=1"},
		Dir:        spec.Dir,
		Stdin:      devNull(),
		Stdout:     stdout,
		Stderr:     stderr,
		ExtraFiles: []*os.File{cfgR, statusW},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS,
			Setpgid:    true,
		},
	}
	err = cmd.Start()
	cfgR.Close()
	statusW.Close()
	if err != nil {
		statusR.Close()
		cmd = nil
		return nil, wrap(fmt.Errorf("start the container init %s: %w", n.cfg.InitPath, err))
	}
	// The init's lines are short (a longer error is read in pieces), and
	// the reader lives as long as the container.
	c.cmd, c.pid, c.status = cmd, cmd.Process.Pid, bufio.NewReaderSize(statusR, 128)
	c.statusFile = statusR
	if st, err := readProcStat(c.pid); err == nil {
		c.startTime = st.startTime
	}
	// The agent's shutdown (ctx) must not wait for an init that hangs.
	stop := context.AfterFunc(ctx, func() {
		_ = statusR.SetReadDeadline(time.Now())
		_ = cfgW.SetWriteDeadline(time.Now())
	})
	if !early {
		if _, err = cfgW.Write(framed); err != nil {
			err = fmt.Errorf("configure the container init: %w", err)
		}
	}
	if err == nil {
		err = c.handshake(cfgW)
	}
	if err == nil && lim != startLim {
		err = cg.setCFS(lim)
	}
	if !stop() {
		err = errors.Join(err, ctx.Err())
	}
	if err != nil {
		statusR.Close()
		return nil, wrap(err)
	}
	c.watchOOM()
	go c.supervise()
	return c, nil
}

// volumeMounts adds spec's volumes to the init's mounts: those below /tmp
// are mounted back at their paths (Config.Keep), the read-only ones
// read-only. A volume that is /tmp itself would put the host's /tmp over
// the container's, "/" would be the whole file system, and one inside the
// sandbox would outlive nothing: all are refused.
func volumeMounts(cfg *containerinit.Config, spec Spec) error {
	for _, v := range spec.Volumes {
		dir := filepath.Clean(v.Dir)
		switch {
		case !filepath.IsAbs(dir):
			return fmt.Errorf("volume %q is not an absolute path", v.Dir)
		case dir == "/tmp":
			return fmt.Errorf("volume %s is /tmp itself, which the container replaces with its own", v.Dir)
		case dir == "/":
			return fmt.Errorf("volume %s is the whole file system", v.Dir)
		case spec.Dir != "" && under(dir, spec.Dir):
			return fmt.Errorf("volume %s lies inside the sandbox %s", v.Dir, spec.Dir)
		}
		if under(dir, "/tmp") {
			cfg.Keep = append(cfg.Keep, dir)
		}
		if v.ReadOnly {
			cfg.ReadOnly = append(cfg.ReadOnly, dir)
		}
	}
	return nil
}

// initPipe makes a pipe between the agent and a container's init. The
// agent's end (the read end if agentReads) is in the runtime's poller, so
// that reads and writes can be cut by deadlines; the init's end is left
// blocking and out of it, as it is only handed to the init. os.Pipe would
// make both ends non-blocking and register both, and handing one to the
// child then makes it blocking again: six system calls more a pipe.
func initPipe(agentReads bool) (r, w *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, os.NewSyscallError("pipe2", err)
	}
	agent := p[1]
	if agentReads {
		agent = p[0]
	}
	if err := unix.SetNonblock(agent, true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, nil, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1"), nil
}

// devNullFile is /dev/null opened once for every init's standard input
// (os/exec would open and close it at each start).
var devNullFile = sync.OnceValue(func() *os.File {
	f, err := os.Open(os.DevNull)
	if err != nil {
		return nil // os/exec opens it itself, and reports its error
	}
	return f
})

// devNull is the shared /dev/null as a Cmd's Stdin, or nil (os/exec's own).
func devNull() io.Reader {
	if f := devNullFile(); f != nil {
		return f
	}
	return nil
}

// pipeCapacity is how many bytes the pipe f writes to holds (0 if that
// cannot be read).
func pipeCapacity(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Control(func(fd uintptr) {
		if v, err := unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0); err == nil {
			n = v
		}
	})
	return n
}

// mkdirIn makes directory dir, whose parent (the sandbox) normally exists:
// one mkdir, rather than os.MkdirAll's stats of dir and its parent first.
// A dir that exists already (a launch into a used sandbox) is fine.
func mkdirIn(dir string) error {
	err := os.Mkdir(dir, 0o755)
	switch {
	case err == nil, errors.Is(err, os.ErrExist):
		return nil
	case errors.Is(err, os.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	}
	return err
}

// abandonedAge is how long a cgroup in the root must have been there,
// empty, before any agent may remove it: a container's cgroup is empty
// only for the moments between its creation and its init joining it.
var abandonedAge = time.Minute

// removeAbandoned removes container id's cgroup if no process is in it and
// it is older than abandonedAge: what an agent killed before it could
// remove a cgroup leaves behind, which no agent would otherwise claim
// (CleanupOrphans leaves other agents' containers alone).
func (n *Native) removeAbandoned(id string) bool {
	cg, err := n.h.load(n.cfg.Root + "/" + id)
	if err != nil {
		return false
	}
	if pids, err := cg.procs(); err != nil || len(pids) > 0 {
		return false
	}
	files := cg.procsFiles()
	if len(files) == 0 {
		return false
	}
	fi, err := os.Stat(filepath.Dir(files[0]))
	if err != nil || time.Since(fi.ModTime()) < abandonedAge {
		return false
	}
	if err := cg.remove(); err != nil {
		n.cfg.Logger.Warn("cannot remove an abandoned container cgroup", "cgroup", n.cfg.Root+"/"+id, "err", err)
		return false
	}
	return true
}

// validContainerID keeps IDs usable as one cgroup path component, and
// apart from the names of idle pooled cgroups.
func validContainerID(id string) error {
	if id == "." || id == ".." || strings.ContainsAny(id, "/\x00\n") {
		return fmt.Errorf("containerizer: container ID %q cannot name a cgroup", id)
	}
	if isPoolName(id) {
		return fmt.Errorf("containerizer: container ID %q: IDs starting with %q are reserved for pooled cgroups", id, poolPrefix)
	}
	return nil
}

// Plan is the State of the container Launch(spec) starts, before it
// exists: its cgroup and exit-status file, which is all Recover needs to
// find it.
func (n *Native) Plan(spec Spec) State {
	st := State{ID: spec.ID, Cgroup: n.cfg.Root + "/" + spec.ID}
	if spec.Dir != "" && !spec.NoExitFile {
		st.ExitFile = filepath.Join(spec.Dir, exitFileName)
	}
	return st
}

// Recover adopts a container an earlier agent process launched: it finds
// the container's cgroup again and watches its init. From a Plan (no pid)
// it finds the init among the cgroup's processes. A container that ended
// while no agent watched it is returned Done with the exit status its
// init left; one with neither a process nor an exit status is ErrGone, or
// ErrNeverStarted when the agent stopped before it could run. Containers
// launched by Process (no cgroup in st) are adopted as Process would.
func (n *Native) Recover(ctx context.Context, st State) (Container, error) {
	if st.Cgroup == "" {
		return Process{}.Recover(ctx, st)
	}
	planned := st.Pid == 0
	cg, err := n.h.load(st.Cgroup)
	if errors.Is(err, os.ErrNotExist) {
		// The cgroup goes with the container once it has ended (the agent
		// that destroyed it may have stopped before it reported the end),
		// and it is not there yet before the launch.
		if exit, ferr := exitFromFile(st.ExitFile); ferr == nil {
			return endedContainer(st, exit), nil
		}
		if planned {
			return nil, fmt.Errorf("container %s (cgroup %s): %w: the agent stopped before it created the container", st.ID, st.Cgroup, ErrNeverStarted)
		}
		return nil, fmt.Errorf("container %s (cgroup %s): %w", st.ID, st.Cgroup, ErrGone)
	}
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", st.ID, err)
	}
	members := 0
	if planned {
		st.Pid, st.StartTime, members = findInit(cg)
	}
	c := &nativeContainer{
		n: n, id: st.ID, cgName: st.Cgroup, cg: cg, pid: st.Pid, startTime: st.StartTime,
		done: make(chan struct{}), adopted: true, exitFile: st.ExitFile, cpuBase: st.CPUStatBase,
	}
	if u, err := c.cgUsage(); err == nil && u.MemLimitBytes > 0 {
		c.memMB = float64(u.MemLimitBytes) / (1 << 20)
	}
	if !st.alive() {
		// The task may have ended while no agent was watching: its init
		// left the wait status behind.
		exit, err := exitFromFile(st.ExitFile)
		if err == nil {
			c.reaped = true
			c.finish(exit)
			return c, nil
		}
		c.destroy()
		if planned && members == 0 {
			// The init joins the cgroup before the task may start and
			// writes the exit status before it leaves: an empty cgroup
			// without one is a launch the agent gave up with its death.
			return nil, fmt.Errorf("container %s (cgroup %s): %w: the agent stopped while it launched the container", st.ID, st.Cgroup, ErrNeverStarted)
		}
		return nil, fmt.Errorf("container %s (pid %d): %w: %v", st.ID, st.Pid, ErrGone, err)
	}
	c.watchOOM()
	go c.watchAdopted()
	return c, nil
}

// findInit finds the init of a container from its cgroup: the process
// that is pid 1 of its own pid namespace. It returns the init's pid and
// start time (0 if there is none) and how many processes the cgroup has.
func findInit(cg cgroup) (pid int, startTime uint64, members int) {
	pids, err := cg.procs()
	if err != nil {
		return 0, 0, 0
	}
	for _, p := range pids {
		if !isNamespaceInit(p) {
			continue
		}
		if ps, err := readProcStat(p); err == nil && !ps.zombie() {
			return p, ps.startTime, len(pids)
		}
	}
	return 0, 0, len(pids)
}

// isNamespaceInit reports whether pid is pid 1 of a pid namespace below
// the agent's: the innermost of its NSpid entries is 1.
func isNamespaceInit(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			return len(f) > 1 && f[len(f)-1] == "1"
		}
	}
	return false
}

// CleanupOrphans destroys the containers in the root that keep does not
// claim (those an earlier agent process left behind and does not recover)
// and returns their IDs. Cgroups that hold cgroups of their own (other
// agents' roots) are never touched.
func (n *Native) CleanupOrphans(keep func(id string) bool) ([]string, error) {
	ids, err := n.h.leaves(n.cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("containerizer: list containers in %s: %w", n.cfg.Root, err)
	}
	var gone []string
	var errs []error
	for _, id := range ids {
		if isPoolName(id) {
			continue // idle pooled cgroups: see cgPool.adoptLeftovers
		}
		if keep(id) {
			if n.removeAbandoned(id) {
				gone = append(gone, id)
			}
			continue
		}
		cg, err := n.h.load(n.cfg.Root + "/" + id)
		if errors.Is(err, os.ErrNotExist) {
			// Present in some controllers only: remove what is there.
			cg, err = n.h.create(n.cfg.Root+"/"+id, limits{})
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := killCgroup(cg); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := removeCgroup(cg); err != nil {
			errs = append(errs, err)
			continue
		}
		gone = append(gone, id)
	}
	return gone, errors.Join(errs...)
}
