package agent

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/cluster/clustertest/users"
)

// finishedSandbox runs rt to TASK_FINISHED on ta and waits until the agent
// has forgotten it (the collector leaves live tasks alone); it returns the
// task's sandbox and container ID.
func finishedSandbox(t *testing.T, fm *fakeMaster, ta *testAgent, rt *api.RunTask) (sandbox, containerID string) {
	t.Helper()
	id := rt.Task.TaskID.Value
	run(fm, rt)
	fm.expectStates(t, id, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
	waitFor(t, "task "+id+" forgotten", func() bool {
		ta.mu.Lock()
		defer ta.mu.Unlock()
		if _, live := ta.tasks[taskKey{testFramework, id}]; live {
			return false
		}
		for _, tk := range ta.completed {
			if tk.key.task == id {
				sandbox, containerID = tk.sandbox, tk.containerID
				return true
			}
		}
		return false
	})
	return sandbox, containerID
}

// collectAll runs the garbage collector as if every finished sandbox
// were due.
func collectAll(a *Agent) int {
	a.diskUsage = func(string) float64 { return 0.5 } // the machine's own disk must not decide
	return a.collectGarbage(time.Now().Add(2 * a.cfg.GCDelay))
}

// markAsEmptied notes sandbox recyclable as markRecyclable does for a
// native container that ended with no process left: the posix
// containerizer of these tests gives no such proof itself.
func markAsEmptied(a *Agent, sandbox string) {
	a.sandboxes.mu.Lock()
	a.sandboxes.recyclable[filepath.Clean(sandbox)] = -1
	a.sandboxes.mu.Unlock()
}

func poolReady(p *sandboxPool) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ready)
}

// poolRecycled lists the recycled skeletons the pool keeps for launches
// of tasks that run as uid.
func poolRecycled(p *sandboxPool, uid int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.recycled[uid])
}

// poolSize counts the sandboxes the pool holds, made ahead or recycled.
func poolSize(p *sandboxPool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ready) + p.nRecycled
}

// onlyRecycled waits for the pool to hold exactly one recycled skeleton,
// for launches of tasks that run as uid, and returns its ID.
func onlyRecycled(t *testing.T, p *sandboxPool, uid int) string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nRecycled != 1 || len(p.recycled[uid]) != 1 {
		t.Fatalf("the pool holds recycled skeletons %v, want one for uid %d", p.recycled, uid)
	}
	return p.recycled[uid][0]
}

