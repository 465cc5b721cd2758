package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/clustertest/users"
)

// A sandbox made ahead is moved into Mesos's path with its runs/latest
// link and output files, and dated by the launch; the same task ID run
// again (its executor directory exists) falls back to making it in place.
func TestSandboxPoolPlacesMadeSandboxes(t *testing.T) {
	work := t.TempDir()
	p := newSandboxPool(work, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.run(ctx) }()
	defer func() { cancel(); wg.Wait() }()
	waitFor(t, "the pool to fill", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.ready) == sandboxPoolSize
	})
	execs := filepath.Join(work, "slaves", "a", "frameworks", "f", "executors")
	id := p.containerID(-1)
	sandbox := filepath.Join(execs, "t", "runs", id)
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(p.dir, id, "runs", id), old, old); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Minute)
	if !p.place(id, sandbox, nil) {
		t.Fatal("a made sandbox was not placed")
	}
	for _, name := range []string{"stdout", "stderr"} {
		if _, err := os.Stat(filepath.Join(sandbox, name)); err != nil {
			t.Fatal(err)
		}
	}
	if l, err := os.Readlink(filepath.Join(execs, "t", "runs", "latest")); err != nil || l != id {
		t.Fatalf("runs/latest -> %q, %v; want %s", l, err, id)
	}
	if st, err := os.Stat(sandbox); err != nil || st.ModTime().Before(before) {
		t.Fatalf("the placed sandbox's time: %v, %v", st.ModTime(), err)
	}
	if _, err := os.Stat(filepath.Join(p.dir, id)); !os.IsNotExist(err) {
		t.Fatalf("the pool still holds the placed sandbox: %v", err)
	}

	again := p.containerID(-1)
	if p.place(again, filepath.Join(execs, "t", "runs", again), nil) {
		t.Fatal("a made sandbox replaced the executor directory of an earlier run")
	}
	if p.place(newUUID().String(), filepath.Join(execs, "u", "runs", "x"), nil) {
		t.Fatal("place moved a sandbox for an ID the pool did not give")
	}
	waitFor(t, "the pool to refill", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.ready) == sandboxPoolSize
	})
}

// The agent's command tasks get their sandboxes from the pool once it is
// full: the task's container ID is one the pool made.
func TestCommandTaskUsesAMadeSandbox(t *testing.T) {
	fm := newFakeMaster(t)
	cfg := testConfig(t, fm, "")
	ta, _ := startRegistered(t, fm, cfg)
	waitFor(t, "the pool to fill", func() bool {
		ta.sandboxes.mu.Lock()
		defer ta.sandboxes.mu.Unlock()
		return len(ta.sandboxes.ready) == sandboxPoolSize
	})
	ta.sandboxes.mu.Lock()
	made := map[string]bool{}
	for _, id := range ta.sandboxes.ready {
		made[id] = true
	}
	ta.sandboxes.mu.Unlock()
	run(fm, shellTask("pooled", "echo out"))
	fm.expectStates(t, "pooled", mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
	ta.mu.Lock()
	var id, sandbox string
	for _, tk := range append(ta.completed, mapValues(ta.tasks)...) {
		if tk.key.task == "pooled" {
			id, sandbox = tk.containerID, tk.sandbox
		}
	}
	ta.mu.Unlock()
	if !made[id] {
		t.Fatalf("container %s is not one the pool made", id)
	}
	if b, err := os.ReadFile(filepath.Join(sandbox, "stdout")); err != nil || string(b) != "out\n" {
		t.Fatalf("stdout %q, %v", b, err)
	}
}

func mapValues(m map[taskKey]*task) []*task {
	out := make([]*task, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// The pool's directory is the agent's alone, whatever an earlier agent
// left: its output files are 0644, and another local user who could open
// one before its launch would read that task's output.
func TestSandboxPoolDirectoryIsPrivate(t *testing.T) {
	work := t.TempDir()
	if os.Geteuid() == 0 {
		work = users.TraversableDir(t) // every path to the pool but its own directory is open
	}
	dir := filepath.Join(work, ".sandbox-pool")
	if err := os.Mkdir(dir, 0o755); err != nil { // as an earlier version left it
		t.Fatal(err)
	}
	p := newSandboxPool(work, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.run(ctx) }()
	defer func() { cancel(); wg.Wait() }()
	waitFor(t, "the pool to fill", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.ready) == sandboxPoolSize
	})
	if st, err := os.Lstat(dir); err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Fatalf("the pool's directory: %v, %v; want a directory of mode 0700", st.Mode(), err)
	}
	if os.Geteuid() != 0 {
		return
	}
	id := poolReady(p)[0]
	stdout := filepath.Join(dir, id, "runs", id, "stdout")
	other := users.Add(t, "po")
	_, lines := asUser(t, other, `if cat "$1" >/dev/null 2>&1; then echo opened; else echo refused; fi`, stdout)
	if l := nextLine(t, lines, "the other user's try"); l != "refused" {
		t.Fatalf("another user opening a pooled stdout: %s", l)
	}
}
