package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/storm/bench"
	"github.com/agora-cluster/agora/storm/stormtest"
)

// `agora bench storm` against a real Storm: the word count runs on Storm
// and as the local pipeline, both with exact counts for every sentence
// emitted --repeat times, and rates and latencies are reported.
func TestBenchStormOnRealStorm(t *testing.T) {
	tier.Need(t, tier.Python, tier.PythonErr())
	cluster := stormtest.Start(t, 1, 2)
	code, out, stderr := runStormCmd(func(a []string, o, e *bytes.Buffer) int { return benchStorm(a, o, e) },
		"--nimbus", cluster.Nimbus, "--storm_home", cluster.Home, "--repeat", "5", "--json", "--timeout", "5m")
	var results []bench.Result
	if code != 0 || json.Unmarshal([]byte(out), &results) != nil || len(results) != 2 {
		t.Fatalf("bench storm: exit %d\n%s\n%s\nworker logs:\n%s", code, out, stderr, cluster.WorkerLogs(4000))
	}
	for i, runtime := range []string{"storm", "local"} {
		r := results[i]
		if r.Runtime != runtime || !r.Valid || r.Sentences != 50 || r.Words != 5*77 || r.TuplesPerSec <= 0 ||
			r.LatencyP50ms <= 0 || r.LatencyP99ms < r.LatencyP50ms {
			t.Errorf("%s result: %+v", runtime, r)
		}
	}
	code, _, stderr = runStormCmd(func(a []string, o, e *bytes.Buffer) int { return benchStorm(a, o, e) }, "--runtime", "native")
	if code != 2 || !strings.Contains(stderr, `--runtime "native": only storm is available`) {
		t.Errorf("--runtime native: exit %d, %q", code, stderr)
	}
}
