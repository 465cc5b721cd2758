package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// defaultCrashSeed is the seed of the in-suite crash test; set
// AGORA_CRASH_SEED to run another schedule (`agora bench crash` runs many).
const defaultCrashSeed = 20261204

// TestCrashKill9Workload: a master and an agent run as separate processes;
// a checkpointing framework runs 200 short command tasks whose outcome is
// known in advance (every third exits 1), at most 8 at a time, while the
// master, the agent or both are killed with SIGKILL at 4 moments a seeded
// RNG picks among the workload's updates, and restarted at once on their
// work_dirs. Every task must end exactly as its command implies, or lost
// for a reason that says a crash hid its outcome (and then its command
// must not have run to its end); no update may follow a terminal one with
// another state; the agent keeps its ID; the master's state agrees with
// the framework's.
func TestCrashKill9Workload(t *testing.T) {
	seed := uint64(defaultCrashSeed)
	if s := os.Getenv("AGORA_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("AGORA_CRASH_SEED=%q is not a non-negative integer", s)
		}
	}
	t.Logf("AGORA_CRASH_SEED=%d", seed)
	dir := t.TempDir()
	// Not under /tmp: tasks get their own.
	markers, err := os.MkdirTemp("/var/tmp", "agora-crash-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(markers) })
	var logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := runCrashRound(ctx, crashRoundConfig{
		Bin: agoraBin, Dir: dir, MarkerDir: markers, Seed: seed,
		Tasks: 200, Crashes: 4, MaxInFlight: 8, Timeout: 3 * time.Minute, Stall: 30 * time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	t.Logf("AGORA_CRASH_SEED=%d: %s", seed, describeRound(res))
	failed := err != nil || res.Violations() > 0 || res.Crashes != len(res.Schedule)
	if failed {
		t.Logf("workload log:\n%s", logs.String())
		for _, name := range []string{"master", "agent"} {
			b, _ := os.ReadFile(filepath.Join(dir, "logs", name+".log"))
			t.Logf("agora %s log (every run, last 20 kB; all of it in %s):\n%s", name, filepath.Join(dir, "logs"), tail(b, 20000))
		}
		for _, task := range res.Tasks {
			for _, v := range res.Verdict.Violations {
				if v.Task == task.ID {
					t.Logf("%s (want %s): %s", task.ID, task.Want, task.History())
					break
				}
			}
		}
	}
	if err != nil {
		t.Fatalf("AGORA_CRASH_SEED=%d: %v\n%s", seed, err, describeViolations(res, 50))
	}
	if res.Violations() > 0 {
		t.Fatalf("AGORA_CRASH_SEED=%d: %d violations:\n%s", seed, res.Violations(), describeViolations(res, 50))
	}
	if res.Crashes != len(res.Schedule) {
		t.Fatalf("AGORA_CRASH_SEED=%d: only %d of the crashes %v happened", seed, res.Crashes, res.Schedule)
	}
}

// The schedule depends on the seed only: the same seed gives the same
// crashes, at distinct progress counts within the workload.
func TestCrashScheduleIsReproducible(t *testing.T) {
	a, b := crashSchedule(7, 200, 4, crashKinds), crashSchedule(7, 200, 4, crashKinds)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("seed 7 gave %v, then %v", a, b)
	}
	if c := crashSchedule(8, 200, 4, crashKinds); reflect.DeepEqual(a, c) {
		t.Fatalf("seeds 7 and 8 both gave %v", a)
	}
	if len(a) != 4 {
		t.Fatalf("schedule %v: want 4 crashes", a)
	}
	for i, p := range a {
		if p.After < 1 || p.After > 3*200 || (i > 0 && p.After <= a[i-1].After) {
			t.Fatalf("schedule %v: crash %d is out of order or outside the workload", a, i)
		}
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
