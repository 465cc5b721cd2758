package containerinit

import (
	"errors"
	"os"
	"strconv"
	"syscall"
)

// EnterCommand is the first argument of an invocation that runs a command
// inside a running container ("agora __enter PID DIR [CGROUP-PROCS]... --
// PATH ARG..."): in the pid, IPC and UTS namespaces of the container whose
// init is PID, seeing the container's mounts (its private /tmp, its /proc),
// in directory DIR, and in the container's cgroups (each CGROUP-PROCS is a
// cgroup.procs file to join). Health checks run this way, as Mesos runs
// COMMAND checks inside the task's container. The command's environment is
// this process's.
const EnterCommand = "__enter"

// Mount namespaces cannot be joined by a process with more than one thread
// (the Go runtime has several by now); the init's root, reached through
// /proc, gives the same view of the container's mounts. The pid namespace
// applies to children only, so the command is a child; the namespaces that
// can be joined are joined before it starts.
func enter(args []string) int {
	fail := func(err error) int {
		os.Stderr.WriteString("agora " + EnterCommand + ": " + err.Error() + "\n")
		return 127
	}
	if len(args) < 4 {
		return fail(errors.New("usage: agora " + EnterCommand + " PID DIR [CGROUP-PROCS]... -- PATH ARG..."))
	}
	pid, err := strconv.Atoi(args[0])
	if err != nil || pid <= 0 {
		return fail(errors.New("bad pid " + strconv.Quote(args[0])))
	}
	dir := args[1]
	rest := args[2:]
	var procs []string
	for len(rest) > 0 && rest[0] != "--" {
		procs, rest = append(procs, rest[0]), rest[1:]
	}
	if len(rest) < 2 {
		return fail(errors.New("no command after --"))
	}
	path, argv := rest[1], rest[2:]
	if len(argv) == 0 {
		argv = []string{path}
	}
	self := []byte(strconv.Itoa(os.Getpid()))
	for _, p := range procs {
		if err := os.WriteFile(p, self, 0); err != nil {
			return fail(errors.New("join the container's cgroup: " + err.Error()))
		}
	}
	if sysSetns == ^uintptr(0) {
		return fail(errors.New("entering a container is not supported on this architecture"))
	}
	proc := "/proc/" + strconv.Itoa(pid)
	for _, ns := range []struct {
		name string
		flag int
	}{{"ipc", syscall.CLONE_NEWIPC}, {"uts", syscall.CLONE_NEWUTS}, {"pid", syscall.CLONE_NEWPID}} {
		fd, err := syscall.Open(proc+"/ns/"+ns.name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return fail(errors.New("open the container's " + ns.name + " namespace: " + err.Error()))
		}
		_, _, errno := syscall.RawSyscall(sysSetns, uintptr(fd), uintptr(ns.flag), 0)
		syscall.Close(fd)
		if errno != 0 {
			return fail(errors.New("join the container's " + ns.name + " namespace: " + errno.Error()))
		}
	}
	if err := syscall.Chroot(proc + "/root"); err != nil {
		return fail(errors.New("enter the container's mounts: " + err.Error()))
	}
	if err := syscall.Chdir(dir); err != nil {
		return fail(errors.New("change to " + dir + " in the container: " + err.Error()))
	}
	child, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Dir: dir, Env: os.Environ(), Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		return fail(errors.New("start " + path + " in the container: " + err.Error()))
	}
	for {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(child, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fail(errors.New("wait for " + path + ": " + err.Error()))
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
}
