package distribution_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agora-cluster/agora/dist/disttest"
	"github.com/agora-cluster/agora/hadoop/distribution"
	"github.com/agora-cluster/agora/hadoop/framework"
	"github.com/agora-cluster/agora/hadoop/hadooptest"

	"github.com/agora-cluster/agora/frameworks/statefile"
)

// realHadoop is a real Hadoop 1.x JobTracker on loopback (local file
// system) and the means to run the distribution's commands against it.
type realHadoop struct {
	home       string // the distribution's home directory
	props      map[string]string
	work       string
	jobTracker string
	conf       string // the JobTracker's and clients' conf directory
	jtProps    map[string]string
}

// setupHadoop prepares the distribution under test — the home `agora dist
// install hadoop` assembles from Maven Central, or the tarball or home
// directory AGORA_HADOOP_DIST names — and a JobTracker configuration on
// loopback. props gets the framework's properties that point the trackers
// at the same distribution and JobTracker.
func setupHadoop(t *testing.T) *realHadoop {
	t.Helper()
	if testing.Short() {
		t.Skip("starts JVMs; not in -short")
	}
	r := &realHadoop{props: map[string]string{}}
	var err error
	if r.work, err = os.MkdirTemp("/var/tmp", "agora-hadoop-e2e-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(r.work) })
	dist := os.Getenv("AGORA_HADOOP_DIST")
	if dist == "" {
		dist = disttest.Home(t, "hadoop")
	}
	st, err := os.Stat(dist)
	if err != nil {
		t.Fatalf("AGORA_HADOOP_DIST: %v", err)
	}
	r.home = filepath.Clean(dist)
	if st.IsDir() {
		r.props[distribution.KeyExecutorDirectory] = r.home
	} else {
		abs, _ := filepath.Abs(dist)
		r.props[distribution.KeyExecutorURI] = abs
		unpacked := filepath.Join(r.work, "dist")
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
		r.home = filepath.Dir(filepath.Dir(found[0]))
	}

	r.jobTracker = "127.0.0.1:0" // startJobTracker learns the port it binds
	shared := map[string]string{
		"fs.default.name":                       "file:///",
		"mapred.system.dir":                     filepath.Join(r.work, "mapred", "system"),
		"mapreduce.jobtracker.staging.root.dir": filepath.Join(r.work, "mapred", "staging"),
		distribution.KeyJobTracker:              r.jobTracker,
	}
	r.conf = filepath.Join(r.work, "jobtracker-conf")
	if out, err := exec.Command("cp", "-R", filepath.Join(r.home, "conf"), r.conf).CombinedOutput(); err != nil {
		t.Fatalf("copy conf: %v\n%s", err, out)
	}
	jtProps := map[string]string{
		"mapred.job.tracker.http.address": "127.0.0.1:0",
		"hadoop.tmp.dir":                  filepath.Join(r.work, "jobtracker-tmp"),
		"mapred.local.dir":                filepath.Join(r.work, "jobtracker-local"),
		// A tracker killed mid-job is declared lost after 20 s, not 10 min.
		"mapred.tasktracker.expiry.interval": "20000",
		// The jobs' sort buffer fits the child heaps sized from slots.
		"io.sort.mb": "32",
	}
	for k, v := range shared {
		jtProps[k] = v
		r.props[k] = v
	}
	if err := os.WriteFile(filepath.Join(r.conf, "mapred-site.xml"), distribution.SiteXML(jtProps), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.conf, "core-site.xml"), distribution.SiteXML(map[string]string{"fs.default.name": "file:///"}), 0o644); err != nil {
		t.Fatal(err)
	}
	r.jtProps = jtProps
	return r
}

