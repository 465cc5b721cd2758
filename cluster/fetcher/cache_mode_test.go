package fetcher

import (
	"os"
	"path/filepath"
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
