package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/kafka/kafkatest"
	"github.com/agora-cluster/agora/lambda/bench"
	"github.com/agora-cluster/agora/storm/stormtest"
)

// `agora bench lambda --json` at a tiny size: every count matches what was
// sent, every measure is there, and the answers came out exact.
func TestBenchLambda(t *testing.T) {
	var out, stderr strings.Builder
	code := benchLambda(context.Background(), []string{"--events", "3000", "--probes", "5", "--queries", "20", "--json", "--work_dir", t.TempDir(), "--timeout", "4m"}, &out, &stderr)
	var r bench.Result
	if code != 0 || json.Unmarshal([]byte(out.String()), &r) != nil {
		t.Fatalf("bench lambda: exit %d\n%s\n%s", code, out.String(), stderr.String())
	}
	if r.Events != 3000 || r.Ingested != 3000 || r.Probes != 5 || r.Queries != 20 || !r.Exact || r.BatchRows == 0 ||
		r.EventsPerSec <= 0 || r.FreshnessP50ms <= 0 || r.FreshnessP99ms < r.FreshnessP50ms || r.QueryP99ms < r.QueryP50ms || r.BatchSeconds <= 0 {
		t.Errorf("result: %+v", r)
	}
	// The batch run covers whole segments of what was ingested, no more.
	if r.BatchEvents > 3005 || r.BatchEvents < 1024 {
		t.Errorf("batch covered %d events of 3005", r.BatchEvents)
	}
	if r.Broker != "embedded" {
		t.Errorf("broker %q, want embedded", r.Broker)
	}
	if code := benchLambda(context.Background(), []string{"--events", "0"}, &out, &stderr); code != 2 || !strings.Contains(stderr.String(), "at least 1") {
		t.Errorf("--events 0: exit %d, %q", code, stderr.String())
	}
}

// `agora bench lambda --kafka` on a real Kafka broker: the same checks,
// the numbers logged for benchmarks/RESULTS.md.
func TestBenchLambdaOnRealKafka(t *testing.T) {
	b := kafkatest.Start(t)
	var out, stderr strings.Builder
	code := benchLambda(context.Background(), []string{"--kafka", b.Bootstrap, "--events", "20000", "--probes", "50", "--queries", "200", "--json", "--work_dir", t.TempDir(), "--timeout", "5m"}, &out, &stderr)
	var r bench.Result
	if code != 0 || json.Unmarshal([]byte(out.String()), &r) != nil {
		t.Fatalf("bench lambda --kafka: exit %d\n%s\n%s", code, out.String(), stderr.String())
	}
	if r.Broker != b.Bootstrap || r.Ingested != 20000 || !r.Exact || r.FreshnessP99ms < r.FreshnessP50ms || r.FreshnessP50ms <= 0 {
		t.Errorf("result: %+v", r)
	}
	t.Logf("real Kafka: %s", out.String())
}

// `agora bench lambda --storm --nimbus` runs the speed layer as a
// topology on a real Storm (a Nimbus and a supervisor of this host) and
// the default's run follows in the same test: both exact, both sets of
// numbers logged side by side for benchmarks/RESULTS.md. --nimbus alone
// is refused.
func TestBenchLambdaOnRealStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real Storm's JVMs; not in -short")
	}
	tier.Need(t, tier.JVM, tier.JavaErr())
	var out, stderr strings.Builder
	if code := benchLambda(context.Background(), []string{"--nimbus", "127.0.0.1:1"}, &out, &stderr); code != 2 || !strings.Contains(stderr.String(), "give --storm too") {
		t.Fatalf("--nimbus without --storm: exit %d, %q", code, stderr.String())
	}
	cluster := stormtest.Start(t, 1, 1)
	for _, extra := range [][]string{{"--storm", "--nimbus", cluster.Nimbus}, nil} {
		out.Reset()
		stderr.Reset()
		// The agora binary, not this test's: the topology's components
		// are processes of the binary that runs the bench.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, agoraBin, append([]string{"bench", "lambda", "--events", "20000", "--probes", "50", "--queries", "200", "--json",
			"--work_dir", t.TempDir(), "--timeout", "4m"}, extra...)...)
		cmd.Stdout, cmd.Stderr = &out, &stderr
		err := cmd.Run()
		cancel()
		var r bench.Result
		if err != nil || json.Unmarshal([]byte(out.String()), &r) != nil {
			t.Fatalf("bench lambda %v: %v\n%s\n%s", extra, err, out.String(), lastBytes(stderr.String(), 5000))
		}
		if r.Ingested != 20000 || !r.Exact || r.FreshnessP99ms < r.FreshnessP50ms || r.FreshnessP50ms <= 0 {
			t.Errorf("bench lambda %v: %+v", extra, r)
		}
		want := "native"
		if extra != nil {
			want = "storm on Nimbus " + cluster.Nimbus
			if r.SpeedStartSeconds <= 0 {
				t.Errorf("bench lambda %v: no time for the topology to answer: %+v", extra, r)
			}
		}
		if r.Speed != want {
			t.Errorf("bench lambda %v: speed %q, want %q", extra, r.Speed, want)
		}
		t.Logf("bench lambda %v: %s", extra, out.String())
	}
}