// useJobTracker points the clients' configuration and the trackers'
// properties at the JobTracker at addr.
func (r *realHadoop) useJobTracker(t *testing.T, addr string) {
	t.Helper()
	r.jobTracker = addr
	r.jtProps[distribution.KeyJobTracker] = addr
	r.props[distribution.KeyJobTracker] = addr
	// Replaced whole (rename), never rewritten in place: a running
	// JobTracker rereads it (refreshHosts) and must not see it empty.
	if err := statefile.WriteFile(filepath.Join(r.conf, "mapred-site.xml"), distribution.SiteXML(r.jtProps)); err != nil {
		t.Fatal(err)
	}
}

// startJobTracker starts a real JobTracker of the distribution as a
// process of the test.
func startJobTracker(t *testing.T) *realHadoop {
	t.Helper()
	r := setupHadoop(t)
	jtLog, err := os.Create(filepath.Join(r.work, "jobtracker.out"))
	if err != nil {
		t.Fatal(err)
	}
	jt := r.hadoop(context.Background(), "jobtracker")
	jt.Stdout, jt.Stderr = jtLog, jtLog
	if err := jt.Start(); err != nil {
		t.Fatalf("start the JobTracker: %v", err)
	}
	exited := make(chan struct{})
	go func() { jt.Wait(); close(exited) }()
	t.Cleanup(func() {
		jt.Process.Kill()
		<-exited
		if t.Failed() {
			out, _ := os.ReadFile(jtLog.Name())
			t.Logf("JobTracker output:\n%s", tail(out))
		}
	})
	// It binds port 0 for its RPC and web servers; clients and trackers
	// are pointed at the port it logs.
	deadline := time.After(3 * time.Minute)
	for {
		out, _ := os.ReadFile(jtLog.Name())
		if m := jobTrackerUp.FindSubmatch(out); m != nil {
			r.useJobTracker(t, "127.0.0.1:"+string(m[1]))
			return r
		}
		select {
		case <-exited:
			t.Fatalf("the JobTracker exited before it was up; its output ends:\n%s", tail(out))
		case <-deadline:
			t.Fatalf("the JobTracker did not log its port within 3 minutes; its output ends:\n%s", tail(out))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// jobTrackerUp is the line Hadoop 1.x's JobTracker logs once its RPC
// server is bound.
var jobTrackerUp = regexp.MustCompile(`JobTracker up at: (\d+)`)

// offers says whether addr's port is one a offers.
func (a agentSpec) offers(addr string) bool {
	_, p, err := net.SplitHostPort(addr)
	port, perr := strconv.ParseUint(p, 10, 64)
	return err == nil && perr == nil && port >= a.first && port <= a.last
}

// hadoop is the distribution's bin/hadoop with the JobTracker's
// configuration.
func (r *realHadoop) hadoop(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(r.home, "bin", "hadoop"), args...)
	cmd.Dir = r.work
	cmd.Env = append(os.Environ(), "HADOOP_CONF_DIR="+r.conf, "HADOOP_LOG_DIR="+filepath.Join(r.work, "logs"))
	cmd.WaitDelay = 10 * time.Second
	// Its JVM dies with the test binary, even one killed by a timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// activeTrackers is the JobTracker's list of active TaskTrackers.
func (r *realHadoop) activeTrackers() []string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := r.hadoop(ctx, "job", "-list-active-trackers").Output()
	if err != nil {
		return nil
	}
	var trackers []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "tracker_") {
			trackers = append(trackers, strings.TrimSpace(l))
		}
	}
	return trackers
}

