package distribution_test

// Cluster tests: a real in-process master and agents (clustertest), the
// framework talking to them over HTTP, and the TaskTrackers as real
// command tasks run by the agents. The Hadoop distribution is a FAKE made
// by the test: its bin/hadoop is a shell script that checks how it was
// started, copies the mapred-site.xml it was given and waits. These tests
// exercise agora's launch code (offers, sizing, ports, the fetch and the
// generated configuration), not Hadoop; TestRealDistribution runs a real
// one when one is configured.

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/xml"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/hadoop/distribution"
	"github.com/agora-cluster/agora/hadoop/framework"
)

// wait bounds every wait; it is never what a test asserts.
const wait = 60 * time.Second

// fakeHadoop is the stand-in bin/hadoop. It insists on being run as
// `bin/hadoop tasktracker` with HADOOP_CONF_DIR set, records its working
// directory and environment and copies its mapred-site.xml to MARKERS
// (under /var/tmp: tasks under native isolation get a private /tmp), then
// runs until MARKERS/<task>.die appears and exits 1 (a lost tracker).
const fakeHadoop = `#!/bin/sh
set -e
m=MARKERS
if [ "$#" -ne 1 ] || [ "$1" != tasktracker ]; then echo "fake hadoop: want 'tasktracker', got: $*" >&2; exit 2; fi
if [ ! -f "$HADOOP_CONF_DIR/mapred-site.xml" ]; then echo "fake hadoop: no $HADOOP_CONF_DIR/mapred-site.xml" >&2; exit 2; fi
t=$MESOS_TASK_ID
cp "$HADOOP_CONF_DIR/mapred-site.xml" "$m/$t.xml.tmp"
mv "$m/$t.xml.tmp" "$m/$t.xml"
printf '%s\n' "pwd=$(pwd)" "opts=$HADOOP_OPTS" "java_home=$JAVA_HOME" "core_site=$(cat "$HADOOP_CONF_DIR/core-site.xml")" > "$m/$t.env.tmp"
mv "$m/$t.env.tmp" "$m/$t.env"
while [ ! -e "$m/$t.die" ]; do sleep 0.1; done
exit 1
`

