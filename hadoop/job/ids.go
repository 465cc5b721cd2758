// Package job describes a MapReduce job as submitted: its configuration
// (a Hadoop Streaming command line parsed into Hadoop's property names),
// the checks that refuse a bad submission before anything runs, the plan
// (input splits and total-order split points), and the job, task and
// attempt identifiers in Hadoop's format.
package job

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is the kind of a task.
type Kind byte

const (
	Map    Kind = 'm'
	Reduce Kind = 'r'
)

func (k Kind) String() string {
	if k == Reduce {
		return "reduce"
	}
	return "map"
}

// ID identifies a job: job_<tracker>_<seq>, e.g. job_202601011200_0001.
type ID struct {
	Tracker string // the JobTracker's identifier, usually its start time
	Seq     int
}

func (id ID) String() string { return fmt.Sprintf("job_%s_%04d", id.Tracker, id.Seq) }

// TaskID identifies a task: task_<tracker>_<seq>_m_000003.
type TaskID struct {
	Job   ID
	Kind  Kind
	Index int
}

func (t TaskID) String() string {
	return fmt.Sprintf("task_%s_%04d_%c_%06d", t.Job.Tracker, t.Job.Seq, t.Kind, t.Index)
}

// AttemptID identifies an attempt: attempt_<tracker>_<seq>_m_000003_0.
type AttemptID struct {
	Task TaskID
	N    int
}

func (a AttemptID) String() string {
	t := a.Task
	return fmt.Sprintf("attempt_%s_%04d_%c_%06d_%d", t.Job.Tracker, t.Job.Seq, t.Kind, t.Index, a.N)
}

func (id ID) MarshalText() ([]byte, error)       { return []byte(id.String()), nil }
func (t TaskID) MarshalText() ([]byte, error)    { return []byte(t.String()), nil }
func (a AttemptID) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

func (id *ID) UnmarshalText(b []byte) (err error) {
	*id, err = ParseID(string(b))
	return err
}

func (t *TaskID) UnmarshalText(b []byte) (err error) {
	*t, err = ParseTaskID(string(b))
	return err
}

func (a *AttemptID) UnmarshalText(b []byte) (err error) {
	*a, err = ParseAttemptID(string(b))
	return err
}

// ParseID parses job_<tracker>_<seq>.
func ParseID(s string) (ID, error) {
	f := strings.Split(s, "_")
	if len(f) != 3 || f[0] != "job" {
		return ID{}, fmt.Errorf("bad job ID %q", s)
	}
	return parseID(f[1], f[2], s)
}

func parseID(tracker, seq, s string) (ID, error) {
	n, err := strconv.Atoi(seq)
	if err != nil || tracker == "" {
		return ID{}, fmt.Errorf("bad ID %q", s)
	}
	return ID{Tracker: tracker, Seq: n}, nil
}

// ParseTaskID parses task_<tracker>_<seq>_<m|r>_<index>.
func ParseTaskID(s string) (TaskID, error) {
	f := strings.Split(s, "_")
	if len(f) != 5 || f[0] != "task" {
		return TaskID{}, fmt.Errorf("bad task ID %q", s)
	}
	return parseTask(f[1:], s)
}

func parseTask(f []string, s string) (TaskID, error) {
	id, err := parseID(f[0], f[1], s)
	if err != nil {
		return TaskID{}, err
	}
	if f[2] != "m" && f[2] != "r" {
		return TaskID{}, fmt.Errorf("bad task kind in %q", s)
	}
	i, err := strconv.Atoi(f[3])
	if err != nil {
		return TaskID{}, fmt.Errorf("bad task index in %q", s)
	}
	return TaskID{Job: id, Kind: Kind(f[2][0]), Index: i}, nil
}

// ParseAttemptID parses attempt_<tracker>_<seq>_<m|r>_<index>_<n>.
func ParseAttemptID(s string) (AttemptID, error) {
	f := strings.Split(s, "_")
	if len(f) != 6 || f[0] != "attempt" {
		return AttemptID{}, fmt.Errorf("bad attempt ID %q", s)
	}
	t, err := parseTask(f[1:5], s)
	if err != nil {
		return AttemptID{}, err
	}
	n, err := strconv.Atoi(f[5])
	if err != nil {
		return AttemptID{}, fmt.Errorf("bad attempt number in %q", s)
	}
	return AttemptID{Task: t, N: n}, nil
}
