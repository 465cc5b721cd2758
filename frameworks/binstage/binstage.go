// Package binstage puts a framework's binary where isolated tasks can run
// it. An agent that isolates containers gives each task a /tmp of its
// own, so a binary under /tmp (a test's, or `go run`'s) is not found at
// its path inside a task; the frameworks that run a binary of theirs in
// tasks (Hadoop's executor, Cassandra's health check) copy it into their
// state directory first.
package binstage

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// UnderTmp says whether path is below /tmp, which the containerizer gives
// each task a private copy of (/tmp itself, whatever $TMPDIR says).
func UnderTmp(path string) bool {
	return strings.HasPrefix(filepath.Clean(path), "/tmp/")
}

// Copy copies bin into dir/bin and returns the copy's path; the copy
// carries bin's modification time and is refreshed when bin's size or
// modification time differs from it (any rebuild), replaced by a rename,
// so a task never runs half a binary.
func Copy(bin, dir string) (string, error) {
	src, err := os.Stat(bin)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(dir, "bin", filepath.Base(bin))
	if cur, err := os.Stat(dst); err == nil && cur.Size() == src.Size() && cur.ModTime().Equal(src.ModTime()) {
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
	if err := os.Chtimes(tmp.Name(), src.ModTime(), src.ModTime()); err != nil {
		return "", err
	}
	return dst, os.Rename(tmp.Name(), dst)
}
