package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The checkpoint journal.
//
// The agent's per-task durable state (task.json, task.updates,
// executor.json, groups/*.json: the layout of checkpoint.go and
// executor_checkpoint.go) lives in one append-only file per agent,
// WORK_DIR/meta/journal, instead of a directory tree of small files: a
// launch then costs a few appended records and a share of one fdatasync,
// not a dozen inode creations, renames and a recursive delete. The
// records keep the names of the files they replace (a path below
// WORK_DIR/meta/slaves), so the rest of the agent, its recovery and its
// fault injection (diskfaults.go) speak of the same paths as before; the
// journal is the file system they live in.
//
// A record is framed as
//
//	length   uint32 LE   of the payload
//	crc      uint32 LE   CRC32C of the payload
//	payload  op (1 byte), path length (uvarint), path (relative to the
//	         journal's root), data
//
// so a record cut short by a crash (power loss mid-write) is detected on
// replay by its length or its checksum and dropped with everything after
// it, never misread. The file starts with journalMagic.
//
// Group commit, in the shape of the master's registrar: records are
// queued; one committer writes everything queued while its previous write
// and fdatasync ran in a single write and a single fdatasync. A caller
// waits for the commit of its record and learns whether it is on disk; a
// failed write or sync fails every record of its batch and cuts the file
// back to where the batch began, so nothing of it is replayed. After a
// failed fdatasync nothing more is written (see commit).
//
// Compaction: once the file has grown past compactBytes since the last
// snapshot, a snapshot of the live files (one put record each) is written
// to journal.new and fsynced while commits go on; then, with commits
// paused, the records committed since the snapshot was taken are copied
// after it, and journal.new is renamed over journal. A crash leaves the
// old or the new file, never half of one. Removed paths leave no trace in
// the snapshot.
//
// An agent upgraded from the directory layout imports it at start-up
// (importLegacy): every file into the journal, durably, then the old tree
// is renamed aside and removed in the background.

const journalMagic = "AGORA-CKPT-JOURNAL-1\n"

// maxJournalRecord bounds one record's payload; a length above it is a
// torn or damaged frame, not a record. (A variable for tests.)
var maxJournalRecord = 64 << 20

