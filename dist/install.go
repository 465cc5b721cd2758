package dist

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

// ManifestFile is the file in a home that records what was installed.
const ManifestFile = "dist.json"

// Manifest is a home's dist.json: the distribution and the SHA-256 of
// every file the install laid out.
type Manifest struct {
	Dist
	Installed time.Time `json:"installed"`
	// Description is the SHA-256 of the description the home was
	// assembled from: a binary with a changed description assembles the
	// home again.
	Description string `json:"description"`
	// Files maps each file's path in the home (slash-separated) to its
	// SHA-256, hex.
	Files map[string]string `json:"files"`
}

// Installer installs distributions into a cache directory.
type Installer struct {
	// Dir is the cache (default DefaultDir()).
	Dir string
	// Maven is the mvn command (default "mvn" on PATH).
	Maven string
	// Log receives progress lines (default: discarded).
	Log io.Writer

	// descriptions replaces the embedded descriptions (tests).
	descriptions fs.FS
}

// Installed is one home in the cache.
type Installed struct {
	Manifest
	Home string `json:"home"`
	// Bytes is the size of the recorded files.
	Bytes int64 `json:"bytes"`
}

func (in Installer) dir() string {
	if in.Dir != "" {
		return in.Dir
	}
	return DefaultDir()
}

func (in Installer) logf(format string, a ...any) {
	if in.Log != nil {
		fmt.Fprintf(in.Log, format+"\n", a...)
	}
}

// Install makes d's home exist in the cache and returns its path. A home
// already there whose files match its manifest is returned as it is,
// without asking any registry; one that does not match (a file changed or
// missing, an install interrupted) is assembled again.
func (in Installer) Install(ctx context.Context, d Dist) (string, error) {
	dir := in.dir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("install %s: cache directory: %w", d, err)
	}
	unlock, err := lock(ctx, filepath.Join(dir, ".lock"))
	if err != nil {
		return "", fmt.Errorf("install %s: %w", d, err)
	}
	defer unlock()
	// Staging directories of installs that were killed midway (under the
	// lock no other install is using them).
	if old, _ := filepath.Glob(filepath.Join(dir, "."+d.Dir()+"-*")); len(old) > 0 {
		for _, o := range old {
			os.RemoveAll(o)
		}
	}

	desc, err := d.description(in.descriptions)
	if err != nil {
		return "", err
	}
	descSum, err := descriptionSHA256(desc)
	if err != nil {
		return "", fmt.Errorf("install %s: %w", d, err)
	}
	home := filepath.Join(dir, d.Dir())
	if _, err := os.Stat(home); err == nil {
		m, merr := ReadManifest(home)
		switch err := Verify(home); {
		case err != nil:
			in.logf("agora dist: %s at %s does not verify (%v); assembling it again", d, home, err)
		case merr == nil && m.Description != descSum:
			in.logf("agora dist: %s at %s was assembled from another description; assembling it again", d, home)
		default:
			return home, nil
		}
		if err := os.RemoveAll(home); err != nil {
			return "", fmt.Errorf("install %s: remove the broken home %s: %w", d, home, err)
		}
	}
	staging, err := os.MkdirTemp(dir, "."+d.Dir()+"-")
	if err != nil {
		return "", fmt.Errorf("install %s: %w", d, err)
	}
	defer os.RemoveAll(staging)
	if err := layOut(desc, staging); err != nil {
		return "", fmt.Errorf("install %s: lay out the home: %w", d, err)
	}
	in.logf("agora dist: fetching %s's jars from Maven Central (checksums verified)", d)
	if err := in.maven(ctx, d, staging); err != nil {
		return "", err
	}
	for _, x := range d.Extract {
		if err := extract(staging, x); err != nil {
			return "", fmt.Errorf("install %s: %w", d, err)
		}
	}
	m := Manifest{Dist: d, Installed: time.Now().UTC(), Description: descSum, Files: map[string]string{}}
	if err := filepath.WalkDir(staging, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(staging, p)
		sum, err := fileSHA256(p)
		m.Files[filepath.ToSlash(rel)] = sum
		return err
	}); err != nil {
		return "", fmt.Errorf("install %s: %w", d, err)
	}
	if n := len(m.jars()); n == 0 {
		return "", fmt.Errorf("install %s: maven copied no jars into lib/", d)
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(staging, ManifestFile), append(b, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("install %s: %w", d, err)
	}
	if err := syncDir(staging); err != nil {
		return "", fmt.Errorf("install %s: %w", d, err)
	}
	if err := os.Rename(staging, home); err != nil {
		return "", fmt.Errorf("install %s: %w", d, err)
	}
	if err := syncDir(dir); err != nil {
		return "", fmt.Errorf("install %s: %w", d, err)
	}
	in.logf("agora dist: %s installed: %d jars", d, len(m.jars()))
	return home, nil
}

func (m Manifest) jars() []string {
	var j []string
	for p := range m.Files {
		if strings.HasPrefix(p, "lib/") && strings.HasSuffix(p, ".jar") {
			j = append(j, p)
		}
	}
	sort.Strings(j)
	return j
}

// layOut copies the description's files, all but the POM's build
// directory, into home; files under bin/ are executable.
func layOut(desc fs.FS, home string) error {
	return fs.WalkDir(desc, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		dst := filepath.Join(home, filepath.FromSlash(p))
		if e.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := fs.ReadFile(desc, p)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(p, "bin/") {
			mode = 0o755
		}
		return os.WriteFile(dst, b, mode)
	})
}

