package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"golang.org/x/sys/unix"
)

func openTestJournal(t *testing.T, dir string) *journal {
	t.Helper()
	j, err := openJournal(filepath.Join(dir, "journal"), filepath.Join(dir, "slaves"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// unregisterJournal forgets the closed journal of root, so that the
// checkpoint's file writers write the directory layout there again, as
// they did before the journal.
func unregisterJournal(t *testing.T, root string) {
	t.Helper()
	journalsMu.Lock()
	defer journalsMu.Unlock()
	for i, j := range journals {
		if j.root == root {
			if !j.isClosed() {
				t.Fatalf("the journal of %s is open", root)
			}
			journals = append(journals[:i:i], journals[i+1:]...)
			return
		}
	}
}

// snapshotFiles copies a journal's files.
func snapshotFiles(j *journal) map[string]string {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := map[string]string{}
	for p, b := range j.files {
		out[p] = string(b)
	}
	return out
}

// A journal cut at any byte of its last record (a power loss mid-write)
// replays as it was before that record: the torn record is detected by
// its frame and checksum and dropped, never misread, and cut off the
// file, so that what is appended next is replayed after a second crash.
func TestJournalTornLastRecordIsIgnored(t *testing.T) {
	for seed := int64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			dir := t.TempDir()
			j := openTestJournal(t, dir)
			root := filepath.Join(dir, "slaves")
			var before map[string]string
			var lastStart int64
			n := 5 + rng.Intn(20)
			for i := 0; i < n; i++ {
				path := filepath.Join(root, fmt.Sprintf("t%d", rng.Intn(5)), "task.updates")
				data := bytes.Repeat([]byte{byte('a' + i%26)}, 1+rng.Intn(300))
				if i == n-1 {
					before = snapshotFiles(j)
					j.mu.Lock()
					lastStart = j.size
					j.mu.Unlock()
				}
				var err error
				if rng.Intn(3) == 0 {
					err = j.put(path, data, true)
				} else {
					err = j.append(path, data, true)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			j.close()
			file := filepath.Join(dir, "journal")
			st, err := os.Stat(file)
			if err != nil {
				t.Fatal(err)
			}
			cut := lastStart + rng.Int63n(st.Size()-lastStart) // within the last record
			if err := os.Truncate(file, cut); err != nil {
				t.Fatal(err)
			}

			j = openTestJournal(t, dir)
			if got := snapshotFiles(j); !maps.Equal(got, before) {
				t.Fatalf("cut at byte %d of %d: replayed %v, want %v", cut, st.Size(), got, before)
			}
			if st, _ := os.Stat(file); st.Size() != lastStart {
				t.Fatalf("the torn record was not cut off: size %d, want %d", st.Size(), lastStart)
			}
			after := filepath.Join(root, "after", "task.json")
			if err := j.put(after, []byte("whole"), true); err != nil {
				t.Fatal(err)
			}
			j.close()
			j = openTestJournal(t, dir)
			defer j.close()
			if b, err := j.readFile(after); err != nil || string(b) != "whole" {
				t.Fatalf("the record written after the cut: %q, %v", b, err)
			}
		})
	}
}

// A record whose bytes were damaged (not torn) fails its checksum: it and
// what follows are dropped, not misread.
func TestJournalDamagedRecordIsNotMisread(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, dir)
	root := filepath.Join(dir, "slaves")
	if err := j.put(filepath.Join(root, "a"), []byte("first"), true); err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	second := j.size
	j.mu.Unlock()
	if err := j.put(filepath.Join(root, "b"), []byte("second"), true); err != nil {
		t.Fatal(err)
	}
	j.close()
	file := filepath.Join(dir, "journal")
	b, _ := os.ReadFile(file)
	b[len(b)-2] ^= 0x20 // a flipped bit in the last record's data
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	j = openTestJournal(t, dir)
	defer j.close()
	if got := snapshotFiles(j); !maps.Equal(got, map[string]string{"a": "first"}) {
		t.Fatalf("replayed %v, want a alone", got)
	}
	if st, _ := os.Stat(file); st.Size() != second {
		t.Fatalf("size %d after replay, want %d", st.Size(), second)
	}
}

// Group commit: records that arrive while a commit is under way share the
// next write and fdatasync. The committer is held (its file lock taken)
// while concurrent writers queue, so the count does not depend on timing.
func TestJournalGroupCommitBatchesRecords(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, dir)
	defer j.close()
	root := filepath.Join(dir, "slaves")
	const writers = 200
	j.fileMu.Lock()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- j.append(filepath.Join(root, fmt.Sprint("t", i), "task.updates"), []byte("{}\n"), true)
		}()
	}
	// The committer holds at most one batch at the lock; the rest queue.
	waitFor(t, "the writers to queue", func() bool { return j.submitted.Load() == writers })
	j.fileMu.Unlock()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	syncs, records := j.syncs.Load(), j.records.Load()
	if records != writers || syncs > 2 {
		t.Fatalf("%d records took %d fdatasyncs; want %d records in at most 2", records, syncs, writers)
	}
	t.Logf("%d durable records from %d concurrent writers: %d fdatasyncs", records, writers, syncs)
}

