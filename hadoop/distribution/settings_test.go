package distribution

import (
	"strings"
	"testing"

	"github.com/agora-cluster/agora/hadoop/framework"
)

func TestSettingsFromRefusesBadInput(t *testing.T) {
	base := func(kv ...string) map[string]string {
		p := map[string]string{KeyJobTracker: "jt:9001", KeyExecutorURI: "hdfs://nn/hadoop-1.2.1.tar.gz"}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "<unset>" {
				delete(p, kv[i])
			} else {
				p[kv[i]] = kv[i+1]
			}
		}
		return p
	}
	for _, c := range []struct {
		name  string
		props map[string]string
		want  string // in the error
	}{
		{"no distribution", base(KeyExecutorURI, "<unset>"), "no Hadoop distribution"},
		{"both", base(KeyExecutorDirectory, "/opt/hadoop"), "both " + KeyExecutorURI},
		{"relative home", base(KeyExecutorURI, "<unset>", KeyExecutorDirectory, "opt/hadoop"), "not an absolute path"},
		{"no jobtracker", base(KeyJobTracker, "<unset>"), "no JobTracker"},
		{"jobtracker without port", base(KeyJobTracker, "jt"), KeyJobTracker},
		{"jobtracker with a bad port", base(KeyJobTracker, "jt:http"), "not a number"},
		{"jobtracker port out of range", base(KeyJobTracker, "jt:70000"), "not a number"},
		{"jobtracker without host", base(KeyJobTracker, ":9001"), "no host"},
		{"local jobtracker", base(KeyJobTracker, "local"), KeyJobTracker},
		{"bad slot memory", base(framework.KeySlotMem, "lots"), framework.KeySlotMem},
		{"negative tracker cpus", base(framework.KeyTrackerCPUs, "-1"), framework.KeyTrackerCPUs},
		{"minimum above maximum", base(framework.KeyMinExecutors, "3", framework.KeyMaxExecutors, "2"), "above the maximum"},
		{"bad checkpoint", base(framework.KeyCheckpoint, "yes"), framework.KeyCheckpoint},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := SettingsFrom(c.props)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("SettingsFrom(%v) = %v, want an error about %q", c.props, err, c.want)
			}
		})
	}
}

func TestSettingsFromUsesMesosHadoopDefaults(t *testing.T) {
	s, err := SettingsFrom(map[string]string{KeyJobTracker: "jt:9001", KeyExecutorDirectory: "/opt/hadoop/"})
	if err != nil {
		t.Fatal(err)
	}
	z := s.Sizing
	if z.SlotCPUs != 1 || z.SlotMem != 1024 || z.SlotDisk != 1024 || z.TrackerCPUs != 1 || z.TrackerMem != 1024 || z.TrackerDisk != 1024 {
		t.Errorf("sizing %+v: want mesos/hadoop's 1 cpu, 1024 MB mem and disk per slot and per tracker", z)
	}
	if z.MapMax != 2 || z.ReduceMax != 2 || z.MinExecutors != 1 || z.MaxExecutors != 0 || z.Fixed {
		t.Errorf("sizing %+v: want 2 map and 2 reduce slots at most, at least 1 tracker, no maximum, variable policy", z)
	}
	if s.Home != "/opt/hadoop" || s.URI != "" || s.Command != DefaultCommand || s.JVMOpts != DefaultJVMOpts || s.Role != "*" {
		t.Errorf("settings %+v", s)
	}
	// Given values win over the defaults; an empty JVM option list is kept.
	s, err = SettingsFrom(map[string]string{
		KeyJobTracker: "jt:9001", KeyExecutorURI: "http://h/hadoop.tgz",
		framework.KeySlotMem: "512", framework.KeyMinExecutors: "3", framework.KeyFixedPolicy: "true",
		KeyExecutorJVMOpts: "", framework.KeyRole: "hadoop",
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Sizing.SlotMem != 512 || s.Sizing.MinExecutors != 3 || !s.Sizing.Fixed || s.JVMOpts != "" || s.Role != "hadoop" {
		t.Errorf("settings %+v", s)
	}
}

func TestHadoopOptsHeapFromTrackerMemory(t *testing.T) {
	for _, c := range []struct {
		mem  float64
		want string
	}{
		// heap = round(mem/1.25), NewSize = heap/3, MaxNewSize = floor(heap*0.6)
		{1024, "-Xmx819m -XX:NewSize=273m -XX:MaxNewSize=491m"},
		{2048, "-Xmx1638m -XX:NewSize=546m -XX:MaxNewSize=982m"},
		{512, "-Xmx410m -XX:NewSize=136m -XX:MaxNewSize=246m"},
		{1000, "-Xmx800m -XX:NewSize=266m -XX:MaxNewSize=480m"},
	} {
		if got := HadoopOpts("", c.mem); got != c.want {
			t.Errorf("HadoopOpts(%v MB) = %q, want %q", c.mem, got, c.want)
		}
		if got := HadoopOpts(DefaultJVMOpts, c.mem); got != DefaultJVMOpts+" "+c.want {
			t.Errorf("HadoopOpts with JVM options = %q", got)
		}
	}
	if got := ChildJavaOpts(1024); got != "-Xmx819m" {
		t.Errorf("ChildJavaOpts(1024) = %q, want -Xmx819m", got)
	}
	if got := ChildJavaOpts(0); got != "" {
		t.Errorf("ChildJavaOpts(0) = %q, want none", got)
	}
}
