// Package sparktest gives tests the real Spark: the home of `agora dist
// install spark`, an application jar to submit to it (spark/testapps,
// compiled when a test asks for it) and the cluster manager's jar.
package sparktest

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/dist/disttest"
	sparkpi "github.com/agora-cluster/agora/examples/spark-pi"
	"github.com/agora-cluster/agora/spark/jvm"
	"github.com/agora-cluster/agora/spark/pyspark"
	"github.com/agora-cluster/agora/spark/testapps"
)

// The main classes of PiJar's jar (see testapps).
const (
	PiClass          = testapps.PiClass
	SleepClass       = testapps.SleepClass
	SlowSumClass     = testapps.SlowSumClass
	IdleShuffleClass = testapps.IdleShuffleClass
	PreferredClass   = testapps.PreferredClass
)

// Home is the installed Spark's home (installed on first use).
func Home(t testing.TB) string {
	t.Helper()
	tier.Need(t, tier.JVM, javacErr())
	return disttest.Home(t, "spark")
}

// PySparkHome is Home with PySpark added (spark/pyspark: downloaded once
// with pip, then cached).
func PySparkHome(t testing.TB) string {
	t.Helper()
	home := Home(t)
	if _, err := exec.LookPath("python3"); err != nil {
		tier.Need(t, tier.JVM, fmt.Errorf("no python3 for PySpark: %w", err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if err := pyspark.Install(ctx, home, pyspark.Config{}); err != nil {
		t.Fatalf("sparktest: %v", err)
	}
	return home
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

func javac() string { return testapps.JDKTool("javac") }

// PiJar compiles the applications (SparkPi, Sleep) against home's jars
// into a jar in a directory of the test and returns its path.
func PiJar(t testing.TB, home string) string {
	t.Helper()
	jar, err := testapps.Build(context.Background(), home, t.TempDir())
	if err != nil {
		t.Fatalf("sparktest: %v", err)
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

// PiExampleJar is the Java SparkPi example (examples/spark-pi) built with
// Maven from its source into the cache on first use; its main class is
// PiClass.
func PiExampleJar(t testing.TB) string {
	t.Helper()
	tier.Need(t, tier.JVM, javacErr())
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	jar, err := sparkpi.Jar(ctx, "", "")
	if err != nil {
		t.Fatalf("sparktest: the SparkPi example: %v", err)
	}
	return jar
}
