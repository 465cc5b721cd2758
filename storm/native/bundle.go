package native

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/agora-cluster/agora/storm/flux"
	"github.com/agora-cluster/agora/storm/multilang"
)

// MaxBundle bounds a bundle's encoded size: it travels in the worker
// task's environment, and Linux takes at most 128 KiB per string there.
const MaxBundle = 100 << 10

// The bundle's entries.
const (
	bundleTopology = "topology.yaml"
	bundleConf     = "conf.json"
	bundleRes      = "resources/"
)

// Bundle packs what a worker needs — the Flux file, the configuration
// overrides, the resources directory and storm.py (when the resources lack
// one) — as base64 of a gzipped tar, for the worker task's environment.
// Scripts keep their modes.
func Bundle(yaml []byte, t *flux.Topology, conf map[string]any, stormPy []byte) (string, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	add := func(name string, mode int64, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	c, err := json.Marshal(conf)
	if err != nil {
		return "", fmt.Errorf("topology %q: configuration: %w", t.Name, err)
	}
	if err := add(bundleTopology, 0o644, yaml); err != nil {
		return "", err
	}
	if err := add(bundleConf, 0o644, c); err != nil {
		return "", err
	}
	files, err := t.Scripts()
	if err != nil {
		return "", fmt.Errorf("topology %q: resources %s: %w", t.Name, t.Resources, err)
	}
	hasPy := false
	for _, f := range files {
		p := filepath.Join(t.Resources, filepath.FromSlash(f))
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		if err := add(bundleRes+f, int64(fi.Mode().Perm()), b); err != nil {
			return "", err
		}
		hasPy = hasPy || f == multilang.StormPy
	}
	if !hasPy {
		if err := add(bundleRes+multilang.StormPy, 0o644, stormPy); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := gz.Close(); err != nil {
		return "", err
	}
	s := base64.StdEncoding.EncodeToString(buf.Bytes())
	if len(s) > MaxBundle {
		return "", fmt.Errorf("topology %q: the file and resources %s come to %d KiB packed, above the %d KiB a worker task's environment carries: keep large data out of resources/", t.Name, t.Resources, len(s)>>10, MaxBundle>>10)
	}
	return s, nil
}

// Unbundle unpacks a bundle into dir and loads the topology (checking it
// again) with the configuration overrides.
func Unbundle(bundle, dir string) (*flux.Topology, map[string]any, error) {
	raw, err := base64.StdEncoding.DecodeString(bundle)
	if err != nil {
		return nil, nil, fmt.Errorf("topology bundle: %w", err)
	}
	gz, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("topology bundle: %w", err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("topology bundle: %w", err)
		}
		name := path.Clean(h.Name)
		if h.Typeflag != tar.TypeReg || path.IsAbs(name) || strings.HasPrefix(name, "..") {
			return nil, nil, fmt.Errorf("topology bundle: entry %q is not a file inside the bundle", h.Name)
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, nil, err
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, nil, fmt.Errorf("topology bundle: %w", err)
		}
		if err := os.WriteFile(p, b, os.FileMode(h.Mode).Perm()); err != nil {
			return nil, nil, err
		}
	}
	var conf map[string]any
	b, err := os.ReadFile(filepath.Join(dir, bundleConf))
	if err != nil {
		return nil, nil, fmt.Errorf("topology bundle: no %s", bundleConf)
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		return nil, nil, fmt.Errorf("topology bundle: %s: %w", bundleConf, err)
	}
	t, err := flux.Load(filepath.Join(dir, bundleTopology), filepath.Join(dir, "resources"))
	if err != nil {
		return nil, nil, err
	}
	return t, conf, nil
}