// settings are the framework's settings for trackers of this distribution:
// between min and max trackers, small slots.
func (r *realHadoop) settings(t *testing.T, min, max int) distribution.Settings {
	t.Helper()
	props := map[string]string{
		framework.KeyTrackerCPUs:  "0.5",
		framework.KeyTrackerMem:   "384",
		framework.KeySlotCPUs:     "0.5",
		framework.KeySlotMem:      "320",
		framework.KeySlotDisk:     "0",
		framework.KeyTrackerDisk:  "0",
		framework.KeyMinExecutors: strconv.Itoa(min),
		framework.KeyMaxExecutors: strconv.Itoa(max),
		"hadoop.tmp.dir":          distribution.SandboxPlaceholder + "/tmp",
	}
	for k, v := range r.props {
		props[k] = v
	}
	s, err := distribution.SettingsFrom(props)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRealDistribution runs a real Hadoop 1.x with both daemons launched
// by agora: the JobTracker as a task on ports from its offer
// (`agora hadoop jobtracker`), then a TaskTracker pointed at the address
// it got. It passes when the JobTracker lists the TaskTracker as active
// and both daemons' web UIs serve their status pages on the offered ports.
func TestRealDistribution(t *testing.T) {
	r := setupHadoop(t)
	a := agentOn("127.0.0.1")
	c := startCluster(t, []agentSpec{a})

	jtProps := map[string]string{
		distribution.KeyJobTrackerCPUs: "0.5", distribution.KeyJobTrackerMem: "384",
		"mapred.tasktracker.expiry.interval": "20000",
	}
	for k, v := range r.props {
		if k != distribution.KeyJobTracker {
			jtProps[k] = v
		}
	}
	js, err := distribution.JobTrackerSettingsFrom(jtProps)
	if err != nil {
		t.Fatal(err)
	}
	jtf, err := distribution.NewJobTracker(distribution.JobTrackerConfig{Masters: []string{c.MasterAddr}, Settings: js})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- jtf.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the JobTracker framework: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the JobTracker framework did not stop")
		}
	})
	select {
	case <-jtf.Running():
	case <-time.After(3 * time.Minute):
		t.Fatal("the JobTracker task did not run within 3 minutes")
	}
	jt, ok := jtf.Current()
	if !ok || !a.offers(jt.Address) || !a.offers(jt.HTTP) {
		t.Fatalf("JobTracker %+v: want both addresses on the offered ports %d-%d", jt, a.first, a.last)
	}
	// Clients and trackers go to the agora-launched JobTracker from now on.
	r.useJobTracker(t, jt.Address)

	fw, _ := runFramework(t, c, r.settings(t, 1, 1))
	var tr distribution.Tracker
	waitForLong(t, 3*time.Minute, "the JobTracker to list the TaskTracker", func() bool {
		trs := fw.Trackers()
		if len(trs) != 1 || len(r.activeTrackers()) != 1 {
			return false
		}
		tr = trs[0]
		return true
	})
	for _, page := range []string{
		fmt.Sprintf("http://%s:%d/tasktracker.jsp", tr.Host, tr.HTTPPort),
		"http://" + jt.HTTP + "/jobtracker.jsp",
	} {
		resp, err := (&http.Client{Timeout: time.Minute}).Get(page)
		if err != nil {
			t.Fatalf("%s: %v", page, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: HTTP %d", page, resp.StatusCode)
		}
	}
}

