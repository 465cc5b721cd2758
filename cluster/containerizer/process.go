package containerizer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Process runs every container as a plain process group: no cgroups, no
// namespaces, no resource limits. Killing a container signals the whole
// group, and when the main process ends whatever is left of its group is
// killed, as Mesos destroys a container when its executor exits.
type Process struct {
	// Reason says why the agent runs without isolation ("the agent is
	// not running as root"); it is part of the warning.
	Reason string
}

var _ Containerizer = Process{}

// Warnings says loudly what this containerizer does not do.
func (p Process) Warnings() []string {
	w := "isolation disabled: tasks run as plain processes without cgroups or namespaces, so resource limits are not enforced"
	if p.Reason != "" {
		w += " (" + p.Reason + ")"
	}
	return []string{w}
}

// Launch starts spec's program in its own process group.
func (p Process) Launch(ctx context.Context, spec Spec) (Container, error) {
	if spec.ID == "" {
		return nil, errors.New("containerizer: container ID is empty")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("container %s: %w", spec.ID, err)
	}
	path, err := lookPath(spec.Path, spec.Env)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", spec.ID, err)
	}
	args := spec.Args
	if len(args) == 0 {
		args = []string{spec.Path}
	}
	cred, err := credential(spec.User)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", spec.ID, err)
	}
	stdout, err := openOutput(spec.Stdout, cred)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", spec.ID, err)
	}
	defer stdout.Close()
	stderr, err := openOutput(spec.Stderr, cred)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", spec.ID, err)
	}
	defer stderr.Close()
	if cred != nil && spec.Dir != "" {
		if err := os.Chown(spec.Dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("container %s: hand sandbox to %s: %w", spec.ID, spec.User, err)
		}
	}
	cmd := &exec.Cmd{
		Path:        path,
		Args:        args,
		Env:         append([]string{}, spec.Env...),
		Dir:         spec.Dir,
		Stdout:      stdout,
		Stderr:      stderr,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Credential: cred},
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("container %s: start %s: %w", spec.ID, spec.Path, err)
	}
	c := &process{id: spec.ID, pid: cmd.Process.Pid, cmd: cmd, done: make(chan struct{})}
	if st, err := readProcStat(c.pid); err == nil {
		c.startTime = st.startTime
	}
	go c.supervise()
	return c, nil
}

// process is a container whose main process is the agent's child.
type process struct {
	id        string
	pid       int
	startTime uint64
	cmd       *exec.Cmd
	done      chan struct{}

	mu     sync.Mutex // held while signalling and while reaping
	reaped bool
	exit   Exit
}

func (c *process) ID() string            { return c.id }
func (c *process) Pid() int              { return c.pid }
func (c *process) Done() <-chan struct{} { return c.done }
func (c *process) State() State          { return State{ID: c.id, Pid: c.pid, StartTime: c.startTime} }

func (c *process) Signal(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reaped {
		return ErrExited
	}
	// Until the leader is reaped its PID cannot be reused, so -pid names
	// this container's group and nothing else.
	if err := syscall.Kill(-c.pid, sig); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("container %s: signal %v: %w", c.id, sig, err)
	}
	return nil
}

func (c *process) Wait(ctx context.Context) (Exit, error) {
	select {
	case <-c.done:
		return c.exit, nil
	case <-ctx.Done():
		return Exit{}, ctx.Err()
	}
}

// supervise waits for the main process to end without reaping it, kills
// what is left of its group while the group ID is still safely ours, then
// reaps it.
func (c *process) supervise() {
	_ = waitExitedNoReap(c.pid) // on error cmd.Wait below still reaps
	c.mu.Lock()
	_ = syscall.Kill(-c.pid, syscall.SIGKILL) // ESRCH: nothing was left
	_ = c.cmd.Wait()                          // the status is in ProcessState
	c.exit = exitOf(c.cmd.ProcessState)
	c.reaped = true
	c.mu.Unlock()
	awaitGroupGone(c.pid, c.startTime)
	close(c.done)
}

// awaitGroupGone makes Done mean "no process of the container is left":
// SIGKILL takes effect asynchronously, so it waits (briefly, re-killing)
// until no member of the group started after its leader is alive.
func awaitGroupGone(pgid int, leaderStart uint64) {
	for i := 0; i < 500; i++ {
		// Fast path: no process at all in the group. (A group ID is not
		// reused while the group has members, so ESRCH is conclusive.)
		if err := syscall.Kill(-pgid, 0); err == syscall.ESRCH {
			return
		}
		left := groupMembers(pgid, leaderStart)
		if len(left) == 0 {
			return
		}
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func exitOf(ps *os.ProcessState) Exit {
	if ps == nil {
		return Exit{Unknown: true}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return Exit{Signal: ws.Signal()}
	}
	return Exit{Code: ps.ExitCode()}
}

const (
	pPID     = 1         // idtype P_PID for waitid(2)
	wNOWAIT  = 0x1000000 // WNOWAIT: leave the child waitable
	sizeInfo = 128       // sizeof(siginfo_t)
)

// waitExitedNoReap blocks until pid has exited but leaves it a zombie.
func waitExitedNoReap(pid int) error {
	var info [sizeInfo]byte
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info[0])), syscall.WEXITED|wNOWAIT, 0, 0)
		switch errno {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		default:
			return errno
		}
	}
}

// lookPath resolves a program name the way execvp does, with the PATH the
// container will see.
func lookPath(name string, env []string) (string, error) {
	if name == "" {
		return "", errors.New("no program to run")
	}
	if strings.Contains(name, "/") {
		return name, nil
	}
	path, found := os.LookupEnv("PATH")
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path, found = v, true
		}
	}
	if !found {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q: %w in PATH %q", name, exec.ErrNotFound, path)
}

// credential returns the identity to switch to, or nil to run as the agent.
func credential(name string) (*syscall.Credential, error) {
	if name == "" || os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("run as user %q: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("run as user %q: non-numeric uid %q or gid %q", name, u.Uid, u.Gid)
	}
	if uid == 0 {
		return nil, nil
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				cred.Groups = append(cred.Groups, uint32(g))
			}
		}
	}
	return cred, nil
}

func openOutput(path string, cred *syscall.Credential) (*os.File, error) {
	if path == "" {
		return os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	}
	// A plain open: os.OpenFile would also stat the file and try to
	// register it with the runtime's poller, for a descriptor that is
	// only handed to the child.
	fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_APPEND|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open output: %w", &os.PathError{Op: "open", Path: path, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	if cred != nil {
		if err := f.Chown(int(cred.Uid), int(cred.Gid)); err != nil {
			f.Close()
			return nil, fmt.Errorf("hand %s to uid %d: %w", path, cred.Uid, err)
		}
	}
	return f, nil
}