func waitPoolFull(t *testing.T, p *sandboxPool) {
	t.Helper()
	waitFor(t, "the sandbox pool to fill", func() bool { return len(poolReady(p)) >= sandboxPoolSize })
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// A finished sandbox the collector recycles leaves the tree, and the next
// launch gets its skeleton (the same inodes) with nothing of the earlier
// task in it: empty output files, an empty tmp, none of its files.
func TestRecycledSandboxIsClean(t *testing.T) {
	fm := newFakeMaster(t)
	ta, _ := startRegistered(t, fm, testConfig(t, fm, ""))
	waitPoolFull(t, ta.sandboxes)
	first, firstID := finishedSandbox(t, fm, ta, shellTask("first",
		"echo secret; echo secret >&2; mkdir -p tmp/deep d/e; echo x > tmp/deep/x; echo y > d/e/y; echo z > left; chmod 700 stdout"))
	stdoutIno := inode(t, filepath.Join(first, "stdout"))
	markAsEmptied(ta.Agent, first)
	if n := collectAll(ta.Agent); n != 1 {
		t.Fatalf("collected %d sandboxes, want 1", n)
	}
	if _, err := os.Lstat(filepath.Dir(filepath.Dir(first))); !os.IsNotExist(err) {
		t.Fatalf("the recycled sandbox's executor directory is still in the tree: %v", err)
	}
	id := onlyRecycled(t, ta.sandboxes, -1)
	if id == firstID {
		t.Fatal("the recycled sandbox kept its container's ID")
	}
	entry := filepath.Join(ta.sandboxes.dir, id)
	var files []string
	filepath.Walk(entry, func(p string, info os.FileInfo, err error) error {
		if err == nil && p != entry {
			rel, _ := filepath.Rel(entry, p)
			files = append(files, rel+" "+info.Mode().String())
		}
		return nil
	})
	want := []string{
		"runs drwxr-xr-x",
		"runs/" + id + " drwxr-xr-x",
		"runs/" + id + "/stderr -rw-r--r--",
		"runs/" + id + "/stdout -rw-r--r--",
		"runs/" + id + "/tmp drwxr-xr-x",
		"runs/latest Lrwxrwxrwx",
	}
	if !slices.Equal(files, want) {
		t.Fatalf("recycled skeleton:\n%s\nwant:\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
	}
	if l, err := os.Readlink(filepath.Join(entry, "runs", "latest")); err != nil || l != id {
		t.Fatalf("runs/latest -> %q, %v; want %s", l, err, id)
	}

	next, nextID := finishedSandbox(t, fm, ta, shellTask("next", "ls -A; ls -A tmp"))
	if nextID != id {
		t.Fatalf("the next task ran in container %s, not in the recycled sandbox %s", nextID, id)
	}
	if got := inode(t, filepath.Join(next, "stdout")); got != stdoutIno {
		t.Fatalf("the next task's stdout is inode %d, not the recycled %d", got, stdoutIno)
	}
	out := readFile(t, filepath.Join(next, "stdout"))
	for _, leak := range []string{"secret", "left", "deep", "d\n"} {
		if strings.Contains(out, leak) {
			t.Fatalf("the next task sees %q of the earlier task:\n%s", leak, out)
		}
	}
	if !strings.Contains(out, "stdout") {
		t.Fatalf("the next task's listing %q lacks its own stdout", out)
	}
	if got := readFile(t, filepath.Join(next, "stderr")); got != "" {
		t.Fatalf("the next task's stderr holds %q", got)
	}
}

// Whatever a task planted in place of the skeleton is never followed: the
// sandbox is removed as before, not recycled, and the files the plants
// pointed at are untouched. A stdout hard-linked to a file elsewhere (the
// stand-in for /etc/passwd) is the case that must never be truncated.
func TestRecyclingNeverFollowsPlantedEntries(t *testing.T) {
	victims := t.TempDir()
	passwd := filepath.Join(victims, "passwd")
	const content = "root:x:0:0:root:/root:/bin/sh\n"
	if err := os.WriteFile(passwd, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	secrets := filepath.Join(victims, "secrets")
	if err := os.Mkdir(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secrets, "key"), []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	plants := map[string]func(sandbox string) error{
		"stdout hard-linked to passwd": func(s string) error {
			os.Remove(filepath.Join(s, "stdout"))
			return os.Link(passwd, filepath.Join(s, "stdout"))
		},
		"stdout a symlink to passwd": func(s string) error {
			os.Remove(filepath.Join(s, "stdout"))
			return os.Symlink(passwd, filepath.Join(s, "stdout"))
		},
		"stderr a directory": func(s string) error {
			os.Remove(filepath.Join(s, "stderr"))
			return os.Mkdir(filepath.Join(s, "stderr"), 0o755)
		},
		"stdout a fifo": func(s string) error {
			os.Remove(filepath.Join(s, "stdout"))
			return syscall.Mkfifo(filepath.Join(s, "stdout"), 0o644)
		},
		"tmp a symlink to a directory": func(s string) error {
			return os.Symlink(secrets, filepath.Join(s, "tmp"))
		},
		// The collector's glob goes through a runs link: what it finds
		// there is not a sandbox, and is left alone.
		"runs a symlink to a directory": func(s string) error {
			runs := filepath.Dir(s)
			if err := os.RemoveAll(runs); err != nil {
				return err
			}
			return os.Symlink(victims, runs)
		},
	}
	fm := newFakeMaster(t)
	ta, _ := startRegistered(t, fm, testConfig(t, fm, ""))
	waitPoolFull(t, ta.sandboxes)
	var sandboxes []string
	i := 0
	for name, plant := range plants {
		i++
		s, _ := finishedSandbox(t, fm, ta, shellTask("plant"+string(rune('a'+i)), "echo out"))
		if err := plant(s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		markAsEmptied(ta.Agent, s)
		sandboxes = append(sandboxes, s)
	}
	collectAll(ta.Agent)
	if got := poolRecycled(ta.sandboxes, -1); len(got) != 0 {
		t.Fatalf("the pool took %d planted sandboxes", len(got))
	}
	for _, s := range sandboxes {
		if fi, err := os.Lstat(filepath.Dir(s)); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			continue // runs is a link: the collector skips it
		}
		if _, err := os.Lstat(filepath.Dir(filepath.Dir(s))); !os.IsNotExist(err) {
			t.Errorf("planted sandbox %s not removed: %v", s, err)
		}
	}
	if b, err := os.ReadFile(passwd); err != nil || string(b) != content {
		t.Fatalf("passwd after the collection: %q, %v", b, err)
	}
	if st, err := os.Stat(passwd); err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("passwd's mode after the collection: %v, %v", st.Mode(), err)
	}
	if b, err := os.ReadFile(filepath.Join(secrets, "key")); err != nil || string(b) != "k" {
		t.Fatalf("the directory tmp pointed at lost its file: %q, %v", b, err)
	}
}

// Sandboxes of the posix containerizer, whose processes may outlive the
// task (a daemon that left its process group), are removed as before.
func TestPosixSandboxesAreNotRecycled(t *testing.T) {
	fm := newFakeMaster(t)
	ta, _ := startRegistered(t, fm, testConfig(t, fm, ""))
	waitPoolFull(t, ta.sandboxes)
	s, _ := finishedSandbox(t, fm, ta, shellTask("posix", "echo out"))
	if n := collectAll(ta.Agent); n != 1 {
		t.Fatalf("collected %d sandboxes, want 1", n)
	}
	if _, err := os.Lstat(filepath.Dir(filepath.Dir(s))); !os.IsNotExist(err) {
		t.Fatalf("posix sandbox still there: %v", err)
	}
	if got := poolRecycled(ta.sandboxes, -1); len(got) != 0 {
		t.Fatalf("a posix sandbox was recycled: %v", got)
	}
}

// The pool holds at most its cap of sandboxes; the collector removes the
// finished sandboxes beyond it as before.
func TestRecycledSandboxPoolCap(t *testing.T) {
	fm := newFakeMaster(t)
	cfg := testConfig(t, fm, "")
	cfg.RecycledSandboxes = sandboxPoolSize + 1
	ta, _ := startRegistered(t, fm, cfg)
	waitPoolFull(t, ta.sandboxes)
	var sandboxes []string
	for _, id := range []string{"cap1", "cap2", "cap3"} {
		s, _ := finishedSandbox(t, fm, ta, shellTask(id, "echo out"))
		markAsEmptied(ta.Agent, s)
		sandboxes = append(sandboxes, s)
	}
	waitPoolFull(t, ta.sandboxes) // refilled after the three launches
	if n := collectAll(ta.Agent); n != 3 {
		t.Fatalf("collected %d sandboxes, want 3", n)
	}
	if got := poolSize(ta.sandboxes); got != sandboxPoolSize+1 {
		t.Fatalf("pool holds %d sandboxes, want its cap %d", got, sandboxPoolSize+1)
	}
	for _, s := range sandboxes {
		if _, err := os.Lstat(filepath.Dir(filepath.Dir(s))); !os.IsNotExist(err) {
			t.Errorf("sandbox %s beyond the cap not removed: %v", s, err)
		}
	}
	entries, err := os.ReadDir(ta.sandboxes.dir)
	if err != nil || len(entries) != sandboxPoolSize+1 {
		t.Fatalf("the pool's directory holds %d entries, %v; want %d", len(entries), err, sandboxPoolSize+1)
	}
}

// An agent restarted with a recycled skeleton in its pool does not take it
// for a sandbox to recover: it reports no task, empties the pool and
// launches in fresh sandboxes.
func TestAgentRestartWithPooledSkeleton(t *testing.T) {
	fm := newFakeMaster(t)
	cfg := testConfig(t, fm, "")
	ta, first := startRegistered(t, fm, cfg)
	waitPoolFull(t, ta.sandboxes)
	s, _ := finishedSandbox(t, fm, ta, shellTask("before", "echo out"))
	markAsEmptied(ta.Agent, s)
	collectAll(ta.Agent)
	pooled := onlyRecycled(t, ta.sandboxes, -1)
	if _, err := os.Stat(filepath.Join(ta.sandboxes.dir, pooled, "runs", pooled, "stdout")); err != nil {
		t.Fatalf("no recycled skeleton in the pool: %v", err)
	}
	ta.stop(t)

	ta2 := startAgent(t, cfg)
	reg := fm.nextRegister(t)
	if reg.Info.GetID().GetValue() != first.agentID || len(reg.Tasks) != 0 || len(reg.Executors) != 0 {
		t.Fatalf("restarted agent registered as %q with tasks %+v and executors %+v", reg.Info.GetID().GetValue(), reg.Tasks, reg.Executors)
	}
	fm.nextSession(t)
	waitPoolFull(t, ta2.sandboxes)
	if slices.Contains(poolReady(ta2.sandboxes), pooled) || len(poolRecycled(ta2.sandboxes, -1)) != 0 {
		t.Fatal("the restarted agent's pool offers the skeleton of the earlier one")
	}
	if _, err := os.Lstat(filepath.Join(ta2.sandboxes.dir, pooled)); !os.IsNotExist(err) {
		t.Fatalf("the earlier pool's skeleton is still there: %v", err)
	}
	if runs, _ := filepath.Glob(filepath.Join(cfg.WorkDir, "slaves", "*", "frameworks", "*", "executors", "*", "runs", pooled)); len(runs) != 0 {
		t.Fatalf("the pooled skeleton appeared as a sandbox: %v", runs)
	}
	after, _ := finishedSandbox(t, fm, ta2, shellTask("after", "echo fresh"))
	if got := readFile(t, filepath.Join(after, "stdout")); got != "fresh\n" {
		t.Fatalf("stdout of the task after the restart: %q", got)
	}
}

// With cgroups and namespaces the agent itself marks a finished task's
// sandbox recyclable (its container ended with no process left), and the
// next task finds nothing of the earlier one, in its sandbox or its /tmp.
func TestIsolatedSandboxIsRecycled(t *testing.T) {
	fm := newFakeMaster(t)
	cfg, _ := isolatedConfig(t, fm)
	ta, _ := startRegistered(t, fm, cfg)
	waitPoolFull(t, ta.sandboxes)
	first, _ := finishedSandbox(t, fm, ta, isolatedTask("iso1",
		"echo secret; echo secret > /tmp/secret; mkdir -p /tmp/d; echo x > /tmp/d/x; echo z > left", 0.1, 32))
	if got := readFile(t, filepath.Join(first, "tmp", "secret")); got != "secret\n" {
		t.Fatalf("the task's /tmp is not its sandbox's tmp: %q", got)
	}
	ta.sandboxes.mu.Lock()
	_, marked := ta.sandboxes.recyclable[filepath.Clean(first)]
	ta.sandboxes.mu.Unlock()
	if !marked {
		t.Fatal("the sandbox of an isolated task that ended was not marked recyclable")
	}
	collectAll(ta.Agent)
	id := onlyRecycled(t, ta.sandboxes, -1)
	next, nextID := finishedSandbox(t, fm, ta, isolatedTask("iso2", "ls -A; ls -A /tmp", 0.1, 32))
	if nextID != id {
		t.Fatalf("the next task ran in container %s, not the recycled %s", nextID, id)
	}
	out := readFile(t, filepath.Join(next, "stdout"))
	for _, leak := range []string{"secret", "left", "d\n"} {
		if strings.Contains(out, leak) {
			t.Fatalf("the next task sees %q of the earlier one:\n%s", leak, out)
		}
	}
}

// A task run as another user (--switch_user) owns its sandbox while it
// runs; the recycled skeleton is the agent's again, with the pool's modes,
// so the next task's user does not find the earlier one's owner.
func TestRecycledSandboxForgetsTheTaskUser(t *testing.T) {
	fm := newFakeMaster(t)
	cfg, _ := isolatedConfig(t, fm)
	cfg.SwitchUser = true
	ta, _ := startRegistered(t, fm, cfg)
	waitPoolFull(t, ta.sandboxes)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	rt := isolatedTask("as-nobody", "echo out; echo x > /tmp/x; chmod 777 .", 0.1, 32)
	rt.Task.Command.User = proto("nobody")
	first, _ := finishedSandbox(t, fm, ta, rt)
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(first, "stdout"), &st); err != nil || strconv.Itoa(int(st.Uid)) != nobody.Uid {
		t.Fatalf("the task's stdout is owned by uid %d (%v), not nobody's %s", st.Uid, err, nobody.Uid)
	}
	collectAll(ta.Agent)
	uid, _ := strconv.Atoi(nobody.Uid)
	entry := filepath.Join(ta.sandboxes.dir, onlyRecycled(t, ta.sandboxes, uid))
	err = filepath.Walk(entry, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		s := info.Sys().(*syscall.Stat_t)
		if int(s.Uid) != os.Geteuid() || int(s.Gid) != os.Getegid() {
			t.Errorf("%s is owned by %d:%d after recycling", p, s.Uid, s.Gid)
		}
		if m := info.Mode(); m.IsDir() && m.Perm() != 0o755 || m.IsRegular() && m.Perm() != 0o644 {
			t.Errorf("%s has mode %v after recycling", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A task that replaced its framework's executors/ with a link to a
// directory elsewhere does not make the collector remove what it finds
// there.
func TestGarbageCollectorNeverFollowsALinkOutOfTheSandboxes(t *testing.T) {
	victims := t.TempDir()
	kept := filepath.Join(victims, "x", "runs", "y")
	if err := os.MkdirAll(kept, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(kept, "file"), []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	fm := newFakeMaster(t)
	ta, _ := startRegistered(t, fm, testConfig(t, fm, ""))
	s, _ := finishedSandbox(t, fm, ta, shellTask("linker", "echo out"))
	executors := filepath.Dir(filepath.Dir(filepath.Dir(s)))
	if err := os.RemoveAll(executors); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victims, executors); err != nil {
		t.Fatal(err)
	}
	collectAll(ta.Agent)
	if b, err := os.ReadFile(filepath.Join(kept, "file")); err != nil || string(b) != "k" {
		t.Fatalf("the collector removed what a link in the sandboxes pointed at: %q, %v", b, err)
	}
}

// asUser starts script under sh as the user name (its uid and gid, no
// other groups), outside any container, with args as $1...; the process
// reads stdin from the returned writer and puts its output lines on the
// returned channel, which holds more lines than the scripts of these
// tests print (clustertest's Queue imports this package). It is killed
// when the test ends.
func asUser(t *testing.T, name, script string, args ...string) (io.WriteCloser, <-chan string) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("setpriv", append([]string{"--reuid=" + u.Uid, "--regid=" + u.Gid, "--clear-groups",
		"--", "sh", "-c", script, "sh"}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("setpriv: %v", err)
	}
	lines := make(chan string, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // more than any script here prints: dropped
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Errorf("the output of a process run as %s did not end", name)
		}
		_ = cmd.Wait()
	})
	return stdin, lines
}

// nextLine waits for the next line on q.
func nextLine(t *testing.T, lines <-chan string, what string) string {
	t.Helper()
	select {
	case l := <-lines:
		return l
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
		return ""
	}
}

// userUIDOf is the uid of the user name.
func userUIDOf(t *testing.T, name string) int {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		t.Fatal(err)
	}
	return uid
}

// A recycled skeleton keeps its inodes, and a process of the finished
// task's user may hold them open: user a's process that opened a's
// finished task's stdout and sits in its tmp. The skeleton goes only to
// the next task of user a; user b's task gets new inodes, and a's process
// reads nothing of b's output nor sees b's /tmp.
func TestRecycledSandboxGoesOnlyToTheSameUser(t *testing.T) {
	fm := newFakeMaster(t)
	cfg, _ := isolatedConfig(t, fm)
	cfg.WorkDir = users.TraversableDir(t) // a's process reaches a's sandbox by its path
	cfg.SwitchUser = true
	userA, userB := users.Add(t, "ra"), users.Add(t, "rb")
	uidA := userUIDOf(t, userA)
	ta, _ := startRegistered(t, fm, cfg)
	waitPoolFull(t, ta.sandboxes)
	taskAs := func(name, id, script string) *api.RunTask {
		rt := isolatedTask(id, script, 0.1, 32)
		rt.Task.Command.User = proto(name)
		return rt
	}

	first, _ := finishedSandbox(t, fm, ta, taskAs(userA, "a1", "echo a1-out; echo a1 > /tmp/a1"))
	stdoutA, tmpA := inode(t, filepath.Join(first, "stdout")), inode(t, filepath.Join(first, "tmp"))
	stdin, held := asUser(t, userA,
		`cd "$1/tmp" && exec 3<"$1/stdout" && echo ready && read go && `+
			`echo "held stdout: $(cat <&3 | tr '\n' ' ')" && echo "held tmp: $(ls -A . | tr '\n' ' ')"`, first)
	if l := nextLine(t, held, "a's process to open a's sandbox"); l != "ready" {
		t.Fatalf("user a's process could not open a's finished sandbox: %s", l)
	}
	if n := collectAll(ta.Agent); n != 1 {
		t.Fatalf("collected %d sandboxes, want 1", n)
	}
	recycled := onlyRecycled(t, ta.sandboxes, uidA)

	b, bID := finishedSandbox(t, fm, ta, taskAs(userB, "b1", "echo secret-of-b; echo b > /tmp/b-file; ls -A /tmp"))
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if l := nextLine(t, held, "what a's process reads"); strings.Contains(l, "secret-of-b") || strings.Contains(l, "b-file") {
			t.Fatalf("user a's process reached user b's sandbox through a held inode: %s", l)
		}
	}
	if bID == recycled {
		t.Fatal("user b's task got the skeleton recycled from user a's")
	}
	if got := inode(t, filepath.Join(b, "stdout")); got == stdoutA {
		t.Fatal("user b's stdout is the inode of user a's earlier stdout")
	}
	if got := inode(t, filepath.Join(b, "tmp")); got == tmpA {
		t.Fatal("user b's tmp is the inode of user a's earlier tmp")
	}
	if out := readFile(t, filepath.Join(b, "stdout")); !strings.Contains(out, "secret-of-b") || strings.Contains(out, "a1") {
		t.Fatalf("user b's stdout: %q", out)
	}

	// The next task of user a gets the skeleton.
	a2, a2ID := finishedSandbox(t, fm, ta, taskAs(userA, "a2", "ls -A /tmp"))
	if a2ID != recycled || inode(t, filepath.Join(a2, "stdout")) != stdoutA {
		t.Fatalf("user a's next task ran in container %s, not in the skeleton %s recycled from a's", a2ID, recycled)
	}
	if out := readFile(t, filepath.Join(a2, "stdout")); strings.Contains(out, "a1") {
		t.Fatalf("user a's next task sees the earlier one's /tmp: %q", out)
	}
}

// A container an earlier agent process launched and this one adopted is
// not recycled when it ends: its sandbox is removed as before.
func TestAdoptedContainersSandboxIsNotRecycled(t *testing.T) {
	fm := newFakeMaster(t)
	cfg, _ := isolatedConfig(t, fm)
	cfg.KeepTasksOnStop = true
	ta, _ := startRegistered(t, fm, cfg)
	waitPoolFull(t, ta.sandboxes)
	run(fm, isolatedTask("adopted", "exec sleep 300", 0.1, 32))
	cid, _ := runningContainer(t, fm, "adopted")
	sandbox := filepath.Clean(ta.sandboxDir(ta.ID(), taskKey{testFramework, "adopted"}, cid))
	ta.stop(t)

	ta2 := startAgent(t, cfg)
	fm.nextRegister(t)
	fm.nextSession(t)
	kill(fm, "adopted", nil)
	fm.expectAfterResends(t, "adopted", mesos.TASK_KILLED)
	waitFor(t, "the adopted task forgotten", func() bool {
		ta2.mu.Lock()
		defer ta2.mu.Unlock()
		_, live := ta2.tasks[taskKey{testFramework, "adopted"}]
		return !live
	})
	p := ta2.sandboxes
	p.mu.Lock()
	_, marked := p.recyclable[sandbox]
	left := len(p.adopted)
	p.mu.Unlock()
	if marked {
		t.Fatal("the sandbox of an adopted container was marked recyclable")
	}
	if left != 0 {
		t.Fatalf("%d adopted sandboxes still remembered after their task ended", left)
	}
	if n := collectAll(ta2.Agent); n < 1 {
		t.Fatalf("collected %d sandboxes, want the adopted one", n)
	}
	if _, err := os.Lstat(sandbox); !os.IsNotExist(err) {
		t.Fatalf("the adopted container's sandbox is still there: %v", err)
	}
	if got := poolRecycled(p, -1); len(got) != 0 {
		t.Fatalf("the adopted container's sandbox was recycled: %v", got)
	}
}

// A skeleton that fails its check and cannot be removed either (here a
// file the task left is immutable) is not counted as collected; the
// collector removes it once it can, and counts it then.
func TestFailedRecycleIsCountedWhenRemoved(t *testing.T) {
	tier.Need(t, tier.Root, tier.RootErr())
	fm := newFakeMaster(t)
	cfg := testConfig(t, fm, "")
	t.Cleanup(func() { _ = exec.Command("chattr", "-R", "-i", cfg.WorkDir).Run() }) // before the directory goes
	ta, _ := startRegistered(t, fm, cfg)
	waitPoolFull(t, ta.sandboxes)
	s, _ := finishedSandbox(t, fm, ta, shellTask("stuck", "echo x > left"))
	if out, err := exec.Command("chattr", "+i", filepath.Join(s, "left")).CombinedOutput(); err != nil {
		t.Skipf("no immutable files here: %v: %s", err, out)
	}
	markAsEmptied(ta.Agent, s)
	if n := collectAll(ta.Agent); n != 0 {
		t.Fatalf("collected %d sandboxes, want 0: the skeleton could not be removed", n)
	}
	ta.sandboxes.mu.Lock()
	var stale []string
	for dir, counted := range ta.sandboxes.stale {
		if counted {
			stale = append(stale, dir)
		}
	}
	ta.sandboxes.mu.Unlock()
	if len(stale) != 1 || filepath.Dir(stale[0]) != ta.sandboxes.dir {
		t.Fatalf("skeletons left to remove: %v, want one in the pool's directory", stale)
	}
	if got := poolRecycled(ta.sandboxes, -1); len(got) != 0 {
		t.Fatalf("the pool took the skeleton that failed its check: %v", got)
	}
	if out, err := exec.Command("chattr", "-R", "-i", stale[0]).CombinedOutput(); err != nil {
		t.Fatalf("chattr: %v: %s", err, out)
	}
	if n := collectAll(ta.Agent); n != 1 {
		t.Fatalf("collected %d sandboxes, want the one left before", n)
	}
	if _, err := os.Lstat(stale[0]); !os.IsNotExist(err) {
		t.Fatalf("the skeleton is still in the pool's directory: %v", err)
	}
}

// Concurrent collections never take the pool past its cap: checking for
// room and taking it are one step.
func TestRecyclingReservesThePoolsCap(t *testing.T) {
	p := newSandboxPool(t.TempDir(), slog.New(slog.DiscardHandler))
	p.recycleCap = 10
	p.opened.Store(true)
	p.ready = []string{"a", "b", "c", "d"}
	var wg sync.WaitGroup
	var got atomic.Int64
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, ok := p.reserve(-1); ok {
				got.Add(1)
			}
		}()
	}
	wg.Wait()
	if got.Load() != 6 {
		t.Fatalf("%d reservations with 4 of 10 places taken, want 6", got.Load())
	}
	for i := range 6 {
		if !p.addRecycled(fmt.Sprint("r", i), 1000+i%2) {
			t.Fatal("a reserved skeleton was refused")
		}
	}
	if _, ok := p.reserve(1000); ok {
		t.Fatal("the full pool took another reservation of a user with as many skeletons as any")
	}
	if id := p.containerID(1001); id != "r5" {
		t.Fatalf("a launch as uid 1001 got %q, want its uid's newest skeleton r5", id)
	}
	if id := p.containerID(1002); id != "d" {
		t.Fatalf("a launch as uid 1002 got %q, want the sandbox made ahead d", id)
	}
}

