package containerizer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"golang.org/x/sys/unix"
)

// A cgroup2 line of mountinfo is found among others, its escaped mount
// point read back, and a remount repeats every option of the mount and of
// the file system but favordynmods, which it sets as asked.
func TestFavorDynModsRemountArgs(t *testing.T) {
	info := strings.Join([]string{
		`25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw`,
		`31 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755`,
		`32 31 0:27 / /sys/fs/cgroup/uni\040fied rw,nosuid,nodev,noexec,relatime shared:10 master:3 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot`,
		`garbage line`,
		`33 31 0:28 / /sys/fs/cgroup/cpu rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpu`,
	}, "\n")
	var cg2 []mountEntry
	for _, m := range parseMountinfo(info) {
		if m.fsType == "cgroup2" {
			cg2 = append(cg2, m)
		}
	}
	if len(cg2) != 1 || cg2[0].mountPoint != "/sys/fs/cgroup/uni fied" || cg2[0].mountOptions != "rw,nosuid,nodev,noexec,relatime" || cg2[0].superOptions != "rw,nsdelegate,memory_recursiveprot" {
		t.Fatalf("cgroup2 mounts: %+v; want the one at /sys/fs/cgroup/uni fied with its options", cg2)
	}
	flags, data := remountArgs(cg2[0], true)
	if want := uintptr(unix.MS_REMOUNT | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RELATIME); flags != want {
		t.Errorf("remount flags %#x, want %#x (the mount's own options kept)", flags, want)
	}
	if data != "nsdelegate,memory_recursiveprot,favordynmods" {
		t.Errorf("remount data %q; want the file system's options and favordynmods", data)
	}
	on := cg2[0]
	on.mountOptions, on.superOptions = "ro,noatime", "rw,favordynmods,nsdelegate"
	flags, data = remountArgs(on, false)
	if want := uintptr(unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOATIME); flags != want || data != "nsdelegate" {
		t.Errorf("turning it off: flags %#x data %q; want %#x and only nsdelegate", flags, data, want)
	}
	if unescapeMountinfo(`a\134b\040`) != `a\b ` || unescapeMountinfo(`a\04`) != `a\04` {
		t.Errorf("unescape: %q %q", unescapeMountinfo(`a\134b\040`), unescapeMountinfo(`a\04`))
	}
}

// A native containerizer asked to favour dynamic cgroup changes leaves the
// machine's cgroup2 hierarchy with favordynmods on and every other option
// of the mount as it was; its containers run. The machine's setting is put
// back as it was found (on kernels that keep the cheap lock once it was
// on, only the mount option shows it).
func TestNativeTurnsOnFavorDynMods(t *testing.T) {
	tier.Need(t, tier.Root, tier.RootErr())
	before, err := cgroup2Mount()
	if errors.Is(err, errNoCgroup2) {
		t.Skip("no cgroup2 hierarchy is mounted, so favordynmods cannot be set")
	}
	if err != nil {
		t.Fatal(err)
	}
	wasOn := hasOption(before.superOptions, "favordynmods")
	t.Cleanup(func() {
		if _, _, err := setFavorDynMods(wasOn); err != nil {
			t.Errorf("putting favordynmods back (on: %v): %v", wasOn, err)
		}
	})
	if wasOn {
		if _, _, err := setFavorDynMods(false); err != nil {
			t.Fatalf("turning favordynmods off to start from it: %v", err)
		}
	}
	n := testNativeConfig(t, NativeConfig{CgroupPool: 1, FavorDynMods: true})
	after, err := cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	if !hasOption(after.superOptions, "favordynmods") {
		if strings.Contains(dmesgTail(), "Unknown parameter 'favordynmods'") {
			t.Skipf("this kernel has no favordynmods (cgroup2 options %s)", after.superOptions)
		}
		t.Fatalf("cgroup2 at %s: options %s; want favordynmods", after.mountPoint, after.superOptions)
	}
	if after.mountOptions != before.mountOptions {
		t.Errorf("the mount's options became %s; were %s", after.mountOptions, before.mountOptions)
	}
	strip := func(opts string) string {
		var keep []string
		for _, o := range strings.Split(opts, ",") {
			if o != "favordynmods" {
				keep = append(keep, o)
			}
		}
		return strings.Join(keep, ",")
	}
	if strip(after.superOptions) != strip(before.superOptions) {
		t.Errorf("the file system's options became %s; were %s", after.superOptions, before.superOptions)
	}
	if !strings.Contains(n.Describe(), "favordynmods") {
		t.Errorf("Describe() = %q; want it to say favordynmods is on", n.Describe())
	}
	// Already on: nothing to do, nothing changed.
	if changed, _, err := setFavorDynMods(true); err != nil || changed {
		t.Errorf("setFavorDynMods(true) again: changed %v, %v; want no change", changed, err)
	}
	spec := shell("exit 3")
	spec.CPUs, spec.MemMB = 0.1, 64
	c := launchNative(t, n, spec)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if ex, err := c.Wait(ctx); err != nil || ex.Code != 3 {
		t.Errorf("a container with favordynmods on: %+v, %v; want exit 3", ex, err)
	}
}

// dmesgTail is the kernel's last messages, or "" where they cannot be read.
func dmesgTail() string {
	buf := make([]byte, 64<<10)
	n, err := unix.Klogctl(3, buf) // SYSLOG_ACTION_READ_ALL
	if err != nil || n <= 0 {
		return ""
	}
	return string(buf[:n])
}