// Compaction keeps the live files and drops removed ones, while commits go
// on; the compacted journal replays the same.
func TestJournalCompaction(t *testing.T) {
	old := compactBytes
	compactBytes = 4 << 10
	defer func() { compactBytes = old }()
	dir := t.TempDir()
	j := openTestJournal(t, dir)
	root := filepath.Join(dir, "slaves")
	for i := 0; i < 400; i++ {
		run := filepath.Join(root, fmt.Sprint("run", i))
		if err := j.put(filepath.Join(run, "task.json"), bytes.Repeat([]byte("x"), 100), true); err != nil {
			t.Fatal(err)
		}
		if err := j.append(filepath.Join(run, "task.updates"), []byte(fmt.Sprintf("{\"i\":%d}\n", i)), true); err != nil {
			t.Fatal(err)
		}
		if i%10 != 0 {
			j.removeAll(run)
		}
	}
	if err := j.barrier(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a compaction", func() bool {
		j.mu.Lock()
		defer j.mu.Unlock()
		return j.compactions.Load() > 0 && !j.compact
	})
	want := snapshotFiles(j)
	if len(want) != 80 {
		t.Fatalf("%d live files, want 80", len(want))
	}
	j.close()
	st, _ := os.Stat(filepath.Join(dir, "journal"))
	if st.Size() > 3*compactBytes {
		t.Fatalf("the journal is %d bytes after compacting to 80 small files", st.Size())
	}
	j = openTestJournal(t, dir)
	defer j.close()
	if got := snapshotFiles(j); !maps.Equal(got, want) {
		t.Fatalf("the compacted journal replays %d files, want %d", len(got), len(want))
	}
}

