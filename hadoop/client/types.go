// Package client is the REST API of agora's Hadoop framework, served by
// its scheduler (the JobTracker), and a Go client for it: submit a
// Streaming job, list jobs, follow a job's map and reduce progress and
// counters, kill it, and read an attempt's stderr. `agora hadoop` is built
// on it.
//
//	POST /api/v1/jobs                  SubmitRequest → 201 JobInfo | 400 ErrorReply
//	GET  /api/v1/jobs                  → []JobInfo, running first, then newest first
//	GET  /api/v1/jobs/{id}[?tasks=1]   → JobDetail
//	POST /api/v1/jobs/{id}/kill        → JobInfo
//	GET  /api/v1/attempts/{id}/log     → text/plain: the attempt's stderr
//	GET  /api/v1/trackers              → []TrackerInfo
//	GET  /api/v1/info                  → Info
package client

import (
	"time"

	"github.com/agora-cluster/agora/hadoop/counters"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
)

// DefaultPort is where the framework serves its API unless told
// otherwise: the JobTracker's web port in Hadoop 1.
const DefaultPort = 50030

// SubmitRequest submits a job: either a Spec (what `agora hadoop
// streaming` sends, parsed on the client so that -conf and relative paths
// resolve there) or a Streaming command line with the directory relative
// paths are taken from.
type SubmitRequest struct {
	Spec *job.Spec `json:"spec,omitempty"`
	Args []string  `json:"args,omitempty"`
	Cwd  string    `json:"cwd,omitempty"`
	// User is who submits the job (Hadoop's user.name), when the API
	// asks for no credentials; behind credentials the job is the
	// authenticated principal's whatever this says.
	User string `json:"user,omitempty"`
}

// JobInfo is a job's summary.
type JobInfo struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// User submitted the job (its mapreduce.job.user.name); "" for a
	// job submitted without one.
	User           string                `json:"user,omitempty"`
	State          jobtracker.JobState   `json:"state"`
	Error          string                `json:"error,omitempty"`
	Submitted      time.Time             `json:"submitted"`
	Finish         time.Time             `json:"finish,omitzero"`
	Input          []string              `json:"input"`
	Output         string                `json:"output"`
	Mapper         string                `json:"mapper"`
	Reducer        string                `json:"reducer"`
	Combiner       string                `json:"combiner,omitempty"`
	Maps           jobtracker.TaskCounts `json:"maps"`
	Reduces        jobtracker.TaskCounts `json:"reduces"`
	MapProgress    float64               `json:"map_progress"`
	ReduceProgress float64               `json:"reduce_progress"`
	Counters       counters.Counters     `json:"counters,omitempty"`
	Blacklisted    []string              `json:"blacklisted,omitempty"`
	// Restarts counts the times the job was run again from the start after
	// a scheduler restart.
	Restarts int `json:"restarts,omitempty"`
}

// Done reports whether the job has ended.
func (j JobInfo) Done() bool { return j.State.Done() }

// Elapsed is how long the job ran (so far).
func (j JobInfo) Elapsed(now time.Time) time.Duration {
	end := j.Finish
	if end.IsZero() {
		end = now
	}
	return end.Sub(j.Submitted)
}

// JobDetail is a job with its tasks and their attempts.
type JobDetail struct {
	JobInfo
	Tasks []jobtracker.Task `json:"tasks,omitempty"`
}

// TrackerInfo describes one TaskTracker executor.
type TrackerInfo struct {
	ID             string    `json:"id"` // executor ID
	AgentID        string    `json:"agent_id"`
	Host           string    `json:"host"`
	URL            string    `json:"url"` // shuffle and logs
	PID            int       `json:"pid,omitempty"`
	State          string    `json:"state"` // LAUNCHING, RUNNING, SHUTTING_DOWN, LOST
	MapSlots       int       `json:"map_slots"`
	ReduceSlots    int       `json:"reduce_slots"`
	RunningMaps    int       `json:"running_maps"`
	RunningReduces int       `json:"running_reduces"`
	Launched       time.Time `json:"launched"`
}

// Info describes the framework.
type Info struct {
	FrameworkID string `json:"framework_id"`
	Subscribed  bool   `json:"subscribed"`
	Incarnation int    `json:"incarnation"`
	ActiveJobs  int    `json:"active_jobs"`
	Trackers    int    `json:"trackers"`
}

// ErrorReply is the body of an error answer.
type ErrorReply struct {
	Error string `json:"error"`
	// Kind is "refused" (the job was checked and refused; Problems lists
	// why), "usage" (a bad command line), "not_found" or "internal".
	Kind     string   `json:"kind"`
	Problems []string `json:"problems,omitempty"`
}