// A skeleton recycled while the pool switched off is not added: no launch
// would take it, and the collector removes it.
func TestRecycledSandboxNotAddedOncePoolIsOff(t *testing.T) {
	p := newSandboxPool(t.TempDir(), slog.New(slog.DiscardHandler))
	p.recycleCap = 10
	p.opened.Store(true)
	if _, ok := p.reserve(-1); !ok {
		t.Fatal("an empty pool took no reservation")
	}
	p.off.Store(true)
	if p.addRecycled("late", -1) {
		t.Fatal("a skeleton was added to a pool that is off")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nRecycled != 0 || p.reserved != 0 || len(p.recycled) != 0 {
		t.Fatalf("pool after the refusal: %d recycled, %d reserved, %v", p.nRecycled, p.reserved, p.recycled)
	}
}

// A pool full of one user's skeletons makes room for another user's: the
// user with the most gives up its oldest, until both have as many.
func TestRecyclingPoolMakesRoomForAnotherUser(t *testing.T) {
	p := newSandboxPool(t.TempDir(), slog.New(slog.DiscardHandler))
	p.recycleCap = 4
	p.opened.Store(true)
	for i := range 4 {
		if _, ok := p.reserve(1000); !ok || !p.addRecycled(fmt.Sprint("a", i), 1000) {
			t.Fatalf("skeleton a%d was not taken", i)
		}
	}
	if _, ok := p.reserve(1000); ok {
		t.Fatal("the full pool took another skeleton of the user that fills it")
	}
	for i, want := range []string{"a0", "a1"} {
		evicted, ok := p.reserve(1001)
		if !ok || evicted != want {
			t.Fatalf("another user's skeleton %d: evicted %q, %v; want %s", i, evicted, ok, want)
		}
		p.addRecycled(fmt.Sprint("b", i), 1001)
	}
	if evicted, ok := p.reserve(1001); ok {
		t.Fatalf("the pool evicted %q of a user with no more skeletons than the other", evicted)
	}
	if got := poolRecycled(p, 1000); !slices.Equal(got, []string{"a2", "a3"}) {
		t.Fatalf("user 1000 keeps %v, want [a2 a3]", got)
	}
}

// sandboxSight is what the test hook on sandboxPool.place saw of a pooled
// sandbox at the moment its rename made it reachable in the tree.
type sandboxSight struct {
	run      string      // the sandbox (runs/<container>)
	uid      uint32      // its owner
	mode     os.FileMode // its permission bits
	stranger string      // what another local user could do with it then
}

// watchPlacements makes p's launches stop right after each rename into the
// tree and, while the launch waits, look at the sandbox: its owner and
// mode, and what the user stranger can do there. The stranger's process
// runs to its end (bounded by waitTimeout) before the launch goes on.
func watchPlacements(t *testing.T, p *sandboxPool, stranger string) func() []sandboxSight {
	t.Helper()
	u, err := user.Lookup(stranger)
	if err != nil {
		t.Fatal(err)
	}
	const probe = `r=$1
if ls "${r%/*}" >/dev/null 2>&1; then echo "listed runs"; else echo "refused runs"; fi
for f in stdout stderr; do
	if (exec 3<"$r/$f") 2>/dev/null; then echo "opened $f"; else echo "refused $f"; fi
done
if ls "$r" >/dev/null 2>&1; then echo "listed sandbox"; else echo "refused sandbox"; fi`
	var mu sync.Mutex
	var seen []sandboxSight
	p.mu.Lock()
	p.placed = func(execDir string) {
		s := sandboxSight{}
		id, err := os.Readlink(filepath.Join(execDir, "runs", "latest"))
		if err != nil {
			s.stranger = "runs/latest: " + err.Error()
		} else {
			s.run = filepath.Join(execDir, "runs", id)
			var st syscall.Stat_t
			if err := syscall.Lstat(s.run, &st); err != nil {
				s.stranger = err.Error()
			} else {
				s.uid, s.mode = st.Uid, os.FileMode(st.Mode).Perm()
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				out, err := exec.CommandContext(ctx, "setpriv", "--reuid="+u.Uid, "--regid="+u.Gid, "--clear-groups",
					"--", "sh", "-c", probe, "sh", s.run).CombinedOutput()
				cancel()
				s.stranger = strings.TrimSpace(string(out))
				if err != nil {
					s.stranger += " (" + err.Error() + ")"
				}
			}
		}
		mu.Lock()
		seen = append(seen, s)
		mu.Unlock()
	}
	p.mu.Unlock()
	t.Cleanup(func() {
		p.mu.Lock()
		p.placed = nil
		p.mu.Unlock()
	})
	return func() []sandboxSight {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// A sandbox from the pool, made ahead or recycled, is closed before it is
// reachable: at the moment the rename puts it into executors/ it belongs
// to its task's user already, mode 0700, so another local user who
// reaches its runs/ directory can neither list it nor open its stdout or
// stderr (a file opened then would stay open, and its reader would read
// the task's output through it). The launch stops right after the rename
// while the other user tries.
func TestPooledSandboxIsClosedWhenItBecomesReachable(t *testing.T) {
	fm := newFakeMaster(t)
	cfg, _ := isolatedConfig(t, fm)
	cfg.WorkDir = users.TraversableDir(t) // the other user reaches runs/ by its path
	cfg.SwitchUser = true
	owner, stranger := users.Add(t, "wa"), users.Add(t, "wo")
	uid := userUIDOf(t, owner)
	ta, _ := startRegistered(t, fm, cfg)
	waitPoolFull(t, ta.sandboxes)
	made := map[string]bool{}
	for _, id := range poolReady(ta.sandboxes) {
		made[id] = true
	}
	seen := watchPlacements(t, ta.sandboxes, stranger)
	taskAs := func(id, script string) *api.RunTask {
		rt := isolatedTask(id, script, 0.1, 32)
		rt.Task.Command.User = proto(owner)
		return rt
	}

	first, firstID := finishedSandbox(t, fm, ta, taskAs("w1", "echo w1-secret; echo w1-err >&2"))
	if !made[firstID] {
		t.Fatalf("the first task's container %s is not one the pool made ahead", firstID)
	}
	if n := collectAll(ta.Agent); n != 1 {
		t.Fatalf("collected %d sandboxes, want 1", n)
	}
	recycled := onlyRecycled(t, ta.sandboxes, uid)
	second, secondID := finishedSandbox(t, fm, ta, taskAs("w2", "echo w2-secret; id -un"))
	if secondID != recycled {
		t.Fatalf("the second task ran in container %s, not in the recycled skeleton %s", secondID, recycled)
	}

	sights := seen()
	if len(sights) != 2 {
		t.Fatalf("saw %d sandboxes placed, want 2 (made ahead, recycled): %+v", len(sights), sights)
	}
	const want = "listed runs\nrefused stdout\nrefused stderr\nrefused sandbox"
	for i, sandbox := range []string{first, second} {
		s := sights[i]
		if s.run != sandbox {
			t.Fatalf("placement %d: saw %q (%s), want the sandbox %s", i, s.run, s.stranger, sandbox)
		}
		if int(s.uid) != uid || s.mode != sandboxMode {
			t.Errorf("%s was reachable owned by uid %d, mode %v; want %s's (%d), %v", sandbox, s.uid, s.mode, owner, uid, os.FileMode(sandboxMode))
		}
		if s.stranger != want {
			t.Errorf("another user at the moment %s became reachable:\n%s\nwant:\n%s", sandbox, s.stranger, want)
		}
	}
	// The task ran as its user in its closed sandbox, as in place.
	if out := readFile(t, filepath.Join(second, "stdout")); out != "w2-secret\n"+owner+"\n" {
		t.Fatalf("the second task's stdout: %q", out)
	}
	for _, path := range []string{second, filepath.Join(second, "stdout")} {
		if got := fileOwner(t, path); got != owner {
			t.Errorf("%s belongs to %s, want %s", path, got, owner)
		}
	}
}

// A launch from the pool whose user does not exist fails naming the user,
// and leaves nothing: neither the sandbox it took from the pool nor one in
// the tree.
func TestPooledSandboxOfAnUnknownUserIsDropped(t *testing.T) {
	tier.Need(t, tier.Root, tier.RootErr()) // only root hands sandboxes to users
	fm := newFakeMaster(t)
	cfg := testConfig(t, fm, "")
	cfg.SwitchUser = true
	ta, _ := startRegistered(t, fm, cfg)
	waitPoolFull(t, ta.sandboxes)
	made := map[string]bool{}
	for _, id := range poolReady(ta.sandboxes) {
		made[id] = true
	}
	const nobody = "agora-no-such-user"
	rt := shellTask("unknown-user", "echo never")
	rt.Task.Command.User = proto(nobody)
	run(fm, rt)
	u := fm.expectStates(t, "unknown-user", mesos.TASK_FAILED)[0]
	if msg := u.Status.GetMessage(); !strings.Contains(msg, `user "`+nobody+`" does not exist on this agent`) {
		t.Fatalf("the failed launch says %q, not that its user does not exist", msg)
	}
	var id, sandbox string
	waitFor(t, "the task to be known", func() bool {
		ta.mu.Lock()
		defer ta.mu.Unlock()
		for _, tk := range append(slices.Clone(ta.completed), mapValues(ta.tasks)...) {
			if tk.key.task == "unknown-user" {
				id, sandbox = tk.containerID, tk.sandbox
			}
		}
		return id != ""
	})
	if !made[id] {
		t.Fatalf("the launch's container %s is not one the pool made ahead", id)
	}
	if _, err := os.Lstat(sandbox); !os.IsNotExist(err) {
		t.Fatalf("the failed launch left its sandbox %s: %v", sandbox, err)
	}
	ta.sandboxes.mu.Lock()
	taken := ta.sandboxes.taken[id]
	ta.sandboxes.mu.Unlock()
	if taken {
		t.Fatalf("the pool still counts %s as taken", id)
	}
	waitFor(t, "the sandbox the launch took to leave the pool", func() bool {
		_, err := os.Lstat(filepath.Join(ta.sandboxes.dir, id))
		return os.IsNotExist(err)
	})
}