// extract unpacks x's entries into home.
func extract(home string, x Extract) error {
	z, err := zip.OpenReader(filepath.Join(home, filepath.FromSlash(x.Jar)))
	if err != nil {
		return fmt.Errorf("unpack %s from %s: %w", x.Prefix, x.Jar, err)
	}
	defer z.Close()
	n := 0
	for _, f := range z.File {
		if !strings.HasPrefix(f.Name, x.Prefix) || strings.Contains(f.Name, "..") {
			continue
		}
		dst := filepath.Join(home, filepath.FromSlash(x.Into), filepath.FromSlash(f.Name))
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		r, err := f.Open()
		if err != nil {
			return fmt.Errorf("unpack %s from %s: %w", f.Name, x.Jar, err)
		}
		w, err := os.Create(dst)
		if err == nil {
			_, err = io.Copy(w, r)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
		r.Close()
		if err != nil {
			return fmt.Errorf("unpack %s from %s: %w", f.Name, x.Jar, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s holds nothing under %s", x.Jar, x.Prefix)
	}
	return nil
}

// missingArtifact picks the artifact Maven names in a resolution failure.
var missingArtifact = regexp.MustCompile(`(?:Could not (?:find|transfer|resolve) artifact|Failure to find|Checksum validation failed[^:]*:?)\s*([^\s]+)?`)

// maven copies the runtime dependencies of the description's POM into
// home/lib, with strict checksums.
func (in Installer) maven(ctx context.Context, d Dist, home string) error {
	mvn := in.Maven
	if mvn == "" {
		mvn = "mvn"
	}
	if _, err := exec.LookPath(mvn); err != nil {
		return fmt.Errorf("install %s: Maven (%s) is not installed: %w (Debian: apt-get install maven)", d, mvn, err)
	}
	cmd := exec.CommandContext(ctx, mvn, "-B", "-C", "--no-transfer-progress",
		"-f", filepath.Join(home, "pom.xml"),
		"dependency:copy-dependencies",
		"-DoutputDirectory="+filepath.Join(home, "lib"),
		"-DincludeScope=runtime")
	cmd.Dir = home
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("install %s: %w", d, ctx.Err())
		}
		return fmt.Errorf("install %s: maven failed (%v): %s", d, err, mavenReason(out.String()))
	}
	_ = os.RemoveAll(filepath.Join(home, "target"))
	return nil
}

// mavenReason is the part of Maven's output that says what failed: the
// artifacts it could not fetch, or its first error lines.
func mavenReason(out string) string {
	var arts, errs []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if m := missingArtifact.FindStringSubmatch(l); m != nil && m[1] != "" && !seen[m[1]] {
			seen[m[1]] = true
			arts = append(arts, m[1])
		}
		if strings.HasPrefix(l, "[ERROR]") && len(errs) < 3 {
			if e := strings.TrimSpace(strings.TrimPrefix(l, "[ERROR]")); e != "" {
				errs = append(errs, e)
			}
		}
	}
	switch {
	case len(arts) > 0:
		return "could not fetch " + strings.Join(arts, ", ") + " (" + strings.Join(errs, "; ") + ")"
	case len(errs) > 0:
		return strings.Join(errs, "; ")
	}
	out = strings.TrimSpace(out)
	if len(out) > 2000 {
		out = out[len(out)-2000:]
	}
	return out
}

// Verify checks that home's files match its manifest.
func Verify(home string) error {
	m, err := ReadManifest(home)
	if err != nil {
		return err
	}
	if len(m.jars()) == 0 {
		return fmt.Errorf("%s: its manifest lists no jars", home)
	}
	for p, want := range m.Files {
		got, err := fileSHA256(filepath.Join(home, filepath.FromSlash(p)))
		if err != nil {
			return fmt.Errorf("%s: %w", home, err)
		}
		if got != want {
			return fmt.Errorf("%s: %s has SHA-256 %s, the install recorded %s", home, p, got, want)
		}
	}
	return nil
}

// ReadManifest reads home's dist.json.
func ReadManifest(home string) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(home, ManifestFile))
	if err != nil {
		return m, fmt.Errorf("%s is not an installed distribution: %w", home, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", filepath.Join(home, ManifestFile), err)
	}
	return m, nil
}

// List is every home in dir (default DefaultDir()), by name and version.
// Directories that are not homes (staging, the lock) are left out.
func List(dir string) ([]Installed, error) {
	if dir == "" {
		dir = DefaultDir()
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Installed
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		home := filepath.Join(dir, e.Name())
		m, err := ReadManifest(home)
		if err != nil {
			continue
		}
		in := Installed{Manifest: m, Home: home}
		for p := range m.Files {
			if st, err := os.Stat(filepath.Join(home, filepath.FromSlash(p))); err == nil {
				in.Bytes += st.Size()
			}
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Home < out[j].Home })
	return out, nil
}

// descriptionSHA256 hashes every file of a description, names included.
func descriptionSHA256(desc fs.FS) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(desc, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := fs.ReadFile(desc, p)
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
		return err
	})
	return hex.EncodeToString(h.Sum(nil)), err
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

func syncDir(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// lock takes an exclusive flock on path, polling so that ctx bounds the
// wait; the returned function releases it.
func lock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock the cache: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock the cache %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for another install into %s: %w", filepath.Dir(path), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
