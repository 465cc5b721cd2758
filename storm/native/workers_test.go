package native

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	wordcount "github.com/agora-cluster/agora/examples/storm-wordcount"
	"github.com/agora-cluster/agora/storm/flux"
)

// twoWorkers starts worker i of a two-worker run of top on addrs.
func startWorker(t *testing.T, top *flux.Topology, addrs []string, i int, conf map[string]any) *Runtime {
	t.Helper()
	return startLaunch(t, top, addrs, i, 0, conf)
}

// startLaunch starts worker i of launch (0: unnumbered) on addrs[i].
func startLaunch(t *testing.T, top *flux.Topology, addrs []string, i, launch int, conf map[string]any) *Runtime {
	t.Helper()
	ln, err := net.Listen("tcp", addrs[i])
	if err != nil {
		t.Fatal(err)
	}
	c := map[string]any{KeyWorkers: 2}
	for k, v := range conf {
		c[k] = v
	}
	r, err := Start(context.Background(), top, Options{Conf: c, Peers: addrs, Worker: i, Listener: ln, Stderr: os.Stderr, Launch: launch})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	return r
}

func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		ln.Close()
	}
	return addrs
}

// TestTwoWorkersExactCounts runs the word count on two workers: the tasks
// are spread over both (the spout and a split on one, the other split on
// the other, a count on each), so sentences, words and acks cross TCP.
func TestTwoWorkersExactCounts(t *testing.T) {
	top := example(t)
	out := t.TempDir()
	addrs := freeAddrs(t, 2)
	const repeat = 5
	conf := map[string]any{"wordcount.output.dir": out, "wordcount.repeat": repeat, KeyMessageTimeout: 300}
	w0 := startWorker(t, top, addrs, 0, conf)
	defer w0.Stop()
	w1 := startWorker(t, top, addrs, 1, conf)
	defer w1.Stop()
	if len(w0.PIDs("split")) != 1 || len(w1.PIDs("split")) != 1 || len(w0.PIDs("count")) != 1 || len(w1.PIDs("count")) != 1 {
		t.Fatalf("split tasks %v|%v, count tasks %v|%v: want one of each per worker", w0.PIDs("split"), w1.PIDs("split"), w0.PIDs("count"), w1.PIDs("count"))
	}
	sentences := len(wordcount.Sentences()) * repeat
	waitFor(t, w0, 2*time.Minute, func() string { return "acked " + itoa(len(lines(out, "acked-*.txt"))) },
		func() bool { return len(lines(out, "acked-*.txt")) == sentences })
	got, err := readCounts(out)
	if err != nil {
		t.Fatal(err)
	}
	for w, n := range wordcount.Counts() {
		if got[w] != n*repeat {
			t.Errorf("count of %q = %d, want %d", w, got[w], n*repeat)
		}
	}
	if m := w1.Metrics(); m.Component("split").Acked == 0 || m.Component("count").Acked == 0 {
		t.Errorf("worker 1 did no work: %+v", m)
	}
}

// TestStoppedWorkerTuplesReplayed stops the worker without the spout
// mid-stream (its processes killed, its tuples lost) and starts it again:
// the lost trees time out at the spout, which replays them, and every
// sentence is acked.
func TestStoppedWorkerTuplesReplayed(t *testing.T) {
	top := example(t)
	out := t.TempDir()
	addrs := freeAddrs(t, 2)
	const repeat = 20
	conf := map[string]any{"wordcount.output.dir": out, "wordcount.repeat": repeat,
		"wordcount.emit.interval.secs": 0.005, KeyMessageTimeout: 3}
	w0 := startWorker(t, top, addrs, 0, conf)
	defer w0.Stop()
	w1 := startWorker(t, top, addrs, 1, conf)
	waitFor(t, w0, time.Minute, func() string { return "no sentence acked" },
		func() bool { return len(lines(out, "acked-*.txt")) >= 5 })
	w1.Stop()
	w1 = startWorker(t, top, addrs, 1, conf)
	defer w1.Stop()
	sentences := len(wordcount.Sentences()) * repeat
	waitFor(t, w0, 3*time.Minute, func() string {
		return "acked " + itoa(len(lines(out, "acked-*.txt"))) + " of " + itoa(sentences)
	}, func() bool { return len(lines(out, "acked-*.txt")) == sentences })
	if len(lines(out, "failed-*.txt")) == 0 {
		t.Error("no sentence failed at the spout: the stopped worker's tuples were not replayed")
	}
}

