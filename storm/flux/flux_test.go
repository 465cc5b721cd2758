package flux

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// resources makes a resources directory with split.py, count.py and an
// executable run.sh and a non-executable noexec.sh.
func resources(t *testing.T) string {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"split.py": 0o644, "count.py": 0o644, "sentences.py": 0o644, "run.sh": 0o755, "noexec.sh": 0o644} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const good = `
name: "wordcount"
config:
  topology.workers: 2
components:
  - id: "unused"
    className: "java.lang.String"
spouts:
  - id: "sentences"
    className: "org.apache.storm.flux.wrappers.spouts.FluxShellSpout"
    constructorArgs:
      - ["python3", "sentences.py"]
      - ["sentence"]
bolts:
  - id: "split"
    className: "org.apache.storm.flux.wrappers.bolts.FluxShellBolt"
    constructorArgs:
      - ["python3", "split.py"]
      - ["word"]
    parallelism: 3
    configMethods:
      - name: "setNamedStream"
        args: ["lengths", ["word", "length"]]
      - name: "addComponentConfig"
        args: ["split.lower", true]
  - id: "count"
    className: "org.apache.storm.flux.wrappers.bolts.FluxShellBolt"
    constructorArgs:
      - ["./run.sh"]
streams:
  - from: "sentences"
    to: "split"
    grouping:
      type: SHUFFLE
  - name: "words"
    from: "split"
    to: "count"
    grouping:
      type: FIELDS
      args: ["word"]
  - from: "split"
    to: "count"
    grouping:
      type: GLOBAL
      streamId: "lengths"
`

func TestParseShellTopology(t *testing.T) {
	top, err := Parse([]byte(good), resources(t))
	if err != nil {
		t.Fatal(err)
	}
	if top.Name != "wordcount" || top.Config["topology.workers"] != 2 || len(top.Components) != 1 {
		t.Fatalf("name %q, config %v, components %v", top.Name, top.Config, top.Components)
	}
	split := top.component("split")
	if !reflect.DeepEqual(split.Command, []string{"python3", "split.py"}) || split.ParallelismOrDefault() != 3 ||
		!reflect.DeepEqual(split.Outputs, map[string][]string{"default": {"word"}, "lengths": {"word", "length"}}) ||
		split.Conf["split.lower"] != true {
		t.Fatalf("split = %+v", split)
	}
	count := top.component("count")
	if !reflect.DeepEqual(count.Command, []string{"./run.sh"}) || count.ParallelismOrDefault() != 1 || len(count.Outputs) != 0 {
		t.Fatalf("count = %+v", count)
	}
	if len(top.Streams) != 3 || top.Streams[2].StreamID() != "lengths" || top.Streams[1].StreamID() != DefaultStream {
		t.Fatalf("streams = %+v", top.Streams)
	}
}

// Each bad definition is refused with a message naming what is wrong.
func TestParseRefusesBadDefinitions(t *testing.T) {
	for _, tc := range []struct {
		name, old, new, err string
	}{
		{"missing component", `to: "count"`, `to: "counter"`, `component "counter" is not defined`},
		{"unknown grouping", "type: SHUFFLE", "type: SHUFLE", `unknown grouping "SHUFLE"`},
		{"fields without fields", `args: ["word"]`, `args: []`, `stream "words": a FIELDS grouping needs the fields`},
		{"grouping field not declared", `args: ["word"]`, `args: ["wrd"]`, `grouping field "wrd" is not an output field of "split"`},
		{"custom grouping", "type: SHUFFLE", "type: CUSTOM", "CUSTOM grouping needs a Java class"},
		{"no grouping", "type: SHUFFLE", "type: ''", "has no grouping type"},
		{"undeclared stream", `streamId: "lengths"`, `streamId: "sizes"`, `"split" declares no stream "sizes"`},
		{"script not found", `["python3", "split.py"]`, `["python3", "splitter.py"]`, `bolt "split": script "splitter.py" not found`},
		{"script not executable", `["./run.sh"]`, `["./noexec.sh"]`, `bolt "count": script "./noexec.sh" is not executable`},
		{"script outside resources", `["python3", "split.py"]`, `["python3", "../split.py"]`, `outside the resources directory`},
		{"parallelism zero", "parallelism: 3", "parallelism: 0", `bolt "split": parallelism 0 is below 1`},
		{"java class", `className: "org.apache.storm.flux.wrappers.bolts.FluxShellBolt"
    constructorArgs:
      - ["./run.sh"]`, `className: "org.apache.storm.flux.wrappers.bolts.LogInfoBolt"`, `bolt "count" is the Java class org.apache.storm.flux.wrappers.bolts.LogInfoBolt`},
		{"three-part command", `["python3", "split.py"]`, `["python3", "-u", "split.py"]`, `has 3 elements`},
		{"command not a list", `["python3", "split.py"]`, `"python3 split.py"`, `the first constructor argument must be the command`},
		{"duplicate id", `id: "count"`, `id: "split"`, `id "split" is defined twice`},
		{"stream to a spout", `to: "split"`, `to: "sentences"`, `"sentences" is a spout: streams go to bolts`},
		{"unknown key", "config:", "confg:", `field confg not found`},
		{"unknown config method", `name: "addComponentConfig"`, `name: "setFoo"`, `unknown configMethod "setFoo"`},
		{"includes", "config:", "includes: [{resource: true, file: x.yaml}]\nconfig:", "includes are not supported"},
	} {
		y := strings.Replace(good, tc.old, tc.new, 1)
		if y == good {
			t.Fatalf("%s: %q is not in the definition", tc.name, tc.old)
		}
		_, err := Parse([]byte(y), resources(t))
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: error %v; want one containing %q", tc.name, err, tc.err)
		}
	}
	if _, err := Parse(nil, t.TempDir()); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty definition: %v", err)
	}
	if _, err := Parse([]byte("name: x\nspouts: []\n"), t.TempDir()); err == nil || !strings.Contains(err.Error(), "no spouts") {
		t.Errorf("no spouts: %v", err)
	}
}

// Load finds the scripts in resources/ beside the file and names the file
// in its errors.
func TestLoadFindsResourcesBesideTheFile(t *testing.T) {
	dir := t.TempDir()
	res := resources(t)
	if err := os.Rename(res, filepath.Join(dir, "resources")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "topology.yaml")
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	top, err := Load(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if top.Resources != filepath.Join(dir, "resources") {
		t.Fatalf("resources = %s", top.Resources)
	}
	if _, err := Load(path, t.TempDir()); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("load with an empty resources directory: %v", err)
	}
}
