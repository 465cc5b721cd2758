package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	stormbench "github.com/agora-cluster/agora/storm/bench"
	"github.com/agora-cluster/agora/storm/multilang"
	"github.com/agora-cluster/agora/storm/stormtest"
)

// `agora bench storm --runtime both` against a real Storm: the word count
// runs on Storm, on the native runtime and as the local pipeline, both with exact counts for every sentence
// emitted --repeat times, and rates and latencies are reported.
func TestBenchStormOnRealStorm(t *testing.T) {
	tier.Need(t, tier.Python, tier.PythonErr())
	cluster := stormtest.Start(t, 1, 2)
	code, out, stderr := runStormCmd(func(a []string, o, e *bytes.Buffer) int { return benchStorm(a, o, e) },
		"--nimbus", cluster.Nimbus, "--storm_home", cluster.Home, "--runtime", "both", "--repeat", "5", "--json", "--timeout", "5m")
	var results []stormbench.Result
	if code != 0 || json.Unmarshal([]byte(out), &results) != nil || len(results) != 3 {
		t.Fatalf("bench storm: exit %d\n%s\n%s\nworker logs:\n%s", code, out, stderr, cluster.WorkerLogs(4000))
	}
	for i, runtime := range []string{"storm", "native", "local"} {
		r := results[i]
		if r.Runtime != runtime || !r.Valid || r.Sentences != 50 || r.Words != 5*77 || r.TuplesPerSec <= 0 ||
			r.LatencyP50ms <= 0 || r.LatencyP99ms < r.LatencyP50ms {
			t.Errorf("%s result: %+v", runtime, r)
		}
	}
}

// `agora bench storm --runtime native` needs no JVM and no Nimbus: the
// word count on the native runtime and the local pipeline both come out
// exact. Unknown runtimes and several native workers are refused.
func TestBenchStormNative(t *testing.T) {
	tier.Need(t, tier.Python, tier.PythonErr())
	_, err := multilang.FindStormPy(t.TempDir(), defaultStormHome())
	tier.Need(t, tier.Python, err)
	bench := func(a ...string) (int, string, string) {
		return runStormCmd(func(a []string, o, e *bytes.Buffer) int { return benchStorm(a, o, e) }, a...)
	}
	code, out, stderr := bench("--runtime", "native", "--repeat", "5", "--json", "--timeout", "3m")
	var results []stormbench.Result
	if code != 0 || json.Unmarshal([]byte(out), &results) != nil || len(results) != 2 {
		t.Fatalf("bench storm --runtime native: exit %d\n%s\n%s", code, out, stderr)
	}
	for i, runtime := range []string{"native", "local"} {
		r := results[i]
		if r.Runtime != runtime || !r.Valid || r.Sentences != 50 || r.Words != 5*77 || r.TuplesPerSec <= 0 ||
			r.LatencyP50ms <= 0 || r.LatencyP99ms < r.LatencyP50ms {
			t.Errorf("%s result: %+v", runtime, r)
		}
	}
	if code, _, stderr := bench("--runtime", "flink"); code != 2 || !strings.Contains(stderr, `--runtime "flink": want storm, native or both`) {
		t.Errorf("--runtime flink: exit %d, %q", code, stderr)
	}
	if code, _, stderr := bench("--runtime", "native", "--workers", "2"); code != 2 || !strings.Contains(stderr, "runs one worker") {
		t.Errorf("--runtime native --workers 2: exit %d, %q", code, stderr)
	}
}
