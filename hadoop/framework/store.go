package framework

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"

	"github.com/agora-cluster/agora/frameworks/statefile"
)

// Store keeps the framework's state in a directory so that a restarted
// scheduler carries on: framework.json (the framework ID to re-subscribe
// with, the JobTracker identifier of job IDs, the next job number and the
// incarnation count), jobs/<job ID>.json (each submission with its plan
// and, once it ends, its final status and tasks) and, while a job runs,
// jobs/<job ID>.progress (what its attempts did: an append-only file of
// records, progress.go). The other files are written atomically: a
// temporary file, fsync, rename, fsync of the directory.
type Store struct {
	dir string
}

// FrameworkState is framework.json.
type FrameworkState struct {
	FrameworkID string `json:"framework_id,omitempty"`
	Tracker     string `json:"tracker"`     // the <tracker> part of job IDs
	NextSeq     int    `json:"next_seq"`    // the next job's number
	Incarnation int    `json:"incarnation"` // scheduler starts so far
}

// JobRecord is jobs/<id>.json.
type JobRecord struct {
	Plan     job.Plan       `json:"plan"`
	Info     client.JobInfo `json:"info"`
	Finished bool           `json:"finished"`
	// Tasks are the final tasks and attempts, kept with finished jobs.
	Tasks []jobtracker.Task `json:"tasks,omitempty"`
}

// OpenStore opens (creating) a state directory.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "jobs"), 0o755); err != nil {
		return nil, fmt.Errorf("hadoop state dir %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the state directory.
func (s *Store) Dir() string { return s.dir }

// LoadFramework reads framework.json; a missing file gives a fresh state
// whose tracker identifier is now's yyyyMMddHHmm, as Hadoop's.
func (s *Store) LoadFramework(now time.Time) (FrameworkState, error) {
	var st FrameworkState
	b, err := os.ReadFile(filepath.Join(s.dir, "framework.json"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return FrameworkState{Tracker: now.UTC().Format("200601021504"), NextSeq: 1}, nil
	case err != nil:
		return st, fmt.Errorf("hadoop state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("hadoop state %s: %w", filepath.Join(s.dir, "framework.json"), err)
	}
	if st.Tracker == "" || strings.Contains(st.Tracker, "_") {
		return st, fmt.Errorf("hadoop state %s: bad tracker identifier %q", filepath.Join(s.dir, "framework.json"), st.Tracker)
	}
	st.NextSeq = max(st.NextSeq, 1)
	return st, nil
}

// SaveFramework writes framework.json.
func (s *Store) SaveFramework(st FrameworkState) error {
	return s.write(filepath.Join(s.dir, "framework.json"), st)
}

// SaveJob writes a job's record.
func (s *Store) SaveJob(r JobRecord) error {
	return s.write(filepath.Join(s.dir, "jobs", r.Info.ID+".json"), r)
}

// LoadJobs reads every job record, oldest job first.
func (s *Store) LoadJobs() ([]JobRecord, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "jobs"))
	if err != nil {
		return nil, fmt.Errorf("hadoop state: %w", err)
	}
	var out []JobRecord
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(s.dir, "jobs", e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("hadoop state: %w", err)
		}
		var r JobRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("hadoop state %s: %w", p, err)
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Info.Submitted.Before(out[j].Info.Submitted) })
	return out, nil
}

// write replaces path with v's JSON atomically.
func (s *Store) write(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("hadoop state %s: %w", path, err)
	}
	if err := statefile.WriteFile(path, b); err != nil {
		return fmt.Errorf("hadoop state %s: %w", path, err)
	}
	return nil
}
