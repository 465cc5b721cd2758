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

func TestCheckConfRefusesWorkers(t *testing.T) {
	top, _ := loadExample(t)
	if err := CheckConf(top, nil); err != nil {
		t.Fatalf("the example (1 worker): %v", err)
	}
	err := CheckConf(top, map[string]any{KeyWorkers: 2.0})
	if err == nil || !strings.Contains(err.Error(), "topology.workers is 2") {
		t.Errorf("2 workers: %v", err)
	}
	if _, err := Start(t.Context(), top, Options{Conf: map[string]any{KeyWorkers: 3}}); err == nil || !strings.Contains(err.Error(), "topology.workers is 3") {
		t.Errorf("Start with 3 workers: %v", err)
	}
}
