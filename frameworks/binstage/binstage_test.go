package binstage

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// UnderTmp means /tmp, as the containerizer does, whatever TMPDIR says.
func TestUnderTmp(t *testing.T) {
	t.Setenv("TMPDIR", "/var/tmp")
	for path, want := range map[string]bool{"/tmp/go-build1/agora": true, "/tmp": false, "/var/tmp/agora": false, "/tmpx/agora": false} {
		if got := UnderTmp(path); got != want {
			t.Errorf("UnderTmp(%q) = %v, want %v", path, got, want)
		}
	}
}

// Copy makes an executable copy, keeps it while the binary is unchanged
// and refreshes it when the binary changes.
func TestCopy(t *testing.T) {
	src := filepath.Join(t.TempDir(), "tool")
	if err := os.WriteFile(src, []byte("v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dst, err := Copy(src, dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "v1" || dst != filepath.Join(dir, "bin", "tool") {
		t.Fatalf("copy at %s holds %q", dst, b)
	}
	if fi, _ := os.Stat(dst); fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("the copy is not executable: %v", fi.Mode())
	}
	if err := os.WriteFile(src, []byte("version 2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Copy(src, dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "version 2" {
		t.Errorf("after the binary changed the copy holds %q", b)
	}
	// A rebuild of the same size with an older time (a copy that kept its
	// mtime) is a change too.
	if err := os.WriteFile(src, []byte("version 3"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(src, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := Copy(src, dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "version 3" {
		t.Errorf("after a same-size rebuild with an older time the copy holds %q", b)
	}
	if _, err := Copy(filepath.Join(t.TempDir(), "missing"), dir); err == nil {
		t.Error("a missing binary was copied")
	}
}
