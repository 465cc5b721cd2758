package native

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/dist"
	wordcount "github.com/agora-cluster/agora/examples/storm-wordcount"
	"github.com/agora-cluster/agora/storm/flux"
	"github.com/agora-cluster/agora/storm/multilang"
)

// example writes the word count example with storm.py into a temporary
// directory and loads it; the test skips (fails under CI) without
// python3 or a storm.py to read.
func example(t *testing.T) *flux.Topology {
	t.Helper()
	tier.Need(t, tier.Python, tier.PythonErr())
	dir := t.TempDir()
	path, err := wordcount.WriteTo(dir)
	if err != nil {
		t.Fatal(err)
	}
	installStormPy(t, filepath.Join(dir, "resources"))
	top, err := flux.Load(path, "")
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func installStormPy(t *testing.T, resources string) {
	t.Helper()
	var homes []string
	if d, err := dist.Resolve("storm"); err == nil {
		homes = append(homes, filepath.Join(dist.DefaultDir(), d.Dir()))
	}
	py, err := multilang.FindStormPy(resources, homes...)
	tier.Need(t, tier.Python, err)
	if err := os.WriteFile(filepath.Join(resources, multilang.StormPy), py, 0o644); err != nil {
		t.Fatal(err)
	}
}

// lines are the distinct lines of dir's files matching glob.
func lines(dir, glob string) map[string]bool {
	files, _ := filepath.Glob(filepath.Join(dir, glob))
	out := map[string]bool{}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out[l] = true
			}
		}
	}
	return out
}

// waitFor polls cond until it holds or limit passes, failing then with
// what.
func waitFor(t *testing.T, r *Runtime, limit time.Duration, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if err := r.Err(); err != nil {
			t.Fatalf("topology stopped: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", limit, what())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestWordCountExactCounts(t *testing.T) {
	top := example(t)
	out := t.TempDir()
	const repeat = 5
	r, err := Start(context.Background(), top, Options{Stderr: os.Stderr, Conf: map[string]any{
		"wordcount.output.dir": out, "wordcount.repeat": repeat,
		// No replay on a busy machine: the counts must be exact.
		KeyMessageTimeout: 300,
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	sentences := len(wordcount.Sentences()) * repeat
	waitFor(t, r, 2*time.Minute, func() string {
		return "acked " + itoa(len(lines(out, "acked-*.txt"))) + " of " + itoa(sentences)
	}, func() bool { return len(lines(out, "acked-*.txt")) == sentences })

	got, err := readCounts(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for w, n := range wordcount.Counts() {
		want[w] = n * repeat
	}
	if len(got) != len(want) {
		t.Fatalf("%d distinct words counted, want %d", len(got), len(want))
	}
	for w, n := range want {
		if got[w] != n {
			t.Errorf("count of %q = %d, want %d", w, got[w], n)
		}
	}
	m := r.Metrics()
	if s := m.Component("sentences"); s.Acked != int64(sentences) || s.Failed != 0 {
		t.Errorf("spout metrics: acked %d failed %d, want %d and 0", s.Acked, s.Failed, sentences)
	}
	if len(lines(out, "failed-*.txt")) != 0 {
		t.Errorf("sentences failed: %v", lines(out, "failed-*.txt"))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// readCounts adds up the count bolts' counts-TASK.json files.
func readCounts(dir string) (map[string]int, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "counts-*.json"))
	total := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var m map[string]int
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for w, n := range m {
			total[w] += n
		}
	}
	return total, nil
}
