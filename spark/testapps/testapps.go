// Package testapps builds the Spark applications the tests and `agora
// bench spark` submit, compiled with the JDK's javac against a Spark
// home's lib/ (quicker than Maven). Spark's examples jar is not published
// on Maven Central: the SparkPi here is the Java example of
// examples/spark-pi, whose own build is Maven's.
package testapps

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	sparkpi "github.com/agora-cluster/agora/examples/spark-pi"
)

// The main classes of the jar: SparkPi prints "Pi is roughly X"; Sleep
// prints "started 3", sleeps its argument's seconds, prints "woke";
// SlowSum sums 1..SLICES in tasks that sleep MILLIS each, printing "sum is
// X"; IdleShuffle reads a shuffle's output again after waiting for its
// executors to be released (dynamic allocation); Preferred runs a job on
// partitions that prefer each host it is given and prints where its tasks
// ran (locality).
const (
	PiClass          = sparkpi.Class
	SleepClass       = "agora.examples.Sleep"
	SlowSumClass     = "agora.examples.SlowSum"
	IdleShuffleClass = "agora.examples.IdleShuffle"
	PreferredClass   = "agora.examples.Preferred"
)

//go:embed src/*.java
var sources embed.FS

// JDKTool is a JDK command: under $JAVA_HOME/bin when that is set.
func JDKTool(name string) string {
	if h := os.Getenv("JAVA_HOME"); h != "" {
		return filepath.Join(h, "bin", name)
	}
	return name
}

// Build compiles the applications against home's jars into dir and
// returns the jar's path.
func Build(ctx context.Context, home, dir string) (string, error) {
	srcDir := filepath.Join(dir, "src", "agora", "examples")
	if err := os.MkdirAll(srcDir, 0o755); err != nil {
		return "", err
	}
	files := map[string][]byte{"SparkPi.java": sparkpi.Source}
	ents, _ := sources.ReadDir("src")
	for _, e := range ents {
		files[e.Name()], _ = sources.ReadFile("src/" + e.Name())
	}
	var srcs []string
	for name, b := range files {
		src := filepath.Join(srcDir, name)
		if err := os.WriteFile(src, b, 0o644); err != nil {
			return "", err
		}
		srcs = append(srcs, src)
	}
	classes := filepath.Join(dir, "classes")
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	jar := filepath.Join(dir, "spark-pi.jar")
	for _, c := range [][]string{
		append([]string{JDKTool("javac"), "-nowarn", "-cp", filepath.Join(home, "lib", "*"), "-d", classes}, srcs...),
		{JDKTool("jar"), "cf", jar, "-C", classes, "."},
	} {
		cmd := exec.CommandContext(ctx, c[0], c[1:]...)
		cmd.WaitDelay = 10 * time.Second
		if out, err := cmd.CombinedOutput(); err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				err = ctx.Err()
			}
			return "", fmt.Errorf("build the SparkPi jar: %s: %v\n%s", c[0], err, out)
		}
	}
	return jar, nil
}
