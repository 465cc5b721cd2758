package native

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// compMetrics are one component's counts, over all its tasks.
type compMetrics struct {
	spout                            bool
	emitted, acked, failed, executed atomic.Int64
	errors, restarts                 atomic.Int64
	mu                               sync.Mutex
	lat                              []float64 // ms: complete (spouts) or process (bolts) latency, newest last
	custom                           map[string]json.RawMessage
}

// keep is how many latencies a component keeps for its percentiles.
const keep = 100_000

func newCompMetrics(spout bool) *compMetrics {
	return &compMetrics{spout: spout, custom: map[string]json.RawMessage{}}
}

func (m *compMetrics) latency(d time.Duration) {
	m.mu.Lock()
	if len(m.lat) >= keep {
		m.lat = m.lat[len(m.lat)-keep/2:]
	}
	m.lat = append(m.lat, float64(d.Microseconds())/1000)
	m.mu.Unlock()
}

func (m *compMetrics) setCustom(name string, params json.RawMessage) {
	m.mu.Lock()
	m.custom[name] = params
	m.mu.Unlock()
}

// ComponentMetrics are a component's numbers, as served.
type ComponentMetrics struct {
	Component string `json:"component"`
	Type      string `json:"type"` // spout or bolt
	Tasks     int    `json:"tasks"`
	Emitted   int64  `json:"emitted"`
	// Acked and Failed: for a spout, its tuple trees completed and
	// failed (timed out included); for a bolt, the tuples it acked and
	// failed.
	Acked    int64 `json:"acked"`
	Failed   int64 `json:"failed"`
	Executed int64 `json:"executed,omitempty"`
	Errors   int64 `json:"errors"`
	Restarts int64 `json:"restarts"`
	// Complete latency for a spout, process latency (given to acked)
	// for a bolt, over the latest tuples.
	CompleteLatencyP50ms float64 `json:"complete_latency_p50_ms,omitempty"`
	CompleteLatencyP99ms float64 `json:"complete_latency_p99_ms,omitempty"`
	ProcessLatencyP50ms  float64 `json:"process_latency_p50_ms,omitempty"`
	ProcessLatencyP99ms  float64 `json:"process_latency_p99_ms,omitempty"`
	// Custom are the latest values of the metrics the component sent.
	Custom map[string]json.RawMessage `json:"custom,omitempty"`
}

// Metrics is a topology's metrics.
type Metrics struct {
	Topology   string             `json:"topology"`
	Status     string             `json:"status"`  // ACTIVE or INACTIVE
	Pending    int                `json:"pending"` // spout tuples in flight
	Components []ComponentMetrics `json:"components"`
}

// Metrics reads the counts now.
func (r *Runtime) Metrics() Metrics {
	out := Metrics{Topology: r.top.Name, Status: r.Status().String(), Pending: r.acker.Pending()}
	for comp, m := range r.metrics {
		c := ComponentMetrics{Component: comp, Type: "bolt", Tasks: len(r.byComp[comp]),
			Emitted: m.emitted.Load(), Acked: m.acked.Load(), Failed: m.failed.Load(), Executed: m.executed.Load(),
			Errors: m.errors.Load(), Restarts: m.restarts.Load()}
		m.mu.Lock()
		lat := append([]float64(nil), m.lat...)
		if len(m.custom) > 0 {
			c.Custom = map[string]json.RawMessage{}
			for k, v := range m.custom {
				c.Custom[k] = v
			}
		}
		m.mu.Unlock()
		sort.Float64s(lat)
		p50, p99 := Percentile(lat, 0.5), Percentile(lat, 0.99)
		if m.spout {
			c.Type = "spout"
			c.CompleteLatencyP50ms, c.CompleteLatencyP99ms = p50, p99
		} else {
			c.ProcessLatencyP50ms, c.ProcessLatencyP99ms = p50, p99
		}
		out.Components = append(out.Components, c)
	}
	sort.Slice(out.Components, func(i, j int) bool { return out.Components[i].Component < out.Components[j].Component })
	return out
}

// Component is one component's metrics (zero if there is none).
func (m Metrics) Component(id string) ComponentMetrics {
	for _, c := range m.Components {
		if c.Component == id {
			return c
		}
	}
	return ComponentMetrics{}
}

// Handler serves the metrics as JSON.
func (r *Runtime) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Metrics())
	})
}

// Percentile of sorted values (nearest rank).
func Percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// logLevel maps multilang's levels (0 trace … 4 error) to slog's.
func logLevel(l int) slog.Level {
	switch {
	case l <= 1:
		return slog.LevelDebug
	case l == 2:
		return slog.LevelInfo
	case l == 3:
		return slog.LevelWarn
	}
	return slog.LevelError
}
