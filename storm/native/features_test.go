package native

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/storm/flux"
)

// TestDirectAnchorsTicksMetrics runs a spout of three tracked tuples, a
// bolt that emits each one anchored and directly to the highest "sink"
// task, reports a metric and logs, and counts tick tuples; the sink
// records which task got what. Every spout tuple must complete through
// the anchored direct emits, only the named task may receive them, and
// the tick tuples and the metric must arrive.
func TestDirectAnchorsTicksMetrics(t *testing.T) {
	top := example(t)
	res, out := top.Resources, t.TempDir()
	scripts := map[string]string{
		"three.py": `import storm
class Three(storm.Spout):
    def initialize(self, conf, context):
        self.left = ["a", "b", "c"]
    def nextTuple(self):
        if self.left:
            w = self.left.pop()
            storm.emit([w], id=w)
Three().run()
`,
		"router.py": `import os, storm
class Router(storm.Bolt):
    def initialize(self, conf, context):
        self.out = conf["test.out"]
        sinks = [int(t) for t, c in context["task->component"].items() if c == "sink"]
        self.target = max(sinks)
        self.seen = 0
    def process(self, tup):
        if tup.stream == "__tick":
            open(os.path.join(self.out, "ticks"), "a").write("tick\n")
            storm.ack(tup)
            return
        self.seen += 1
        storm.emitDirect(self.target, [tup.values[0]], stream="picked", anchors=[tup])
        storm.rpcMetrics("seen", self.seen)
        storm.logInfo("routed " + tup.values[0])
        storm.ack(tup)
Router().run()
`,
		"sink.py": `import os, storm
class Sink(storm.BasicBolt):
    def initialize(self, conf, context):
        self.path = os.path.join(conf["test.out"], "sink-%d.txt" % context["taskid"])
    def process(self, tup):
        with open(self.path, "a") as f:
            f.write(tup.values[0] + "\n")
Sink().run()
`,
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(res, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	y := `name: features
config:
  test.out: "` + out + `"
spouts:
  - id: three
    className: ` + flux.ShellSpoutClass + `
    constructorArgs: [["python3", "three.py"], ["w"]]
bolts:
  - id: router
    className: ` + flux.ShellBoltClass + `
    constructorArgs: [["python3", "router.py"]]
    configMethods:
      - name: setNamedStream
        args: ["picked", ["w"]]
      - name: addComponentConfig
        args: ["topology.tick.tuple.freq.secs", 1]
  - id: sink
    className: ` + flux.ShellBoltClass + `
    constructorArgs: [["python3", "sink.py"]]
    parallelism: 3
streams:
  - from: three
    to: router
    grouping: {type: ALL}
  - from: router
    to: sink
    grouping: {type: DIRECT, streamId: picked}
`
	ft, err := flux.Parse([]byte(y), res)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Start(context.Background(), ft, Options{Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	waitFor(t, r, time.Minute, func() string { return fmt.Sprintf("spout tuples not all acked, or no tick: %+v", r.Metrics()) }, func() bool {
		_, tickErr := os.Stat(filepath.Join(out, "ticks"))
		return r.Metrics().Component("three").Acked == 3 && tickErr == nil
	})
	sinks := r.Tasks("sink")
	top3 := sinks[len(sinks)-1]
	files, _ := filepath.Glob(filepath.Join(out, "sink-*.txt"))
	if len(files) != 1 || filepath.Base(files[0]) != "sink-"+itoa(top3)+".txt" {
		t.Fatalf("sink files %v, want only sink-%d.txt (the task named by the direct emits)", files, top3)
	}
	b, _ := os.ReadFile(files[0])
	if got := strings.Fields(string(b)); len(got) != 3 {
		t.Errorf("sink task %d got %v, want a, b and c once each", top3, got)
	}
	m := r.Metrics()
	if c := m.Component("router").Custom["seen"]; string(c) != "3" {
		t.Errorf("router's metric seen = %s, want 3", c)
	}
	if s := m.Component("three"); s.Failed != 0 {
		t.Errorf("spout failed %d tuples", s.Failed)
	}
}
