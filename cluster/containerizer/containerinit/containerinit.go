// Package containerinit is the init of the native containerizer's
// containers: the agora binary re-executed as the first process of a
// container's pid namespace ("agora __init <container-id>").
//
// Importing the package is enough to make a program able to serve as the
// init: its package initializer recognizes an init invocation and runs the
// init at once, before the rest of the program initializes (initializing
// all of agora's packages would cost every container milliseconds). For
// that the package imports only os, syscall, io, strconv, errors and
// unsafe: Go initializes packages dependencies first and then in import
// path order, so this one runs as soon as os is ready.
//
// The agent talks to the init over two inherited pipes:
//
//	fd 3 (agent → init): the framed Config, later the byte Go (not
//	     to an init that joined the cgroup itself).
//	fd 4 (init → agent): lines, see Message: "ready" once the init has
//	     set the container up, "pid N" once the task runs (or "error
//	     ..." if either failed), then "status W" with the task's wait
//	     status when it ends.
//
// Between "ready" and Go the agent moves the init into the container's
// cgroup: the task, started after Go, cannot run a single instruction
// outside it, while the init's own start (a Go runtime) is not charged to
// the container, whose CPU quota may be a hundredth of a core. The
// single-threaded C init, cinit/, joins the cgroup by itself (see
// Config.Cgroup), starts the task without waiting for Go, which the agent
// then does not send, and writes "ready joined" with the task's "pid N"
// (or the error) in one write. The agent writes the configuration into
// the pipe before it starts the init when the pipe holds it whole.
//
// The init sets up the mount namespace (private mounts, a /proc of the new
// pid namespace, /tmp from the sandbox with the sandbox and volumes below
// /tmp mounted back at their paths, following no link, read-only volumes
// read-only, a fresh /dev/shm), starts the task,
// reaps orphans, and exits when the task does; the kernel then kills
// whatever is left in the namespace. It handles no signals: as a pid
// namespace's init it ignores all but SIGKILL, and the agent signals the
// container's processes through its cgroup. (Handling signals would start
// threads of its own in every container's init.)
//
// cinit/agora-init.c is this init again as a static C program, which
// starts without a Go runtime; `make build` makes it bin/agora-init. The
// agent cannot tell the two apart, so they speak the same protocol with
// the same error texts: a change to one is a change to both (the
// containerizer's tests run its init-facing scenarios over each).
package containerinit

