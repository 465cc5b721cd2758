package framework

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// underTmp reports whether path lies below the system's temporary
// directory.
func underTmp(path string) bool {
	tmp := filepath.Clean(os.TempDir())
	p := filepath.Clean(path)
	return p == tmp || strings.HasPrefix(p, tmp+string(filepath.Separator))
}

// stageExecutor copies an executor binary that lives under /tmp (as with
// `go run`) into the state directory: agents that isolate containers give
// each its own /tmp, where the binary would not be found. The copy is
// refreshed when the binary changes.
func stageExecutor(bin, stateDir string) (string, error) {
	src, err := os.Stat(bin)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(stateDir, "bin", filepath.Base(bin))
	if cur, err := os.Stat(dst); err == nil && cur.Size() == src.Size() && !cur.ModTime().Before(src.ModTime()) {
		return dst, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	in, err := os.Open(bin)
	if err != nil {
		return "", err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".agora-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return "", fmt.Errorf("copy %s: %w", bin, err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return dst, os.Rename(tmp.Name(), dst)
}
