// Package bench measures the Storm word count example (examples/
// storm-wordcount) on a real Storm, and its baseline: the same scripts
// chained as one local pipeline, driven over the multilang protocol one
// tuple at a time with no Storm in between.
package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
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

// proc is a multilang component run as a local process.
type proc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func start(ctx context.Context, dir, pidDir, script string, task int, conf map[string]any) (*proc, error) {
	cmd := exec.CommandContext(ctx, "python3", script)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", script, err)
	}
	p := &proc{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 64<<10)}
	setup := map[string]any{"conf": conf, "pidDir": pidDir, "context": map[string]any{
		"taskid": task, "componentid": strings.TrimSuffix(script, ".py"),
		"task->component": map[string]string{"1": "sentences", "2": "split", "3": "count"},
	}}
	if err := p.send(setup); err != nil {
		return nil, err
	}
	var hello struct{ PID int }
	if err := p.read(&hello); err != nil || hello.PID == 0 {
		return nil, fmt.Errorf("%s: handshake: %v", script, err)
	}
	return p, nil
}

func (p *proc) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = p.in.Write(append(b, "\nend\n"...))
	return err
}

// read reads one message (JSON lines up to a line "end").
func (p *proc) read(v any) error {
	var msg []byte
	for {
		line, err := p.out.ReadBytes('\n')
		if err != nil {
			return fmt.Errorf("the component ended: %w", err)
		}
		if string(line) == "end\n" {
			break
		}
		msg = append(msg, line...)
	}
	return json.Unmarshal(msg, v)
}

func (p *proc) stop() {
	p.in.Close()
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

// message is a component's command.
type message struct {
	Command string `json:"command"`
	ID      any    `json:"id"`
	Tuple   []any  `json:"tuple"`
	Msg     string `json:"msg"`
}

// runBolt gives a bolt one tuple and collects what it emits until it
// acks the tuple. Each emit is answered with its target task, as Storm
// does for storm.py (which asks for task IDs).
func runBolt(p *proc, id string, values []any, target int) ([][]any, error) {
	if err := p.send(map[string]any{"id": id, "comp": "up", "stream": "default", "task": 1, "tuple": values}); err != nil {
		return nil, err
	}
	var emitted [][]any
	for {
		var m message
		if err := p.read(&m); err != nil {
			return nil, err
		}
		switch m.Command {
		case "emit":
			emitted = append(emitted, m.Tuple)
			if err := p.send([]int{target}); err != nil {
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
	defer spout.stop()
	split, err := start(ctx, resources, pidDir, "split.py", 2, conf)
	if err != nil {
		return Result{}, err
	}
	defer split.stop()
	count, err := start(ctx, resources, pidDir, "count.py", 3, conf)
	if err != nil {
		return Result{}, err
	}
	defer count.stop()

	res := Result{Runtime: "local"}
	var latencies []float64
	var first time.Time
	expected := 0
	for _, n := range want {
		expected += n
	}
	for ctx.Err() == nil {
		if err := spout.send(map[string]string{"command": "next"}); err != nil {
			return res, err
		}
		var emits []message
		for {
			var m message
			if err := spout.read(&m); err != nil {
				return res, err
			}
			if m.Command == "sync" {
				break
			}
			if m.Command == "emit" {
				emits = append(emits, m)
				if err := spout.send([]int{2}); err != nil {
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
			if err := spout.send(map[string]any{"command": "ack", "id": e.ID}); err != nil {
				return res, err
			}
			var m message
			for m.Command != "sync" {
				if err := spout.read(&m); err != nil {
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
