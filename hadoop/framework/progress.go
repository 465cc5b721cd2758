package framework

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"strconv"

	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"

	"github.com/agora-cluster/agora/frameworks/statefile"
)

// Progress is what a running job's tasks have done, kept so that a
// restarted scheduler keeps the work already committed (and the map
// outputs still served) instead of running the job from the start.
//
// It is also the unit of the job's progress file, jobs/<id>.progress: an
// append-only file of records, each a Progress to merge into what the
// records before it said. Attempts about to launch are recorded before
// they launch (their numbers are then never given out again), and a
// successful attempt before the scheduler acts on its success; each
// record is fsynced first. The file is replayed on a restart
// (OpenProgress) and rewritten whole, atomically, only when it has grown
// past a bound.
type Progress struct {
	// Launched counts the attempts launched of each task (by task ID);
	// merging keeps the larger count.
	Launched map[string]int `json:"launched,omitempty"`
	// Done lists successful attempts in the order they succeeded; a later
	// entry of a task replaces an earlier one (a map run again). Merging
	// appends.
	Done []TaskDone `json:"done,omitempty"`
}

// TaskDone is a successful attempt: a committed reduce or map-only map,
// or a map whose output the tracker serves.
type TaskDone struct {
	Attempt jobtracker.Attempt `json:"attempt"`
	Tracker string             `json:"tracker"`  // executor ID
	AgentID string             `json:"agent_id"` // where the tracker runs
	URL     string             `json:"url"`      // the tracker's shuffle and log server
}

// merge adds d's records to p.
func (p *Progress) merge(d Progress) {
	for k, n := range d.Launched {
		if p.Launched == nil {
			p.Launched = map[string]int{}
		}
		p.Launched[k] = max(p.Launched[k], n)
	}
	p.Done = append(p.Done, d.Done...)
}

// compact is p with only the last success of each task, in the order of
// those successes (what replaying p gives, in fewer bytes).
func (p Progress) compact() Progress {
	last := map[job.TaskID]int{}
	for i, d := range p.Done {
		last[d.Attempt.ID.Task] = i
	}
	out := Progress{Launched: maps.Clone(p.Launched)}
	for i, d := range p.Done {
		if last[d.Attempt.ID.Task] == i {
			out.Done = append(out.Done, d)
		}
	}
	return out
}

func (p Progress) clone() Progress {
	return Progress{Launched: maps.Clone(p.Launched), Done: append([]TaskDone(nil), p.Done...)}
}

// The progress file's records are lines: "<length> <crc> <JSON>\n", the
// length (bytes) and CRC-32C of the JSON as 8 hex digits each. A record
// cut short by a crash mid-append (no newline yet, or a last line whose
// length or checksum does not match) is a torn tail; anything else that
// does not check out is damage.
const recordHeader = 18 // "%08x %08x "

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func encodeRecord(p Progress) ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	line := fmt.Appendf(make([]byte, 0, recordHeader+len(b)+1), "%08x %08x ", len(b), crc32.Checksum(b, castagnoli))
	line = append(line, b...)
	return append(line, '\n'), nil
}

// decodeRecord decodes one line, without its newline.
func decodeRecord(line []byte) (Progress, error) {
	var p Progress
	if len(line) < recordHeader || line[8] != ' ' || line[17] != ' ' {
		return p, errors.New("no record header")
	}
	n, err1 := strconv.ParseUint(string(line[:8]), 16, 32)
	sum, err2 := strconv.ParseUint(string(line[9:17]), 16, 32)
	if err1 != nil || err2 != nil {
		return p, errors.New("bad record header")
	}
	b := line[recordHeader:]
	if uint64(len(b)) != n {
		return p, fmt.Errorf("the record holds %d bytes; its header says %d", len(b), n)
	}
	if crc32.Checksum(b, castagnoli) != uint32(sum) {
		return p, errors.New("checksum mismatch")
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, err
	}
	return p, nil
}

// tornRecord says whether line (the end of the file) can be what a
// crash mid-append leaves: a record's first bytes, or its bytes with some
// never written (zeros). A line longer than its header says is not: it is
// two records run together, damage.
func tornRecord(line []byte) bool {
	if len(line) < recordHeader || line[8] != ' ' || line[17] != ' ' {
		return true
	}
	n, err := strconv.ParseUint(string(line[:8]), 16, 32)
	return err != nil || uint64(len(line)-recordHeader) <= n
}

// minCompactBytes is the size below which a progress file is never
// rewritten; past it, the file is rewritten when it has doubled since it
// was last written whole, so rewrites cost O(1) per record amortized.
const minCompactBytes = 1 << 20

// ProgressLog is a job's progress file and what replaying it gives. Only
// the scheduler's loop uses it.
type ProgressLog struct {
	path      string
	state     Progress
	size      int64 // bytes of whole records in the file
	compacted int64 // the size when last written whole
	exists    bool  // the file is there (its directory entry is durable)
	minBytes  int64 // minCompactBytes; tests lower it
}

