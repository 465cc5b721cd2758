package containerinit

import (
	"errors"
	"strconv"
	"syscall"
)

// Once /tmp is the sandbox's tmp, what lies below it is the framework's:
// fetched archives may hold links that stay inside the sandbox on the
// host but, seen from the container's /tmp, lead anywhere. The init runs
// as root, so it never resolves such a path by name: it walks it one
// component at a time from the root, refusing any link, and mounts onto
// the directory it holds (/proc/self/fd/N), not onto a name.

// walkNoSymlinks opens absolute path as an O_PATH directory, component by
// component from the root, never following a symbolic link: a component
// that is one fails with an error naming it and where it leads. With
// create, missing directories are made (0755). It returns the descriptors
// of the directory and of its parent; the caller closes both.
func walkNoSymlinks(path string, create bool) (parent, fd int, err error) {
	if path == "" || path[0] != '/' {
		return -1, -1, errors.New(strconv.Quote(path) + " is not an absolute path")
	}
	fd, err = syscall.Open("/", oPath|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1, -1, errors.New("open /: " + err.Error())
	}
	parent = -1
	walked := ""
	for _, name := range components(path) {
		walked += "/" + name
		if name == "." || name == ".." {
			closeFDs(parent, fd)
			return -1, -1, errors.New(path + ": refusing the component " + strconv.Quote(name))
		}
		next, err := openDirNoFollow(fd, name)
		if err == syscall.ENOENT && create {
			if err = syscall.Mkdirat(fd, name, 0o755); err == nil || err == syscall.EEXIST {
				next, err = openDirNoFollow(fd, name)
			}
		}
		if err != nil {
			err = describe(fd, name, walked, err)
			closeFDs(parent, fd)
			return -1, -1, err
		}
		closeFDs(parent)
		parent, fd = fd, next
	}
	return parent, fd, nil
}

// openDirNoFollow opens name in directory dirfd as an O_PATH descriptor,
// and only if it is a directory, not a link to one.
func openDirNoFollow(dirfd int, name string) (int, error) {
	fd, err := syscall.Openat(dirfd, name, oPath|syscall.O_NOFOLLOW|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		syscall.Close(fd)
		if err == nil {
			err = syscall.ENOTDIR
		}
		return -1, err
	}
	return fd, nil
}

// describe is the error for walked (name in dirfd) that could not be
// opened: a symbolic link says so and where it leads.
func describe(dirfd int, name, walked string, err error) error {
	buf := make([]byte, 4096)
	if n, lerr := syscall.Readlink(fdPath(dirfd)+"/"+name, buf); lerr == nil {
		return errors.New(walked + " is a symbolic link (to " + string(buf[:n]) + "); refusing to follow it")
	}
	return errors.New("open " + walked + ": " + err.Error())
}

// components splits an absolute path at its slashes, dropping empty names.
func components(path string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(path); i++ {
		if i == len(path) || path[i] == '/' {
			if i > start {
				out = append(out, path[start:i])
			}
			start = i + 1
		}
	}
	return out
}

func closeFDs(fds ...int) {
	for _, fd := range fds {
		if fd >= 0 {
			syscall.Close(fd)
		}
	}
}

// fdPath names the file open at fd, for mount(2).
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// sameFile reports whether two descriptors hold the same file.
func sameFile(a, b int) bool {
	var sa, sb syscall.Stat_t
	return syscall.Fstat(a, &sa) == nil && syscall.Fstat(b, &sb) == nil && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// mountBack bind-mounts the directory open at src on path, below the new
// /tmp, creating path's missing directories but following no link on the
// way; readOnly mounts it read-only.
func mountBack(src int, path string, readOnly bool) error {
	parent, fd, err := walkNoSymlinks(path, true)
	if err != nil {
		return err
	}
	defer closeFDs(parent, fd)
	if err := syscall.Mount(fdPath(src), fdPath(fd), "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return errors.New("mount " + path + " back: " + err.Error())
	}
	if !readOnly {
		return nil
	}
	// fd holds the directory now covered; the name, looked up again in
	// the parent, leads to the new mount's root.
	names := components(path)
	root, err := openDirNoFollow(parent, names[len(names)-1])
	if err != nil {
		return errors.New("open " + path + " once mounted: " + err.Error())
	}
	defer closeFDs(root)
	if !sameFile(root, src) {
		return errors.New(path + " changed while it was mounted back")
	}
	return remountReadOnly(root, path)
}

// bindReadOnly binds directory path read-only over itself. The path is
// the agent's (a volume outside /tmp, resolved before /tmp is replaced).
func bindReadOnly(path string) error {
	fd, err := syscall.Open(path, oPath|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return errors.New("open: " + err.Error())
	}
	defer closeFDs(fd)
	if err := syscall.Mount(fdPath(fd), fdPath(fd), "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return errors.New("bind it over itself: " + err.Error())
	}
	root, err := syscall.Open(path, oPath|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return errors.New("open once bound: " + err.Error())
	}
	defer closeFDs(root)
	if !sameFile(root, fd) {
		return errors.New("changed while it was bound")
	}
	return remountReadOnly(root, path)
}

// remountReadOnly makes the bind mount whose root is open at fd
// read-only, keeping its nosuid, nodev, noexec and atime flags (a bind
// remount sets them all anew).
func remountReadOnly(fd int, path string) error {
	var sfs syscall.Statfs_t
	if err := syscall.Fstatfs(fd, &sfs); err != nil {
		return errors.New("statfs " + path + ": " + err.Error())
	}
	const (
		stNoSuid, stNoDev, stNoExec         = 0x2, 0x4, 0x8
		stNoAtime, stNoDirAtime, stRelAtime = 0x400, 0x800, 0x1000
	)
	flags := uintptr(syscall.MS_BIND | syscall.MS_REMOUNT | syscall.MS_RDONLY)
	for st, ms := range map[int64]uintptr{stNoSuid: syscall.MS_NOSUID, stNoDev: syscall.MS_NODEV, stNoExec: syscall.MS_NOEXEC,
		stNoAtime: syscall.MS_NOATIME, stNoDirAtime: syscall.MS_NODIRATIME, stRelAtime: syscall.MS_RELATIME} {
		if int64(sfs.Flags)&st != 0 {
			flags |= ms
		}
	}
	if err := syscall.Mount("", fdPath(fd), "", flags, ""); err != nil {
		return errors.New("remount " + path + " read-only: " + err.Error())
	}
	return nil
}
