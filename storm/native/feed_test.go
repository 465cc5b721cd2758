package native

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agora-cluster/agora/storm/flux"
)

// TestFullBoltWakesOnAck runs a bolt allowed one tuple at a time
// (topology.shellbolt.max.pending 1) with heartbeats an hour apart: each
// ack must let the next tuple in. A feeder that only looked at its inbox
// again on a heartbeat delivered one batch of tuples per second (and
// here, none after the first).
func TestFullBoltWakesOnAck(t *testing.T) {
	defer func(d time.Duration) { heartbeatEvery = d }(heartbeatEvery)
	heartbeatEvery = time.Hour
	top := example(t)
	res := top.Resources
	const n = 200
	scripts := map[string]string{
		"many.py": fmt.Sprintf(`import storm
class Many(storm.Spout):
    def initialize(self, conf, context):
        self.next = 0
    def nextTuple(self):
        if self.next < %d:
            storm.emit([self.next], id=self.next)
            self.next += 1
Many().run()
`, n),
		"take.py": `import storm
class Take(storm.BasicBolt):
    def process(self, tup):
        pass
Take().run()
`,
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(res, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	y := `name: feed
config:
  topology.shellbolt.max.pending: 1
  topology.message.timeout.secs: 300
spouts:
  - id: many
    className: ` + flux.ShellSpoutClass + `
    constructorArgs: [["python3", "many.py"], ["n"]]
bolts:
  - id: take
    className: ` + flux.ShellBoltClass + `
    constructorArgs: [["python3", "take.py"]]
streams:
  - from: many
    to: take
    grouping: {type: SHUFFLE}
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
	waitFor(t, r, 2*time.Minute, func() string { return fmt.Sprintf("not every tuple acked: %+v", r.Metrics()) }, func() bool {
		return r.Metrics().Component("many").Acked == n
	})
	if m := r.Metrics(); m.Component("many").Failed != 0 || m.Component("take").Executed != n {
		t.Errorf("spout failed %d, bolt executed %d of %d", m.Component("many").Failed, m.Component("take").Executed, n)
	}
}
