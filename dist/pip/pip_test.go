package pip

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A download whose checksum is not the pinned one is refused, naming both.
func TestDownloadChecksum(t *testing.T) {
	cache := t.TempDir()
	pin := Pin{Req: "py4j==0.10.9.7", File: "py4j-0.10.9.7-py2.py3-none-any.whl", SHA256: "85defdfd2b2376eb3abf5ca6474b51ab7e0de341c75a02f46dc9b5976f5a5c1b"}
	// A cached file with other content is downloaded again: here by a
	// "python" that writes a wrong file, and, like pip, keeps a file that
	// is already there.
	if err := os.WriteFile(filepath.Join(cache, pin.File), []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(t.TempDir(), "python")
	script := "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = -d ] && dir=$2; shift; done\n[ -e \"$dir/" + pin.File + "\" ] || echo wrong > \"$dir/" + pin.File + "\"\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := Download(ctx, Config{Cache: cache, Python: fake}, pin)
	if err == nil || !strings.Contains(err.Error(), "want "+pin.SHA256) {
		t.Fatalf("Download = %v; want a checksum mismatch", err)
	}
	if b, _ := os.ReadFile(filepath.Join(cache, pin.File)); string(b) != "wrong\n" {
		t.Fatalf("the stale cached file was not downloaded again: %q", b)
	}
}

// A cached file with the pinned checksum is used as it is: pip is not run.
func TestDownloadCached(t *testing.T) {
	cache := t.TempDir()
	f := filepath.Join(cache, "x.whl")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, _ := fileSHA256(f)
	got, err := Download(context.Background(), Config{Cache: cache, Python: "/nonexistent/python"}, Pin{Req: "x==1", File: "x.whl", SHA256: sum})
	if err != nil || len(got) != 1 || got[0] != f {
		t.Fatalf("Download = %v, %v; want [%s]", got, err, f)
	}
}
