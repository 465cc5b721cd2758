package sparkpi

import (
	"archive/zip"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
)

func TestParse(t *testing.T) {
	out := "26/12/05 INFO SparkContext: Running Spark version 3.5.9\nPi is roughly 3.1418491418491417\n"
	if pi, ok := Parse(out); !ok || pi != 3.1418491418491417 {
		t.Errorf("Parse = %v, %v; want 3.1418491418491417", pi, ok)
	}
	for _, bad := range []string{"", "Pi is roughly NaN\n", "log: Pi is roughly 3.14\n"} {
		if pi, ok := Parse(bad); ok {
			t.Errorf("Parse(%q) = %v; want nothing", bad, pi)
		}
	}
}

// The tolerance shrinks as the square root of the darts: about 0.01 for
// ten slices (a million darts), a tenth of that for a thousand slices.
func TestTolerance(t *testing.T) {
	if tol := Tolerance(10); tol < 0.009 || tol > 0.011 {
		t.Errorf("Tolerance(10) = %v; want about 0.01", tol)
	}
	if r := Tolerance(10) / Tolerance(1000); math.Abs(r-10) > 0.01 {
		t.Errorf("Tolerance(10)/Tolerance(1000) = %v; want 10", r)
	}
}

// Maven builds the example from source into the cache: the jar holds
// SparkPi and none of Spark (a provided dependency), and a second build
// is the same file.
func TestJarBuilds(t *testing.T) {
	tier.Need(t, tier.JVM, tier.JavaErr())
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	jar, err := Jar(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	z, err := zip.OpenReader(jar)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	var found bool
	for _, f := range z.File {
		found = found || f.Name == "agora/examples/SparkPi.class"
		if strings.HasPrefix(f.Name, "org/apache/spark/") {
			t.Errorf("%s holds Spark's %s", jar, f.Name)
		}
	}
	if !found {
		t.Errorf("%s: no agora/examples/SparkPi.class", jar)
	}
	again, err := Jar(ctx, dir, "/nonexistent/mvn") // built: Maven is not asked
	if err != nil || again != jar {
		t.Errorf("second Jar = %q, %v; want %q from the cache", again, err, jar)
	}
}
