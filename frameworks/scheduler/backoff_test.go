package scheduler

import (
	"testing"
	"time"
)

func TestBackoffDelayGrowsAndCaps(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second, Factor: 2}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		// jitter just under 1 gives the full (un-jittered) delay.
		if got := b.Delay(i, 0.999999999); got.Round(time.Millisecond) != w*time.Millisecond {
			t.Errorf("Delay(%d) = %v, want %v", i, got, w*time.Millisecond)
		}
	}
	if got := b.Delay(1000, 0.5); got > time.Second {
		t.Errorf("Delay(1000) = %v, above Max", got)
	}
}

func TestBackoffJitterStaysInUpperHalf(t *testing.T) {
	b := Backoff{Min: time.Second, Max: time.Minute}
	if got := b.Delay(0, 0); got != 500*time.Millisecond {
		t.Errorf("Delay(0, jitter 0) = %v, want 500ms", got)
	}
	for _, j := range []float64{-1, 0.25, 0.75, 1, 7} {
		got := b.Delay(2, j)
		if got < 2*time.Second || got > 4*time.Second {
			t.Errorf("Delay(2, %v) = %v, want within [2s, 4s]", j, got)
		}
	}
}

func TestBackoffZeroUsesDefaults(t *testing.T) {
	var b Backoff
	if got := b.Delay(0, 0.999999); got.Round(time.Millisecond) != DefaultBackoff.Min {
		t.Errorf("zero Backoff Delay(0) = %v, want %v", got, DefaultBackoff.Min)
	}
	if got := b.Delay(100, 0.999999); got.Round(time.Millisecond) != DefaultBackoff.Max {
		t.Errorf("zero Backoff Delay(100) = %v, want %v", got, DefaultBackoff.Max)
	}
}
