package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/storm/client"
	"github.com/agora-cluster/agora/storm/stormtest"
)

// A multilang topology submitted through the client runs on a real Storm:
// Nimbus lists the supervisor and its slots, the jar uploads, the Python
// spout's sentences all reach the recording bolt as words and are acked,
// getTopologyInfo counts the bolt's executed tuples, deactivate/activate
// work, a second submission under the same name is refused with
// AlreadyAliveException, and after killTopologyWithOpts the topology is
// gone and a kill of it is refused with NotAliveException.
func TestMultilangTopologyOnRealStorm(t *testing.T) {
	tier.Need(t, tier.Python, tier.PythonErr())
	cluster := stormtest.Start(t, 1, 2)
	c, err := client.New(cluster.Nimbus, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	cs, err := c.ClusterInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Supervisors) != 1 || cs.Supervisors[0].NumWorkers != 2 || len(cs.Nimbuses) != 1 || !cs.Nimbuses[0].IsLeader {
		t.Fatalf("cluster info = %+v; want one supervisor with 2 slots and a leading Nimbus", cs)
	}
	if conf, err := c.NimbusConf(ctx); err != nil || !strings.Contains(conf, `"nimbus.thrift.port"`) {
		t.Fatalf("getNimbusConf = %.200s, %v", conf, err)
	}

	jar, err := c.UploadJar(ctx, bytes.NewReader(stormtest.Jar(t)))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	sentences := []string{"the quick brown fox", "jumps over the lazy dog", "storm runs python", "on agora"}
	conf, _ := json.Marshal(map[string]any{
		"agora.test.dir": out, "agora.test.sentences": sentences,
		"topology.workers": 1, "topology.stats.sample.rate": 1.0,
		"topology.component.resources.onheap.memory.mb": 64,
	})
	if err := c.Submit(ctx, "words", jar, string(conf), stormtest.WordTopology()); err != nil {
		t.Fatal(err)
	}
	top, ok, err := c.TopologyByName(ctx, "words")
	if err != nil || !ok {
		t.Fatalf("the submitted topology is not listed: %v", err)
	}

	var want []string
	for _, s := range sentences {
		want = append(want, strings.Fields(s)...)
	}
	sort.Strings(want)
	// Every sentence acked (the whole tuple tree processed) and every word
	// recorded: a replayed sentence may record its words twice.
	waitFor(t, 4*time.Minute, cluster, "every sentence acked and its words recorded", func() (bool, string) {
		acked := lines(filepath.Join(out, "acked-*.txt"))
		words := lines(filepath.Join(out, "words-*.txt"))
		ids := map[string]bool{}
		for _, a := range acked {
			ids[a] = true
		}
		return len(ids) == len(sentences) && containsAll(words, want),
			strings.Join(acked, ",") + " | " + strings.Join(words, " ")
	})
	waitFor(t, 2*time.Minute, cluster, "getTopologyInfo counting the record bolt's executed tuples", func() (bool, string) {
		info, err := c.TopologyInfo(ctx, top.ID)
		if err != nil {
			return false, err.Error()
		}
		var executed int64
		for _, e := range info.Executors {
			if e.ComponentID == "record" && e.Stats != nil {
				executed += client.Total(e.Stats.Executed, client.AllTime)
			}
		}
		return executed >= int64(len(want)), string(mustJSON(info))
	})

	if err := c.Deactivate(ctx, "words"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, cluster, "the topology INACTIVE", func() (bool, string) {
		s, _, err := c.TopologyByName(ctx, "words")
		return err == nil && s.Status == "INACTIVE", s.Status
	})
	if err := c.Activate(ctx, "words"); err != nil {
		t.Fatal(err)
	}
	err = c.Submit(ctx, "words", jar, string(conf), stormtest.WordTopology())
	if !errors.Is(err, client.ErrAlreadyAlive) || !strings.Contains(err.Error(), "words") {
		t.Fatalf("second submission of words = %v; want AlreadyAliveException naming it", err)
	}

	if err := c.Kill(ctx, "words", 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, cluster, "the topology gone", func() (bool, string) {
		_, ok, err := c.TopologyByName(ctx, "words")
		return err == nil && !ok, ""
	})
	if err := c.Kill(ctx, "words", 0); !errors.Is(err, client.ErrNotAlive) {
		t.Fatalf("kill of a killed topology = %v; want NotAliveException", err)
	}
}

// waitFor polls cond until it holds or limit passes; on failure it shows
// cond's last detail and the workers' logs.
func waitFor(t *testing.T, limit time.Duration, c *stormtest.Cluster, what string, cond func() (bool, string)) {
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

func lines(glob string) []string {
	files, _ := filepath.Glob(glob)
	var out []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, l := range strings.Split(string(b), "\n") {
			if l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

// containsAll reports whether got holds every element of want as often.
func containsAll(got, want []string) bool {
	n := map[string]int{}
	for _, g := range got {
		n[g]++
	}
	for _, w := range want {
		if n[w] == 0 {
			return false
		}
		n[w]--
	}
	return true
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
