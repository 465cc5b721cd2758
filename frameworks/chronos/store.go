package chronos

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agora-cluster/agora/frameworks/servicepage"
	"github.com/agora-cluster/agora/frameworks/statefile"
)

// record is everything kept of a job, in its own file, written before any
// change it records is acknowledged or acted on: above all a run's task,
// written before the task is launched, so that a framework that dies at
// that moment finds it and reconciles it instead of launching the same
// instant again.
type record struct {
	Job Job `json:"job"`
	// NextDue is the next scheduled instant not yet handled (nil: a
	// dependent job, or a schedule that has ended).
	NextDue *time.Time `json:"nextDue,omitempty"`
	// LastTriggered is the latest instant a run was made for; no instant
	// up to it runs again.
	LastTriggered time.Time `json:"lastTriggered"`
	// Pending holds, per parent, the instant of its latest success this
	// job has not run for yet (dependent jobs).
	Pending map[string]time.Time `json:"pending,omitempty"`
	// Run is the run in flight, if any.
	Run *Run `json:"run,omitempty"`

	SuccessCount           int         `json:"successCount"`
	ErrorCount             int         `json:"errorCount"`
	ErrorsSinceLastSuccess int         `json:"errorsSinceLastSuccess"`
	MissedCount            int         `json:"missedCount"`
	LastSuccess            time.Time   `json:"lastSuccess"`
	LastError              time.Time   `json:"lastError"`
	Missed                 []time.Time `json:"missed,omitempty"` // the latest missed instants
	History                []RunResult `json:"history,omitempty"`
}

// Run is one run of a job: the instant it is for and its current task.
type Run struct {
	Instant time.Time `json:"instant"`
	Manual  bool      `json:"manual,omitempty"`
	// Attempt counts the retries used (0 for the first try).
	Attempt int `json:"attempt"`
	// Launches counts the tasks made for this run, which makes task IDs
	// unique.
	Launches int    `json:"launches"`
	TaskID   string `json:"taskId,omitempty"`
	AgentID  string `json:"agentId,omitempty"`
	Host     string `json:"host,omitempty"`
	// State is "queued" until a task is recorded, then the task's state.
	State   string `json:"state"`
	Started bool   `json:"started,omitempty"` // the task was seen starting or running
	Killed  bool   `json:"killed,omitempty"`  // a user killed it: no retry
	// TaskDone says an async job's task has finished: the run ends when
	// the job reports its outcome (PUT /v1/scheduler/task/ID).
	TaskDone  bool      `json:"taskDone,omitempty"`
	QueuedAt  time.Time `json:"queuedAt"`
	StartedAt time.Time `json:"startedAt,omitempty"`
}

// RunResult is one ended run, or a missed instant, in a job's history.
type RunResult struct {
	Instant  time.Time `json:"instant"`
	TaskID   string    `json:"taskId,omitempty"`
	AgentID  string    `json:"slaveId,omitempty"`
	Host     string    `json:"host,omitempty"`
	State    string    `json:"taskState"`
	Message  string    `json:"message,omitempty"`
	Attempts int       `json:"attempts"`
	Manual   bool      `json:"manual,omitempty"`
	Started  time.Time `json:"startTime,omitempty"`
	Ended    time.Time `json:"endTime"`
}

// Run states before a task exists, and history states of what never ran.
const (
	stateQueued = "queued"
	stateMissed = "missed"
)

// maxHistory bounds a job's history (the file is rewritten on every
// change).
const maxHistory = 50

func (r *record) remember(res RunResult) {
	r.History = append(r.History, res)
	if n := len(r.History) - maxHistory; n > 0 {
		r.History = append([]RunResult(nil), r.History[n:]...)
	}
}

// store keeps DIR/framework.json (the framework ID) and DIR/jobs/NAME.json
// for each job, each written atomically and durably. Every job saved or
// removed bumps changes, the page's change feed.
type store struct {
	dir     string
	changes *servicepage.Changes
}

type frameworkFile struct {
	FrameworkID string `json:"framework_id"`
}

func openStore(dir string) (*store, string, []*record, error) {
	if err := os.MkdirAll(filepath.Join(dir, "jobs"), 0o755); err != nil {
		return nil, "", nil, fmt.Errorf("work directory: %w", err)
	}
	var ff frameworkFile
	if err := readJSON(filepath.Join(dir, "framework.json"), &ff); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, "", nil, err
	}
	es, err := os.ReadDir(filepath.Join(dir, "jobs"))
	if err != nil {
		return nil, "", nil, fmt.Errorf("state: %w", err)
	}
	var recs []*record
	for _, e := range es {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		r := &record{}
		if err := readJSON(filepath.Join(dir, "jobs", e.Name()), r); err != nil {
			return nil, "", nil, err
		}
		recs = append(recs, r)
	}
	return &store{dir: dir, changes: servicepage.NewChanges()}, ff.FrameworkID, recs, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("state file %s is damaged: %w", path, err)
	}
	return nil
}

func (st *store) write(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := statefile.WriteFile(path, b); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

func (st *store) saveFrameworkID(id string) error {
	return st.write(filepath.Join(st.dir, "framework.json"), frameworkFile{FrameworkID: id})
}

func (st *store) jobFile(name string) string { return filepath.Join(st.dir, "jobs", name+".json") }

func (st *store) save(r *record) error {
	defer st.changes.Bump()
	return st.write(st.jobFile(r.Job.Name), r)
}

func (st *store) remove(name string) error {
	defer st.changes.Bump()
	path := st.jobFile(name)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return statefile.SyncDir(filepath.Dir(path))
}
