package containerizer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

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
	// procsFiles are the cgroup.procs files a process writes its pid to
	// in order to join the cgroup.
	procsFiles() []string
	// threadFiles are the files a thread writes 0 to in order to join the
	// cgroup alone, without the global lock that moving a process takes
	// (see containerinit.Config.Cgroup); nil where threads cannot join
	// alone (cgroup v2 domain cgroups).
	threadFiles() []string
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
	// update replaces the cgroup's limits with l (zero fields: no limit).
	update(l limits) error
	// setCFS applies l's CFS quota and period only (nothing if l has none).
	setCFS(l limits) error
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

// killCgroup kills every process in cg and waits until none is left.
// Processes are signalled one by one unless the kernel can do it at once;
// a process that forks while being killed is caught on the next round.
func killCgroup(cg cgroup) error {
	var last []int
	for i := 0; i < 1000; i++ {
		pids, err := cg.procs()
		if cgroupGone(err) {
			// Removed meanwhile (ENOENT), or being removed (ENODEV) —
			// by the containerizer that watched it, say: its processes
			// are gone with it.
			return nil
		}
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

// cgroupGone reports whether err says a cgroup no longer exists or is
// being torn down.
func cgroupGone(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENODEV)
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
	b, err := readCgroupFile(path)
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
	b, err := readCgroupFile(path)
	if err != nil {
		return map[string]uint64{}
	}
	return parseKV(b)
}

// parseKV parses the lines "key value" of a cgroup file.
func parseKV(b []byte) map[string]uint64 {
	out := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
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
	b, err := readCgroupFile(path)
	if err != nil {
		return 0, err
	}
	return parseUint(b)
}

// parseUint parses a file holding one number.
func parseUint(b []byte) (uint64, error) {
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// writeCgroupFile writes v to a cgroup control file with plain system
// calls: open, write, close. (os.WriteFile also registers the file with
// the runtime's poller and back, which more than doubles the system calls
// of every limit and every cgroup.procs write.)
func writeCgroupFile(path, v string) error {
	fd, err := openRetry(path, unix.O_WRONLY|unix.O_CLOEXEC)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	return writeFD(fd, path, v)
}

// writeFD writes v to the open control file fd (path names it in errors)
// at offset 0, which a control file kept open is written at again.
func writeFD(fd int, path, v string) error {
	for {
		_, err := unix.Pwrite(fd, []byte(v), 0)
		switch err {
		case unix.EINTR:
			continue
		case nil:
			return nil
		}
		return &os.PathError{Op: "write", Path: path, Err: err}
	}
}

// readCgroupFile reads a cgroup control file (or another small kernel
// file, such as /proc/PID/stat) with plain system calls.
func readCgroupFile(path string) ([]byte, error) {
	fd, err := openRetry(path, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	return readFD(fd, path)
}

// readFD reads the open file fd (path names it in errors) whole from
// offset 0: a control file kept open is read again from its start.
func readFD(fd int, path string) ([]byte, error) {
	var out []byte
	buf := make([]byte, 4096)
	for off := int64(0); ; {
		n, err := unix.Pread(fd, buf, off)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		case n == 0:
			return out, nil
		}
		out = append(out, buf[:n]...)
		off += int64(n)
	}
}

func openRetry(path string, flags int) (int, error) {
	for {
		fd, err := unix.Open(path, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}