// TestRealStreamingWordCount runs the example word count scripts with the
// real hadoop-streaming jar on real TaskTrackers that agora launched on two
// agents (two hosts: 127.0.0.1 and 127.0.0.2), and checks the counts
// against tr | sort | uniq -c. Then it runs the job again with slower maps
// and kills one TaskTracker with SIGKILL mid-job: Hadoop re-runs that
// tracker's attempts, agora launches a new tracker on the agent's next
// offer, and the output is the same.
func TestRealStreamingWordCount(t *testing.T) {
	hadooptest.NeedPython(t)
	r := startJobTracker(t)
	c := startCluster(t, []agentSpec{agentOn("127.0.0.1"), agentOn("127.0.0.2")})
	fw, _ := runFramework(t, c, r.settings(t, 2, 2))
	waitForLong(t, 3*time.Minute, "two TaskTrackers active at the JobTracker", func() bool {
		return len(fw.Trackers()) == 2 && len(r.activeTrackers()) == 2
	})

	ex := hadooptest.Examples(t)
	in := filepath.Join(r.work, "in")
	for i := 0; i < 3; i++ {
		hadooptest.WriteCorpus(t, filepath.Join(in, fmt.Sprintf("part-%d.txt", i)), 200<<10, uint64(i+1))
	}
	want := hadooptest.UnixCounts(t, in)
	streaming := filepath.Join(r.home, "lib", "hadoop-streaming-1.2.1.jar")
	if _, err := os.Stat(streaming); err != nil {
		t.Fatalf("the distribution has no Streaming jar: %v", err)
	}
	job := func(ctx context.Context, out, mapper string, files ...string) *exec.Cmd {
		return r.hadoop(ctx, "jar", streaming,
			"-files", strings.Join(append([]string{filepath.Join(ex, "mapper.py"), filepath.Join(ex, "reducer.py")}, files...), ","),
			"-D", "mapred.reduce.tasks=2", "-D", "mapred.min.split.size=0", "-D", "mapred.max.split.size=102400",
			"-input", in, "-output", out,
			"-mapper", mapper, "-reducer", "reducer.py", "-combiner", "reducer.py")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out1 := filepath.Join(r.work, "out1")
	if b, err := job(ctx, out1, "mapper.py").CombinedOutput(); err != nil {
		t.Fatalf("the Streaming job: %v\n%s", err, tail(b))
	}
	hadooptest.CompareCounts(t, hadooptest.ReadOutput(t, out1), want)
	if t.Failed() {
		return
	}

	// Again, with maps slow enough to be caught running, and one tracker
	// killed while they run.
	slow := filepath.Join(r.work, "slowmap.sh")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\nsleep 4\nexec python3 mapper.py\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var victim distribution.Tracker
	for _, tr := range fw.Trackers() {
		if tr.AgentID == c.Agents[1].ID() {
			victim = tr
		}
	}
	if victim.TaskID == "" {
		t.Fatalf("no tracker on the second agent: %+v", fw.Trackers())
	}
	out2 := filepath.Join(r.work, "out2")
	cmd := job(ctx, out2, "slowmap.sh", slow)
	jobLog, err := os.Create(filepath.Join(r.work, "job2.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer jobLog.Close()
	cmd.Stdout, cmd.Stderr = jobLog, jobLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	sandbox := c.Agents[1].Config.WorkDir
	waitForLong(t, 3*time.Minute, "a map attempt running under the second agent's tracker", func() bool {
		return len(pidsOf(sandbox, "org.apache.hadoop.mapred.Child")) > 0
	})
	pids := pidsOf(sandbox, "-Dproc_tasktracker")
	if len(pids) != 1 {
		t.Fatalf("%d TaskTracker JVMs under %s, want 1", len(pids), sandbox)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed TaskTracker %s (pid %d) with SIGKILL", victim.TaskID, pids[0])

	select {
	case err := <-done:
		if err != nil {
			b, _ := os.ReadFile(jobLog.Name())
			t.Fatalf("the Streaming job with a tracker killed: %v\n%s", err, tail(b))
		}
	case <-ctx.Done():
		t.Fatal("the Streaming job with a tracker killed did not end in 5 minutes")
	}
	hadooptest.CompareCounts(t, hadooptest.ReadOutput(t, out2), want)
	waitForLong(t, 3*time.Minute, fmt.Sprintf("a new TaskTracker in place of the killed %s", victim.TaskID), func() bool {
		trs := fw.Trackers()
		if len(trs) != 2 {
			return false
		}
		for _, tr := range trs {
			if tr.TaskID == victim.TaskID {
				return false
			}
		}
		return true
	})
}

// pidsOf lists the processes whose command line holds both dir and what.
func pidsOf(dir, what string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmdline := string(b)
		if strings.Contains(cmdline, dir) && strings.Contains(cmdline, what) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitForLong polls cond every second until it holds or d passes.
func waitForLong(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Second)
	}
}

func tail(b []byte) string {
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}
