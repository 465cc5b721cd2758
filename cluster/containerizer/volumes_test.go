package containerizer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tempDirIn is a directory below parent removed when the test ends (the
// tests need some below /tmp and some outside it, whatever TMPDIR says).
func tempDirIn(t *testing.T, parent string) string {
	t.Helper()
	dir, err := os.MkdirTemp(parent, "agora-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func mkdirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNativeRefusesLinksOnTheMountBackPaths: the task's /tmp is its
// sandbox's tmp, whose content the framework controls (a fetched archive
// may hold links). A link there on the path of the sandbox or of a
// volume mounted back below /tmp fails the launch, naming the link, and
// the directory it leads to on the host is neither written nor covered.
func TestNativeRefusesLinksOnTheMountBackPaths(t *testing.T) {
	eachInit(t, testNativeRefusesLinksOnTheMountBackPaths)
}

func testNativeRefusesLinksOnTheMountBackPaths(t *testing.T, cfg NativeConfig) {
	n := testNativeConfig(t, cfg)
	for _, tc := range []struct {
		name string
		// link is the path (inside the container) made a link to the
		// victim, given the sandbox and the volume's directory.
		link func(sandbox, vol string) string
	}{
		{"a directory above the volume", func(_, vol string) string { return filepath.Dir(vol) }},
		{"the volume's own path", func(_, vol string) string { return vol }},
		{"the sandbox's own path", func(sandbox, _ string) string { return sandbox }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			victim := tempDirIn(t, "/var/tmp")
			sandbox := tempDirIn(t, "/tmp")
			vol := filepath.Join(tempDirIn(t, "/tmp"), "volumes", "roles", "r", "v1")
			mkdirs(t, vol, filepath.Join(sandbox, "tmp"))
			link := tc.link(sandbox, vol)
			// Seen from the host the link is inside the sandbox's tmp.
			onHost := filepath.Join(sandbox, "tmp", strings.TrimPrefix(link, "/tmp/"))
			mkdirs(t, filepath.Dir(onHost))
			if err := os.Symlink(victim, onHost); err != nil {
				t.Fatal(err)
			}
			spec := shell(`echo escaped > escaped`)
			spec.ID, spec.Dir = "link", sandbox
			spec.Env = []string{"PATH=/usr/bin:/bin"}
			spec.Volumes = []Volume{{Dir: vol}}
			c, err := n.Launch(context.Background(), spec)
			if err == nil {
				wait(t, c)
				t.Fatalf("launch with a link at %s succeeded", link)
			}
			t.Logf("launch: %v", err)
			if !strings.Contains(err.Error(), link+" is a symbolic link") || !strings.Contains(err.Error(), victim) {
				t.Errorf("launch error %q does not name the link %s to %s", err, link, victim)
			}
			if ents, err := os.ReadDir(victim); err != nil || len(ents) != 0 {
				t.Errorf("the link's target %s holds %v (%v), want it untouched", victim, ents, err)
			}
			for _, d := range cgroupDirs(n, spec.ID) {
				if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("cgroup %s left by the refused launch", d)
				}
			}
		})
	}
}

// TestNativeRefusesAVolumeThatIsTmp: a volume (a MOUNT disk's root) that
// is /tmp itself would put the host's /tmp back over the container's; "/",
// a relative path or one inside the sandbox are refused too.
func TestNativeRefusesAVolumeThatIsTmp(t *testing.T) {
	n := testNative(t)
	spec := shell(`true`)
	spec.ID, spec.Dir = "tmpvol", t.TempDir()
	for _, v := range []string{"/tmp", "/tmp/", "/", "relative/dir", filepath.Join(spec.Dir, "in-sandbox")} {
		spec.Volumes = []Volume{{Dir: v}}
		c, err := n.Launch(context.Background(), spec)
		if err == nil {
			wait(t, c)
			t.Errorf("launch with volume %s succeeded", v)
			continue
		}
		t.Logf("launch with volume %s: %v", v, err)
		if !strings.Contains(err.Error(), "volume "+strings.TrimSuffix(filepath.Clean(v), "/")) && !strings.Contains(err.Error(), "volume \""+v) {
			t.Errorf("launch with volume %s: error %q does not name it", v, err)
		}
	}
}

// TestNativeMountsReadOnlyVolumesReadOnly: the task cannot write to its
// read-only volumes, whether mounted back below /tmp or outside it, reads
// them, and writes to its read-write one; the host's directories stay
// writable.
func TestNativeMountsReadOnlyVolumesReadOnly(t *testing.T) {
	eachInit(t, testNativeMountsReadOnlyVolumesReadOnly)
}

func testNativeMountsReadOnlyVolumesReadOnly(t *testing.T, cfg NativeConfig) {
	n := testNativeConfig(t, cfg)
	roTmp := filepath.Join(tempDirIn(t, "/tmp"), "volumes", "roles", "r", "ro")
	roOut := filepath.Join(tempDirIn(t, "/var/tmp"), "ro")
	rw := filepath.Join(tempDirIn(t, "/tmp"), "volumes", "roles", "r", "rw")
	sandbox := tempDirIn(t, "/tmp")
	mkdirs(t, roTmp, roOut, rw)
	for _, d := range []string{roTmp, roOut} {
		if err := os.WriteFile(filepath.Join(d, "seed"), []byte("seed\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec := shell(`for d in "$RO_TMP" "$RO_OUT"; do
		[ "$(cat "$d/seed")" = seed ] || { echo "cannot read $d" >&2; exit 1; }
		if echo x > "$d/new"; then echo "wrote $d" >&2; exit 2; fi
	done
	echo kept > "$RW/file"`)
	spec.ID, spec.Dir = "ro", sandbox
	spec.Env = []string{"PATH=/usr/bin:/bin", "RO_TMP=" + roTmp, "RO_OUT=" + roOut, "RW=" + rw}
	spec.Volumes = []Volume{{Dir: roTmp, ReadOnly: true}, {Dir: roOut, ReadOnly: true}, {Dir: rw}}
	c := launchNative(t, n, spec)
	if e := wait(t, c); !e.Success() {
		stderr, _ := os.ReadFile(filepath.Join(sandbox, "stderr"))
		t.Fatalf("task: %v, stderr %q", e, stderr)
	}
	for _, d := range []string{roTmp, roOut} {
		if _, err := os.Lstat(filepath.Join(d, "new")); err == nil {
			t.Errorf("the task wrote into read-only volume %s", d)
		}
		if err := os.WriteFile(filepath.Join(d, "host"), nil, 0o644); err != nil {
			t.Errorf("the host can no longer write %s: %v", d, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(rw, "file")); err != nil || string(b) != "kept\n" {
		t.Errorf("read-write volume holds %q (%v), want what the task wrote", b, err)
	}
}