// Journal record operations.
const (
	jBarrier   byte = 0 // not written: answered once everything before it is
	jPut       byte = 1 // replace the file's content
	jAppend    byte = 2 // append to the file's content
	jRemove    byte = 3 // remove one file
	jRemoveAll byte = 4 // remove every file at or below a path
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// compactBytes is the journal growth that starts a compaction.
var compactBytes int64 = 16 << 20

type jRecord struct {
	op      byte
	path    string // relative to the journal's root
	data    []byte
	durable bool
	done    chan error // nil: nobody waits
}

type journal struct {
	root string // the logical directory whose files the journal holds
	path string // the journal file
	log  *slog.Logger

	mu      sync.Mutex
	files   map[string][]byte // the live files, by path relative to root
	queue   []*jRecord
	wake    chan struct{}
	closed  bool
	size    int64 // committed bytes of the file
	base    int64 // size right after the last snapshot
	compact bool  // a compaction runs

	fileMu     sync.Mutex // the file: held by a commit, and by a compaction's switch
	f          *os.File
	fileClosed bool
	broken     error         // a failed cut-back or fdatasync: the file's tail is unknown, nothing more is written
	brokenC    chan struct{} // closed when broken is first set (the agent stops on it)

	stopped    chan struct{}
	compacting sync.WaitGroup // a compaction in the background

	wbuf []byte // the frames of the batch being committed, reused (run's goroutine only)

	// Counters for tests and metrics.
	submitted, syncs, records, batches, compactions atomic.Int64
}

var (
	journalsMu sync.RWMutex
	journals   []*journal
)

// journalFor is the journal holding path, or nil. A closed journal stays
// registered (until its root's journal is opened again) so that a late
// write below its root fails instead of making a file of the directory
// layout there, which the next start's import would skip for a path the
// journal holds: a write reported durable would be lost.
func journalFor(path string) *journal {
	journalsMu.RLock()
	defer journalsMu.RUnlock()
	for _, j := range journals {
		if path == j.root || strings.HasPrefix(path, j.root+string(filepath.Separator)) {
			return j
		}
	}
	return nil
}

// openJournal opens (creating it if need be) the journal at path holding
// the files below root, replays it, and starts its committer. A torn last
// record is dropped and cut off the file.
func openJournal(path, root string, log *slog.Logger) (*journal, error) {
	// The journal holds every TaskInfo whole, its data included (where a
	// framework may hand a task a secret, as Hadoop's umbilical token):
	// readable by the agent's user alone, and so is the directory, which
	// older agents made 0755 (made private on open).
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("checkpoint journal: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("checkpoint journal: %w", err)
	}
	_ = os.Remove(path + ".new") // an unfinished compaction: the old file holds everything
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("checkpoint journal: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("checkpoint journal: %w", err)
	}
	j := &journal{root: filepath.Clean(root), path: path, log: log, files: map[string][]byte{},
		wake: make(chan struct{}, 1), f: f, stopped: make(chan struct{}), brokenC: make(chan struct{})}
	if err := j.replay(); err != nil {
		f.Close()
		return nil, err
	}
	j.base = j.size
	journalsMu.Lock()
	for i, o := range journals {
		if o.root != j.root {
			continue
		}
		if !o.isClosed() {
			journalsMu.Unlock()
			f.Close()
			return nil, fmt.Errorf("checkpoint journal %s: already open", path)
		}
		journals = append(journals[:i:i], journals[i+1:]...)
		break
	}
	journals = append(journals, j)
	journalsMu.Unlock()
	go j.run()
	return j, nil
}

// replay reads the file into j.files, cutting a torn tail.
func (j *journal) replay() error {
	b, err := io.ReadAll(j.f)
	if err != nil {
		return fmt.Errorf("checkpoint journal %s: %w", j.path, err)
	}
	if len(b) == 0 {
		if _, err := j.f.Write([]byte(journalMagic)); err != nil {
			return fmt.Errorf("checkpoint journal %s: %w", j.path, err)
		}
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("checkpoint journal %s: %w", j.path, err)
		}
		if err := fsyncDir(filepath.Dir(j.path)); err != nil {
			return fmt.Errorf("checkpoint journal %s: %w", j.path, err)
		}
		j.size = int64(len(journalMagic))
		return nil
	}
	if !bytes.HasPrefix(b, []byte(journalMagic)) {
		if len(b) < len(journalMagic) && bytes.HasPrefix([]byte(journalMagic), b) {
			b = nil // the header itself was torn: an empty journal
		} else {
			return fmt.Errorf("checkpoint journal %s: not a checkpoint journal (bad header)", j.path)
		}
	}
	off, n := len(journalMagic), 0
	if b == nil {
		off = 0
	}
	for off < len(b) {
		rec, size, ok := decodeRecord(b[off:])
		if !ok {
			break
		}
		j.apply(rec)
		off += size
		n++
	}
	if b == nil {
		if err := j.f.Truncate(0); err != nil {
			return err
		}
		if _, err := j.f.WriteAt([]byte(journalMagic), 0); err != nil {
			return err
		}
		off = len(journalMagic)
		b = []byte(journalMagic)
	}
	if off < len(b) {
		j.log.Warn("checkpoint journal: dropped a torn or damaged tail (a write cut short by a crash)",
			"journal", j.path, "records", n, "dropped_bytes", len(b)-off)
		if err := j.f.Truncate(int64(off)); err != nil {
			return fmt.Errorf("checkpoint journal %s: cut the torn tail: %w", j.path, err)
		}
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("checkpoint journal %s: cut the torn tail: %w", j.path, err)
		}
	}
	j.size = int64(off)
	if _, err := j.f.Seek(j.size, io.SeekStart); err != nil {
		return err
	}
	return nil
}

// encodeRecord appends r's frame to b.
func encodeRecord(b []byte, r *jRecord) []byte {
	var hdr [8]byte
	start := len(b)
	b = append(b, hdr[:]...)
	b = append(b, r.op)
	b = binary.AppendUvarint(b, uint64(len(r.path)))
	b = append(b, r.path...)
	b = append(b, r.data...)
	payload := b[start+8:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, castagnoli))
	return b
}

