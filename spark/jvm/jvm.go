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
func Version() string {
	h := sha256.New()
	var names []string
	_ = fs.WalkDir(sources, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	sort.Strings(names)
	for _, n := range names {
		b, _ := sources.ReadFile(n)
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
	if mvn == "" {
		mvn = "mvn"
	}
	out := filepath.Join(dir, Version(), JarName)
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if _, err := exec.LookPath(mvn); err != nil {
		return "", fmt.Errorf("spark cluster manager: Maven (%s) is not installed: %w (Debian: apt-get install maven)", mvn, err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("spark cluster manager: %w", err)
	}
	src, err := os.MkdirTemp(filepath.Dir(out), "build-")
	if err != nil {
		return "", fmt.Errorf("spark cluster manager: %w", err)
	}
	defer os.RemoveAll(src)
	if err := os.CopyFS(src, sources); err != nil {
		return "", fmt.Errorf("spark cluster manager: copy the sources: %w", err)
	}
	var log string
	for _, offline := range []bool{true, false} {
		if log, err = maven(ctx, mvn, src, offline); err == nil {
			break
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("spark cluster manager: maven: %w", ctx.Err())
		}
	}
	if err != nil {
		return "", fmt.Errorf("spark cluster manager: maven failed (%v): %s", err, reason(log))
	}
	// Rename, so that a concurrent build or a reader never sees half a jar.
	if err := os.Rename(filepath.Join(src, "target", JarName), out); err != nil {
		return "", fmt.Errorf("spark cluster manager: %w", err)
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
