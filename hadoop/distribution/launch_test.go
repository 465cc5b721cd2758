package distribution

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/frameworks/offers"
	"github.com/agora-cluster/agora/hadoop/framework"
)

// planned plans a tracker on a 4 cpu, 4096 MB offer with ports 31000-31001.
func planned(t *testing.T, s Settings) (Tracker, []mesos.Resource) {
	t.Helper()
	o := offer("agent-7", "node7.example.com", 4, 4096, 10000, mesos.Value_Range{Begin: 31000, End: 31001})
	tr, res, reason := s.Plan(&o, rand.New(rand.NewPCG(7, 7)))
	if reason != "" {
		t.Fatal(reason)
	}
	tr.TaskID = "Task_Tracker_1"
	return tr, res
}

func TestSitePropsOfATracker(t *testing.T) {
	s := testSettings(t,
		framework.KeySlotMem, "512", framework.KeyTrackerMem, "512",
		"fs.default.name", "hdfs://nn:8020",
		KeyLocalDir, "/data/ignored", // the sandbox wins, as in MesosExecutor
		KeyHTTPAddress, "0.0.0.0:50060", // the offer's ports win
	)
	tr, _ := planned(t, s)
	got, _ := parseSite(t, SiteXML(s.SiteProps(tr)))
	want := map[string]string{
		KeyJobTracker:                             "jt.example.com:9001",
		KeyHTTPAddress:                            "node7.example.com:" + strconv.FormatUint(tr.HTTPPort, 10),
		KeyReportAddress:                          "node7.example.com:" + strconv.FormatUint(tr.ReportPort, 10),
		"mapred.tasktracker.map.tasks.maximum":    "2",
		"mapred.tasktracker.reduce.tasks.maximum": "1",
		KeyLocalDir:                               SandboxPlaceholder + "/mapred/local",
		KeyChildJavaOpts:                          "-Xmx410m", // round(512/1.25)
		KeySlaveHostName:                          "node7.example.com",
		"fs.default.name":                         "hdfs://nn:8020",
		KeyExecutorURI:                            "http://repo/hadoop-1.2.1.tar.gz",
		framework.KeySlotMem:                      "512",
		framework.KeyTrackerMem:                   "512",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d properties, want %d: %v", len(got), len(want), got)
	}
	if tr.HTTPPort+tr.ReportPort != 62001 {
		t.Errorf("ports %d and %d: want 31000 and 31001", tr.HTTPPort, tr.ReportPort)
	}
	// A child JVM option given by the user is kept.
	s2 := testSettings(t, KeyChildJavaOpts, "-Xmx1g -Djava.net.preferIPv4Stack=true")
	if got := s2.SiteProps(tr)[KeyChildJavaOpts]; got != "-Xmx1g -Djava.net.preferIPv4Stack=true" {
		t.Errorf("user's child opts replaced by %q", got)
	}
}

func env(ci mesos.CommandInfo) map[string]string {
	out := map[string]string{}
	for _, v := range ci.GetEnvironment().GetVariables() {
		out[v.Name] = v.GetValue()
	}
	return out
}

func TestTaskInfoFetchesTheTarballAndRunsTheTaskTracker(t *testing.T) {
	s := testSettings(t, framework.KeyTrackerMem, "2048", framework.KeyTrackerCPUs, "0.5", framework.KeySlotMem, "512")
	s.Env = map[string]string{"JAVA_HOME": "/usr/lib/jvm/java-8", "PATH": "/not/passed"}
	tr, res := planned(t, s)
	ti := s.TaskInfo(tr, res)
	if ti.TaskID.Value != "Task_Tracker_1" || ti.AgentID.Value != "agent-7" || ti.Name != "Hadoop TaskTracker" || ti.Executor != nil {
		t.Errorf("task %+v", ti)
	}
	sum := offers.Sum(ti.Resources, "")
	if sum["cpus"] != tr.CPUs || sum["mem"] != tr.Mem || sum["disk"] != tr.Disk {
		t.Errorf("task resources %v, tracker %+v", sum, tr)
	}
	ci := ti.GetCommand()
	if len(ci.URIs) != 1 || ci.URIs[0].Value != "http://repo/hadoop-1.2.1.tar.gz" || !ci.URIs[0].GetExtract() {
		t.Errorf("uris %+v: want the tarball, extracted", ci.URIs)
	}
	if !ci.GetShell() || !strings.Contains(ci.GetValue(), "exec ./bin/hadoop tasktracker") || !strings.Contains(ci.GetValue(), `bin/hadoop" ]`) {
		t.Errorf("command:\n%s", ci.GetValue())
	}
	e := env(*ci)
	if want := DefaultJVMOpts + " -Xmx1638m -XX:NewSize=546m -XX:MaxNewSize=982m"; e["HADOOP_OPTS"] != want {
		t.Errorf("HADOOP_OPTS = %q, want %q", e["HADOOP_OPTS"], want)
	}
	if e["JAVA_HOME"] != "/usr/lib/jvm/java-8" || e["PATH"] != "" || e["JAVA_LIBRARY_PATH"] != "" {
		t.Errorf("environment passes on %v", e)
	}
	site, _ := parseSite(t, []byte(e[SiteEnv]))
	if site[KeyHTTPAddress] == "" || site["mapred.tasktracker.map.tasks.maximum"] != strconv.Itoa(tr.MapSlots) {
		t.Errorf("%s holds %v", SiteEnv, site)
	}
}