// payloadLen is the length of r's payload in its frame.
func payloadLen(r *jRecord) int {
	var v [binary.MaxVarintLen64]byte
	return 1 + binary.PutUvarint(v[:], uint64(len(r.path))) + len(r.path) + len(r.data)
}

// fileRecords are the records that make a file hold data: a put of its
// first part and appends of the rest, each within maxJournalRecord, so
// that a file larger than one record (a task.updates grown by many
// appends) is written whole by a compaction or an import. They must be
// committed in one batch: a crash may tear the batch, not reorder it.
func fileRecords(rel string, data []byte) []*jRecord {
	room := maxJournalRecord - payloadLen(&jRecord{path: rel})
	if room < 1 {
		room = 1 // a path too long for any record: the caller's write fails on replay's terms
	}
	first := min(len(data), room)
	recs := []*jRecord{{op: jPut, path: rel, data: data[:first]}}
	for rest := data[first:]; len(rest) > 0; {
		n := min(len(rest), room)
		recs = append(recs, &jRecord{op: jAppend, path: rel, data: rest[:n]})
		rest = rest[n:]
	}
	return recs
}

// decodeRecord reads the frame at the start of b; ok is false for a short,
// oversized or corrupt frame.
func decodeRecord(b []byte) (r jRecord, size int, ok bool) {
	if len(b) < 8 {
		return r, 0, false
	}
	n := binary.LittleEndian.Uint32(b)
	if n < 2 || int64(n) > int64(maxJournalRecord) || int(n) > len(b)-8 {
		return r, 0, false
	}
	payload := b[8 : 8+n]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return r, 0, false
	}
	r.op = payload[0]
	plen, k := binary.Uvarint(payload[1:])
	if k <= 0 || plen > uint64(len(payload)-1-k) {
		return r, 0, false
	}
	r.path = string(payload[1+k : 1+k+int(plen)])
	r.data = payload[1+k+int(plen):]
	if r.op < jPut || r.op > jRemoveAll {
		return r, 0, false
	}
	return r, int(8 + n), true
}

// apply makes r part of j.files; j.mu is held (or j is not shared yet).
// The bytes a file holds are never changed: an append writes past the
// end, into spare capacity or a grown copy (amortized, so a file grown by
// many appends replays in linear time), so a snapshot or a reader may hold
// on to a file's slice; readers get it capped, so their own appends copy.
func (j *journal) apply(r jRecord) {
	switch r.op {
	case jPut:
		j.files[r.path] = append([]byte(nil), r.data...)
	case jAppend:
		old := j.files[r.path]
		j.files[r.path] = append(old, r.data...)
	case jRemove:
		delete(j.files, r.path)
	case jRemoveAll:
		prefix := r.path + string(filepath.Separator)
		for p := range j.files {
			if p == r.path || strings.HasPrefix(p, prefix) {
				delete(j.files, p)
			}
		}
	}
}

func (j *journal) rel(path string) (string, error) {
	rel, err := filepath.Rel(j.root, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("checkpoint journal: %s is not below %s", path, j.root)
	}
	return rel, nil
}

// submit queues a record; with wait it returns once the record is on
// disk (durable: fdatasynced), or why it is not.
func (j *journal) submit(op byte, path string, data []byte, durable, wait bool) error {
	rel, err := j.rel(path)
	if err != nil {
		return err
	}
	r := &jRecord{op: op, path: rel, data: data, durable: durable}
	if n := payloadLen(r); n > maxJournalRecord {
		// Replay would take it for a damaged frame and drop it with
		// everything after it.
		return fmt.Errorf("checkpoint journal: the record for %s is too large: %d bytes, at most %d", path, n, maxJournalRecord)
	}
	if wait {
		r.done = make(chan error, 1)
	}
	if err := j.enqueue(r); err != nil || !wait {
		return err
	}
	return <-r.done
}

// enqueue queues rs for the committer, in one batch.
func (j *journal) enqueue(rs ...*jRecord) error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return fmt.Errorf("checkpoint journal %s is closed", j.path)
	}
	j.queue = append(j.queue, rs...)
	j.mu.Unlock()
	j.submitted.Add(int64(len(rs)))
	select {
	case j.wake <- struct{}{}:
	default:
	}
	return nil
}

