package containerizer

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Moving a process into a cgroup (a container's init joining its cgroup,
// on cgroup v1 and v2 alike) write-locks the kernel's global
// cgroup_threadgroup_rwsem. That lock is built for cheap forks: its writer
// first waits for an RCU grace period unless another writer passed
// shortly before. On an agent that launches a container now and then, or
// in bursts, many launches pay that wait: about 10 ms, more on a busy
// machine, off-CPU, between TASK_STARTING and TASK_RUNNING
// (benchmarks/RESULTS.md). The cgroup2 mount option favordynmods (Linux
// 6.0) makes migrations cheap at the price of a little more work in every
// fork and exit: older kernels keep that lock ready for writers; recent
// ones (6.18 has it) lock only the migrating process's thread group
// instead, and keep doing so until the machine restarts, whatever later
// mounts say. It is one switch for the whole machine, set through any
// mounted cgroup2 hierarchy (it helps cgroup v1 controllers too), so the
// agent turns it on by default (--cgroups_favor_dynmods) and logs it.

// mountEntry is a line of /proc/self/mountinfo.
type mountEntry struct {
	mountPoint   string
	mountOptions string // the mount's own: rw,nosuid,nodev,...
	fsType       string
	superOptions string // the file system's: rw,nsdelegate,...
}

// hasOption reports whether the comma-separated list opts holds opt.
func hasOption(opts, opt string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// parseMountinfo reads mountinfo lines (proc(5)); lines it cannot read
// are skipped.
func parseMountinfo(text string) []mountEntry {
	var out []mountEntry
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || len(f) < sep+4 {
			continue
		}
		out = append(out, mountEntry{mountPoint: unescapeMountinfo(f[4]), mountOptions: f[5], fsType: f[sep+1], superOptions: f[sep+3]})
	}
	return out
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) && isOctal(s[i+1:i+4]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return true
}

// superOptions are the file system options that reconfigure m with
// favordynmods on or off and everything else as it is: a cgroup2
// reconfiguration sets all of its options from those it is given.
// "rw" and "ro" are the superblock's flags, which a reconfiguration
// through fspick leaves alone.
func superOptions(m mountEntry, on bool) []string {
	var opts []string
	for _, o := range strings.Split(m.superOptions, ",") {
		if o != "" && o != "rw" && o != "ro" && o != "favordynmods" {
			opts = append(opts, o)
		}
	}
	if on {
		opts = append(opts, "favordynmods")
	}
	return opts
}

// reconfigure sets the options of the file system mounted at mountPoint
// with fspick and fsconfig: unlike mount(2) with MS_REMOUNT, it touches
// neither the mount's own flags (nosuid, noexec, its atime, read-only)
// nor the superblock's read-only flag, which all cgroup2 mounts of the
// machine share.
func reconfigure(mountPoint string, opts []string) error {
	fd, err := unix.Fspick(unix.AT_FDCWD, mountPoint, unix.FSPICK_CLOEXEC|unix.FSPICK_NO_AUTOMOUNT)
	if err != nil {
		return fmt.Errorf("fspick %s: %w", mountPoint, err)
	}
	defer unix.Close(fd)
	for _, o := range opts {
		if k, v, ok := strings.Cut(o, "="); ok {
			err = unix.FsconfigSetString(fd, k, v)
		} else {
			err = unix.FsconfigSetFlag(fd, o)
		}
		if err != nil {
			return fmt.Errorf("%s: option %s: %w", mountPoint, o, err)
		}
	}
	if err := unix.FsconfigReconfigure(fd); err != nil {
		return fmt.Errorf("reconfigure %s with %s: %w", mountPoint, strings.Join(opts, ","), err)
	}
	return nil
}

// errNoCgroup2 is returned where no cgroup2 hierarchy is mounted.
var errNoCgroup2 = errors.New("no cgroup2 hierarchy is mounted")

// cgroup2Mount is the first cgroup2 hierarchy in /proc/self/mountinfo
// that no later mount covers.
func cgroup2Mount() (mountEntry, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return mountEntry{}, err
	}
	return firstCgroup2(parseMountinfo(string(b)))
}

// firstCgroup2 picks cgroup2Mount's entry from ms.
func firstCgroup2(ms []mountEntry) (mountEntry, error) {
	top := map[string]int{} // mount point → its last (visible) entry
	for i, m := range ms {
		top[m.mountPoint] = i
	}
	for i, m := range ms {
		if m.fsType == "cgroup2" && top[m.mountPoint] == i {
			return m, nil
		}
	}
	return mountEntry{}, errNoCgroup2
}

// errNotApplied is returned where the kernel took the options but left
// favordynmods as it was: it applies it only from the host's cgroup
// namespace.
var errNotApplied = errors.New("the kernel left favordynmods as it was (is the agent outside the host's cgroup namespace?)")

// setFavorDynMods turns the machine's favordynmods on or off through its
// first cgroup2 hierarchy. It reports whether it changed anything and the
// hierarchy's mount point; an error names what could not be done.
func setFavorDynMods(on bool) (changed bool, mountPoint string, err error) {
	m, err := cgroup2Mount()
	if err != nil {
		return false, "", err
	}
	if hasOption(m.superOptions, "favordynmods") == on {
		return false, m.mountPoint, nil
	}
	if err := reconfigure(m.mountPoint, superOptions(m, on)); err != nil {
		if errors.Is(err, unix.EINVAL) {
			return false, m.mountPoint, fmt.Errorf("%w (the kernel refused an option; favordynmods needs Linux 6.0 or later)", err)
		}
		return false, m.mountPoint, err
	}
	// The kernel applies the option only from the host's cgroup
	// namespace, silently: check.
	after, err := cgroup2Mount()
	if err != nil {
		return true, m.mountPoint, err
	}
	if hasOption(after.superOptions, "favordynmods") != on {
		return true, m.mountPoint, fmt.Errorf("reconfigured %s, but %w", m.mountPoint, errNotApplied)
	}
	return true, m.mountPoint, nil
}