// fakeDist makes a fake Hadoop 1 distribution, hadoop-1.2.1/ with bin/hadoop
// and conf/core-site.xml, under a fresh directory in /var/tmp, and returns
// that directory and the markers directory.
func fakeDist(t *testing.T) (base, markers string) {
	t.Helper()
	base, err := os.MkdirTemp("/var/tmp", "agora-hadoop-dist-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	markers = filepath.Join(base, "markers")
	home := filepath.Join(base, "hadoop-1.2.1")
	for _, d := range []string{markers, filepath.Join(home, "bin"), filepath.Join(home, "conf")} {
		if err := os.MkdirAll(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	script := strings.Replace(fakeHadoop, "MARKERS", "'"+markers+"'", 1)
	if err := os.WriteFile(filepath.Join(home, "bin", "hadoop"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "conf", "core-site.xml"), []byte("<configuration>from the distribution</configuration>"), 0o644); err != nil {
		t.Fatal(err)
	}
	return base, markers
}

// tarball packs base/hadoop-1.2.1 into base/hadoop-1.2.1.tar.gz.
func tarball(t *testing.T, base string) string {
	t.Helper()
	out := filepath.Join(base, "hadoop-1.2.1.tar.gz")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	err = filepath.WalkDir(filepath.Join(base, "hadoop-1.2.1"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	for _, c := range []func() error{tw.Close, gz.Close, f.Close} {
		if cerr := c(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// agentSpec is one test agent: its hostname and port range.
type agentSpec struct {
	host        string
	first, last uint64
}

// agentOn is a test agent on host offering 100 ports of a random range
// (clustertest.PortRange).
func agentOn(host string) agentSpec {
	first, last := clustertest.PortRange(100)
	return agentSpec{host, uint64(first), uint64(last)}
}

func startCluster(t *testing.T, agents []agentSpec) *clustertest.Cluster {
	t.Helper()
	c := clustertest.Start(t, clustertest.Options{
		Agents: len(agents),
		Agent: func(i int, cfg *agent.Config) {
			cfg.Hostname = agents[i].host
			cfg.Resources = fmt.Sprintf("cpus:4;mem:4096;disk:10000;ports:[%d-%d]", agents[i].first, agents[i].last)
		},
	})
	t.Cleanup(c.Stop)
	return c
}

// runFramework runs the framework until stop is called or the test ends,
// checking that Run returns nil after its context ends.
func runFramework(t *testing.T, c *clustertest.Cluster, s distribution.Settings) (fw *distribution.Framework, stop func()) {
	t.Helper()
	fw, err := distribution.New(distribution.Config{Masters: []string{c.MasterAddr}, Settings: s})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("framework: %v", err)
			}
		case <-time.After(wait):
			t.Error("framework did not stop")
		}
	}
	t.Cleanup(stop)
	return fw, stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// started waits until the fake bin/hadoop of every tracker in want has
// written its markers, and returns the trackers by task ID.
func started(t *testing.T, fw *distribution.Framework, markers string, want int) map[string]distribution.Tracker {
	t.Helper()
	var got map[string]distribution.Tracker
	waitFor(t, fmt.Sprintf("%d task trackers to start", want), func() bool {
		got = map[string]distribution.Tracker{}
		for _, tr := range fw.Trackers() {
			if _, err := os.Stat(filepath.Join(markers, tr.TaskID+".env")); err == nil {
				got[tr.TaskID] = tr
			}
		}
		return len(got) == want
	})
	return got
}

type site struct {
	Properties []struct {
		Name  string `xml:"name"`
		Value string `xml:"value"`
	} `xml:"property"`
}

// readMarkers parses the mapred-site.xml a fake tracker copied, and the
// lines it recorded.
func readMarkers(t *testing.T, markers, taskID string) (props, env map[string]string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(markers, taskID+".xml"))
	if err != nil {
		t.Fatal(err)
	}
	var s site
	if err := xml.Unmarshal(data, &s); err != nil {
		t.Fatalf("the tracker's mapred-site.xml: %v\n%s", err, data)
	}
	props = map[string]string{}
	for _, p := range s.Properties {
		props[p.Name] = p.Value
	}
	lines, err := os.ReadFile(filepath.Join(markers, taskID+".env"))
	if err != nil {
		t.Fatal(err)
	}
	env = map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		env[k] = v
	}
	return props, env
}

// TestTrackersFromAnInstalledHome launches TaskTrackers of a fake
// distribution "installed" on the agents. Two agents have ports; the third
// offers a single port and must never get a tracker. The trackers'
// mapred-site.xml must hold the ports the framework took from each
// agent's offer, the slots Sizing gives for the agent's resources, a
// local directory in the tracker's sandbox and the JobTracker; a tracker
// that dies is replaced; stopping the framework stops the trackers.
func TestTrackersFromAnInstalledHome(t *testing.T) {
	base, markers := fakeDist(t)
	first, _ := clustertest.PortRange(201)
	lo := uint64(first)
	agents := []agentSpec{{"127.0.0.1", lo, lo + 99}, {"127.0.0.2", lo + 100, lo + 199}, {"127.0.0.3", lo + 200, lo + 200}}
	c := startCluster(t, agents)
	props := map[string]string{
		distribution.KeyJobTracker:        "jobtracker.example.com:9001",
		distribution.KeyExecutorDirectory: filepath.Join(base, "hadoop-1.2.1"),
		framework.KeySlotCPUs:             "1",
		framework.KeySlotMem:              "512",
		framework.KeySlotDisk:             "100",
		framework.KeyTrackerCPUs:          "0.5",
		framework.KeyTrackerMem:           "512",
		framework.KeyTrackerDisk:          "100",
		framework.KeyMinExecutors:         "3", // one more than the agents that can hold one
		"fs.default.name":                 "hdfs://namenode.example.com:8020",
	}
	s, err := distribution.SettingsFrom(props)
	if err != nil {
		t.Fatal(err)
	}
	s.Env = map[string]string{"JAVA_HOME": "/opt/fake-jdk"}
	fw, stop := runFramework(t, c, s)

	trackers := started(t, fw, markers, 2)
	// 4 cpus less the tracker's 0.5 hold 3 one-cpu slots (memory would
	// hold 7): fewer than the 2+2 maximums, so split 2:1.
	z := s.Sizing
	wantMaps, wantReduces := z.Slots(4-0.5, 4096-512, 10000-100, z.MapMax, z.ReduceMax, z.MapMax, z.ReduceMax)
	if wantMaps != 2 || wantReduces != 1 {
		t.Fatalf("Sizing.Slots gives %d+%d, want 2+1", wantMaps, wantReduces)
	}
	hosts := map[string]bool{}
	for id, tr := range trackers {
		var spec agentSpec
		for _, a := range agents {
			if a.host == tr.Host {
				spec = a
			}
		}
		if spec.host == "" || spec.first == spec.last {
			t.Fatalf("tracker %s on %q: not an agent with a port range", id, tr.Host)
		}
		hosts[tr.Host] = true
		site, env := readMarkers(t, markers, id)
		for _, p := range []uint64{tr.HTTPPort, tr.ReportPort} {
			if p < spec.first || p > spec.last {
				t.Errorf("tracker %s: port %d is not from its agent's range %d-%d", id, p, spec.first, spec.last)
			}
		}
		if tr.HTTPPort == tr.ReportPort {
			t.Errorf("tracker %s: one port for both addresses", id)
		}
		sandbox := strings.TrimSuffix(site[distribution.KeyLocalDir], "/mapred/local")
		want := map[string]string{
			distribution.KeyHTTPAddress:               tr.Host + ":" + strconv.FormatUint(tr.HTTPPort, 10),
			distribution.KeyReportAddress:             tr.Host + ":" + strconv.FormatUint(tr.ReportPort, 10),
			"mapred.tasktracker.map.tasks.maximum":    strconv.Itoa(wantMaps),
			"mapred.tasktracker.reduce.tasks.maximum": strconv.Itoa(wantReduces),
			distribution.KeyJobTracker:                "jobtracker.example.com:9001",
			distribution.KeyChildJavaOpts:             "-Xmx410m",
			distribution.KeySlaveHostName:             tr.Host,
			"fs.default.name":                         "hdfs://namenode.example.com:8020",
			framework.KeyMinExecutors:                 "3",
		}
		for k, v := range want {
			if site[k] != v {
				t.Errorf("tracker %s: %s = %q, want %q", id, k, site[k], v)
			}
		}
		if !strings.Contains(sandbox, "/frameworks/") || !strings.Contains(sandbox, "/runs/") {
			t.Errorf("tracker %s: %s = %q, not in a sandbox", id, distribution.KeyLocalDir, site[distribution.KeyLocalDir])
		} else if st, err := os.Stat(site[distribution.KeyLocalDir]); err != nil || !st.IsDir() {
			t.Errorf("tracker %s: the local directory was not made: %v", id, err)
		}
		for k, v := range map[string]string{
			"pwd":       filepath.Join(base, "hadoop-1.2.1"),
			"opts":      distribution.DefaultJVMOpts + " -Xmx410m -XX:NewSize=136m -XX:MaxNewSize=246m",
			"java_home": "/opt/fake-jdk",
			"core_site": "<configuration>from the distribution</configuration>",
		} {
			if env[k] != v {
				t.Errorf("tracker %s: bin/hadoop saw %s=%q, want %q", id, k, env[k], v)
			}
		}
		if tr.CPUs != 3.5 || tr.Mem != 2048 || tr.Disk != 400 {
			t.Errorf("tracker %s holds %v cpus, %v mem, %v disk; want 3.5, 2048, 400", id, tr.CPUs, tr.Mem, tr.Disk)
		}
	}
	if len(hosts) != 2 {
		t.Errorf("trackers on %v: want one on each agent with ports", hosts)
	}
	st, err := c.State()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range st.Frameworks {
		for _, task := range f.Tasks {
			if task.SlaveID == c.Agents[2].ID() {
				t.Errorf("task %s runs on the agent with one port", task.ID)
			}
			if task.State == "TASK_RUNNING" && (task.Resources.CPUs != 3.5 || task.Resources.Mem != 2048) {
				t.Errorf("task %s resources %+v", task.ID, task.Resources)
			}
		}
	}

	// A tracker that dies is replaced on its agent.
	var victim distribution.Tracker
	for _, tr := range trackers {
		victim = tr
		break
	}
	if err := os.WriteFile(filepath.Join(markers, victim.TaskID+".die"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var replacement distribution.Tracker
	waitFor(t, "the lost tracker to be replaced", func() bool {
		for _, tr := range fw.Trackers() {
			if _, known := trackers[tr.TaskID]; !known && tr.Host == victim.Host {
				if _, err := os.Stat(filepath.Join(markers, tr.TaskID+".env")); err == nil {
					replacement = tr
					return true
				}
			}
		}
		return false
	})
	if n := len(fw.Trackers()); n != 2 {
		t.Errorf("%d trackers after the replacement, want 2", n)
	}
	site, _ := readMarkers(t, markers, replacement.TaskID)
	if got := site[distribution.KeyHTTPAddress]; got != replacement.Host+":"+strconv.FormatUint(replacement.HTTPPort, 10) {
		t.Errorf("replacement's http address %q", got)
	}

	// Stopping the framework tears it down: the master kills the trackers.
	stop()
	c.WaitFor("the trackers to be killed", func(st *clustertest.State) bool {
		for _, f := range st.Frameworks {
			if len(f.Tasks) > 0 {
				return false
			}
		}
		return true
	})
}

// TestTrackersFromATarball has the agent fetch and unpack the fake
// distribution as a tarball (mapred.mesos.executor.uri) into the sandbox
// and start the tracker from there.
func TestTrackersFromATarball(t *testing.T) {
	base, markers := fakeDist(t)
	uri := tarball(t, base)
	c := startCluster(t, []agentSpec{agentOn("127.0.0.1")})
	s, err := distribution.SettingsFrom(map[string]string{
		distribution.KeyJobTracker:      "127.0.0.1:9001",
		distribution.KeyExecutorURI:     uri,
		distribution.KeyExecutorJVMOpts: "-Dfrom=test",
		framework.KeySlotMem:            "256",
		framework.KeyTrackerMem:         "1000",
		framework.KeySlotDisk:           "0",
		framework.KeyTrackerDisk:        "0",
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Env = map[string]string{}
	fw, _ := runFramework(t, c, s)
	trackers := started(t, fw, markers, 1)
	for id, tr := range trackers {
		site, env := readMarkers(t, markers, id)
		sandbox := strings.TrimSuffix(site[distribution.KeyLocalDir], "/mapred/local")
		if env["pwd"] != filepath.Join(sandbox, "hadoop-1.2.1") {
			t.Errorf("bin/hadoop ran in %q, want the unpacked distribution in the sandbox %q", env["pwd"], sandbox)
		}
		if want := "-Dfrom=test -Xmx800m -XX:NewSize=266m -XX:MaxNewSize=480m"; env["opts"] != want {
			t.Errorf("HADOOP_OPTS = %q, want %q", env["opts"], want)
		}
		// 4 cpus less 1 for the tracker: 3 one-cpu slots, split 2:1.
		if tr.MapSlots != 2 || tr.ReduceSlots != 1 || site["mapred.tasktracker.map.tasks.maximum"] != "2" || site["mapred.tasktracker.reduce.tasks.maximum"] != "1" {
			t.Errorf("slots %d+%d, configuration %v", tr.MapSlots, tr.ReduceSlots, site)
		}
		if site[distribution.KeyChildJavaOpts] != "-Xmx205m" {
			t.Errorf("child opts %q, want -Xmx205m", site[distribution.KeyChildJavaOpts])
		}
	}
}