func (s *Store) progressPath(id string) string {
	return filepath.Join(s.dir, "jobs", id+".progress")
}

// NewProgress is the progress of a job that has done nothing yet (a new
// submission: no file exists under its fresh ID).
func (s *Store) NewProgress(id string) *ProgressLog {
	return &ProgressLog{path: s.progressPath(id), minBytes: minCompactBytes}
}

// OpenProgress replays a job's progress file. A torn tail (the last
// record, cut short by a crash mid-append) is cut off the file and the
// cut fsynced, so the next record starts on a record boundary instead of
// being glued to the fragment; a record that does not check out with
// whole records after it is damage, and is an error naming the file and
// the offset (the file is left as it is). A job without a file has done
// nothing yet.
func (s *Store) OpenProgress(id string) (*ProgressLog, error) {
	l := s.NewProgress(id)
	b, err := os.ReadFile(l.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return l, nil
	case err != nil:
		return nil, fmt.Errorf("hadoop state: %w", err)
	}
	l.exists = true
	if len(b) > 0 && b[0] == '{' {
		return l, l.upgrade(b)
	}
	off := 0
	for off < len(b) {
		nl := bytes.IndexByte(b[off:], '\n')
		if nl < 0 && tornRecord(b[off:]) {
			break // torn: the last append, cut short
		}
		if nl < 0 {
			nl = len(b) - off
		}
		rec, err := decodeRecord(b[off : off+nl])
		if err != nil {
			if off+nl+1 >= len(b) && tornRecord(b[off:off+nl]) {
				break // torn: the last record, partly on disk
			}
			return nil, fmt.Errorf("hadoop state %s: the record at byte %d is damaged (%v) and records follow it; "+
				"move the file away to run the job's unfinished tasks again", l.path, off, err)
		}
		l.state.merge(rec)
		off += nl + 1
	}
	l.size, l.compacted = int64(off), int64(off)
	if off < len(b) {
		if err := cutTail(l.path, l.size); err != nil {
			return nil, fmt.Errorf("hadoop state %s: cut the torn tail at byte %d: %w", l.path, off, err)
		}
	}
	return l, nil
}

// upgrade turns the whole-JSON progress file an earlier version wrote into
// a progress file of records.
func (l *ProgressLog) upgrade(b []byte) error {
	var p Progress
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("hadoop state %s: %w", l.path, err)
	}
	return l.rewrite(p)
}

// cutTail truncates path to size and makes the cut durable.
func cutTail(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Progress is what the records say: a copy, to read.
func (l *ProgressLog) Progress() Progress { return l.state.clone() }

// Launched is how many attempts of task have been recorded as launched.
func (l *ProgressLog) Launched(task string) int { return l.state.Launched[task] }

// Append records d durably (written and fsynced) and then adds it to the
// progress. When it fails, the file and the progress are as they were
// (a partly written record is cut off again) and the error says why.
func (l *ProgressLog) Append(d Progress) error {
	rec, err := encodeRecord(d)
	if err != nil {
		return fmt.Errorf("hadoop state %s: %w", l.path, err)
	}
	if l.size+int64(len(rec)) > max(l.minBytes, 2*l.compacted) {
		next := l.state.clone()
		next.merge(d)
		return l.rewrite(next.compact())
	}
	if err := l.appendRecord(rec); err != nil {
		return fmt.Errorf("hadoop state %s: %w", l.path, err)
	}
	l.size += int64(len(rec))
	l.state.merge(d)
	return nil
}

// appendRecord appends rec and fsyncs it; on an error it cuts the file
// back to its last whole record.
func (l *ProgressLog) appendRecord(rec []byte) error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err == nil && st.Size() != l.size {
		// An earlier failed append left part of a record that could not
		// be cut off then.
		err = f.Truncate(l.size)
	}
	if err == nil {
		_, err = f.Write(rec)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		if terr := f.Truncate(l.size); terr == nil {
			f.Sync()
		}
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if !l.exists {
		if err := statefile.SyncDir(filepath.Dir(l.path)); err != nil {
			return err
		}
		l.exists = true
	}
	return nil
}

// rewrite replaces the file with one record holding p, atomically.
func (l *ProgressLog) rewrite(p Progress) error {
	rec, err := encodeRecord(p)
	if err != nil {
		return fmt.Errorf("hadoop state %s: %w", l.path, err)
	}
	if err := statefile.WriteFile(l.path, rec); err != nil {
		return fmt.Errorf("hadoop state %s: %w", l.path, err)
	}
	l.state, l.size, l.compacted, l.exists = p, int64(len(rec)), int64(len(rec)), true
	return nil
}

// RemoveProgress drops the progress of a job that ended (its record holds
// the final tasks).
func (s *Store) RemoveProgress(id string) error {
	if err := os.Remove(s.progressPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("hadoop state: %w", err)
	}
	return nil
}