// run is the committer: it writes what is queued, a batch at a time, until
// the journal is closed and its queue is empty.
func (j *journal) run() {
	defer close(j.stopped)
	for {
		j.mu.Lock()
		batch := j.queue
		j.queue = nil
		closed := j.closed
		j.mu.Unlock()
		if len(batch) == 0 {
			if closed {
				return
			}
			<-j.wake
			continue
		}
		j.commit(batch)
	}
}

// maxKeptWriteBuffer bounds the batch buffer a journal keeps between
// commits; a larger batch's buffer is left to the collector.
const maxKeptWriteBuffer = 1 << 20

// commit writes batch with one write and (if any record needs it) one
// fdatasync, then applies it to j.files and answers its waiters.
func (j *journal) commit(batch []*jRecord) {
	size := 0
	for _, r := range batch {
		if r.op != jBarrier {
			size += 8 + payloadLen(r)
		}
	}
	buf := j.wbuf[:0]
	if cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	durable, n := false, 0
	for _, r := range batch {
		if r.op != jBarrier {
			buf = encodeRecord(buf, r)
			n++
		}
		durable = durable || r.durable
	}
	if cap(buf) <= maxKeptWriteBuffer {
		j.wbuf = buf // written (WriteAt) before commit returns: free for the next batch
	}
	j.fileMu.Lock()
	err := j.broken
	j.mu.Lock()
	start := j.size
	j.mu.Unlock()
	if err == nil {
		var syncErr error
		_, err = j.f.WriteAt(buf, start)
		if err == nil && durable {
			syncErr = journalSync(j.f)
			err = syncErr
			j.syncs.Add(1)
		}
		if err != nil {
			// Nothing of a failed batch may be replayed: cut it off.
			if terr := j.f.Truncate(start); terr != nil {
				j.setBroken(fmt.Errorf("checkpoint journal %s: a failed write could not be undone (%v); the agent must restart to recover", j.path, terr))
			} else if durable {
				_ = fdatasync(j.f)
			}
		}
		if syncErr != nil && j.broken == nil {
			// The kernel may have dropped written pages it failed to
			// flush — records of earlier batches nobody waited on too —
			// and reports that once: a later fdatasync would succeed
			// over the gap, which replay stops at, losing what was
			// acknowledged after it. A restart replays what is on disk.
			j.setBroken(fmt.Errorf("checkpoint journal %s: fdatasync failed (%v), so what the kernel had not flushed may be lost; nothing more is written and the agent must restart to recover", j.path, syncErr))
		}
	}
	if err == nil {
		j.mu.Lock()
		for _, r := range batch {
			j.apply(*r)
		}
		j.size = start + int64(len(buf))
		startCompact := !j.compact && j.size-j.base > compactBytes
		j.compact = j.compact || startCompact
		j.mu.Unlock()
		j.records.Add(int64(n))
		j.batches.Add(1)
		if startCompact {
			j.startCompaction()
		}
	}
	j.fileMu.Unlock()
	if err != nil {
		err = fmt.Errorf("checkpoint journal: %w", err)
		j.log.Error("checkpoint journal write failed; its records are refused", "records", len(batch), "err", err)
	}
	for _, r := range batch {
		if r.done != nil {
			r.done <- err
		}
	}
}

// setBroken marks the journal broken (the first reason stays) and wakes
// whoever watches brokenC; j.fileMu is held.
func (j *journal) setBroken(err error) {
	if j.broken != nil {
		return
	}
	j.broken = err
	close(j.brokenC)
}

// brokenErr is why the journal refuses writes, or nil.
func (j *journal) brokenErr() error {
	j.fileMu.Lock()
	defer j.fileMu.Unlock()
	return j.broken
}

// startCompaction runs compactNow in the background; close waits for it.
func (j *journal) startCompaction() {
	j.compacting.Add(1)
	go func() {
		defer j.compacting.Done()
		j.compactNow()
	}()
}

func (j *journal) isCompacting() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.compact
}

// compactNow replaces the journal with a snapshot of its live files.
func (j *journal) compactNow() {
	err := j.compactOnce()
	j.mu.Lock()
	j.compact = false
	j.mu.Unlock()
	if err != nil {
		j.log.Warn("checkpoint journal compaction failed; the journal keeps growing until the next one", "err", err)
	}
}