import (
	"errors"
	"io"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// Command is the first argument that marks an init invocation.
const Command = "__init"

// The pipes the agent hands the init.
const (
	ConfigFD = 3
	StatusFD = 4
)

func init() {
	if len(os.Args) > 1 && os.Args[1] == Command && pipesInherited() {
		os.Exit(run())
	}
	if len(os.Args) > 1 && os.Args[1] == EnterCommand {
		os.Exit(enter(os.Args[2:]))
	}
}

// pipesInherited reports whether fds 3 and 4 are pipes (the runtime's own
// descriptors, which may take those numbers otherwise, are not).
func pipesInherited() bool {
	for _, fd := range []int{ConfigFD, StatusFD} {
		var st syscall.Stat_t
		if syscall.Fstat(fd, &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
			return false
		}
	}
	return true
}

// Run is the container init; it returns the status to exit with.
func Run() int {
	if !pipesInherited() {
		os.Stderr.WriteString("agora " + Command + ": this is the container init; the agent starts it\n")
		return 2
	}
	return run()
}

// run is the container init, once its pipes are known to be there.
//
// Every container pays for what it does before the task starts, so it
// keeps to plain system calls: os.OpenFile and os.WriteFile would also
// start the runtime's poller (an epoll instance, an eventfd) and register
// every file with it, and os.StartProcess would first probe for pidfd
// support by starting a process of its own.
func run() int {
	cfgFile, status := os.NewFile(ConfigFD, "init-config"), os.NewFile(StatusFD, "init-status")
	// Neither pipe may leak into the task.
	syscall.CloseOnExec(ConfigFD)
	syscall.CloseOnExec(StatusFD)
	raw, err := readFrame(cfgFile)
	if err != nil {
		// The agent gave up on the launch (it closes the pipe unwritten).
		return 1
	}
	cfg, err := decodeConfig(raw)
	report := func(m Message) { _, _ = status.Write(m.encode()) }
	fail := func(err error) int {
		report(Message{Error: err.Error()})
		return 1
	}
	if err != nil {
		return fail(err)
	}
	if err := setupMounts(cfg); err != nil {
		return fail(err)
	}
	// ps shows the init by its name rather than "exe" (/proc/self/exe).
	setName("agora-init")
	report(Message{Ready: true})
	var goByte [1]byte
	if n, _ := cfgFile.Read(goByte[:]); n != 1 || goByte[0] != Go {
		return 1 // the agent gave up on the launch
	}
	cfgFile.Close()
	attr := &syscall.SysProcAttr{Setsid: true}
	if cfg.UID != nil {
		attr.Credential = &syscall.Credential{Uid: *cfg.UID, Gid: cfg.GID, Groups: cfg.Groups}
	}
	taskPid, err := syscall.ForkExec(cfg.Path, cfg.Args, &syscall.ProcAttr{
		Env:   cfg.Env,
		Files: []uintptr{0, 1, 2},
		Sys:   attr,
	})
	if err != nil {
		return fail(&os.PathError{Op: "fork/exec", Path: cfg.Path, Err: err})
	}
	report(Message{Pid: taskPid})
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fail(errors.New("wait for the task: " + err.Error()))
		}
		if pid != taskPid {
			continue // an orphan re-parented to us
		}
		w := uint32(ws)
		if cfg.ExitFile != "" {
			// Written before reporting: if the agent is gone, its successor
			// reads the status from here. A file that could not be written
			// is missing, which the agent tells from any exit status; the
			// reason goes to the task's stderr.
			if err := writeExitFile(cfg.ExitFile, w); err != nil {
				os.Stderr.WriteString("agora-init: cannot record the task's exit status: " + err.Error() + "\n")
			}
		}
		report(Message{Status: &w})
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
}

// writeExitFile leaves the task's wait status w in path, durably: the
// decimal status and a newline (ExitFileContent), written to a temporary
// file that is fsynced and renamed over path, and the directory fsynced.
// A reader that finds no newline has a torn file, not a status.
func writeExitFile(path string, w uint32) error {
	tmp := path + ".tmp"
	fd, err := syscall.Open(tmp, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return &os.PathError{Op: "open", Path: tmp, Err: err}
	}
	content := ExitFileContent(w)
	n, err := syscall.Write(fd, content)
	if err == nil && n != len(content) {
		err = io.ErrShortWrite
	}
	if err == nil {
		err = syscall.Fsync(fd)
	}
	if cerr := syscall.Close(fd); err == nil {
		err = cerr
	}
	if err == nil {
		err = syscall.Rename(tmp, path)
	}
	if err != nil {
		_ = syscall.Unlink(tmp)
		return &os.PathError{Op: "write", Path: path, Err: err}
	}
	dir := path
	for len(dir) > 0 && dir[len(dir)-1] != '/' {
		dir = dir[:len(dir)-1]
	}
	if dir == "" {
		dir = "."
	}
	fd, err = syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	err = syscall.Fsync(fd)
	if cerr := syscall.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return &os.PathError{Op: "sync", Path: dir, Err: err}
	}
	return nil
}

// setName sets the name ps shows for the init (prctl PR_SET_NAME).
func setName(name string) {
	const prSetName = 15
	if p, err := syscall.BytePtrFromString(name); err == nil {
		_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetName, uintptr(unsafe.Pointer(p)), 0)
	}
}

// ExitFileContent is what the exit-status file holds for wait status w.
func ExitFileContent(w uint32) []byte {
	return []byte(strconv.FormatUint(uint64(w), 10) + "\n")
}

// readFrame reads a configuration written by Frame: its length in
// frameDigits digits, a newline, and the bytes: two reads, and never a
// byte past the frame (the Go byte that follows it).
func readFrame(f *os.File) ([]byte, error) {
	var header [frameDigits + 1]byte
	if _, err := io.ReadFull(f, header[:]); err != nil {
		return nil, err
	}
	size, err := strconv.Atoi(string(header[:frameDigits]))
	if err != nil || size <= 0 || header[frameDigits] != '\n' {
		return nil, errors.New("container init: bad configuration length")
	}
	out := make([]byte, size)
	if _, err := io.ReadFull(f, out); err != nil {
		return nil, err
	}
	return out, nil
}

