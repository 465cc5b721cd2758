// Package bench measures the Storm word count example (examples/
// storm-wordcount) on a real Storm, and its baseline: the same scripts
// chained as one local pipeline, driven over the multilang protocol one
// tuple at a time with no Storm in between.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/agora-cluster/agora/storm/multilang"
)

// Result is one run's numbers.
type Result struct {
	Runtime   string  `json:"runtime"` // "storm" or "local"
	Sentences int     `json:"sentences"`
	Words     int     `json:"words"`
	Seconds   float64 `json:"seconds"` // first emit to last ack
	// TuplesPerSec counts the tuples the bolts took: sentences and words.
	TuplesPerSec    float64 `json:"tuples_per_s"`
	SentencesPerSec float64 `json:"sentences_per_s"`
	// Complete latency (spout emit to ack), measured by the spout.
	LatencyP50ms float64 `json:"complete_latency_p50_ms"`
	LatencyP99ms float64 `json:"complete_latency_p99_ms"`
	// StormCompleteAvgMs is Storm's own all-time average from the
	// spout's statistics (getTopologyInfo); Storm keeps no percentiles.
	StormCompleteAvgMs float64 `json:"storm_complete_latency_avg_ms,omitempty"`
	Replayed           int     `json:"replayed"`
	Valid              bool    `json:"valid"` // counts equal the expected ones
}

// start runs one of the example's scripts as a multilang component.
func start(ctx context.Context, dir, pidDir, script string, task int, conf map[string]any) (*multilang.Proc, error) {
	return multilang.Start(ctx, script, dir, []string{"python3", script}, multilang.Setup{Conf: conf, PIDDir: pidDir,
		Context: multilang.Context{TaskID: task, ComponentID: strings.TrimSuffix(script, ".py"),
			TaskToComponent: map[string]string{"1": "sentences", "2": "split", "3": "count"}}}, os.Stderr)
}

// runBolt gives a bolt one tuple and collects what it emits until it
// acks the tuple. Each emit is answered with its target task, as Storm
// does for storm.py (which asks for task IDs).
func runBolt(p *multilang.Proc, id string, values []any, target int) ([][]any, error) {
	if err := p.Send(multilang.Tuple{ID: id, Comp: "up", Stream: "default", Task: 1, Values: values}); err != nil {
		return nil, err
	}
	var emitted [][]any
	for {
		m, err := p.Read()
		if err != nil {
			return nil, err
		}
		switch m.Command {
		case "emit":
			emitted = append(emitted, m.Tuple)
			if err := p.Send([]int{target}); err != nil {
				return nil, err
			}
		case "ack":
			return emitted, nil
		case "fail", "error":
			return nil, fmt.Errorf("the bolt answered %s: %s", m.Command, m.Msg)
		}
	}
}

// Local runs the example's scripts from resources (the directory with
// sentences.py, split.py, count.py and storm.py) as one pipeline: the
// spout's next sentence goes to split, each of its words to count, and the
// spout gets the ack once count acked every word. conf is the topology
// configuration the scripts see.
func Local(ctx context.Context, resources string, conf map[string]any, want map[string]int) (Result, error) {
	// storm.py writes its pid file after sending the pid: the directory
	// outlives the components.
	pidDir, err := os.MkdirTemp("", "agora-multilang-pids-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(pidDir)
	spout, err := start(ctx, resources, pidDir, "sentences.py", 1, conf)
	if err != nil {
		return Result{}, err
	}
	defer spout.Kill()
	split, err := start(ctx, resources, pidDir, "split.py", 2, conf)
	if err != nil {
		return Result{}, err
	}
	defer split.Kill()
	count, err := start(ctx, resources, pidDir, "count.py", 3, conf)
	if err != nil {
		return Result{}, err
	}
	defer count.Kill()

	res := Result{Runtime: "local"}
	var latencies []float64
	var first time.Time
	expected := 0
	for _, n := range want {
		expected += n
	}
	for ctx.Err() == nil {
		if err := spout.Send(map[string]string{"command": "next"}); err != nil {
			return res, err
		}
		var emits []multilang.Message
		for {
			m, err := spout.Read()
			if err != nil {
				return res, err
			}
			if m.Command == "sync" {
				break
			}
			if m.Command == "emit" {
				emits = append(emits, m)
				if err := spout.Send([]int{2}); err != nil {
					return res, err
				}
			}
		}
		if len(emits) == 0 {
			break // the finite spout has nothing more to emit
		}
		for _, e := range emits {
			t0 := time.Now()
			if first.IsZero() {
				first = t0
			}
			words, err := runBolt(split, fmt.Sprint(e.ID), e.Tuple, 3)
			if err != nil {
				return res, fmt.Errorf("split: %w", err)
			}
			for i, w := range words {
				if _, err := runBolt(count, fmt.Sprintf("%v-%d", e.ID, i), w, 0); err != nil {
					return res, fmt.Errorf("count: %w", err)
				}
			}
			if err := spout.Send(map[string]any{"command": "ack", "id": e.ID}); err != nil {
				return res, err
			}
			for m := (multilang.Message{}); m.Command != "sync"; {
				if m, err = spout.Read(); err != nil {
					return res, err
				}
			}
			latencies = append(latencies, float64(time.Since(t0).Microseconds())/1000)
			res.Sentences++
			res.Words += len(words)
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.Seconds = time.Since(first).Seconds()
	res.finish(latencies)
	res.Valid = res.Words == expected
	if out, _ := conf[OutputDir].(string); out != "" {
		got, err := ReadCounts(out)
		res.Valid = err == nil && equal(got, want)
	}
	return res, nil
}

// finish computes the rates and latency percentiles.
func (r *Result) finish(latencies []float64) {
	if r.Seconds > 0 {
		r.SentencesPerSec = float64(r.Sentences) / r.Seconds
		r.TuplesPerSec = float64(r.Sentences+r.Words) / r.Seconds
	}
	sort.Float64s(latencies)
	r.LatencyP50ms = percentile(latencies, 0.50)
	r.LatencyP99ms = percentile(latencies, 0.99)
}

func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

// The example's configuration keys.
const (
	OutputDir = "wordcount.output.dir"
	Repeat    = "wordcount.repeat"
)

func equal(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// ReadCounts adds up the count bolts' counts-TASK.json files in dir.
func ReadCounts(dir string) (map[string]int, error) {
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
	if len(files) == 0 {
		return nil, errors.New("no counts-*.json written")
	}
	return total, nil
}
