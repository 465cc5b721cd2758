package submit

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	wordcount "github.com/agora-cluster/agora/examples/storm-wordcount"
	"github.com/agora-cluster/agora/storm/client"
	"github.com/agora-cluster/agora/storm/flux"
)

// fakeHome is a Storm home whose multilang-python jar holds a storm.py.
func fakeHome(t *testing.T) string {
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, "lib"), 0o755)
	f, err := os.Create(filepath.Join(home, filepath.FromSlash(MultilangJar)))
	if err != nil {
		t.Fatal(err)
	}
	z := zip.NewWriter(f)
	w, _ := z.Create("resources/storm.py")
	w.Write([]byte("# storm.py\n"))
	z.Close()
	f.Close()
	return home
}

func example(t *testing.T) *flux.Topology {
	path, err := wordcount.WriteTo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	top, err := flux.Load(path, "")
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// The example becomes a StormTopology of shell components with its
// groupings, fields and parallelism, a configuration with the -c keys
// over the file's, and a jar of resources/ with the scripts and storm.py.
func TestPrepareTheExample(t *testing.T) {
	p, err := Prepare(example(t), Options{Name: "wc2", Conf: map[string]any{"topology.workers": 2, "wordcount.output.dir": "/out"}, StormHome: fakeHome(t)})
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]any
	if err := json.Unmarshal([]byte(p.Conf), &conf); err != nil {
		t.Fatal(err)
	}
	if p.Name != "wc2" || conf["topology.workers"] != 2.0 || conf["wordcount.output.dir"] != "/out" || conf["topology.max.spout.pending"] != 64.0 {
		t.Fatalf("name %s, conf %v", p.Name, conf)
	}
	want := client.Topology{
		Spouts: map[string]client.Component{"sentences": {
			Shell:   client.ShellComponent{Command: "python3", Script: "sentences.py"},
			Streams: map[string]client.StreamInfo{"default": {OutputFields: []string{"sentence"}}}, Parallelism: 1}},
		Bolts: map[string]client.Component{
			"split": {Shell: client.ShellComponent{Command: "python3", Script: "split.py"},
				Inputs:  []client.Input{{From: client.StreamID{ComponentID: "sentences", StreamID: "default"}, Grouping: client.Grouping{Kind: client.Shuffle}}},
				Streams: map[string]client.StreamInfo{"default": {OutputFields: []string{"word"}}}, Parallelism: 2},
			"count": {Shell: client.ShellComponent{Command: "python3", Script: "count.py"},
				Inputs:  []client.Input{{From: client.StreamID{ComponentID: "split", StreamID: "default"}, Grouping: client.Grouping{Kind: client.Fields, Fields: []string{"word"}}}},
				Streams: map[string]client.StreamInfo{}, Parallelism: 2},
		},
	}
	if !reflect.DeepEqual(p.Topology, want) {
		t.Fatalf("topology\n%+v\nwant\n%+v", p.Topology, want)
	}
	z, err := zip.NewReader(bytes.NewReader(p.Jar), int64(len(p.Jar)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range z.File {
		names = append(names, f.Name)
		if f.Name == "resources/storm.py" {
			r, _ := f.Open()
			b, _ := io.ReadAll(r)
			if string(b) != "# storm.py\n" {
				t.Errorf("storm.py = %q", b)
			}
		}
	}
	if got := strings.Join(names, " "); got != "resources/count.py resources/sentences.py resources/sentences.txt resources/split.py resources/storm.py" {
		t.Fatalf("jar entries: %s", got)
	}
}

// A DIRECT grouping declares its source stream direct; a component's
// configuration goes into its json_conf.
func TestThriftDirectStreamAndComponentConf(t *testing.T) {
	top := example(t)
	top.Streams[1].Grouping = flux.Grouping{Type: flux.GroupDirect}
	top.Bolts[1].Conf = map[string]any{"topology.tick.tuple.freq.secs": 5}
	got, err := Thrift(top)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Bolts["split"].Streams["default"].Direct || got.Bolts["count"].Inputs[0].Grouping.Kind != client.Direct ||
		got.Bolts["count"].JSONConf != `{"topology.tick.tuple.freq.secs":5}` {
		t.Fatalf("topology = %+v", got)
	}
}

// Without a name, or without storm.py anywhere, nothing is prepared.
func TestPrepareRefuses(t *testing.T) {
	top := example(t)
	top.Name = ""
	if _, err := Prepare(top, Options{StormHome: fakeHome(t)}); err == nil || !strings.Contains(err.Error(), "no name") {
		t.Errorf("no name: %v", err)
	}
	if _, err := Prepare(example(t), Options{Name: "a.b", StormHome: fakeHome(t)}); err == nil || !strings.Contains(err.Error(), `"a.b"`) {
		t.Errorf("bad name: %v", err)
	}
	if _, err := Prepare(example(t), Options{StormHome: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "multilang-python") {
		t.Errorf("no storm.py: %v", err)
	}
	if _, err := Prepare(example(t), Options{}); err == nil || !strings.Contains(err.Error(), "no Storm home") {
		t.Errorf("no home: %v", err)
	}
	// A program of the resources directory would lose its execute bit on
	// the supervisor.
	top = example(t)
	top.Bolts[0].Command = []string{"./count.py"}
	if _, err := Prepare(top, Options{StormHome: fakeHome(t)}); err == nil || !strings.Contains(err.Error(), "without its execute bit") ||
		!strings.Contains(err.Error(), `["sh", "count.py"]`) {
		t.Errorf("a program of the resources directory: %v", err)
	}
}