func (j *journal) compactOnce() error {
	// A snapshot of the files as of offset since.
	j.mu.Lock()
	since := j.size
	paths := make([]string, 0, len(j.files))
	snap := make(map[string][]byte, len(j.files))
	for p, b := range j.files {
		paths = append(paths, p)
		snap[p] = b
	}
	j.mu.Unlock()
	sort.Strings(paths)
	buf := []byte(journalMagic)
	for _, p := range paths {
		for _, r := range fileRecords(p, snap[p]) {
			buf = encodeRecord(buf, r)
		}
	}
	tmp := j.path + ".new"
	nf, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		nf.Close()
		os.Remove(tmp)
		return err
	}
	if _, err := nf.Write(buf); err != nil {
		return fail(err)
	}
	if err := nf.Sync(); err != nil {
		return fail(err)
	}
	// Commits pause: copy what they added since the snapshot, and switch.
	j.fileMu.Lock()
	defer j.fileMu.Unlock()
	if j.broken != nil {
		return fail(j.broken)
	}
	if j.fileClosed {
		return fail(errors.New("the journal was closed")) // a restarted agent may own the file now
	}
	j.mu.Lock()
	end := j.size
	j.mu.Unlock()
	tail := make([]byte, end-since)
	if _, err := j.f.ReadAt(tail, since); err != nil {
		return fail(err)
	}
	if _, err := nf.Write(tail); err != nil {
		return fail(err)
	}
	if err := nf.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fail(err)
	}
	if err := fsyncDir(filepath.Dir(j.path)); err != nil {
		// The rename may or may not survive a machine crash; either file
		// is whole. Go on with the new one.
		j.log.Warn("checkpoint journal compaction: fsync its directory", "err", err)
	}
	old := j.f
	j.f = nf
	j.mu.Lock()
	j.size = int64(len(buf)) + int64(len(tail))
	j.base = j.size
	j.mu.Unlock()
	old.Close()
	j.compactions.Add(1)
	j.log.Info("compacted the checkpoint journal", "live_files", len(paths), "old_bytes", end, "new_bytes", j.size)
	return nil
}

func (j *journal) isClosed() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.closed
}

// close stops the committer once everything queued is written, and closes
// the file. The journal stays registered, refusing writes (journalFor).
func (j *journal) close() {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return
	}
	j.closed = true
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
	select {
	case <-j.stopped:
	case <-time.After(time.Minute):
		j.log.Error("checkpoint journal: the committer did not stop within a minute")
	}
	// Only the committer starts compactions: wait for the last one, so
	// that none outlives the journal (a restarted agent's journal uses
	// the same journal.new).
	compacted := make(chan struct{})
	go func() { j.compacting.Wait(); close(compacted) }()
	select {
	case <-compacted:
	case <-time.After(time.Minute):
		j.log.Error("checkpoint journal: a compaction did not end within a minute")
	}
	j.fileMu.Lock()
	if j.broken == nil {
		_ = fdatasync(j.f) // what nobody waited for (removals) too
	}
	j.f.Close()
	j.fileClosed = true
	j.fileMu.Unlock()
}

// The file operations on the journal. Each first passes the steps the
// file it stands for would have taken through the installed DiskFaults
// (diskfaults.go), so tests that fail or hold a step of a checkpoint file
// fail or hold its record the same way: a refused step means the record
// is never written.

func (j *journal) put(path string, data []byte, durable bool) error {
	if err := journalFaults(path, durable, DiskRename); err != nil {
		return err
	}
	return j.submit(jPut, path, data, durable, true)
}

func (j *journal) append(path string, data []byte, durable bool) error {
	if err := journalFaults(path, durable, ""); err != nil {
		return err
	}
	return j.submit(jAppend, path, data, durable, true)
}

// removeAll removes path and everything below it. Nobody waits: a removal
// that does not reach the disk leaves a checkpoint whose task a restarted
// agent finds ended, or acknowledged, and forgets again.
func (j *journal) removeAll(path string) {
	_ = j.submit(jRemoveAll, path, nil, false, false)
}

