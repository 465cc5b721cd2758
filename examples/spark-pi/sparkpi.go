// Package sparkpi holds the Java SparkPi example (src/, pom.xml): Spark's
// SparkPi in Java, built from source with Maven against the Spark version
// of `agora dist install spark`. Jar builds it into the cache outside the
// repository, as build.sh does; Source is the class's source for the
// tests' own application jar; Parse and Tolerance check what it prints.
package sparkpi

import (
	"context"
	"embed"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/agora-cluster/agora/spark/jvm"
)

//go:embed pom.xml src
var project embed.FS

// Class is the example's main class; JarName its jar's file name.
const (
	Class   = "agora.examples.SparkPi"
	JarName = "spark-pi.jar"
)

// Source is SparkPi.java.
var Source, _ = fs.ReadFile(project, "src/main/java/agora/examples/SparkPi.java")

// DefaultDir is where Jar keeps built jars: $AGORA_SPARK_PI_DIR, else
// ~/.cache/agora/spark-pi.
func DefaultDir() string {
	if d := os.Getenv("AGORA_SPARK_PI_DIR"); d != "" {
		return d
	}
	if c, err := os.UserCacheDir(); err == nil {
		return filepath.Join(c, "agora", "spark-pi")
	}
	return filepath.Join(os.TempDir(), "agora-spark-pi")
}

// Jar builds the example with Maven (mvn "" is mvn on PATH) into
// dir/<digest of the sources>/spark-pi.jar (dir "" is DefaultDir), once
// per version of the sources, and returns the jar's path.
func Jar(ctx context.Context, dir, mvn string) (string, error) {
	if dir == "" {
		dir = DefaultDir()
	}
	return jvm.Build(ctx, project, JarName, dir, mvn)
}

var piLine = regexp.MustCompile(`(?m)^Pi is roughly (\d+\.\d+)`)

// Parse finds the estimate in SparkPi's output.
func Parse(out string) (float64, bool) {
	m := piLine.FindStringSubmatch(out)
	if m == nil {
		return 0, false
	}
	pi, err := strconv.ParseFloat(m[1], 64)
	return pi, err == nil
}

// Darts is how many darts SparkPi throws with slices partitions.
func Darts(slices int) int { return 100000*slices - 1 }

// Tolerance is how far from π an estimate of slices partitions may fall:
// six standard errors of the fraction of darts inside the circle, 4 ×
// √(p(1−p)/n) with p = π/4 — a correct program is off by more about once in
// 500 million runs.
func Tolerance(slices int) float64 {
	p := math.Pi / 4
	return 6 * 4 * math.Sqrt(p*(1-p)/float64(Darts(slices)))
}
