// Package umbilical is the protocol between the Hadoop framework's
// scheduler (the JobTracker) and its TaskTracker executors, Hadoop's
// TaskUmbilicalProtocol carried over Mesos and HTTP:
//
//   - an attempt is a Mesos task launched on the TaskTracker's custom
//     executor; its TaskInfo.data is the tasktracker.Assignment as JSON,
//     with the tracker's umbilical token beside it (TaskToken);
//   - the executor reports progress with TASK_RUNNING updates and the
//     outcome with TASK_FINISHED (counters) or TASK_FAILED (the
//     diagnostics, with the tail of the process's stderr, in the message);
//     the update's data is a Report as JSON;
//   - what an attempt must ask and wait for (may it commit? where are the
//     map outputs?) goes straight to the scheduler's HTTP port, as a
//     TaskTracker talks to its JobTracker: POST CommitPath, GET
//     CompletionsPath (a long poll), POST FetchFailedPath. Requests name the
//     attempt by its Mesos task ID, which carries the scheduler's
//     incarnation, so an attempt left over from before a scheduler restart
//     can never be taken for the new run's attempt of the same number, and
//     carry the tracker's token (TaskToken), so nobody else can;
//   - the scheduler tells executors that a job is over with a framework
//     message (Message), so they drop its map outputs and files.
package umbilical

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/agora-cluster/agora/hadoop/counters"
	"github.com/agora-cluster/agora/hadoop/job"
)

// HTTP paths on the scheduler's port.
const (
	CommitPath      = "/umbilical/v1/commit"
	CompletionsPath = "/umbilical/v1/completions"
	FetchFailedPath = "/umbilical/v1/fetch-failed"
)

// HTTP paths on the executor's port (besides shuffle.Path).
const (
	// LogPath + attempt ID serves the attempt's stderr.
	LogPath = "/logs/"
)

// Environment of the TaskTracker executor, set in its CommandInfo.
const (
	EnvJobTracker  = "AGORA_HADOOP_JOBTRACKER"   // http://host:port of the scheduler
	EnvShufflePort = "AGORA_HADOOP_SHUFFLE_PORT" // the port taken from the offer
	EnvTracker     = "AGORA_HADOOP_TRACKER"      // the tracker's name (its executor ID)
	EnvMemory      = "AGORA_HADOOP_MEMORY_MB"    // the most memory its slots and itself may hold
	// EnvTrackerMemory is the memory of the tracker itself (its
	// ExecutorInfo's mem); each attempt brings its slot's on top.
	EnvTrackerMemory = "AGORA_HADOOP_TRACKER_MEMORY_MB"
)

// TaskToken is the part of an attempt's TaskInfo.data that carries the
// tracker's secret for the umbilical: a random token the scheduler made
// for that executor alone. Every umbilical request carries it
// (Authorization: Bearer), so only the tracker running an attempt can
// speak for it. It is never logged.
//
// It travels in the task's data and not in the executor's environment:
// the ExecutorInfo (its CommandInfo, environment included) is shown by
// the agent's and the master's state (GET_STATE, GET_EXECUTORS) to anyone
// who may view executors, while a task's data is shown by no state view
// (Mesos's Task, which state lists, has no data; the agent keeps it in its
// checkpoint journal, readable by the agent's user alone and outside the
// sandboxes /files serves).
type TaskToken struct {
	Token string `json:"umbilical_token"`
}

// SetToken puts a tracker's token on an umbilical request.
func SetToken(req *http.Request, token string) { req.Header.Set("Authorization", "Bearer "+token) }

// RequestToken is the token an umbilical request carries, "" for none.
func RequestToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// Report is the data of an attempt's status updates: progress while it
// runs, final counters when it ends.
type Report struct {
	Progress float64           `json:"progress"`
	Status   string            `json:"status,omitempty"`
	Counters counters.Counters `json:"counters,omitempty"`
	// MapOutput is set on TASK_FINISHED of a map whose output the executor
	// serves for the job's reduces.
	MapOutput bool `json:"map_output,omitempty"`
}

// Encode is the JSON of r.
func (r Report) Encode() []byte {
	b, _ := json.Marshal(r) // plain data: cannot fail
	return b
}

// DecodeReport reads a status update's data; empty data is a zero Report.
func DecodeReport(b []byte) (Report, error) {
	var r Report
	if len(b) == 0 {
		return r, nil
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("attempt report: %w", err)
	}
	return r, nil
}

// TaskID is the Mesos task ID of an attempt run by scheduler incarnation
// inc: the attempt ID and ".<inc>".
func TaskID(a job.AttemptID, inc int) string { return a.String() + "." + strconv.Itoa(inc) }

// ParseTaskID splits a Mesos task ID made by TaskID.
func ParseTaskID(s string) (job.AttemptID, int, error) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return job.AttemptID{}, 0, fmt.Errorf("task %q is not a Hadoop attempt (want attempt_..._N.incarnation)", s)
	}
	inc, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return job.AttemptID{}, 0, fmt.Errorf("task %q: bad incarnation", s)
	}
	a, err := job.ParseAttemptID(s[:i])
	if err != nil {
		return job.AttemptID{}, 0, err
	}
	return a, inc, nil
}

// CommitRequest asks whether an attempt may commit its output.
type CommitRequest struct {
	Task string `json:"task"` // Mesos task ID
}

// CommitReply answers it.
type CommitReply struct {
	Commit bool `json:"commit"`
}

// FetchFailure reports that a reduce could not fetch a map's output.
type FetchFailure struct {
	Task string `json:"task"` // the reduce's Mesos task ID
	Map  int    `json:"map"`
}

// Message is what the scheduler sends executors as framework messages.
type Message struct {
	// JobDone names a job that ended: its files and map outputs can go.
	JobDone string `json:"job_done,omitempty"`
}
