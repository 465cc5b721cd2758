package master

import (
	"net/http"
	"time"
)

// The overview's history: the master keeps a small ring of recent samples
// of the metrics the web UI draws over time (resources used and total,
// tasks, agents), so that a page opened now shows the last hour without a
// metrics server. /metrics/history serves it.

// historyMetrics are the /metrics/snapshot names a sample keeps.
var historyMetrics = []string{
	"master/cpus_used", "master/cpus_total",
	"master/mem_used", "master/mem_total",
	"master/disk_used", "master/disk_total",
	"master/tasks_running", "master/tasks_staging", "master/tasks_starting",
	"master/slaves_active", "master/frameworks_active", "master/outstanding_offers",
}

// DefaultMetricsHistoryInterval and DefaultMetricsHistoryLength keep an
// hour of samples, one each ten seconds.
const (
	DefaultMetricsHistoryInterval = 10 * time.Second
	DefaultMetricsHistoryLength   = 360
)

type historySample struct {
	at     time.Time
	values []float64 // in historyMetrics' order
}

// history is a ring of samples, owned by the loop.
type history struct {
	samples []historySample
	next    int // where the next sample goes once the ring is full
	last    time.Time
}

// sampleHistory records a sample if the interval has passed since the
// last; the loop's housekeeping tick calls it.
func (m *Master) sampleHistory() {
	now := m.now()
	h := &m.history
	if !h.last.IsZero() && now.Sub(h.last) < m.cfg.MetricsHistoryInterval {
		return
	}
	h.last = now
	snap := m.snapshot()
	s := historySample{at: now, values: make([]float64, len(historyMetrics))}
	for i, name := range historyMetrics {
		s.values[i] = snap[name]
	}
	if len(h.samples) < m.cfg.MetricsHistoryLength {
		h.samples = append(h.samples, s)
		return
	}
	h.samples[h.next] = s
	h.next = (h.next + 1) % len(h.samples)
}

// historyDoc is the ring, oldest first: each metric's values in one array
// beside the samples' times, which keeps an hour small on the wire.
func (m *Master) historyDoc(*http.Request) any {
	h := &m.history
	n := len(h.samples)
	times := make([]float64, 0, n)
	series := make(map[string][]float64, len(historyMetrics))
	for _, name := range historyMetrics {
		series[name] = make([]float64, 0, n)
	}
	for i := 0; i < n; i++ {
		s := h.samples[(h.next+i)%n]
		times = append(times, timeSecs(s.at))
		for j, name := range historyMetrics {
			series[name] = append(series[name], s.values[j])
		}
	}
	return doc{
		"interval_secs": m.cfg.MetricsHistoryInterval.Seconds(),
		"capacity":      m.cfg.MetricsHistoryLength,
		"timestamps":    times,
		"metrics":       series,
	}
}