// barrier returns once every record queued before it is committed.
func (j *journal) barrier() error {
	r := &jRecord{op: jBarrier, done: make(chan error, 1)}
	if err := j.enqueue(r); err != nil {
		return err
	}
	return <-r.done
}

func (j *journal) remove(path string) error {
	return j.submit(jRemove, path, nil, false, true)
}

func journalFaults(path string, durable bool, last DiskOp) error {
	if !anyFault.Load() {
		return nil
	}
	if err := diskFault(DiskMkdir, filepath.Dir(path)); err != nil {
		return err
	}
	if err := diskFault(DiskWrite, path); err != nil {
		return err
	}
	if durable {
		if err := diskFault(DiskFsync, path); err != nil {
			return err
		}
	}
	if last != "" {
		return diskFault(last, path)
	}
	return nil
}

// readFile returns a file's content.
func (j *journal) readFile(path string) ([]byte, error) {
	rel, err := j.rel(path)
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	b, ok := j.files[rel]
	j.mu.Unlock()
	if !ok {
		return nil, &os.PathError{Op: "open", Path: path, Err: os.ErrNotExist}
	}
	return b[:len(b):len(b)], nil
}

// glob lists the files and directories (a directory exists while a file
// is below it) matching pattern, sorted.
func (j *journal) glob(pattern string) ([]string, error) {
	relPat, err := j.rel(pattern)
	if err != nil {
		return nil, err
	}
	depth := strings.Count(relPat, string(filepath.Separator)) + 1
	seen := map[string]bool{}
	j.mu.Lock()
	for p := range j.files {
		parts := strings.SplitN(p, string(filepath.Separator), depth+1)
		if len(parts) < depth {
			continue
		}
		cand := strings.Join(parts[:depth], string(filepath.Separator))
		if seen[cand] {
			continue
		}
		ok, err := filepath.Match(relPat, cand)
		if err != nil {
			j.mu.Unlock()
			return nil, err
		}
		if ok {
			seen[cand] = true
		}
	}
	j.mu.Unlock()
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, filepath.Join(j.root, p))
	}
	sort.Strings(out)
	return out, nil
}

// The checkpoint's file operations: in the journal for a path it holds,
// on disk otherwise.

func ckptReadFile(path string) ([]byte, error) {
	if j := journalFor(path); j != nil {
		return j.readFile(path)
	}
	return os.ReadFile(path)
}

func ckptGlob(pattern string) ([]string, error) {
	if j := journalFor(pattern); j != nil {
		return j.glob(pattern)
	}
	return filepath.Glob(pattern)
}

func ckptRemoveAll(path string) error {
	if j := journalFor(path); j != nil {
		j.removeAll(path)
		return nil
	}
	return os.RemoveAll(path)
}

func ckptRemove(path string) error {
	if j := journalFor(path); j != nil {
		return j.remove(path)
	}
	return os.Remove(path)
}

// ReadCheckpoint returns the files of the checkpoint journal in the agent
// work directory workDir, by their path (as in the directory layout it
// replaces), as a restarted agent would recover them; a torn tail is
// ignored. It reads a copy, so the agent may be running.
func ReadCheckpoint(workDir string) (map[string][]byte, error) {
	abs, err := filepath.Abs(workDir)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(journalPath(abs))
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(b, []byte(journalMagic)) {
		return nil, fmt.Errorf("%s: not a checkpoint journal", journalPath(abs))
	}
	j := &journal{root: journalRoot(abs), files: map[string][]byte{}}
	for off := len(journalMagic); off < len(b); {
		rec, size, ok := decodeRecord(b[off:])
		if !ok {
			break
		}
		j.apply(rec)
		off += size
	}
	out := make(map[string][]byte, len(j.files))
	for p, c := range j.files {
		out[filepath.Join(j.root, p)] = c
	}
	return out, nil
}

func journalPath(workDir string) string { return filepath.Join(workDir, "meta", "journal") }
func journalRoot(workDir string) string { return filepath.Join(workDir, "meta", "slaves") }

// journalSync is the journal's fdatasync (a variable for tests).
var journalSync = fdatasync

// fdatasync flushes f's data (and the metadata needed to read it back,
// such as its size) to the disk.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
