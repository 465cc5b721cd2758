package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// A small `agora bench scale`: 50 simulated agents and 3 frameworks
// launching short tasks on a master of this binary. Tasks are launched
// and finish within the window, and the master's CPU, the allocator's
// rounds and accept→RUNNING are measured.
func TestBenchScaleSmall(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := benchScale(ctx, scaleConfig{Bin: agoraBin, Agents: 50, Frameworks: 3, TasksPerOffer: 1,
		TaskMean: 200 * time.Millisecond, TaskSD: 50 * time.Millisecond, Warmup: time.Second, Window: 3 * time.Second,
		Dir: t.TempDir(), Timeout: 2 * time.Minute, Logger: log,
		MasterArgs: []string{"--allocation_interval=100ms"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *res)
	if res.Launched == 0 || res.Finished == 0 || res.TasksPerSec <= 0 {
		t.Fatalf("no task launched and finished in the window: %+v", *res)
	}
	if res.CPUPerTaskMs <= 0 || res.AllocRuns == 0 || res.AcceptRunP50 <= 0 || res.MasterPeakMB <= 0 {
		t.Fatalf("a measure is missing: %+v", *res)
	}
}

// The same with --secure: the master requires TLS and credentials of
// frameworks, agents and readers (the bench checks that it refuses a
// caller without them), and the agents reach it over HTTP/2 on TLS.
func TestBenchScaleSmallSecure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := benchScale(ctx, scaleConfig{Bin: agoraBin, Agents: 50, Frameworks: 3, TasksPerOffer: 1,
		TaskMean: 200 * time.Millisecond, TaskSD: 50 * time.Millisecond, Warmup: time.Second, Window: 3 * time.Second,
		Dir: t.TempDir(), Timeout: 2 * time.Minute, Logger: slog.New(slog.DiscardHandler), HTTP2: true, Secure: true,
		MasterArgs: []string{"--allocation_interval=100ms"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *res)
	if !res.Secure || res.Launched == 0 || res.Finished == 0 || res.AllocRuns == 0 {
		t.Fatalf("no task launched and finished in the window of a secured master: %+v", *res)
	}
}
