package framework

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/storm/plan"
)

// The supervisor's command, run by sh in a sandbox against a stand-in
// bin/storm that writes out its arguments: storm.local.dir is in the
// sandbox, and every key is a -c option whose value is JSON, as Storm
// reads it.
func TestSupervisorCommand(t *testing.T) {
	home, sandbox := t.TempDir(), t.TempDir()
	out := filepath.Join(sandbox, "args")
	if err := os.MkdirAll(filepath.Join(home, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	fake := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > " + shellQuote(out) + "\necho \"$STORM_LOG_DIR $STORM_JAR_JVM_OPTS\" >> " + shellQuote(out) + "\n"
	if err := os.WriteFile(filepath.Join(home, "bin", "storm"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := plan.From(map[string]string{
		plan.KeyWorkerMem: "600", plan.KeyExecutorMem: "300",
		"topology.message.timeout.secs": "60", "drpc.servers": "[d1, 'd2']", "logviewer.childopts": "-Xmx1g",
	})
	if err != nil {
		t.Fatal(err)
	}
	z, _ := parseZooKeeper([]string{"zk1:2181", "zk2:2181"})
	sup := plan.Supervisor{Host: "h1", Port: 100, SlotPorts: []uint64{101, 102}}
	d := supervisorDaemon(home, s, z, "n1", 6627, sup, map[string]string{"JAVA_HOME": "/jdk", "OTHER": "x"})
	ci := d.commandInfo()
	cmd := exec.Command("/bin/sh", "-c", ci.GetValue())
	cmd.Env = []string{"MESOS_SANDBOX=" + sandbox, "PATH=/usr/bin:/bin"}
	for _, v := range ci.GetEnvironment().GetVariables() {
		cmd.Env = append(cmd.Env, v.Name+"="+v.GetValue())
		if v.Name == "OTHER" {
			t.Error("a variable not in passEnv reached the task")
		}
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the command: %v\n%s", err, b)
	}
	b, _ := os.ReadFile(out)
	args := strings.Split(strings.TrimSpace(string(b)), "\n")
	if args[0] != "supervisor" {
		t.Fatalf("args = %q; want supervisor first", args)
	}
	got := map[string]string{}
	for i := 1; i+1 < len(args); i += 2 {
		if args[i] != "-c" {
			t.Fatalf("args = %q; want -c key=value pairs", args)
		}
		k, v, _ := strings.Cut(args[i+1], "=")
		got[k] = v
	}
	for k, want := range map[string]string{
		"storm.local.dir":               `"` + sandbox + `/storm-local"`,
		"storm.zookeeper.servers":       `["zk1","zk2"]`,
		"storm.zookeeper.port":          "2181",
		"nimbus.seeds":                  `["n1"]`,
		"nimbus.thrift.port":            "6627",
		"storm.local.hostname":          `"h1"`,
		"supervisor.thrift.port":        "100",
		"supervisor.slots.ports":        "[101,102]",
		"worker.heap.memory.mb":         "500",
		"supervisor.memory.capacity.mb": "1200",
		"topology.message.timeout.secs": "60",
		"drpc.servers":                  `["d1","d2"]`,
		"logviewer.childopts":           `"-Xmx1g"`,
	} {
		if got[k] != want {
			t.Errorf("-c %s=%s; want %s", k, got[k], want)
		}
	}
	if !strings.HasPrefix(got["worker.childopts"], `"-Xmx500m `) {
		t.Errorf("worker.childopts = %s; want the heap of 600 MB less a sixth", got["worker.childopts"])
	}
	if last := args[len(args)-1]; last != sandbox+"/logs -Xmx250m -XX:+UseSerialGC" {
		t.Errorf("STORM_LOG_DIR and STORM_JAR_JVM_OPTS = %q", last)
	}
	if _, err := os.Stat(filepath.Join(sandbox, "storm-local")); err != nil {
		t.Errorf("storm.local.dir not made: %v", err)
	}

	// A home without bin/storm: a clear message, not a shell error.
	d.home = filepath.Join(home, "missing")
	cmd = exec.Command("/bin/sh", "-c", d.script())
	cmd.Env = []string{"MESOS_SANDBOX=" + sandbox, "PATH=/usr/bin:/bin"}
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "missing or not executable") {
		t.Errorf("a missing home: %v %s", err, b)
	}
}

func TestNewRefusesBadInput(t *testing.T) {
	s, _ := plan.From(nil)
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Settings: s, Home: "/h", Nimbus: "n:1"}, "no master"},
		{Config{Masters: []string{"m:5050"}, Settings: s, Nimbus: "n:1"}, "no Storm home"},
		{Config{Masters: []string{"m:5050"}, Settings: s, Home: "/h", Nimbus: "nimbus"}, `--nimbus: "nimbus" is not HOST:PORT`},
		{Config{Masters: []string{"m:5050"}, Settings: s, Home: "/h", Nimbus: "n:99999"}, "is not HOST:PORT"},
		{Config{Masters: []string{"m:5050"}, Settings: s, Home: "/h"}, "needs its ZooKeeper servers"},
		{Config{Masters: []string{"m:5050"}, Settings: s, Home: "/h", ZooKeeper: []string{"z1:2181", "z2:2182"}}, "one storm.zookeeper.port"},
		{Config{Masters: []string{"m:5050"}, Settings: s, Home: "/h", ZooKeeper: []string{"z1"}}, `"z1" is not HOST:PORT`},
		{Config{Masters: []string{"m:5050"}, Home: "/h", Nimbus: "n:1"}, "settings are incomplete"},
	} {
		_, err := New(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v; want an error containing %q", c.cfg, err, c.want)
		}
	}
}

// The state file keeps the framework ID and the tasks; a damaged one is
// refused with its path.
func TestStateFile(t *testing.T) {
	dir := t.TempDir()
	s, _ := plan.From(nil)
	f, err := New(Config{Masters: []string{"m:5050"}, Settings: s, Home: "/h", Nimbus: "n:6627", StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	f.frameworkID = "fw-1"
	f.sups["sup-1"] = &sup{Task: Task{TaskID: "sup-1", Supervisor: plan.Supervisor{AgentID: "a1", Host: "h", Port: 10, SlotPorts: []uint64{11}}}}
	f.saveLocked()
	g, err := New(Config{Masters: []string{"m:5050"}, Settings: s, Home: "/h", Nimbus: "n:6627", StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if g.frameworkID != "fw-1" || len(g.sups) != 1 || g.sups["sup-1"].AgentID != "a1" || g.sups["sup-1"].SlotPorts[0] != 11 {
		t.Errorf("restored %q %+v", g.frameworkID, g.sups)
	}
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Masters: []string{"m:5050"}, Settings: s, Home: "/h", Nimbus: "n:6627", StateDir: dir}); err == nil || !strings.Contains(err.Error(), stateFile) {
		t.Errorf("a damaged state file: %v", err)
	}
}
