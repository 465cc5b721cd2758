package stormtest

import (
	"context"
	"embed"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/spark/jvm"
)

// jarTopology is a topology in Java (pom.xml, src/): its main class,
// JarTopologyClass, builds it and calls StormSubmitter, as a user's
// topology jar does. Arguments NAME DIR COUNT: a spout emits 1..COUNT,
// each once and anchored, and appends each number acked to DIR/acked.txt.
//
//go:embed jartopology
var jarTopology embed.FS

// JarTopologyClass is the main class of JarTopology's jar.
const JarTopologyClass = "agora.examples.NumbersTopology"

// JarTopology builds the Java topology with Maven (storm-client provided,
// of the installed Storm's version) into the cache, once per version of
// its sources, and returns the jar's path. Without Maven or a JVM the
// test skips (or fails under CI).
func JarTopology(t testing.TB) string {
	t.Helper()
	tier.Need(t, tier.JVM, tier.JavaErr())
	src, err := fs.Sub(jarTopology, "jartopology")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(os.TempDir(), "agora-storm-jar-topology")
	if c, err := os.UserCacheDir(); err == nil {
		dir = filepath.Join(c, "agora", "storm-jar-topology")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	jar, err := jvm.Build(ctx, src, "jar-topology.jar", dir, "")
	tier.Need(t, tier.JVM, err)
	return jar
}