func TestTaskInfoForAnInstalledHome(t *testing.T) {
	s := testSettings(t, KeyExecutorURI, "", KeyExecutorDirectory, "/opt/had'oop 1.2")
	tr, res := planned(t, s)
	ti := s.TaskInfo(tr, res)
	ci := ti.GetCommand()
	if len(ci.URIs) != 0 {
		t.Errorf("uris %v for an installed home", ci.URIs)
	}
	if !strings.Contains(ci.GetValue(), `hadoop='/opt/had'\''oop 1.2'`) {
		t.Errorf("home not quoted in:\n%s", ci.GetValue())
	}
}

// TestScriptWritesTheConfigurationAndStartsTheTracker runs the task's
// shell command with /bin/sh against a fake distribution (a bin/hadoop
// that records its arguments, working directory and environment): the
// configuration lands in the sandbox unchanged, with the sandbox's path in
// place of the placeholder, next to a copy of the distribution's conf/.
func TestScriptWritesTheConfigurationAndStartsTheTracker(t *testing.T) {
	for _, mode := range []string{"home", "uri"} {
		t.Run(mode, func(t *testing.T) {
			root := t.TempDir()
			sandbox := filepath.Join(root, "sand box $HOME `x`")
			home := filepath.Join(root, "hadoop-1.2.1")
			if mode == "uri" {
				home = filepath.Join(sandbox, "hadoop-1.2.1") // as the fetcher unpacks it
			}
			for _, d := range []string{sandbox, filepath.Join(home, "bin"), filepath.Join(home, "conf")} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			write := func(p, s string, mode os.FileMode) {
				if err := os.WriteFile(p, []byte(s), mode); err != nil {
					t.Fatal(err)
				}
			}
			write(filepath.Join(home, "conf", "core-site.xml"), "<configuration/>", 0o444)
			write(filepath.Join(home, "conf", "mapred-site.xml"), "old", 0o444)
			if mode == "uri" {
				write(filepath.Join(sandbox, "hadoop-1.2.1.tar.gz"), "tarball", 0o644)
			}
			write(filepath.Join(home, "bin", "hadoop"), `#!/bin/sh
{ echo "args=$*"; echo "pwd=$(pwd)"; echo "conf=$HADOOP_CONF_DIR"; echo "logs=$HADOOP_LOG_DIR"; echo "opts=$HADOOP_OPTS"; echo "site=${AGORA_HADOOP_MAPRED_SITE:-unset}"; } > "$MESOS_SANDBOX/ran"
`, 0o755)
			props := map[string]string{
				KeyJobTracker: "jt:9001", "tricky": "a'b\"c $(x) `y` \\ %s %% @MESOS_SANDBOX@/x and @MESOS_SANDBOX@/y",
				"ampersand": "R&D <dept>",
			}
			if mode == "uri" {
				props[KeyExecutorURI] = "file:///repo/hadoop-1.2.1.tar.gz"
			} else {
				props[KeyExecutorDirectory] = home
			}
			s, err := SettingsFrom(props)
			if err != nil {
				t.Fatal(err)
			}
			tr := Tracker{TaskID: "Task_Tracker_1", Host: "h", HTTPPort: 1, ReportPort: 2, MapSlots: 1, ReduceSlots: 1}
			ci := s.CommandInfo(tr)
			cmd := exec.Command("/bin/sh", "-c", ci.GetValue())
			cmd.Dir = sandbox
			cmd.Env = []string{"PATH=/usr/bin:/bin", "MESOS_SANDBOX=" + sandbox}
			for k, v := range env(ci) {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("script failed: %v\n%s\nscript:\n%s", err, out, ci.GetValue())
			}
			ran, err := os.ReadFile(filepath.Join(sandbox, "ran"))
			if err != nil {
				t.Fatal(err)
			}
			conf := filepath.Join(sandbox, "hadoop-conf")
			for _, want := range []string{"args=tasktracker", "pwd=" + home, "conf=" + conf, "logs=" + filepath.Join(sandbox, "logs"),
				"opts=" + HadoopOpts(DefaultJVMOpts, 1024), "site=unset"} {
				if !strings.Contains(string(ran), want+"\n") {
					t.Errorf("bin/hadoop saw:\n%s\nwant a line %q", ran, want)
				}
			}
			data, err := os.ReadFile(filepath.Join(conf, "mapred-site.xml"))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := parseSite(t, data)
			if want := "a'b\"c $(x) `y` \\ %s %% " + sandbox + "/x and " + sandbox + "/y"; got["tricky"] != want {
				t.Errorf("tricky = %q, want %q", got["tricky"], want)
			}
			if got["ampersand"] != "R&D <dept>" || got[KeyLocalDir] != sandbox+"/mapred/local" {
				t.Errorf("configuration %v", got)
			}
			for _, p := range []string{filepath.Join(conf, "core-site.xml"), filepath.Join(sandbox, "mapred", "local")} {
				if _, err := os.Stat(p); err != nil {
					t.Errorf("%v", err)
				}
			}
		})
	}
}

func TestScriptFailsClearlyWithoutADistribution(t *testing.T) {
	sandbox := t.TempDir()
	for _, c := range []struct {
		props map[string]string
		want  string
	}{
		{map[string]string{KeyExecutorURI: "file:///x.tgz"}, "no directory with bin/hadoop"},
		{map[string]string{KeyExecutorDirectory: "/nonexistent/hadoop"}, "/nonexistent/hadoop/bin/hadoop is missing"},
	} {
		c.props[KeyJobTracker] = "jt:9001"
		s, err := SettingsFrom(c.props)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("/bin/sh", "-c", s.Script())
		cmd.Dir = sandbox
		cmd.Env = []string{"PATH=/usr/bin:/bin", "MESOS_SANDBOX=" + sandbox}
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("script: %v, %s; want a failure saying %q", err, out, c.want)
		}
	}
}
