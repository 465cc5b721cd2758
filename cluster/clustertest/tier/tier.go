// Package tier names the test suite's tiers of real components — root with
// cgroups, the Docker Engine, Python for the Streaming scripts, and the JVM
// engines — and decides what a test does when its tier's prerequisite is
// missing. Outside CI it skips, saying which tier and why; with CI=true it
// fails, naming the tier: CI cannot go green with a tier gone.
//
// Each call logs "tier NAME: ran" or "tier NAME: skipped: REASON", from which
// `make test` (scripts/testsummary) prints how many tests of each tier ran
// and were skipped.
package tier

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// The tiers.
const (
	Root   = "root+cgroups" // the native containerizer: root, cgroups, namespaces
	Docker = "docker"       // a Docker Engine answering on its socket
	Python = "python"       // python3, for the example Streaming scripts
	JVM    = "jvm"          // Java, for the real Hadoop and HDFS daemons
)

// Required reports whether every tier must run: CI=true, as CI sets it.
func Required() bool { return os.Getenv("CI") == "true" }

// Need goes on with the test when missing is nil (the prerequisite of
// tier name is there). Otherwise the test skips, or with CI=true fails,
// with the reason.
func Need(t testing.TB, name string, missing error) {
	t.Helper()
	if missing == nil {
		t.Logf("tier %s: ran", name)
		return
	}
	if Required() {
		t.Fatalf("tier %s: failed: %v (CI=true requires every tier; make test-deps installs what the tiers need)", name, missing)
	}
	t.Skipf("tier %s: skipped: %v", name, missing)
}

// RootErr says why this process cannot isolate containers as root, or
// nil.
func RootErr() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("not running as root (euid %d): the native containerizer needs root", os.Geteuid())
	}
	return nil
}

// PythonErr says why the example scripts cannot run, or nil.
func PythonErr() error {
	if _, err := exec.LookPath("python3"); err != nil {
		return fmt.Errorf("python3 is not installed; the example Streaming scripts need it: %w", err)
	}
	return nil
}

// JavaErr says why no JVM can start, or nil.
func JavaErr() error {
	if os.Getenv("JAVA_HOME") != "" {
		return nil
	}
	if _, err := exec.LookPath("java"); err != nil {
		return fmt.Errorf("no java on PATH and no JAVA_HOME (make test-deps installs openjdk-17): %w", err)
	}
	return nil
}

// ZooKeeper is the tier of the high-availability tests: real ZooKeeper
// servers (Debian's zookeeper package) on loopback.
const ZooKeeper = "zookeeper"
