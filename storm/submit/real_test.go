package submit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	wordcount "github.com/agora-cluster/agora/examples/storm-wordcount"
	"github.com/agora-cluster/agora/storm/client"
	"github.com/agora-cluster/agora/storm/flux"
	"github.com/agora-cluster/agora/storm/stormtest"
	"github.com/agora-cluster/agora/storm/submit"
)

// The example word count on two workers of a real Storm: the worker that
// does not run the spout is killed with SIGKILL while the spout is still
// emitting. The tuples it held time out and fail at the spout, which
// emits those sentences again, and every sentence ends acked — while the
// spout's own worker (and so its memory of what is pending) lives on.
func TestKilledWorkerTuplesReplayed(t *testing.T) {
	tier.Need(t, tier.Python, tier.PythonErr())
	cluster := stormtest.Start(t, 1, 2)
	c, _ := client.New(cluster.Nimbus, client.Options{})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	path, err := wordcount.WriteTo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	top, err := flux.Load(path, "")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	p, err := submit.Prepare(top, submit.Options{StormHome: cluster.Home, Conf: map[string]any{
		"wordcount.output.dir": out, "topology.workers": 2,
		// Slow enough that sentences are still being emitted while the
		// killed worker is restarted; a lost tuple fails within 10 s.
		"wordcount.emit.interval.secs": 0.7, "topology.message.timeout.secs": 10,
	}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := p.Submit(ctx, c)
	if err != nil {
		t.Fatal(err)
	}

	// Once the first sentences are acked, find the spout's slot and the
	// other one.
	var spoutPort, otherPort int
	wait(t, 3*time.Minute, cluster, "two acked sentences and both workers placed", func() (bool, string) {
		info, err := c.TopologyInfo(ctx, id)
		if err != nil {
			return false, err.Error()
		}
		spoutPort, otherPort = 0, 0
		for _, e := range info.Executors {
			if e.ComponentID == "sentences" {
				spoutPort = int(e.Port)
			}
		}
		for _, e := range info.Executors {
			if int(e.Port) != spoutPort {
				otherPort = int(e.Port)
			}
		}
		acked := lines(out, "acked-*.txt")
		return len(acked) >= 2 && spoutPort != 0 && otherPort != 0,
			fmt.Sprintf("acked %v, spout on %d, other worker on %d", acked, spoutPort, otherPort)
	})
	spoutPIDs := stormtest.WorkerPIDs(id, spoutPort)
	victims := stormtest.WorkerPIDs(id, otherPort)
	if len(spoutPIDs) != 1 || len(victims) != 1 {
		t.Fatalf("worker processes: spout's %v, other %v; want one each", spoutPIDs, victims)
	}
	ackedBefore := len(dedup(lines(out, "acked-*.txt")))
	if err := syscall.Kill(victims[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed worker %d on slot %d after %d sentences acked", victims[0], otherPort, ackedBefore)

	sentences := len(wordcount.Sentences())
	wait(t, 4*time.Minute, cluster, "every sentence acked after tuples failed and were replayed", func() (bool, string) {
		acked := dedup(lines(out, "acked-*.txt"))
		failed := lines(out, "failed-*.txt")
		return len(acked) == sentences && len(failed) > 0,
			fmt.Sprintf("acked %d of %d, failed %v", len(acked), sentences, failed)
	})
	if pids := stormtest.WorkerPIDs(id, spoutPort); len(pids) != 1 || pids[0] != spoutPIDs[0] {
		t.Fatalf("the spout's worker changed: %v, was %v", pids, spoutPIDs)
	}
	t.Logf("failed and replayed: %v", lines(out, "failed-*.txt"))
	if err := c.Kill(ctx, p.Name, 0); err != nil {
		t.Fatal(err)
	}
}

func wait(t *testing.T, limit time.Duration, c *stormtest.Cluster, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var detail string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, detail = cond(); ok {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("no %s within %s (last: %.3000s)\nworker logs:\n%s", what, limit, detail, c.WorkerLogs(6000))
}

func lines(dir, glob string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, glob))
	var out []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		out = append(out, strings.Fields(string(b))...)
	}
	return out
}

func dedup(xs []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}