// TestMovedWorkerAnnouncesItself replaces the worker without the spout by
// one on another port, launched later (launch 2): the worker with the
// spout, never restarted and given only the old address, learns the new
// one from its hello, and every sentence is acked with its spout process
// the same throughout.
func TestMovedWorkerAnnouncesItself(t *testing.T) {
	top := example(t)
	out := t.TempDir()
	addrs := freeAddrs(t, 3)
	const repeat = 20
	conf := map[string]any{"wordcount.output.dir": out, "wordcount.repeat": repeat,
		"wordcount.emit.interval.secs": 0.005, KeyMessageTimeout: 3}
	w0 := startLaunch(t, top, addrs[:2], 0, 1, conf)
	defer w0.Stop()
	w1 := startLaunch(t, top, addrs[:2], 1, 1, conf)
	spout := w0.PIDs("sentences")
	waitFor(t, w0, time.Minute, func() string { return "no sentence acked" },
		func() bool { return len(lines(out, "acked-*.txt")) >= 5 })
	w1.Stop()
	moved := []string{addrs[0], addrs[2]}
	w1 = startLaunch(t, top, moved, 1, 2, conf)
	defer w1.Stop()
	sentences := len(wordcount.Sentences()) * repeat
	waitFor(t, w0, 3*time.Minute, func() string {
		return "acked " + itoa(len(lines(out, "acked-*.txt"))) + " of " + itoa(sentences)
	}, func() bool { return len(lines(out, "acked-*.txt")) == sentences })
	if got := w0.PIDs("sentences"); len(got) != 1 || got[0] != spout[0] {
		t.Errorf("the spout's process %v, want %v throughout", got, spout)
	}
	if w0.peers[1].address() != addrs[2] {
		t.Errorf("worker 0 sends to worker 1 at %s, want the new %s", w0.peers[1].address(), addrs[2])
	}
	if m := w1.Metrics(); m.Component("split").Acked == 0 {
		t.Errorf("the moved worker did no work: %+v", m)
	}
}

// A rebalance's executor counts: applied to a copy, carried through the
// configuration as JSON, and refused for an unknown component or a count
// below 1; Assign deals the new tasks out.
func TestWithParallelism(t *testing.T) {
	top := example(t)
	p, err := ParallelismOf(map[string]any{KeyParallelism: map[string]any{"split": 3.0}})
	if err != nil {
		t.Fatal(err)
	}
	re, err := WithParallelism(top, p)
	if err != nil {
		t.Fatal(err)
	}
	if got := parallelismOf(re, "split"); got != 3 || parallelismOf(top, "split") != 2 {
		t.Errorf("split ×%d in the copy, ×%d in the original; want 3 and 2", got, parallelismOf(top, "split"))
	}
	a := Assign(re, 2)
	if n := len(a[0]["split"]) + len(a[1]["split"]); n != 3 {
		t.Errorf("assigned %v: want three split tasks", a)
	}
	if _, err := WithParallelism(top, map[string]int{"nosuch": 1}); err == nil || !strings.Contains(err.Error(), `no component "nosuch"`) {
		t.Errorf("unknown component: %v", err)
	}
	if _, err := WithParallelism(top, map[string]int{"split": 0}); err == nil || !strings.Contains(err.Error(), `"split": 0 executors`) {
		t.Errorf("zero executors: %v", err)
	}
	if _, err := ParallelismOf(map[string]any{KeyParallelism: map[string]any{"split": 1.5}}); err == nil {
		t.Error("1.5 executors taken")
	}
}

func parallelismOf(top *flux.Topology, id string) int {
	for _, c := range sortedComponents(top) {
		if c.ID == id {
			return c.ParallelismOrDefault()
		}
	}
	return 0
}
