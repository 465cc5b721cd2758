package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAgentKill9During1000TaskLaunch: the agent, a separate process, is
// killed with SIGKILL three times while 1,000 checkpointing command tasks
// are launched with up to 200 in flight, and restarted at once on its
// work_dir, where it replays its checkpoint journal. No update the agent
// acknowledged may be lost and no task left unaccounted for: every task
// ends as its command implies, or lost for a reason that says a crash hid
// its outcome (and then its command did not run to its end).
func TestAgentKill9During1000TaskLaunch(t *testing.T) {
	if testing.Short() {
		t.Skip("a 1,000-task workload")
	}
	dir := t.TempDir()
	markers, err := os.MkdirTemp("/var/tmp", "agora-crash-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(markers) })
	var logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	const seed = 20261205
	res, err := runCrashRound(ctx, crashRoundConfig{
		Bin: agoraBin, Dir: dir, MarkerDir: markers, Seed: seed, Kinds: []string{"agent"},
		Tasks: 1000, Crashes: 3, MaxInFlight: 200, Timeout: 6 * time.Minute, Stall: time.Minute,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	t.Logf("seed %d: %s", seed, describeRound(res))
	if err != nil || res.Violations() > 0 || res.Crashes != len(res.Schedule) {
		t.Logf("workload log:\n%s", logs.String())
		b, _ := os.ReadFile(filepath.Join(dir, "logs", "agent.log"))
		t.Logf("agora agent log (last 20 kB):\n%s", tail(b, 20000))
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, describeViolations(res, 50))
	}
	if res.Violations() > 0 {
		t.Fatalf("%d violations:\n%s", res.Violations(), describeViolations(res, 50))
	}
	if res.Crashes != len(res.Schedule) {
		t.Fatalf("only %d of the crashes %v happened", res.Crashes, res.Schedule)
	}
}
