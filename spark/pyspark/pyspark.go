// Package pyspark adds PySpark to a Spark home: python/lib/pyspark.zip
// and python/lib/py4j-VERSION-src.zip, the layout of Spark's own
// distribution, which is where Spark looks for them (SPARK_HOME/python/lib)
// when spark-submit runs a .py application and when an executor starts
// its Python workers. Nothing else is needed: the py4j jar is already in
// the home's lib/.
//
// The Python sources come from PyPI through pip: pyspark's source
// distribution (which also carries Spark's jars, left out here) and
// py4j's wheel, both pinned by version and SHA-256 and downloaded once into
// a cache; only their Python packages are zipped into the home.
package pyspark

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/agora-cluster/agora/dist/pip"
)

// The pinned downloads: pyspark matching the distribution's Spark, py4j
// matching its lib/py4j jar.
const (
	Version     = "3.5.9"
	Py4JVersion = "0.10.9.7"
	pysparkFile = "pyspark-" + Version + ".tar.gz"
	pysparkSHA  = "ea27adc39ddac9413b8951e45aa748cbed6c785971b81386efc41938f6243d93"
	py4jFile    = "py4j-" + Py4JVersion + "-py2.py3-none-any.whl"
	py4jSHA     = "85defdfd2b2376eb3abf5ca6474b51ab7e0de341c75a02f46dc9b5976f5a5c1b"
	PysparkZip  = "pyspark.zip"
	Py4JZip     = "py4j-" + Py4JVersion + "-src.zip"
)

// Config says where to download to and what runs pip.
type Config = pip.Config

// LibDir is where a home's Python libraries are.
func LibDir(home string) string { return filepath.Join(home, "python", "lib") }

// Installed says whether home has PySpark.
func Installed(home string) bool {
	for _, f := range []string{PysparkZip, Py4JZip} {
		if _, err := os.Stat(filepath.Join(LibDir(home), f)); err != nil {
			return false
		}
	}
	return true
}

// Install adds PySpark to home (a Spark home of `agora dist install
// spark`), downloading on first use; a home that has it is left alone.
func Install(ctx context.Context, home string, c Config) error {
	if _, err := os.Stat(filepath.Join(home, "bin", "spark-submit")); err != nil {
		return fmt.Errorf("pyspark: %s is not a Spark home: %w", home, err)
	}
	if Installed(home) {
		return nil
	}
	files, err := pip.Download(ctx, c,
		pip.Pin{Req: "pyspark==" + Version, File: pysparkFile, SHA256: pysparkSHA, Args: []string{"--no-binary", ":all:"}},
		pip.Pin{Req: "py4j==" + Py4JVersion, File: py4jFile, SHA256: py4jSHA})
	if err != nil {
		return fmt.Errorf("pyspark: %w", err)
	}
	sdist, wheel := files[0], files[1]
	// Built beside the home's python/ and renamed into place, so a home
	// has both zips or neither, whoever installs at the same time.
	tmp, err := os.MkdirTemp(home, ".python-")
	if err != nil {
		return fmt.Errorf("pyspark: %w", err)
	}
	defer os.RemoveAll(tmp)
	lib := filepath.Join(tmp, "python", "lib")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		return err
	}
	if err := zipFromTar(sdist, "pyspark-"+Version+"/", "pyspark/", filepath.Join(lib, PysparkZip)); err != nil {
		return fmt.Errorf("pyspark: %s: %w", sdist, err)
	}
	if err := zipFromZip(wheel, "py4j/", filepath.Join(lib, Py4JZip)); err != nil {
		return fmt.Errorf("pyspark: %s: %w", wheel, err)
	}
	if err := os.Rename(filepath.Join(tmp, "python"), filepath.Join(home, "python")); err != nil {
		if Installed(home) {
			return nil // another installer was first
		}
		return fmt.Errorf("pyspark: %w", err)
	}
	if c.Log != nil {
		fmt.Fprintf(c.Log, "pyspark %s and py4j %s added to %s\n", Version, Py4JVersion, LibDir(home))
	}
	return nil
}

// zipFromTar zips the regular files of a .tar.gz under strip+keep as
// keep/... (e.g. pyspark-3.5.9/pyspark/x.py as pyspark/x.py).
func zipFromTar(src, strip, keep, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	return writeZip(dst, func(add func(name string, r io.Reader) error) error {
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			name, ok := strings.CutPrefix(h.Name, strip)
			if !ok || !strings.HasPrefix(name, keep) || h.Typeflag != tar.TypeReg || strings.Contains(name, "..") {
				continue
			}
			if err := add(name, tr); err != nil {
				return err
			}
		}
	})
}

// zipFromZip copies the files of a zip (a wheel) under prefix.
func zipFromZip(src, prefix, dst string) error {
	z, err := zip.OpenReader(src)
	if err != nil {
		return err
	}
	defer z.Close()
	return writeZip(dst, func(add func(name string, r io.Reader) error) error {
		for _, f := range z.File {
			if !strings.HasPrefix(f.Name, prefix) || f.FileInfo().IsDir() || strings.Contains(f.Name, "..") {
				continue
			}
			r, err := f.Open()
			if err != nil {
				return err
			}
			err = add(f.Name, r)
			r.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// writeZip writes dst from the files fill adds; a zip with none is an
// error.
func writeZip(dst string, fill func(add func(name string, r io.Reader) error) error) error {
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	zw := zip.NewWriter(out)
	n := 0
	err = fill(func(name string, r io.Reader) error {
		w, err := zw.Create(name)
		if err != nil {
			return err
		}
		n++
		_, err = io.Copy(w, r)
		return err
	})
	if err == nil && n == 0 {
		err = errors.New("no files to zip")
	}
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
