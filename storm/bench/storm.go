package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/agora-cluster/agora/storm/client"
	"github.com/agora-cluster/agora/storm/submit"
)

// Storm submits the prepared word count (its configuration naming out as
// wordcount.output.dir, which the workers must be able to write: the
// supervisors run on this machine), waits until the spout has seen an ack
// for each of sentences, reads the spout's latency records and Storm's
// statistics, and kills the topology.
func Storm(ctx context.Context, c *client.Client, p *submit.Prepared, out string, sentences int, want map[string]int) (Result, error) {
	id, err := p.Submit(ctx, c)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		kctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c.Kill(kctx, p.Name, 0)
	}()
	res := Result{Runtime: "storm", Sentences: sentences}
	for {
		acked := distinctLines(out, "acked-*.txt")
		if acked >= sentences {
			break
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("%d of %d sentences acked: %w", acked, sentences, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	latencies := spoutRecords(out, &res)
	res.Replayed = len(lineList(out, "failed-*.txt"))
	for _, n := range want {
		res.Words += n
	}
	res.finish(latencies)
	got, err := ReadCounts(out)
	res.Valid = err == nil && equal(got, want)
	res.StormCompleteAvgMs = stormCompleteAvg(ctx, c, id)
	return res, nil
}

// spoutRecords reads the spout's latency records ("ID EMIT_UNIX_MS
// LATENCY_MS"): res.Seconds from the first emit to the last ack, and the
// latencies.
func spoutRecords(out string, res *Result) []float64 {
	var latencies []float64
	first, last := 0.0, 0.0
	for _, l := range lineList(out, "latency-*.txt") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		start, err1 := strconv.ParseFloat(f[1], 64)
		lat, err2 := strconv.ParseFloat(f[2], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		latencies = append(latencies, lat)
		if first == 0 || start < first {
			first = start
		}
		if start+lat > last {
			last = start + lat
		}
	}
	res.Seconds = (last - first) / 1000
	return latencies
}

// stormCompleteAvg is the spout's all-time average complete latency as
// Nimbus reports it (getTopologyInfo), 0 when Nimbus has no statistics
// for the spout's executor (with Storm 2.8.3's ShellSpout it has none in
// our runs; the spout's own records are the measurement).
func stormCompleteAvg(ctx context.Context, c *client.Client, id string) float64 {
	info, err := c.TopologyInfo(ctx, id)
	if err != nil {
		return 0
	}
	for _, e := range info.Executors {
		if e.Stats != nil {
			for _, v := range e.Stats.CompleteMsAvg[client.AllTime] {
				return v
			}
		}
	}
	return 0
}

func lineList(dir, glob string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, glob))
	var out []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

func distinctLines(dir, glob string) int {
	m := map[string]bool{}
	for _, l := range lineList(dir, glob) {
		m[l] = true
	}
	return len(m)
}
