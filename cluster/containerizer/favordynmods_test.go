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

// The visible cgroup2 line of mountinfo is found among others (one that a
// later mount covers is not), its escaped mount point read back, and a
// reconfiguration repeats every option of the file system but
// favordynmods, which it sets as asked.
func TestFavorDynModsOptions(t *testing.T) {
	info := strings.Join([]string{
		`25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw`,
		`31 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755`,
		`40 31 0:27 / /sys/fs/cgroup/covered rw,relatime - cgroup2 cgroup2 rw`,
		`41 40 0:29 / /sys/fs/cgroup/covered rw,relatime - tmpfs tmpfs rw`,
		`32 31 0:27 / /sys/fs/cgroup/uni\040fied rw,nosuid,nodev,noexec,relatime shared:10 master:3 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot`,
		`garbage line`,
		`33 31 0:28 / /sys/fs/cgroup/cpu rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpu`,
	}, "\n")
	m, err := firstCgroup2(parseMountinfo(info))
	if err != nil || m.mountPoint != "/sys/fs/cgroup/uni fied" || m.mountOptions != "rw,nosuid,nodev,noexec,relatime" || m.superOptions != "rw,nsdelegate,memory_recursiveprot" {
		t.Fatalf("cgroup2 mount: %+v, %v; want the visible one at /sys/fs/cgroup/uni fied with its options", m, err)
	}
	if got := strings.Join(superOptions(m, true), ","); got != "nsdelegate,memory_recursiveprot,favordynmods" {
		t.Errorf("options to turn it on: %q; want the file system's options and favordynmods", got)
	}
	m.superOptions = "ro,favordynmods,nsdelegate"
	if got := strings.Join(superOptions(m, false), ","); got != "nsdelegate" {
		t.Errorf("options to turn it off: %q; want only nsdelegate", got)
	}
	if _, err := firstCgroup2(parseMountinfo(`41 40 0:29 / /x rw - tmpfs tmpfs rw`)); !errors.Is(err, errNoCgroup2) {
		t.Errorf("no cgroup2 mount: %v; want errNoCgroup2", err)
	}
	if unescapeMountinfo(`a\134b\040`) != `a\b ` || unescapeMountinfo(`a\04`) != `a\04` {
		t.Errorf("unescape: %q %q", unescapeMountinfo(`a\134b\040`), unescapeMountinfo(`a\04`))
	}
}

// A native containerizer asked to favour dynamic cgroup changes leaves the
// machine's cgroup2 hierarchy with favordynmods on and every other option
// of the mount as it was; its containers run. The machine's setting is put
// back as it was found (on kernels that keep the cheap lock once it was
// on, only the mount option shows it). Neither the mount's own flags nor
// the file system's other options change.
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
	// Where the machine does not let the agent set it (no CAP_SYS_ADMIN,
	// a kernel before 6.0, a cgroup namespace of its own), the agent
	// logs why and goes on: nothing to check here.
	if _, _, err := setFavorDynMods(true); errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) || errors.Is(err, errNotApplied) {
		t.Skipf("this machine does not let favordynmods be set: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, _, err := setFavorDynMods(wasOn); err != nil {
			t.Errorf("putting favordynmods back (on: %v): %v", wasOn, err)
		}
	})
	if _, _, err := setFavorDynMods(false); err != nil {
		t.Fatalf("turning favordynmods off to start from it: %v", err)
	}
	n := testNativeConfig(t, NativeConfig{CgroupPool: 1, FavorDynMods: true})
	after, err := cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	if !hasOption(after.superOptions, "favordynmods") {
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
	// It names the program every container starts as its init.
	wantInit := n.cfg.InitPath
	if wantInit == "/proc/self/exe" {
		wantInit = "this binary"
	}
	if d := n.Describe(); !strings.HasSuffix(d, "; container init: "+wantInit) {
		t.Errorf("Describe() = %q; want it to end with the container init, %s", d, wantInit)
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
