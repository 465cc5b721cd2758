package containerizer

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Open control files of cgroup v1 groups.
//
// A container's cgroup is written and read a dozen times over its life
// (limits at launch, the CFS quota once the task runs, the OOM counter at
// its end, the counters reset before a pooled cgroup is reused), and each
// of those was an open, a read or write, and a close. The open is most of
// it: the kernel walks the path below the controller's mount and sets up
// a kernfs file for every call. A group keeps the files it has used open
// instead, for as long as the group lives, and reads and writes them at
// offset 0. A pooled cgroup moves through several containers, so after
// its first container it costs one system call a read or write. An open
// control file stays valid when its cgroup is renamed (the pool renames
// cgroups in and out), and turns into ENODEV when the cgroup is removed;
// it does not keep the cgroup from being removed.
//
// The number of files kept open, over all groups, is bounded
// (cgFileBudget): past it, a group does what it did before, one open per
// call, so an agent with many running containers never runs out of file
// descriptors for this (and the kernel's buffer of each file read, a page,
// stays a few megabytes in all).
//
// A group object that has handed its files on (handFilesTo) or been
// removed is retired: it keeps no file open again, and its limits can no
// longer be changed, so a late update meant for an ended container cannot
// reach the cgroup the pool gives the next one.

// cgFileKey names a group's control file and whether it is open for
// writing (read-only files refuse a write open).
type cgFileKey struct {
	controller, name string
	write            bool
}

// cgFiles are one group's open control files; the group's mu guards them.
type cgFiles map[cgFileKey]int

// cgFilesOpen counts the control files kept open by every group.
var cgFilesOpen atomic.Int64

// cgFileBudget is the most control files kept open at once: a quarter of
// the process's file descriptor limit (which the Go runtime raises to the
// hard limit at start), at most 4096.
var cgFileBudget = sync.OnceValue(func() int64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return int64(min(rl.Cur/4, 4096))
})

// fdLocked returns the open file of key, opening it if the group is not
// retired and the budget allows; ok is false when the caller should open
// the file by its path itself. g.mu is held.
func (g *v1Group) fdLocked(key cgFileKey) (fd int, ok bool) {
	if fd, ok := g.files[key]; ok {
		return fd, true
	}
	if g.retired {
		return -1, false
	}
	if cgFilesOpen.Add(1) > cgFileBudget() {
		cgFilesOpen.Add(-1)
		return -1, false
	}
	flags := unix.O_RDONLY | unix.O_CLOEXEC
	if key.write {
		flags = unix.O_WRONLY | unix.O_CLOEXEC
	}
	fd, err := openRetry(g.file(key.controller, key.name), flags)
	if err != nil {
		// The caller's own open reports the error.
		cgFilesOpen.Add(-1)
		return -1, false
	}
	if g.files == nil {
		g.files = cgFiles{}
	}
	g.files[key] = fd
	return fd, true
}

// closeFilesLocked closes the group's open control files; g.mu is held.
func (g *v1Group) closeFilesLocked() {
	for _, fd := range g.files {
		_ = unix.Close(fd)
	}
	cgFilesOpen.Add(-int64(len(g.files)))
	g.files = nil
}

// retire closes the group's open control files and retires it: for a
// group that is dropped without being removed.
func (g *v1Group) retire() {
	g.mu.Lock()
	g.closeFilesLocked()
	g.retired = true
	g.mu.Unlock()
}

// writeLocked writes v to the group's control file controller/name;
// g.mu is held.
func (g *v1Group) writeLocked(controller, name, v string) error {
	fd, ok := g.fdLocked(cgFileKey{controller, name, true})
	if !ok {
		return writeCgroupFile(g.file(controller, name), v)
	}
	return writeFD(fd, g.file(controller, name), v)
}

// readLocked reads the group's control file controller/name whole;
// g.mu is held.
func (g *v1Group) readLocked(controller, name string) ([]byte, error) {
	fd, ok := g.fdLocked(cgFileKey{controller, name, false})
	if !ok {
		return readCgroupFile(g.file(controller, name))
	}
	return readFD(fd, g.file(controller, name))
}

// write and read are writeLocked and readLocked for callers that do not
// hold g.mu.
func (g *v1Group) write(controller, name, v string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.writeLocked(controller, name, v)
}

func (g *v1Group) read(controller, name string) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.readLocked(controller, name)
}

// readUint reads a control file holding one number.
func (g *v1Group) readUint(controller, name string) (uint64, error) {
	b, err := g.read(controller, name)
	if err != nil {
		return 0, err
	}
	return parseUint(b)
}

// handFilesTo moves g's open control files to idle, a new group object
// for the same cgroup (cgPool.release and adopt), and retires g: the
// ended container's group no longer reaches the cgroup through them, and
// no longer changes its limits.
func (g *v1Group) handFilesTo(idle *v1Group) {
	g.mu.Lock()
	files := g.files
	g.files = nil
	g.retired = true
	g.mu.Unlock()
	idle.mu.Lock()
	for k, fd := range files {
		if old, ok := idle.files[k]; ok {
			_ = unix.Close(old)
			cgFilesOpen.Add(-1)
		}
		if idle.files == nil {
			idle.files = cgFiles{}
		}
		idle.files[k] = fd
	}
	idle.mu.Unlock()
}
