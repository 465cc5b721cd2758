// Package jvm builds the only JVM code of agora: Spark's
// ExternalClusterManager for master URLs agora://HOST:PORT and
// mesos://HOST:PORT (src/), whose scheduler backend relays a driver's
// requests for executors to the Go scheduler (spark/framework). The sources
// and their pom.xml are embedded; Jar builds them with Maven into the cache
// outside the repository, once per version of the sources.
package jvm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

//go:embed pom.xml src
var sources embed.FS

// JarName is the built jar's file name.
const JarName = "agora-spark.jar"

// DefaultDir is where built jars are kept: $AGORA_SPARK_JVM_DIR, else
// ~/.cache/agora/spark-jvm.
func DefaultDir() string {
	if d := os.Getenv("AGORA_SPARK_JVM_DIR"); d != "" {
		return d
	}
	if c, err := os.UserCacheDir(); err == nil {
		return filepath.Join(c, "agora", "spark-jvm")
	}
	return filepath.Join(os.TempDir(), "agora-spark-jvm")
}

// Version is a digest of the embedded sources: a jar is rebuilt only when
// they change.
func Version() string { return Digest(sources) }

// Digest is a digest of the files of src, which names a build of them.
func Digest(src fs.FS) string {
	h := sha256.New()
	var names []string
	_ = fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	sort.Strings(names)
	for _, n := range names {
		b, _ := fs.ReadFile(src, n)
		fmt.Fprintf(h, "%s %d\n", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Jar returns the path of the built cluster manager jar under dir
// ("" is DefaultDir), building it with mvn if it is not there. Maven runs
// offline first (its repository is a cache), and online only if that
// fails.
func Jar(ctx context.Context, dir, mvn string) (string, error) {
	if dir == "" {
		dir = DefaultDir()
	}
	jar, err := Build(ctx, sources, JarName, dir, mvn)
	if err != nil {
		return "", fmt.Errorf("spark cluster manager: %w", err)
	}
	return jar, nil
}

// Build builds the Maven project src (a pom.xml whose package goal makes
// target/JARNAME) into DIR/<digest of src>/JARNAME and returns that path;
// a jar already there is returned as it is. mvn "" is mvn on PATH. Maven
// runs offline first (its repository is a cache), and online only if that
// fails; the jar is renamed into place, so no reader sees half of one.
func Build(ctx context.Context, src fs.FS, jarName, dir, mvn string) (string, error) {
	if mvn == "" {
		mvn = "mvn"
	}
	out := filepath.Join(dir, Digest(src), jarName)
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if _, err := exec.LookPath(mvn); err != nil {
		return "", fmt.Errorf("Maven (%s) is not installed: %w (Debian: apt-get install maven)", mvn, err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	build, err := os.MkdirTemp(filepath.Dir(out), "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(build)
	if err := os.CopyFS(build, src); err != nil {
		return "", fmt.Errorf("copy the sources: %w", err)
	}
	var log string
	for _, offline := range []bool{true, false} {
		if log, err = maven(ctx, mvn, build, offline); err == nil {
			break
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("maven: %w", ctx.Err())
		}
	}
	if err != nil {
		return "", fmt.Errorf("maven failed (%v): %s", err, reason(log))
	}
	if err := os.Rename(filepath.Join(build, "target", jarName), out); err != nil {
		return "", err
	}
	return out, nil
}

func maven(ctx context.Context, mvn, dir string, offline bool) (string, error) {
	args := []string{"-B", "-q", "--no-transfer-progress", "-f", filepath.Join(dir, "pom.xml"), "package"}
	if offline {
		args = append([]string{"-o"}, args...)
	}
	cmd := exec.CommandContext(ctx, mvn, args...)
	cmd.Dir = dir
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	return b.String(), err
}

// reason is Maven's first error lines.
func reason(out string) string {
	var errs []string
	for _, l := range strings.Split(out, "\n") {
		if e, ok := strings.CutPrefix(strings.TrimSpace(l), "[ERROR]"); ok && strings.TrimSpace(e) != "" && len(errs) < 4 {
			errs = append(errs, strings.TrimSpace(e))
		}
	}
	if len(errs) == 0 {
		return strings.TrimSpace(out)
	}
	return strings.Join(errs, "; ")
}
