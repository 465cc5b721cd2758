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

// mountFlags are the flags of a mount's own options, which a remount
// must repeat or lose.
var mountFlags = map[string]uintptr{
	"ro":          unix.MS_RDONLY,
	"nosuid":      unix.MS_NOSUID,
	"nodev":       unix.MS_NODEV,
	"noexec":      unix.MS_NOEXEC,
	"noatime":     unix.MS_NOATIME,
	"nodiratime":  unix.MS_NODIRATIME,
	"relatime":    unix.MS_RELATIME,
	"strictatime": unix.MS_STRICTATIME,
	"nosymfollow": unix.MS_NOSYMFOLLOW,
}

// remountArgs are the flags and data that remount m with favordynmods on
// or off and everything else as it is: a cgroup2 remount sets all of the
// file system's options from its data, and the mount's own from its flags.
func remountArgs(m mountEntry, on bool) (uintptr, string) {
	flags := uintptr(unix.MS_REMOUNT)
	for _, o := range strings.Split(m.mountOptions, ",") {
		flags |= mountFlags[o]
	}
	var data []string
	for _, o := range strings.Split(m.superOptions, ",") {
		if o != "" && o != "rw" && o != "ro" && o != "favordynmods" {
			data = append(data, o)
		}
	}
	if on {
		data = append(data, "favordynmods")
	}
	return flags, strings.Join(data, ",")
}

// errNoCgroup2 is returned where no cgroup2 hierarchy is mounted.
var errNoCgroup2 = errors.New("no cgroup2 hierarchy is mounted")

// cgroup2Mount is the first cgroup2 hierarchy in /proc/self/mountinfo.
func cgroup2Mount() (mountEntry, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return mountEntry{}, err
	}
	for _, m := range parseMountinfo(string(b)) {
		if m.fsType == "cgroup2" {
			return m, nil
		}
	}
	return mountEntry{}, errNoCgroup2
}

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
	flags, data := remountArgs(m, on)
	if err := unix.Mount("cgroup2", m.mountPoint, "cgroup2", flags, data); err != nil {
		if errors.Is(err, unix.EINVAL) {
			return false, m.mountPoint, fmt.Errorf("remount %s with %q: %w (favordynmods needs Linux 6.0 or later)", m.mountPoint, data, err)
		}
		return false, m.mountPoint, fmt.Errorf("remount %s with %q: %w", m.mountPoint, data, err)
	}
	// The kernel applies the option only from the host's cgroup
	// namespace, silently: check.
	after, err := cgroup2Mount()
	if err != nil {
		return true, m.mountPoint, err
	}
	if hasOption(after.superOptions, "favordynmods") != on {
		return true, m.mountPoint, fmt.Errorf("remounted %s, but the kernel left favordynmods as it was (is the agent outside the host's cgroup namespace?)", m.mountPoint)
	}
	return true, m.mountPoint, nil
}
