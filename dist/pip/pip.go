// Package pip downloads pinned files from PyPI with pip into a cache:
// each file named by its requirement, its file name and its SHA-256, and
// fetched once. A cached file whose checksum is not the pinned one is
// fetched again; a download whose checksum is not the pinned one is an
// error naming both.
package pip

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// downloadWait bounds one pip download.
const downloadWait = 20 * time.Minute

// A Pin is one file from PyPI.
type Pin struct {
	Req    string // pip's requirement, NAME==VERSION
	File   string // the file pip saves
	SHA256 string
	// Args are more `pip download` arguments (which distribution to
	// take, e.g. --no-binary :all: for a source distribution).
	Args []string
}

// Config says where to download to and what runs pip.
type Config struct {
	// Cache holds the downloads (default ~/.cache/agora/pip,
	// AGORA_PIP_CACHE).
	Cache string
	// Python runs pip (default python3).
	Python string
	// Log receives progress; nil discards it.
	Log io.Writer
}

// withDefaults fills in what c leaves empty.
func (c Config) withDefaults() (Config, error) {
	if c.Cache == "" {
		c.Cache = os.Getenv("AGORA_PIP_CACHE")
	}
	if c.Cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return c, fmt.Errorf("no cache directory: %w", err)
		}
		c.Cache = filepath.Join(dir, "agora", "pip")
	}
	if c.Python == "" {
		c.Python = "python3"
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c, nil
}

// Download returns the cached file of each pin, in order, downloading
// those not there with the right checksum.
func Download(ctx context.Context, c Config, pins ...Pin) ([]string, error) {
	c, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range pins {
		f, err := download(ctx, c, p)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

func download(ctx context.Context, c Config, pin Pin) (string, error) {
	p := filepath.Join(c.Cache, pin.File)
	if got, err := fileSHA256(p); err == nil && got == pin.SHA256 {
		return p, nil
	}
	if err := os.MkdirAll(c.Cache, 0o755); err != nil {
		return "", err
	}
	// A damaged or foreign file of that name goes first: pip keeps a file
	// already in -d rather than fetching it again.
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	fmt.Fprintf(c.Log, "pip download %s into %s\n", pin.Req, c.Cache)
	ctx, cancel := context.WithTimeout(ctx, downloadWait)
	defer cancel()
	args := append([]string{"-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-d", c.Cache}, pin.Args...)
	cmd := exec.CommandContext(ctx, c.Python, append(args, pin.Req)...)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("not done within %v", downloadWait)
		}
		return "", fmt.Errorf("pip download %s: %v\n%s", pin.Req, err, tail(out))
	}
	got, err := fileSHA256(p)
	if err != nil {
		return "", fmt.Errorf("pip download %s did not give %s: %w", pin.Req, pin.File, err)
	}
	if got != pin.SHA256 {
		return "", fmt.Errorf("%s has SHA-256 %s, want %s", p, got, pin.SHA256)
	}
	return p, nil
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