// isolated checks that this process runs in a mount namespace other than
// the agent's (agentMountNS) and as pid 1 of a pid namespace.
func isolated(agentMountNS string) error {
	if ns, err := os.Readlink("/proc/self/ns/mnt"); err != nil || agentMountNS == "" || ns == agentMountNS {
		return errors.New("the container init is not in a mount namespace of its own; refusing to mount anything")
	}
	if os.Getpid() != 1 {
		return errors.New("the container init is not pid 1 of a new pid namespace; refusing to mount anything")
	}
	return nil
}

const oPath = 0x200000 // O_PATH, which package syscall does not name

// inTmp reports whether absolute, clean path is /tmp or below it.
func inTmp(path string) bool {
	return path == "/tmp" || len(path) > 5 && path[:5] == "/tmp/"
}

// setupMounts prepares the container's mount namespace. It first makes
// sure that it is one: mounting over /proc and /tmp of the machine itself
// would break everything else on it.
func setupMounts(cfg Config) error {
	if err := isolated(cfg.AgentMountNS); err != nil {
		return err
	}
	mount := func(src, target, fstype string, flags uintptr, data, what string) error {
		if err := syscall.Mount(src, target, fstype, flags, data); err != nil {
			return errors.New(what + ": " + err.Error())
		}
		return nil
	}
	// Nothing mounted here may propagate back to the host.
	if err := mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, "", "make mounts private"); err != nil {
		return err
	}
	// /proc of the new pid namespace: ps sees the container only.
	if err := mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, "", "mount /proc"); err != nil {
		return err
	}
	// Read-only volumes outside /tmp are bound read-only over themselves
	// while the paths still lead where the agent chose them.
	kept := make(map[string]bool, len(cfg.Keep))
	for _, k := range cfg.Keep {
		kept[k] = true
	}
	readOnly := make(map[string]bool, len(cfg.ReadOnly))
	for _, r := range cfg.ReadOnly {
		readOnly[r] = true
		if kept[r] {
			continue
		}
		if inTmp(r) {
			return errors.New("read-only volume " + r + " is below /tmp but not mounted back")
		}
		if err := bindReadOnly(r); err != nil {
			return errors.New("read-only volume " + r + ": " + err.Error())
		}
	}
	// A sandbox (or a volume) below /tmp would vanish under the new /tmp:
	// keep a handle on each and mount it back at its path afterwards.
	type back struct {
		path, what string
		fd         int
	}
	var backs []back
	keep := func(path, what string) error {
		if !inTmp(path) || path == "/tmp" {
			return errors.New(what + " " + path + " is not a directory below /tmp; refusing to mount it back over /tmp")
		}
		fd, err := syscall.Open(path, oPath|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return errors.New("open " + what + " " + path + ": " + err.Error())
		}
		backs = append(backs, back{path, what, fd})
		return nil
	}
	defer func() {
		for _, b := range backs {
			syscall.Close(b.fd)
		}
	}()
	if cfg.SandboxInTmp {
		if err := keep(cfg.Sandbox, "the sandbox"); err != nil {
			return err
		}
	}
	for _, k := range cfg.Keep {
		if err := keep(k, "the volume"); err != nil {
			return err
		}
	}
	if cfg.Tmp != "" {
		if err := mount(cfg.Tmp, "/tmp", "", syscall.MS_BIND|syscall.MS_REC, "", "mount "+cfg.Tmp+" on /tmp"); err != nil {
			return err
		}
	} else if err := mount("tmpfs", "/tmp", "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=1777", "mount a tmpfs on /tmp"); err != nil {
		return err
	}
	// What lies below the new /tmp is the sandbox's: no link in it is
	// followed (beneath.go).
	for _, b := range backs {
		if err := mountBack(b.fd, b.path, readOnly[b.path]); err != nil {
			return errors.New(b.what + " below /tmp: " + err.Error())
		}
	}
	// POSIX shared memory lives in /dev/shm: give the IPC namespace its own.
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if err := mount("shm", "/dev/shm", "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, "mode=1777,size=65536k", "mount /dev/shm"); err != nil {
			return err
		}
	}
	return nil
}
