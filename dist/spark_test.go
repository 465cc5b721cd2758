package dist_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/spark/sparktest"
)

// Spark's home runs Spark on Java 17: bin/spark-submit prints the version
// it was assembled from, runs a real application in local mode (the
// driver's logs on stderr, the application's output alone on stdout), and
// refuses an unknown main class with Spark's message.
func TestSparkHome(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Maven and the JVM; not in -short")
	}
	home := sparktest.Home(t)
	for _, f := range []string{"lib/spark-core_2.13-3.5.9.jar", "lib/spark-sql_2.13-3.5.9.jar", "lib/slf4j-api-2.0.7.jar",
		"conf/spark-defaults.conf", "conf/log4j2.properties", "bin/spark-class"} {
		if _, err := os.Stat(filepath.Join(home, f)); err != nil {
			t.Errorf("the home lacks %s: %v", f, err)
		}
	}
	// Jackson's core and databind must agree: a 2.14 core beside a 2.15
	// databind makes ObjectMapper fail to load.
	for _, dep := range []string{"jackson-core", "jackson-databind"} {
		if _, err := os.Stat(filepath.Join(home, "lib", dep+"-2.15.2.jar")); err != nil {
			got, _ := filepath.Glob(filepath.Join(home, "lib", dep+"-*.jar"))
			t.Errorf("the home's %s is %v, want 2.15.2 (Spark 3.5's Jackson)", dep, got)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := func(args ...string) (stdout, stderr string, err error) {
		cmd := exec.CommandContext(ctx, filepath.Join(home, "bin/spark-submit"), args...)
		cmd.Env = append(os.Environ(), "SPARK_LOCAL_IP=127.0.0.1")
		cmd.WaitDelay = 10 * time.Second
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		err = cmd.Run()
		return o.String(), e.String(), err
	}
	if _, errOut, err := run("--version"); err != nil || !strings.Contains(errOut, "version 3.5.9") ||
		strings.Contains(errOut, "NOP") {
		t.Errorf("spark-submit --version: %v; want version 3.5.9 and a logger:\n%s", err, errOut)
	}

	jar := sparktest.PiJar(t, home)
	out, errOut, err := run("--master", "local[2]", "--driver-memory", "512m", "--conf", "spark.ui.enabled=false",
		"--class", sparktest.PiClass, jar, "4")
	if err != nil || !regexp.MustCompile(`^Pi is roughly 3\.1\d*\n$`).MatchString(out) {
		t.Errorf("SparkPi in local[2]: %v; stdout %q; stderr:\n%s", err, out, errOut)
	}
	if !strings.Contains(errOut, "Job 0 finished") {
		t.Errorf("the driver's log (stderr) does not show the job finishing:\n%s", errOut)
	}

	_, errOut, err = run("--master", "local[1]", "--class", "agora.examples.NoSuchPi", jar)
	if err == nil || !strings.Contains(errOut, "Failed to load class agora.examples.NoSuchPi") {
		t.Errorf("an unknown main class: %v; want Spark's refusal:\n%s", err, errOut)
	}
}
