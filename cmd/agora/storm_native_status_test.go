package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	wordcount "github.com/agora-cluster/agora/examples/storm-wordcount"
	"github.com/agora-cluster/agora/storm/bench"
)

// TestStormNativeDeactivateActivate runs the example word count on two
// native workers and deactivates it mid-stream with `agora storm
// deactivate --runtime native`: list and info say INACTIVE, and at most
// topology.max.spout.pending more sentences are acked (those in flight);
// activated, every sentence is acked with exact counts. Rebalanced while
// inactive, the new worker stays inactive (its spout, started over, emits
// nothing) until activated; a rebalance with --wait is REBALANCING
// (refusing activate) and comes back ACTIVE with the new workers.
func TestStormNativeDeactivateActivate(t *testing.T) {
	dir, master, path := startNativeStormCluster(t)
	storm := func(args ...string) (string, string, int) {
		return runClient(t, master, append([]string{"storm"}, append(args, "--runtime", "native", "--master", master)...)...)
	}
	statuses := func() []string {
		out, errOut, code := storm("list", "--json")
		var ts []nativeTopology
		if code != 0 || json.Unmarshal([]byte(out), &ts) != nil {
			t.Fatalf("storm list --runtime native: exit %d %q %q", code, out, errOut)
		}
		var st []string
		for _, x := range ts {
			st = append(st, x.Status)
		}
		return st
	}
	workersSay := func(want string, workers int) func() bool {
		return func() bool {
			out, _, code := storm("info", "wc", "--json")
			var info nativeInfo
			return code == 0 && json.Unmarshal([]byte(out), &info) == nil && len(info.Workers) == workers && info.Status == want
		}
	}
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o777)
	const repeat, maxPending = 30, 4
	total := len(wordcount.Sentences()) * repeat
	sub := start(t, "storm", "submit", path, "--runtime", "native", "--master", master, "--mem", "256", "--cpus", "0.5", "--name", "wc",
		"-c", "wordcount.output.dir="+out, "-c", "topology.workers=2", "-c", "wordcount.repeat="+strconv.Itoa(repeat),
		"-c", "wordcount.emit.interval.secs=0.01", "-c", "topology.max.spout.pending="+strconv.Itoa(maxPending),
		"-c", "topology.message.timeout.secs=300")
	showing := func(what string) func() string {
		return func() string {
			return fmt.Sprintf("%s: acked %d (%d in all) of %d; submit: %s", what, ackedLines(out), totalAcks(out), total, sub.out.String())
		}
	}
	waitShowing(t, 2*time.Minute, showing("first acks"), func() bool { return ackedLines(out) >= 5 })

	if _, e, code := storm("deactivate", "nosuch"); code != 1 || !strings.Contains(e, `no native topology "nosuch"`) {
		t.Errorf("deactivate nosuch: exit %d %q, want the topology named as unknown", code, e)
	}
	if o, e, code := storm("deactivate", "wc"); code != 0 || !strings.Contains(o, "deactivated wc") {
		t.Fatalf("storm deactivate --runtime native: exit %d %q %q", code, o, e)
	}
	if st := statuses(); len(st) != 2 || st[0] != "INACTIVE" || st[1] != "INACTIVE" {
		t.Errorf("list after deactivate: statuses %v, want INACTIVE for both workers", st)
	}
	// The workers' metrics say INACTIVE once the spout's worker took it:
	// no next after that, so only the trees then in flight may complete.
	waitShowing(t, time.Minute, showing("the workers do not say INACTIVE"), workersSay("INACTIVE", 2))
	base := ackedLines(out)
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if n := ackedLines(out); n > base+maxPending || n == total {
			t.Fatalf("inactive: %d sentences acked, %d when the workers said INACTIVE (of %d, at most %d in flight)", n, base, total, maxPending)
		}
	}
	if o, e, code := storm("activate", "wc"); code != 0 || !strings.Contains(o, "activated wc") {
		t.Fatalf("storm activate --runtime native: exit %d %q %q", code, o, e)
	}
	waitShowing(t, 2*time.Minute, showing("not every sentence acked"), func() bool { return ackedLines(out) == total })
	got, err := bench.ReadCounts(out)
	if err != nil {
		t.Fatal(err)
	}
	for w, c := range wordcount.Counts() {
		if got[w] != c*repeat {
			t.Errorf("count of %q = %d, want %d", w, got[w], c*repeat)
		}
	}
	if st := statuses(); len(st) != 2 || st[0] != "ACTIVE" {
		t.Errorf("list after activate: statuses %v, want ACTIVE", st)
	}

	// Rebalanced while inactive: the new worker starts inactive, so its
	// spout (started over) emits nothing until activated.
	if o, e, code := storm("deactivate", "wc"); code != 0 {
		t.Fatalf("deactivate again: exit %d %q %q", code, o, e)
	}
	acks := totalAcks(out)
	if o, e, code := storm("rebalance", "wc", "-n", "1"); code != 0 {
		t.Fatalf("rebalance -n 1: exit %d %q %q", code, o, e)
	}
	waitShowing(t, 2*time.Minute, showing("the rebalanced worker does not say INACTIVE"), workersSay("INACTIVE", 1))
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if n := totalAcks(out); n != acks {
			t.Fatalf("rebalanced while inactive: %d acks, %d before: the new spout emitted", n, acks)
		}
	}
	if o, e, code := storm("activate", "wc"); code != 0 {
		t.Fatalf("activate after the rebalance: exit %d %q %q", code, o, e)
	}
	waitShowing(t, 2*time.Minute, showing("the rebalanced spout's sentences not all acked"), func() bool { return totalAcks(out) >= acks+total })

	// rebalance --wait: REBALANCING (activate refused) for the wait,
	// then two workers, ACTIVE.
	if o, e, code := storm("rebalance", "wc", "-n", "2", "--wait", "3"); code != 0 || !strings.Contains(o, "deactivated; 2 worker(s) in 3 s") {
		t.Fatalf("rebalance -n 2 --wait 3: exit %d %q %q", code, o, e)
	}
	if st := statuses(); len(st) != 1 || st[0] != "REBALANCING" {
		t.Errorf("list during the rebalance's wait: %v, want REBALANCING", st)
	}
	if _, e, code := storm("activate", "wc"); code != 1 || !strings.Contains(e, "REBALANCING") {
		t.Errorf("activate during the rebalance's wait: exit %d %q, want it refused", code, e)
	}
	acks = totalAcks(out)
	waitShowing(t, 2*time.Minute, showing("not rebalanced to two ACTIVE workers"), workersSay("ACTIVE", 2))
	waitShowing(t, 2*time.Minute, showing("the sentences after --wait not all acked"), func() bool { return totalAcks(out) >= acks+total })
	if st := statuses(); len(st) != 2 || st[0] != "ACTIVE" {
		t.Errorf("list after the rebalance: %v, want ACTIVE", st)
	}
}
