package containerizer

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Each level of the containers' root is given at least the weight asked
// for, and a level that weighs more already keeps its weight.
func TestNativeWeighsItsRoot(t *testing.T) {
	n := testNativeConfig(t, NativeConfig{RootCPUShares: 3072})
	if n.h.version() != 1 {
		t.Skip("cgroup v2: the weight is cpu.weight, checked on v1 only")
	}
	top := strings.SplitN(n.Root(), "/", 2)[0]
	levels := []string{filepath.Join("/sys/fs/cgroup/cpu", top), filepath.Join("/sys/fs/cgroup/cpu", n.Root())}
	for _, dir := range levels {
		b, err := os.ReadFile(filepath.Join(dir, "cpu.shares"))
		if v, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err != nil || perr != nil || v < 3072 {
			t.Errorf("%s/cpu.shares = %q, %v; want at least 3072", dir, b, err)
		}
	}
	leaf := filepath.Join(levels[1], "cpu.shares")
	if err := os.WriteFile(leaf, []byte("9000"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed, err := n.weighRoot(2048)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(leaf); strings.TrimSpace(string(b)) != "9000" || len(changed) != 0 {
		t.Errorf("after asking for less: %s = %q, changed %v; want 9000 kept and nothing changed", leaf, b, changed)
	}
	c := launchNative(t, n, Spec{Path: "/bin/true", Args: []string{"true"}, CPUs: 0.25})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if ex, err := c.Wait(ctx); err != nil || ex.Code != 0 {
		t.Errorf("a container under the weighed root: %+v, %v", ex, err)
	}
}

// The root's weight is 1024 a CPU, never under the default or over what
// the kernel keeps; on cgroup v2 it is in proportion to v2's default.
func TestRootCPUSharesBounds(t *testing.T) {
	for _, c := range []struct {
		cpus float64
		want uint64
	}{{0, 1024}, {-1, 1024}, {0.5, 1024}, {2, 2048}, {2.5, 2560}, {1e6, maxCPUShares}} {
		if got := DefaultRootCPUShares(c.cpus); got != c.want {
			t.Errorf("DefaultRootCPUShares(%v) = %d, want %d", c.cpus, got, c.want)
		}
	}
	if got := DefaultRootCPUShares(math.NaN()); got != 1024 {
		t.Errorf("DefaultRootCPUShares(NaN) = %d, want 1024", got)
	}
	for shares, want := range map[uint64]uint64{2: 1, 1024: 100, 2048: 200, 6144: 600, maxCPUShares: 10000} {
		if got := rootWeightV2(shares); got != want {
			t.Errorf("rootWeightV2(%d) = %d, want %d", shares, got, want)
		}
	}
}
