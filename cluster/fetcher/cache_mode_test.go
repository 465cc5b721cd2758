package fetcher

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The cache directory is the agent's alone (0700): other local users
// cannot list which frameworks fetched what. One an older agent left
// open (0755) is closed when the fetcher starts, its files kept out of
// reach by the directory alone.
func TestCacheDirIsPrivate(t *testing.T) {
	for _, existing := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "fetcher-cache")
		if existing {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		newTestFetcher(t, Config{CacheDir: dir, CacheSize: 1 << 20})
		st, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Errorf("cache directory (existing before: %v) has mode %v, want 0700", existing, st.Mode().Perm())
		}
	}
}

// A cache directory every user may write into (a sticky /tmp-like one, or
// a world-writable one) is refused, naming it, and keeps its mode.
func TestSharedCacheDirIsRefused(t *testing.T) {
	for _, mode := range []os.FileMode{0o777 | os.ModeSticky, 0o777} {
		dir := filepath.Join(t.TempDir(), "shared")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		_, err := New(Config{CacheDir: dir, CacheSize: 1 << 20})
		if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "writable by every user") {
			t.Errorf("cache in a directory of mode %v: %v, want a refusal naming it", mode, err)
		}
		if st, err := os.Stat(dir); err != nil || st.Mode()&(os.ModePerm|os.ModeSticky) != mode {
			t.Errorf("the shared directory's mode changed: %v, %v; want %v", st.Mode(), err, mode)
		}
	}
}
