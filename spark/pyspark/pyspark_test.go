package pyspark

import (
	"archive/zip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A directory that is not a Spark home is refused and nothing is written.
func TestInstallRefusesANonHome(t *testing.T) {
	dir := t.TempDir()
	err := Install(context.Background(), dir, Config{Cache: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "is not a Spark home") {
		t.Fatalf("Install into an empty directory: %v; want 'is not a Spark home'", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("wrote %v", ents)
	}
}

// zipFromTar keeps only the package's files, under their package path.
func TestZipFromZip(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "w.whl")
	f, _ := os.Create(src)
	zw := zip.NewWriter(f)
	for _, n := range []string{"py4j/__init__.py", "py4j/java_gateway.py", "py4j-0.10.9.7.dist-info/METADATA"} {
		w, _ := zw.Create(n)
		w.Write([]byte("x"))
	}
	zw.Close()
	f.Close()
	dst := filepath.Join(dir, "out.zip")
	if err := zipFromZip(src, "py4j/", dst); err != nil {
		t.Fatal(err)
	}
	z, err := zip.OpenReader(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	var names []string
	for _, f := range z.File {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != "py4j/__init__.py,py4j/java_gateway.py" {
		t.Errorf("zip holds %v", names)
	}
	if err := zipFromZip(src, "nothing/", filepath.Join(dir, "none.zip")); err == nil {
		t.Error("a zip of nothing was written without error")
	}
}
