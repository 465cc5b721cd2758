package distribution_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/hadoop/distribution"
	"github.com/agora-cluster/agora/hadoop/framework"
)

// TestRealDistribution runs a real Hadoop 1.x distribution: a JobTracker
// started by the test on loopback (local file system), and a TaskTracker
// launched by the framework on an in-process agora cluster, from the
// tarball or the home directory named by AGORA_HADOOP_DIST. It passes
// when the JobTracker lists the TaskTracker as active, the tracker's web
// UI answers on the port taken from the offer, and (if the distribution
// has its examples jar) the pi example job completes on it.
func TestRealDistribution(t *testing.T) {
	dist := os.Getenv("AGORA_HADOOP_DIST")
	if dist == "" {
		t.Skip("AGORA_HADOOP_DIST is not set, so no real Hadoop runs: no Hadoop distribution can be installed on " +
			"this machine (there is no network access beyond the Go module proxy and Debian packages, and Debian " +
			"has no Hadoop package). Set it to a Hadoop 1.x tarball or HADOOP_HOME (with java on PATH or JAVA_HOME set) to run this test.")
	}
	if testing.Short() {
		t.Skip("starts JVMs; not in -short")
	}
	st, err := os.Stat(dist)
	if err != nil {
		t.Fatalf("AGORA_HADOOP_DIST: %v", err)
	}
	if _, err := exec.LookPath("java"); err != nil && os.Getenv("JAVA_HOME") == "" {
		t.Fatal("AGORA_HADOOP_DIST is set but there is no java on PATH and no JAVA_HOME")
	}
	work, err := os.MkdirTemp("/var/tmp", "agora-hadoop-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })

	// The JobTracker runs from the home, or from the tarball unpacked here.
	props := map[string]string{}
	home := filepath.Clean(dist)
	if st.IsDir() {
		props[distribution.KeyExecutorDirectory] = home
	} else {
		abs, _ := filepath.Abs(dist)
		props[distribution.KeyExecutorURI] = abs
		unpacked := filepath.Join(work, "dist")
		if err := os.MkdirAll(unpacked, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("tar", "-xf", abs, "-C", unpacked).CombinedOutput(); err != nil {
			t.Fatalf("unpack %s: %v\n%s", abs, err, out)
		}
		found, _ := filepath.Glob(filepath.Join(unpacked, "*", "bin", "hadoop"))
		if len(found) == 0 {
			t.Fatalf("%s holds no */bin/hadoop", abs)
		}
		home = filepath.Dir(filepath.Dir(found[0]))
	}

	jtPort, jtHTTP := freePort(t), freePort(t)
	jobTracker := "127.0.0.1:" + strconv.Itoa(jtPort)
	shared := map[string]string{
		"fs.default.name":                       "file:///",
		"mapred.system.dir":                     filepath.Join(work, "mapred", "system"),
		"mapreduce.jobtracker.staging.root.dir": filepath.Join(work, "mapred", "staging"),
		distribution.KeyJobTracker:              jobTracker,
	}
	jtConf := filepath.Join(work, "jobtracker-conf")
	if out, err := exec.Command("cp", "-R", filepath.Join(home, "conf"), jtConf).CombinedOutput(); err != nil {
		t.Fatalf("copy conf: %v\n%s", err, out)
	}
	jtProps := map[string]string{
		"mapred.job.tracker.http.address": "127.0.0.1:" + strconv.Itoa(jtHTTP),
		"hadoop.tmp.dir":                  filepath.Join(work, "jobtracker-tmp"),
		"mapred.local.dir":                filepath.Join(work, "jobtracker-local"),
	}
	for k, v := range shared {
		jtProps[k] = v
	}
	if err := os.WriteFile(filepath.Join(jtConf, "mapred-site.xml"), distribution.SiteXML(jtProps), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(jtConf, "core-site.xml"), distribution.SiteXML(map[string]string{"fs.default.name": "file:///"}), 0o644); err != nil {
		t.Fatal(err)
	}
	hadoop := func(ctx context.Context, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, filepath.Join(home, "bin", "hadoop"), args...)
		cmd.Dir = home
		cmd.Env = append(os.Environ(), "HADOOP_CONF_DIR="+jtConf, "HADOOP_LOG_DIR="+filepath.Join(work, "jobtracker-logs"))
		return cmd
	}
	jtLog, err := os.Create(filepath.Join(work, "jobtracker.out"))
	if err != nil {
		t.Fatal(err)
	}
	jt := hadoop(context.Background(), "jobtracker")
	jt.Stdout, jt.Stderr = jtLog, jtLog
	if err := jt.Start(); err != nil {
		t.Fatalf("start the JobTracker: %v", err)
	}
	t.Cleanup(func() {
		jt.Process.Kill()
		jt.Wait()
		if t.Failed() {
			out, _ := os.ReadFile(jtLog.Name())
			t.Logf("JobTracker output:\n%s", tail(out))
		}
	})

	c := startCluster(t, []agentSpec{{"127.0.0.1", 35000, 35099}})
	props[framework.KeyTrackerCPUs] = "0.5"
	props[framework.KeyTrackerMem] = "512"
	props[framework.KeySlotMem] = "512"
	props[framework.KeySlotDisk] = "0"
	props[framework.KeyTrackerDisk] = "0"
	props["hadoop.tmp.dir"] = distribution.SandboxPlaceholder + "/tmp"
	for k, v := range shared {
		props[k] = v
	}
	s, err := distribution.SettingsFrom(props)
	if err != nil {
		t.Fatal(err)
	}
	fw, _ := runFramework(t, c, s)

	deadline := time.Now().Add(3 * time.Minute)
	var tr distribution.Tracker
	for {
		if trs := fw.Trackers(); len(trs) == 1 {
			tr = trs[0]
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			out, err := hadoop(ctx, "job", "-list-active-trackers").Output()
			cancel()
			if err == nil && strings.Contains(string(out), "tracker_") {
				t.Logf("the JobTracker lists: %s", strings.TrimSpace(string(out)))
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the JobTracker never listed the TaskTracker (trackers: %+v)", fw.Trackers())
		}
		time.Sleep(2 * time.Second)
	}
	resp, err := http.Get(fmt.Sprintf("http://%s:%d/", tr.Host, tr.HTTPPort))
	if err != nil {
		t.Fatalf("the TaskTracker's web UI on the offered port %d: %v", tr.HTTPPort, err)
	}
	resp.Body.Close()

	jars, _ := filepath.Glob(filepath.Join(home, "hadoop-examples*.jar"))
	if len(jars) == 0 {
		t.Logf("no hadoop-examples jar in %s: not running a job", home)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := hadoop(ctx, "jar", jars[0], "pi", "2", "10").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Estimated value of Pi is") {
		t.Fatalf("the pi example on the agora-launched TaskTracker: %v\n%s", err, tail(out))
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func tail(b []byte) string {
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}
