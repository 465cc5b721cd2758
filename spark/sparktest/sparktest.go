// Package sparktest gives tests the real Spark: the home of `agora dist
// install spark` and an application jar to submit to it. Spark's examples
// jar is not published on Maven Central, so the SparkPi here is a Java
// version of it (pi/SparkPi.java), compiled with the JDK's javac against
// the home's lib/ when a test asks for it.
package sparktest

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/dist/disttest"
	"github.com/agora-cluster/agora/spark/jvm"
)

// The main classes of PiJar's jar: SparkPi prints "Pi is roughly X";
// Sleep prints "started 3", sleeps its argument's seconds, prints "woke".
const (
	PiClass    = "agora.examples.SparkPi"
	SleepClass = "agora.examples.Sleep"
)

//go:embed pi/*.java
var sources embed.FS

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

// PiJar compiles the applications (SparkPi, Sleep) against home's jars
// into a jar in a directory of the test and returns its path.
func PiJar(t testing.TB, home string) string {
	t.Helper()
	dir := t.TempDir()
	srcDir := filepath.Join(dir, "src", "agora", "examples")
	if err := os.MkdirAll(srcDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, _ := sources.ReadDir("pi")
	var srcs []string
	for _, e := range ents {
		b, _ := sources.ReadFile("pi/" + e.Name())
		src := filepath.Join(srcDir, e.Name())
		if err := os.WriteFile(src, b, 0o644); err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, src)
	}
	classes := filepath.Join(dir, "classes")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	jar := filepath.Join(dir, "spark-pi.jar")
	for _, c := range [][]string{
		append([]string{javac(), "-nowarn", "-cp", filepath.Join(home, "lib", "*"), "-d", classes}, srcs...),
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

// ClusterManagerJar is agora's Spark cluster manager (spark/jvm), built
// with Maven into the cache on first use.
func ClusterManagerJar(t testing.TB) string {
	t.Helper()
	tier.Need(t, tier.JVM, javacErr())
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	jar, err := jvm.Jar(ctx, "", "")
	if err != nil {
		t.Fatalf("sparktest: %v", err)
	}
	return jar
}
