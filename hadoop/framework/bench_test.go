package framework_test

import (
	"context"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/hadoop/bench"
)

// TestBenchmarksRunOnCluster runs `agora bench hadoop` at a tiny size: the
// job, its baseline and the output checks all work (the numbers mean
// nothing at this size).
func TestBenchmarksRunOnCluster(t *testing.T) {
	needPython(t)
	e := startEnv(t)
	cfg := bench.Config{Hadoop: strings.TrimPrefix(e.fw.URL(), "http://"), Dir: t.TempDir(), Size: 2 << 20}
	for name, run := range map[string]func(context.Context, bench.Config) (bench.Result, error){"wordcount": bench.WordCount, "terasort": bench.TeraSort} {
		r, err := run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !r.Valid || r.Job != name || r.Seconds <= 0 || r.BaselineSeconds <= 0 || r.MBPerS <= 0 || r.Bytes <= 0 {
			t.Errorf("%s: %+v", name, r)
		}
	}
}
