package jobtracker

import (
	"time"

	"github.com/agora-cluster/agora/hadoop/counters"
	"github.com/agora-cluster/agora/hadoop/job"
)

// JobState is where a job is in its life.
type JobState string

const (
	JobRunning    JobState = "RUNNING"
	JobCommitting JobState = "COMMITTING" // every task is done; the output is being committed
	JobSucceeded  JobState = "SUCCEEDED"
	JobFailed     JobState = "FAILED"
	JobKilled     JobState = "KILLED"
)

// Done reports whether the state is final.
func (s JobState) Done() bool { return s == JobSucceeded || s == JobFailed || s == JobKilled }

// TaskState is where a task is.
type TaskState string

const (
	TaskPending   TaskState = "PENDING" // waiting for a slot (again, after a failed attempt)
	TaskRunning   TaskState = "RUNNING"
	TaskSucceeded TaskState = "SUCCEEDED"
	TaskFailed    TaskState = "FAILED" // failed maxattempts times
	TaskKilled    TaskState = "KILLED" // the job was killed or failed
)

// AttemptState is where an attempt is.
type AttemptState string

const (
	AttemptRunning       AttemptState = "RUNNING"
	AttemptCommitPending AttemptState = "COMMIT_PENDING" // allowed to commit, committing
	AttemptSucceeded     AttemptState = "SUCCEEDED"
	AttemptFailed        AttemptState = "FAILED"
	AttemptKilled        AttemptState = "KILLED"
)

func (s AttemptState) active() bool { return s == AttemptRunning || s == AttemptCommitPending }

// Attempt is one run of a task on one host.
type Attempt struct {
	ID           job.AttemptID     `json:"id"`
	Host         string            `json:"host"`
	State        AttemptState      `json:"state"`
	Speculative  bool              `json:"speculative,omitempty"`
	Locality     Locality          `json:"locality,omitempty"`
	Start        time.Time         `json:"start"`
	Finish       time.Time         `json:"finish,omitzero"`
	LastProgress time.Time         `json:"last_progress"`
	Progress     float64           `json:"progress"`
	Status       string            `json:"status,omitempty"`
	Counters     counters.Counters `json:"counters,omitempty"`
	Diagnostics  string            `json:"diagnostics,omitempty"`
	ShuffleURL   string            `json:"shuffle_url,omitempty"` // maps: where reduces fetch the output
}

// Task is one map or reduce of the job.
type Task struct {
	ID       job.TaskID `json:"id"`
	State    TaskState  `json:"state"`
	Hosts    []string   `json:"hosts,omitempty"` // maps: where the split's data is
	Attempts []*Attempt `json:"attempts"`

	failures      int
	failedHosts   map[string]bool
	successful    *Attempt // the attempt whose output counts
	committer     *Attempt // the attempt allowed to commit
	fetchFailures map[job.TaskID]bool
}

// Locality says how close a map attempt runs to its data.
type Locality string

const (
	DataLocal    Locality = "data-local"
	OffSwitch    Locality = "off-switch"    // the split has hosts, this is not one of them
	NoPreference Locality = "no-preference" // the split has no hosts (e.g. the local file system)
)

// Launch is a decision to start an attempt in the slot that was offered.
type Launch struct {
	Attempt     job.AttemptID
	Speculative bool
	Locality    Locality
}

// Decision is something the core wants done, returned from events.
type Decision interface{ decision() }

// KillAttempt: stop this attempt and discard its output. The core already
// counts it as killed.
type KillAttempt struct {
	Attempt job.AttemptID
	Host    string
	Reason  string
}

// CommitJob: every task is done; commit the job's output (write _SUCCESS)
// and report back with Committed or CommitFailed.
type CommitJob struct{}

// AbortJob: the job failed or was killed; remove its temporary output.
type AbortJob struct {
	State  JobState
	Reason string
}

func (KillAttempt) decision() {}
func (CommitJob) decision()   {}
func (AbortJob) decision()    {}

// CompletionStatus is the status of a map completion event.
type CompletionStatus string

const (
	MapSucceeded CompletionStatus = "SUCCEEDED" // output ready at URL
	MapObsolete  CompletionStatus = "OBSOLETE"  // that output is gone; wait for a newer event
	MapTIPFailed CompletionStatus = "TIPFAILED" // the map failed for good (tolerated); skip it
)

// MapCompletion tells reduces where a map's output is, in the order maps
// finish (Hadoop's TaskCompletionEvent).
type MapCompletion struct {
	Seq     int              `json:"seq"`
	Map     int              `json:"map"`
	Attempt job.AttemptID    `json:"attempt"`
	URL     string           `json:"url,omitempty"`
	Status  CompletionStatus `json:"status"`
}

// Result is what a successful attempt reports.
type Result struct {
	Counters   counters.Counters
	ShuffleURL string // maps of jobs with reduces: where the output is served
}

// Progress is an attempt's progress report.
type Progress struct {
	Progress float64 // 0..1
	Status   string
	Counters counters.Counters // running totals, replacing earlier ones
}
