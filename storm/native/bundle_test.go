package native

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	wordcount "github.com/agora-cluster/agora/examples/storm-wordcount"
	"github.com/agora-cluster/agora/storm/flux"
)

func loadExample(t *testing.T) (*flux.Topology, []byte) {
	t.Helper()
	path, err := wordcount.WriteTo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	top, err := flux.Load(path, "")
	if err != nil {
		t.Fatal(err)
	}
	yaml, _ := os.ReadFile(path)
	return top, yaml
}

func TestBundleRoundTrip(t *testing.T) {
	top, yaml := loadExample(t)
	os.Chmod(filepath.Join(top.Resources, "split.py"), 0o755)
	b, err := Bundle(yaml, top, map[string]any{"wordcount.repeat": 3.0}, []byte("# storm.py\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	got, conf, err := Unbundle(b, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "wordcount" || len(got.Bolts) != 2 || conf["wordcount.repeat"] != 3.0 {
		t.Errorf("unbundled %q with %d bolts, conf %v", got.Name, len(got.Bolts), conf)
	}
	if py, err := os.ReadFile(filepath.Join(dir, "resources", "storm.py")); err != nil || string(py) != "# storm.py\n" {
		t.Errorf("storm.py: %q %v", py, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "resources", "split.py")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("split.py lost its mode: %v %v", fi, err)
	}
}

func TestBundleRefusals(t *testing.T) {
	top, yaml := loadExample(t)
	big := make([]byte, 200<<10)
	rand.Read(big)
	os.WriteFile(filepath.Join(top.Resources, "data.bin"), big, 0o644)
	if _, err := Bundle(yaml, top, nil, nil); err == nil || !strings.Contains(err.Error(), "KiB") {
		t.Errorf("a 200 KiB resource: %v, want the size refused", err)
	}

	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "../escape", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	gz.Close()
	dir := t.TempDir()
	if _, _, err := Unbundle(base64.StdEncoding.EncodeToString(buf.Bytes()), filepath.Join(dir, "in")); err == nil || !strings.Contains(err.Error(), "../escape") {
		t.Errorf("an entry outside the bundle: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "escape")); err == nil {
		t.Error("the entry was written outside the directory")
	}
	if _, _, err := Unbundle("not base64!", t.TempDir()); err == nil {
		t.Error("garbage was unbundled")
	}
}

func TestCheckWorkers(t *testing.T) {
	top, _ := loadExample(t)
	if n, err := CheckWorkers(top, nil); n != 1 || err != nil {
		t.Fatalf("the example: %d workers, %v; want 1", n, err)
	}
	if n, err := CheckWorkers(top, map[string]any{KeyWorkers: 3.0}); n != 3 || err != nil {
		t.Errorf("-c topology.workers=3: %d, %v", n, err)
	}
	for _, bad := range []any{0, 300} {
		if _, err := CheckWorkers(top, map[string]any{KeyWorkers: bad}); err == nil || !strings.Contains(err.Error(), "topology.workers is") {
			t.Errorf("topology.workers %v: %v", bad, err)
		}
	}
	// Start needs as many worker addresses as workers.
	if _, err := Start(t.Context(), top, Options{Conf: map[string]any{KeyWorkers: 3}}); err == nil || !strings.Contains(err.Error(), "topology.workers is 3") {
		t.Errorf("Start with 3 workers and no addresses: %v", err)
	}
}
