package native

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	wordcount "github.com/agora-cluster/agora/examples/storm-wordcount"
	"github.com/agora-cluster/agora/storm/flux"
)

// pacedSpout is the example's sentences spout cut down to what the status
// test needs: the sentences repeated, one emit every 10 ms, acks appended
// to acked-TASK.txt and the activate and deactivate calls storm.py makes
// to status-TASK.txt.
const pacedSpout = `import os, time, storm
class Paced(storm.Spout):
    def initialize(self, conf, context):
        with open("sentences.txt") as f:
            lines = [l.strip() for l in f if l.strip()]
        self.sentences = lines * int(conf["wordcount.repeat"])
        self.pending = list(range(len(self.sentences)))
        out, task = conf["wordcount.output.dir"], context["taskid"]
        self.acked = open(os.path.join(out, "acked-%d.txt" % task), "a")
        self.status = open(os.path.join(out, "status-%d.txt" % task), "a")
    def activate(self):
        self.status.write("activate\n"); self.status.flush()
    def deactivate(self):
        self.status.write("deactivate\n"); self.status.flush()
    def nextTuple(self):
        if not self.pending:
            time.sleep(0.05)
            return
        i = self.pending.pop(0)
        storm.emit([self.sentences[i]], id=str(i))
        time.sleep(0.01)
    def ack(self, id):
        self.acked.write("%s\n" % id); self.acked.flush()
    def fail(self, id):
        self.pending.append(int(id))
Paced().run()
`

// TestDeactivateActivate deactivates the word count mid-stream: the
// spout's script is told (storm.py calls deactivate()), at most
// topology.max.spout.pending more sentences are acked (those in flight)
// and the rest wait while it is inactive; activated again, every sentence
// is acked once and the counts are exact.
func TestDeactivateActivate(t *testing.T) {
	top := example(t)
	res, out := top.Resources, t.TempDir()
	if err := os.WriteFile(filepath.Join(res, "paced.py"), []byte(pacedSpout), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range top.Spouts {
		top.Spouts[i].Command = []string{"python3", "paced.py"}
	}
	const repeat, maxPending = 30, 4
	total := len(wordcount.Sentences()) * repeat
	r, err := Start(context.Background(), top, Options{Stderr: os.Stderr, Conf: map[string]any{
		"wordcount.output.dir": out, "wordcount.repeat": repeat,
		KeyMaxSpoutPending: maxPending, KeyMessageTimeout: 300,
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	acked := func() int { return len(lines(out, "acked-*.txt")) }
	told := func() []string {
		b, _ := os.ReadFile(filepath.Join(out, fmt.Sprintf("status-%d.txt", r.Tasks("sentences")[0])))
		return strings.Fields(string(b))
	}
	waitFor(t, r, time.Minute, func() string { return fmt.Sprintf("acked %d", acked()) }, func() bool { return acked() >= 5 })

	r.Deactivate()
	if s := r.Metrics().Status; s != "INACTIVE" {
		t.Errorf("metrics status %q after Deactivate, want INACTIVE", s)
	}
	waitFor(t, r, 30*time.Second, func() string { return fmt.Sprintf("the spout was told %v", told()) }, func() bool {
		return strings.Join(told(), " ") == "activate deactivate"
	})
	// The script has been told: no next follows, so only the trees in
	// flight (at most max.spout.pending) may still be acked.
	base := acked()
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if n := acked(); n > base+maxPending || n == total {
			t.Fatalf("inactive: %d sentences acked, %d when the spout was deactivated (of %d, at most %d in flight)", n, base, total, maxPending)
		}
	}

	r.Activate()
	waitFor(t, r, 2*time.Minute, func() string { return fmt.Sprintf("acked %d of %d; told %v", acked(), total, told()) }, func() bool { return acked() == total })
	if got := strings.Join(told(), " "); got != "activate deactivate activate" {
		t.Errorf("the spout was told %q, want activate, deactivate, activate", got)
	}
	got, err := readCounts(out)
	if err != nil {
		t.Fatal(err)
	}
	for w, n := range wordcount.Counts() {
		if got[w] != n*repeat {
			t.Errorf("count of %q = %d, want %d", w, got[w], n*repeat)
		}
	}
	if m := r.Metrics(); m.Status != "ACTIVE" || m.Component("sentences").Acked != int64(total) || m.Component("sentences").Failed != 0 {
		t.Errorf("metrics: status %s, spout %+v; want ACTIVE and %d acked, none failed", m.Status, m.Component("sentences"), total)
	}
}

// TestStatusGenerations: a status of an older generation than the
// worker's is ignored; encoded statuses read back, bad ones are refused.
func TestStatusGenerations(t *testing.T) {
	r := &Runtime{top: &flux.Topology{Name: "t"}, status: Status{Active: true}}
	r.log = slog.New(slog.DiscardHandler)
	if !r.SetStatus(Status{Active: false, Gen: 2}) || r.Status().Active {
		t.Fatalf("generation 2 INACTIVE not taken: %v", r.Status())
	}
	if r.SetStatus(Status{Active: true, Gen: 1}) || r.Status() != (Status{Active: false, Gen: 2}) {
		t.Fatalf("an older generation was taken: %v", r.Status())
	}
	for _, s := range []Status{{true, 0}, {false, 7}} {
		if got, err := ParseStatus(s.Encode()); err != nil || got != s {
			t.Errorf("ParseStatus(%q) = %v, %v", s.Encode(), got, err)
		}
	}
	for _, bad := range []string{"", "ACTIVE", "PAUSED/1", "ACTIVE/-1", "INACTIVE/x"} {
		if _, err := ParseStatus(bad); err == nil || !strings.Contains(err.Error(), "want ACTIVE/N or INACTIVE/N") {
			t.Errorf("ParseStatus(%q): %v, want a clear error", bad, err)
		}
	}
}

// TestTellOverTheTopologyPort tells a worker its status over its
// listener, as the submitting command does: each later generation is
// taken (TestStatusGenerations has an older one ignored); an address
// nobody listens on is an error naming it once the context ends.
func TestTellOverTheTopologyPort(t *testing.T) {
	top := example(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	r, err := Start(context.Background(), top, Options{Stderr: os.Stderr, Peers: []string{addr}, Listener: ln,
		Conf: map[string]any{"wordcount.output.dir": t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Tell(ctx, addr, Status{Active: false, Gen: 3}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, 30*time.Second, func() string { return fmt.Sprintf("status %v", r.Status()) }, func() bool {
		return r.Status() == Status{Active: false, Gen: 3}
	})
	if err := Tell(ctx, addr, Status{Active: true, Gen: 4}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, 30*time.Second, func() string { return fmt.Sprintf("status %v", r.Status()) }, func() bool {
		return r.Status() == Status{Active: true, Gen: 4}
	})

	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody := gone.Addr().String()
	gone.Close()
	short, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if err := Tell(short, nobody, Status{Gen: 1}); err == nil || !strings.Contains(err.Error(), nobody) {
		t.Errorf("Tell to %s, where nobody listens: %v, want an error naming it", nobody, err)
	}
}
