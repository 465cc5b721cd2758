package stormtest

import (
	"archive/zip"
	"bytes"
	"embed"
	"io/fs"
	"testing"

	"github.com/agora-cluster/agora/storm/client"
)

// multilang holds the word topology's Python components, speaking Storm's
// multilang protocol: a finite spout of sentences (sentences.py), a bolt
// splitting them into words (split.py) and one recording the words
// (record.py). The spout takes its sentences from the topology
// configuration's agora.test.sentences; the spout and the recording bolt
// write acked-TASK.txt and words-TASK.txt into agora.test.dir.
//
//go:embed multilang/*.py
var multilang embed.FS

// Jar is a topology jar holding the multilang scripts under resources/,
// where a supervisor extracts them and runs the shell components.
func Jar(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	files, _ := fs.Glob(multilang, "multilang/*.py")
	for _, f := range files {
		b, _ := multilang.ReadFile(f)
		w, err := z.Create("resources/" + f[len("multilang/"):])
		if err == nil {
			_, err = w.Write(b)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// WordTopology is sentences → split (shuffle grouping, two executors) →
// record (fields grouping on the word), all Python components of Jar.
func WordTopology() client.Topology {
	py := func(script string) client.ShellComponent {
		return client.ShellComponent{Command: "python3", Script: script}
	}
	out := func(field string) map[string]client.StreamInfo {
		return map[string]client.StreamInfo{client.DefaultStream: {OutputFields: []string{field}}}
	}
	return client.Topology{
		Spouts: map[string]client.Component{
			"sentences": {Shell: py("sentences.py"), Streams: out("sentence")},
		},
		Bolts: map[string]client.Component{
			"split": {Shell: py("split.py"), Streams: out("word"), Parallelism: 2,
				Inputs: []client.Input{{From: client.StreamID{ComponentID: "sentences", StreamID: client.DefaultStream},
					Grouping: client.Grouping{Kind: client.Shuffle}}}},
			"record": {Shell: py("record.py"), Streams: map[string]client.StreamInfo{},
				Inputs: []client.Input{{From: client.StreamID{ComponentID: "split", StreamID: client.DefaultStream},
					Grouping: client.Grouping{Kind: client.Fields, Fields: []string{"word"}}}}},
		},
	}
}