// An agent upgraded in place from the directory layout (task.json and
// task.updates files, written here by the file writers the agent used
// before the journal) recovers its running task, moves the checkpoint
// into the journal and removes the old directory.
func TestUpgradeFromTheDirectoryLayoutAdoptsRunningTasks(t *testing.T) {
	fm := newFakeMaster(t)
	cfg := testConfig(t, fm, "")
	cfg.KeepTasksOnStop = true
	ta, first := startRegistered(t, fm, cfg)
	run(fm, shellTask("kept", "sleep 100 & sleep 100"))
	pgid := runningPid(t, fm, "kept")
	waitFor(t, "shell and both sleeps", func() bool { return len(liveInGroup(t, pgid)) >= 3 })
	ta.stop(t)
	t.Cleanup(func() {
		for _, pid := range liveInGroup(t, pgid) {
			_ = killPid(pid)
		}
	})

	// The same checkpoint in the directory layout, by the file writers.
	files, err := ReadCheckpoint(cfg.WorkDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(journalPath(cfg.WorkDir)); err != nil {
		t.Fatal(err)
	}
	unregisterJournal(t, journalRoot(cfg.WorkDir))
	var taskJSON string
	for path, b := range files {
		if filepath.Base(path) != "task.updates" {
			if err := writeFileAtomic(path, b, true); err != nil {
				t.Fatal(err)
			}
			taskJSON = path
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var rec checkpointRecord
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatal(err)
			}
			if err := appendRecord(path, rec, true); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := os.Stat(taskJSON); err != nil || len(files) != 2 {
		t.Fatalf("the directory layout: %d files, task.json %v", len(files), err)
	}

	ta2 := startAgent(t, cfg)
	reg := fm.nextRegister(t)
	if reg.Info.GetID().GetValue() != first.agentID || len(reg.Tasks) != 1 || reg.Tasks[0].GetState() != mesos.TASK_RUNNING {
		t.Fatalf("upgraded agent registered as %q with tasks %+v", reg.Info.GetID().GetValue(), reg.Tasks)
	}
	fm.nextSession(t)
	waitFor(t, "the old checkpoint directory removed", func() bool {
		_, err1 := os.Stat(journalRoot(cfg.WorkDir))
		_, err2 := os.Stat(journalRoot(cfg.WorkDir) + ".imported")
		return os.IsNotExist(err1) && os.IsNotExist(err2)
	})
	if b, err := ckptReadFile(taskJSON); err != nil || !bytes.Equal(b, files[taskJSON]) {
		t.Fatalf("task.json in the journal: %v", err)
	}
	kill(fm, "kept", nil)
	fm.expectAfterResends(t, "kept", mesos.TASK_KILLED)
	var m map[string]float64
	getJSON(t, ta2.Agent, "/metrics/snapshot", &m)
	if m["slave/checkpoint_journal_records"] < 2 || m["slave/checkpoint_journal_syncs"] < 1 ||
		m["slave/checkpoint_journal_syncs"] > m["slave/checkpoint_journal_records"] || m["slave/checkpoint_journal_bytes"] == 0 {
		t.Errorf("journal metrics after the import and a kill: %v", m)
	}
	if left := liveInGroup(t, pgid); len(left) != 0 {
		t.Fatalf("adopted task survived its kill: %v", left)
	}
}

// Importing the directory layout cuts a torn last line of a task.updates
// file (a crash mid-append under the old layout), keeps a damaged file as
// it is for its task's recovery to refuse, and leaves temporary files of
// unfinished writes behind.
func TestImportCutsTornUpdatesAndSkipsTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "slaves")
	run := filepath.Join(root, "a", "frameworks", "f", "executors", "t", "runs", "c")
	whole := `{"update":{"framework_id":"f","status":{"task_id":{"value":"t"},"state":"TASK_RUNNING","uuid":"AQ=="}}}` + "\n"
	damaged := "not json\n" + whole
	for name, content := range map[string]string{
		"task.updates":           whole + `{"update":{"frame`,
		"task.json":              `{}`,
		".task.json.tmp-1234":    `{"half`,
		"../d/task.updates":      damaged,
		"../d/task.json":         `{}`,
		"../../x/runs/y/ignored": "",
	} {
		path := filepath.Join(run, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	j := openTestJournal(t, dir)
	defer j.close()
	if err := importLegacy(j, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	got := snapshotFiles(j)
	rel := func(p string) string { r, _ := filepath.Rel(root, filepath.Join(run, p)); return r }
	want := map[string]string{
		rel("task.updates"): whole, rel("task.json"): `{}`,
		rel("../d/task.updates"): damaged, rel("../d/task.json"): `{}`,
		rel("../../x/runs/y/ignored"): "",
	}
	if !maps.Equal(got, want) {
		t.Fatalf("imported %v\nwant %v", got, want)
	}
	if _, _, err := replayUpdates(filepath.Join(run, "../d/task.updates")); err == nil {
		t.Fatal("the damaged file replays without an error")
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Fatalf("the directory layout is still in place: %v", err)
	}
}

// withMaxJournalRecord lowers the largest record the journal replays, so
// that files larger than one record need only a few KiB.
func withMaxJournalRecord(t *testing.T, n int) {
	old := maxJournalRecord
	maxJournalRecord = n
	t.Cleanup(func() { maxJournalRecord = old })
}

// A file that grew by appends past the largest record the journal replays
// (a long-lived task's task.updates) survives a compaction whole, and so
// does every record after it: the snapshot must not hold a record that
// replay takes for a torn or damaged frame.
func TestJournalCompactionKeepsAFileLargerThanOneRecord(t *testing.T) {
	withMaxJournalRecord(t, 1<<10)
	dir := t.TempDir()
	j := openTestJournal(t, dir)
	root := filepath.Join(dir, "slaves")
	updates := filepath.Join(root, "t", "task.updates")
	var want bytes.Buffer
	for i := 0; i < 60; i++ {
		line := fmt.Sprintf("{\"update\":%04d, \"pad\":\"%s\"}\n", i, bytes.Repeat([]byte("p"), 20))
		want.WriteString(line)
		if err := j.append(updates, []byte(line), true); err != nil {
			t.Fatal(err)
		}
	}
	if want.Len() <= maxJournalRecord {
		t.Fatalf("the file is %d bytes: not larger than one record", want.Len())
	}
	if err := j.put(filepath.Join(root, "u", "task.json"), []byte("after"), true); err != nil {
		t.Fatal(err)
	}
	if err := j.compactOnce(); err != nil {
		t.Fatal(err)
	}
	if err := j.put(filepath.Join(root, "v", "task.json"), []byte("later"), true); err != nil {
		t.Fatal(err)
	}
	j.close()

	j = openTestJournal(t, dir)
	defer j.close()
	got := snapshotFiles(j)
	if got["t/task.updates"] != want.String() || got["u/task.json"] != "after" || got["v/task.json"] != "later" {
		t.Fatalf("after compaction the journal replays task.updates of %d bytes (want %d), u %q, v %q",
			len(got["t/task.updates"]), want.Len(), got["u/task.json"], got["v/task.json"])
	}
}

// A record larger than replay accepts is refused with an error naming it,
// and nothing of it is written: acknowledged, it would be dropped on
// replay as a torn frame, with every record after it.
func TestJournalRefusesARecordLargerThanItReplays(t *testing.T) {
	withMaxJournalRecord(t, 1<<10)
	dir := t.TempDir()
	j := openTestJournal(t, dir)
	root := filepath.Join(dir, "slaves")
	big := filepath.Join(root, "big", "task.json")
	err := j.put(big, bytes.Repeat([]byte("x"), 2<<10), true)
	if err == nil || !strings.Contains(err.Error(), "big/task.json") || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("put of a record larger than the journal replays = %v, want an error naming the file", err)
	}
	if _, err := j.readFile(big); !os.IsNotExist(err) {
		t.Fatalf("the refused record is visible: %v", err)
	}
	if err := j.put(filepath.Join(root, "small", "task.json"), []byte("kept"), true); err != nil {
		t.Fatal(err)
	}
	j.close()
	j = openTestJournal(t, dir)
	defer j.close()
	if got := snapshotFiles(j); len(got) != 1 || got["small/task.json"] != "kept" {
		t.Fatalf("replayed %v, want only small/task.json", got)
	}
}

// Importing the directory layout keeps a file larger than one journal
// record whole.
func TestImportKeepsAFileLargerThanOneRecord(t *testing.T) {
	withMaxJournalRecord(t, 1<<10)
	dir := t.TempDir()
	root := filepath.Join(dir, "slaves")
	run := filepath.Join(root, "a", "frameworks", "f", "executors", "t", "runs", "c")
	line := `{"update":{"framework_id":"f","status":{"task_id":{"value":"t"},"state":"TASK_RUNNING","uuid":"AQ=="}}}` + "\n"
	content := strings.Repeat(line, 30)
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "task.updates"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	j := openTestJournal(t, dir)
	if err := importLegacy(j, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	j.close()
	j = openTestJournal(t, dir)
	defer j.close()
	rel, _ := filepath.Rel(root, filepath.Join(run, "task.updates"))
	if got := snapshotFiles(j)[rel]; got != content {
		t.Fatalf("imported task.updates replays %d bytes, want %d", len(got), len(content))
	}
}

// Once the journal is closed, a late write of a checkpoint file below its
// root fails: were it written as a file of the directory layout instead,
// the next start's import would skip it (the journal holds that path
// already) and an update acknowledged as checkpointed would be lost.
func TestJournalClosedRefusesCheckpointWrites(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, dir)
	root := filepath.Join(dir, "slaves")
	file := filepath.Join(root, "a", "task.updates")
	if err := j.append(file, []byte("{\"first\":1}\n"), true); err != nil {
		t.Fatal(err)
	}
	j.close()
	if err := writeFileAtomic(filepath.Join(root, "a", "task.json"), []byte("{}"), true); err == nil {
		t.Error("writeFileAtomic below a closed journal's root succeeded")
	}
	if err := appendRecord(file, checkpointRecord{}, true); err == nil {
		t.Error("appendRecord below a closed journal's root succeeded")
	}
	if _, err := os.Lstat(root); !os.IsNotExist(err) {
		t.Fatalf("writes after close made the directory layout: %v", err)
	}
	j = openTestJournal(t, dir)
	defer j.close()
	if err := j.append(file, []byte("{\"second\":2}\n"), true); err != nil {
		t.Fatalf("a journal reopened after close: %v", err)
	}
}

// After a failed fdatasync the journal acknowledges nothing more: the
// kernel may have dropped earlier written pages it had not flushed yet
// (records nobody waited on to be durable) and reports that only once, so
// a later fdatasync succeeds over a gap, and replay, which stops at the
// gap, would lose records acknowledged after it.
func TestJournalFailedSyncRefusesLaterRecords(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, dir)
	defer j.close()
	root := filepath.Join(dir, "slaves")
	if err := j.put(filepath.Join(root, "a", "task.json"), []byte("not waited durable"), false); err != nil {
		t.Fatal(err)
	}
	old := journalSync
	journalSync = func(f *os.File) error { return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: syscall.EIO} }
	err := j.put(filepath.Join(root, "b", "task.json"), []byte("b"), true)
	journalSync = old
	if err == nil {
		t.Fatal("a record whose fdatasync failed was acknowledged")
	}
	err = j.put(filepath.Join(root, "c", "task.json"), []byte("c"), true)
	if err == nil || !strings.Contains(err.Error(), "restart") {
		t.Fatalf("a durable record after a failed fdatasync = %v, want refused until the agent restarts", err)
	}
	if _, err := j.readFile(filepath.Join(root, "c", "task.json")); !os.IsNotExist(err) {
		t.Fatalf("the refused record is visible: %v", err)
	}
}

