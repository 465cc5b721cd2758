// Package sparktest gives tests the real Spark: the home of `agora dist
// install spark` and an application jar to submit to it. Spark's examples
// jar is not published on Maven Central, so the SparkPi here is a Java
// version of it (pi/SparkPi.java), compiled with the JDK's javac against
// the home's lib/ when a test asks for it.
package sparktest

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/dist/disttest"
)

// PiClass is the main class of PiJar's application.
const PiClass = "agora.examples.SparkPi"

//go:embed pi/SparkPi.java
var piSource []byte

// Home is the installed Spark's home (installed on first use).
func Home(t testing.TB) string {
	t.Helper()
	tier.Need(t, tier.JVM, javacErr())
	return disttest.Home(t, "spark")
}

// javacErr says why no Java application can be compiled, or nil.
func javacErr() error {
	if err := tier.JavaErr(); err != nil {
		return err
	}
	if _, err := exec.LookPath(javac()); err != nil {
		return fmt.Errorf("no javac (the JDK, not only the JRE, is needed to build the test application): %w", err)
	}
	return nil
}

func javac() string { return jdkTool("javac") }

func jdkTool(name string) string {
	if h := os.Getenv("JAVA_HOME"); h != "" {
		return filepath.Join(h, "bin", name)
	}
	return name
}

// PiJar compiles the SparkPi application against home's jars into a jar in
// a directory of the test and returns its path.
func PiJar(t testing.TB, home string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "src", "agora", "examples", "SparkPi.java")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, piSource, 0o644); err != nil {
		t.Fatal(err)
	}
	classes := filepath.Join(dir, "classes")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	jar := filepath.Join(dir, "spark-pi.jar")
	for _, c := range [][]string{
		{javac(), "-nowarn", "-cp", filepath.Join(home, "lib", "*"), "-d", classes, src},
		{jdkTool("jar"), "cf", jar, "-C", classes, "."},
	} {
		cmd := exec.CommandContext(ctx, c[0], c[1:]...)
		cmd.WaitDelay = 10 * time.Second
		if out, err := cmd.CombinedOutput(); err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				err = ctx.Err()
			}
			t.Fatalf("sparktest: build the SparkPi jar: %s: %v\n%s", c[0], err, out)
		}
	}
	return jar
}
