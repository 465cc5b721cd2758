package client

import "time"

// The REST submission protocol that spark-submit speaks in cluster mode
// (Spark's deploy/rest package): JSON messages whose "action" is the
// message's class name, under /v1/submissions. The field names are Spark's.

// ProtocolVersion is the only version of the protocol.
const ProtocolVersion = "v1"

// SparkVersion is what responses give as serverSparkVersion: the Spark the
// dispatcher launches drivers of.
const SparkVersion = "3.5.9"

// StatusUnknownProtocolVersion is the HTTP status of a request for another
// protocol version (Spark's SC_UNKNOWN_PROTOCOL_VERSION).
const StatusUnknownProtocolVersion = 468

// CreateSubmissionRequest asks for a driver to be launched.
type CreateSubmissionRequest struct {
	Action               string            `json:"action"`
	Message              string            `json:"message,omitempty"`
	ClientSparkVersion   string            `json:"clientSparkVersion"`
	AppResource          string            `json:"appResource"`
	MainClass            string            `json:"mainClass"`
	AppArgs              []string          `json:"appArgs"`
	SparkProperties      map[string]string `json:"sparkProperties"`
	EnvironmentVariables map[string]string `json:"environmentVariables"`
}

// Response is every response of the protocol: the fields a response type
// does not have are left out.
type Response struct {
	Action             string `json:"action"`
	ServerSparkVersion string `json:"serverSparkVersion"`
	Success            bool   `json:"success"`
	Message            string `json:"message,omitempty"`
	SubmissionID       string `json:"submissionId,omitempty"`
	// DriverState is a SubmissionStatusResponse's.
	DriverState string `json:"driverState,omitempty"`
	// HighestProtocolVersion is an ErrorResponse's to a request for an
	// unknown protocol version.
	HighestProtocolVersion string   `json:"highestProtocolVersion,omitempty"`
	UnknownFields          []string `json:"unknownFields,omitempty"`
}

// The response actions.
const (
	ActionCreateResponse = "CreateSubmissionResponse"
	ActionStatusResponse = "SubmissionStatusResponse"
	ActionKillResponse   = "KillSubmissionResponse"
	ActionError          = "ErrorResponse"
)

// Driver states, as Spark's DriverState names them (QUEUED as the Mesos
// dispatcher reports a driver waiting for an offer).
const (
	StateQueued      = "QUEUED"      // waiting for an offer that fits
	StateRunning     = "RUNNING"     // launched as a task
	StateRelaunching = "RELAUNCHING" // supervised, failed, waiting for its next launch
	StateFinished    = "FINISHED"    // the task finished (the application exited 0)
	StateFailed      = "FAILED"      // the task failed or was lost, not supervised
	StateKilled      = "KILLED"      // killed on request
	StateError       = "ERROR"       // the task could not be launched (TASK_ERROR)
	StateNotFound    = "NOT_FOUND"   // no such submission
)

// Terminal reports whether a driver in state s has ended for good.
func Terminal(s string) bool {
	switch s {
	case StateFinished, StateFailed, StateKilled, StateError:
		return true
	}
	return false
}

// Driver is one submission and what became of it, as the dispatcher
// keeps it (drivers/<id>.json in its work directory) and serves it at
// /drivers.
type Driver struct {
	ID        string                  `json:"submissionId"`
	Submitted time.Time               `json:"submitted"`
	Request   CreateSubmissionRequest `json:"request"`
	Name      string                  `json:"name"`      // spark.app.name
	CPUs      float64                 `json:"cpus"`      // spark.driver.cores
	MemMB     float64                 `json:"mem"`       // spark.driver.memory + overhead
	HeapMB    float64                 `json:"heap"`      // spark.driver.memory
	Supervise bool                    `json:"supervise"` // spark.driver.supervise

	State   string `json:"state"`
	Message string `json:"message,omitempty"` // the last task status, or why it ended
	// Retries counts launches after the first; the task of retry N is
	// ID-retry-N.
	Retries int    `json:"retries"`
	TaskID  string `json:"taskId,omitempty"`
	// FrameworkID is the dispatcher's framework the task belongs to.
	FrameworkID string    `json:"frameworkId,omitempty"`
	AgentID     string    `json:"agentId,omitempty"`
	Hostname    string    `json:"hostname,omitempty"`
	TaskState   string    `json:"taskState,omitempty"`
	Launched    time.Time `json:"launched,omitzero"`
	// RetryAt is when a RELAUNCHING driver may launch again; RetryWait
	// the wait that led to it (doubled for the next, up to the maximum).
	RetryAt   time.Time     `json:"retryAt,omitzero"`
	RetryWait time.Duration `json:"retryWait,omitempty"`
	// KillRequested is set by a kill of a running driver: its task is
	// killed (again after a restart) and it ends KILLED.
	KillRequested bool      `json:"killRequested,omitempty"`
	Finished      time.Time `json:"finished,omitzero"`
}
