package master

import (
	"testing"
	"time"
)

// TestMetricsHistoryRing keeps the last MetricsHistoryLength samples, one
// per interval at most, oldest first.
func TestMetricsHistoryRing(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	m, err := New(Config{Now: func() time.Time { return now }, MetricsHistoryInterval: 10 * time.Second, MetricsHistoryLength: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		m.sampleHistory()
		now = now.Add(4 * time.Second)
		m.sampleHistory() // too soon: not kept
		now = now.Add(6 * time.Second)
	}
	d := m.historyDoc(nil).(doc)
	ts := d["timestamps"].([]float64)
	want := []float64{1_700_000_020, 1_700_000_030, 1_700_000_040}
	if len(ts) != len(want) {
		t.Fatalf("timestamps = %v, want %v", ts, want)
	}
	for i := range want {
		if ts[i] != want[i] {
			t.Fatalf("timestamps = %v, want %v", ts, want)
		}
	}
	for _, name := range historyMetrics {
		if got := len(d["metrics"].(map[string][]float64)[name]); got != 3 {
			t.Errorf("%s has %d values, want 3", name, got)
		}
	}
}