// close returns only once a compaction under way has ended: one left
// running would hold a file open past the agent's stop, and could
// truncate or remove the journal.new of the journal a restarted agent
// opens on the same file.
func TestJournalCloseWaitsForItsCompaction(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, dir)
	root := filepath.Join(dir, "slaves")
	for i := 0; i < 32; i++ { // 128 KiB of live files: more than the pipe below holds
		if err := j.put(filepath.Join(root, fmt.Sprint(i), "task.json"), bytes.Repeat([]byte("x"), 4<<10), false); err != nil {
			t.Fatal(err)
		}
	}
	// The compaction writes its snapshot into a pipe, which holds it up
	// until the test reads.
	fifo := j.path + ".new"
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	rd, err := syscall.Open(fifo, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(rd)
	// The smallest pipe the kernel allows (a page), well below the
	// snapshot's size.
	if _, err := unix.FcntlInt(uintptr(rd), unix.F_SETPIPE_SZ, 4096); err != nil {
		t.Fatal(err)
	}
	capacity, err := unix.FcntlInt(uintptr(rd), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	j.compact = true
	j.mu.Unlock()
	j.startCompaction()
	waitFor(t, "the compaction to fill the pipe", func() bool {
		n, err := unix.IoctlGetInt(rd, unix.TIOCINQ)
		return err == nil && n >= capacity
	})
	closed := make(chan bool, 1)
	go func() {
		j.close()
		closed <- j.isCompacting()
	}()
	select {
	case compacting := <-closed:
		t.Fatalf("close returned while the compaction was held up (still compacting: %v)", compacting)
	case <-time.After(500 * time.Millisecond):
	}
	buf := make([]byte, 64<<10)
	deadline := time.After(time.Minute)
	for {
		select {
		case compacting := <-closed:
			if compacting {
				t.Fatal("close returned before its compaction ended")
			}
			return
		case <-deadline:
			t.Fatal("close did not return within a minute of the compaction's release")
		default:
		}
		if _, err := syscall.Read(rd, buf); err == syscall.EAGAIN {
			runtime.Gosched()
		}
	}
}

// TestJournalIsPrivate: the journal holds TaskInfos whole (a framework's
// secrets in their data), so it is the agent's alone: a journal and
// directory an older agent made world-readable are made private on open.
func TestJournalIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "meta")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "journal"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	j := openTestJournal(t, dir)
	defer j.close()
	if err := j.put(filepath.Join(dir, "slaves", "a", "task.json"), []byte(`{"data":"secret"}`), true); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "journal"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
	}
}
