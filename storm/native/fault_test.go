package native

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	wordcount "github.com/agora-cluster/agora/examples/storm-wordcount"
	"github.com/agora-cluster/agora/storm/flux"
)

// TestKilledBoltTuplesReplayed stops the split bolts (so that tuples are
// surely in flight at them), kills them with SIGKILL mid-stream, and
// passes when the spout saw fails for the lost tuples and then an ack for
// every sentence: the runtime started the bolts again and the spout
// replayed what they lost.
func TestKilledBoltTuplesReplayed(t *testing.T) {
	top := example(t)
	out := t.TempDir()
	const repeat = 20
	r, err := Start(context.Background(), top, Options{Stderr: os.Stderr, Conf: map[string]any{
		"wordcount.output.dir": out, "wordcount.repeat": repeat,
		"wordcount.emit.interval.secs": 0.005, KeyMessageTimeout: 300,
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	sentences := len(wordcount.Sentences()) * repeat
	waitFor(t, r, time.Minute, func() string { return "no sentence acked" },
		func() bool { return len(lines(out, "acked-*.txt")) >= 5 })
	pids := r.PIDs("split")
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGSTOP)
	}
	waitFor(t, r, time.Minute, func() string { return "no tuple in flight at the stopped split bolts" }, func() bool {
		s := r.Metrics().Component("split")
		return s.Executed > s.Acked+s.Failed
	})
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, r, 2*time.Minute, func() string {
		return "acked " + itoa(len(lines(out, "acked-*.txt"))) + " of " + itoa(sentences) + ", failed " + itoa(len(lines(out, "failed-*.txt")))
	}, func() bool { return len(lines(out, "acked-*.txt")) == sentences })
	if len(lines(out, "failed-*.txt")) == 0 {
		t.Error("the spout saw no fail: the tuples lost with the bolts were not replayed")
	}
	m := r.Metrics()
	if s := m.Component("split"); s.Restarts < int64(len(pids)) {
		t.Errorf("split restarted %d times, want %d", s.Restarts, len(pids))
	}
	for _, pid := range r.PIDs("split") {
		for _, old := range pids {
			if pid == old {
				t.Errorf("split still runs the killed process %d", pid)
			}
		}
	}
}

// broken is a topology whose bolt writes the given message after the
// handshake.
func broken(t *testing.T, reply string) *flux.Topology {
	t.Helper()
	top := example(t)
	bad := `import json, sys, os
setup = json.loads(sys.stdin.readline())
sys.stdin.readline()
print(json.dumps({"pid": os.getpid()})); print("end"); sys.stdout.flush()
sys.stdin.readline()
sys.stdout.write(` + "'''" + reply + "'''" + ` + "\nend\n"); sys.stdout.flush()
sys.stdin.read()
`
	if err := os.WriteFile(filepath.Join(top.Resources, "bad.py"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	y := `name: broken
spouts:
  - id: sentences
    className: ` + flux.ShellSpoutClass + `
    constructorArgs: [["python3", "sentences.py"], ["sentence"]]
bolts:
  - id: bad
    className: ` + flux.ShellBoltClass + `
    constructorArgs: [["python3", "bad.py"]]
streams:
  - from: sentences
    to: bad
    grouping: {type: SHUFFLE}
`
	b, err := flux.Parse([]byte(y), top.Resources)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMalformedOutputStopsTopologyNamingScript(t *testing.T) {
	tier.Need(t, tier.Python, tier.PythonErr())
	for _, tc := range []struct{ name, reply, want string }{
		{"bad JSON", `{"command": "emit", "tuple": [`, "bad multilang message"},
		{"unknown command", `{"command": "explode"}`, `unknown multilang command "explode"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The bolt writes its reply unasked, so it may break the
			// topology while later tasks still start: Start fails then.
			r, err := Start(context.Background(), broken(t, tc.reply), Options{})
			if err == nil {
				defer r.Stop()
				select {
				case <-r.Done():
				case <-time.After(time.Minute):
					t.Fatal("the topology still runs a minute after its bolt wrote " + tc.reply)
				}
				err = r.Err()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "bad.py") || !strings.Contains(err.Error(), `bolt "bad"`) {
				t.Fatalf("error = %v, want %q naming bolt \"bad\" and bad.py", err, tc.want)
			}
		})
	}
}

func TestHandshakeFailureRefusedAtStart(t *testing.T) {
	top := broken(t, "")
	if err := os.WriteFile(filepath.Join(top.Resources, "bad.py"), []byte("print('hello')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Start(context.Background(), top, Options{})
	if err == nil {
		r.Stop()
		t.Fatal("a bolt that never does the handshake was started")
	}
	if !strings.Contains(err.Error(), "bad.py") || !strings.Contains(err.Error(), "handshake") {
		t.Errorf("error = %v, want the handshake of bad.py named", err)
	}
}
