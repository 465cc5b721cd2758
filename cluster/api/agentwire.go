package api

import (
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// The master↔agent protocol is internal to agora (Mesos uses libprocess
// messages there); frameworks never see it. It runs over HTTP, each
// message in protobuf (agentwire_proto.go; what agents send) or in JSON
// (curl, tests, agents from before protobuf), as the Content-Type says:
//
//   - An agent POSTs an AgentCall of type REGISTER to AgentPath on the master.
//     The master answers 200 with a RecordIO stream of AgentEvents that starts
//     with REGISTERED; the stream carries every master→agent message for as
//     long as the agent stays registered. A refusal is answered with
//     409 Conflict and a text body saying why (for instance an ID the master
//     does not know); the agent then forgets its ID and registers afresh.
//     The stream is protobuf when the agent's Accept names protobuf and
//     not JSON, else JSON; its Content-Type says which.
//   - Every other agent→master message is a separate POST of an AgentCall to
//     AgentPath, answered 202 Accepted.
//
// The master sends PING every --agent_ping_timeout; the agent answers with a
// PONG call. Embedded mesos-go types use their own (Mesos-dialect) JSON,
// and their own protobuf encoding.

// AgentPath is the master endpoint of the internal agent protocol.
const AgentPath = "/internal/v1/agent"

// AgentCallType names an agent→master message.
type AgentCallType string

const (
	AgentRegister       AgentCallType = "REGISTER"
	AgentStatusUpdate   AgentCallType = "STATUS_UPDATE"
	AgentPong           AgentCallType = "PONG"
	AgentExecutorMsg    AgentCallType = "EXECUTOR_MESSAGE"
	AgentExecutorExited AgentCallType = "EXECUTOR_EXITED"
)

// AgentCall is one agent→master message.
type AgentCall struct {
	Type    AgentCallType `json:"type"`
	AgentID string        `json:"agent_id,omitempty"`

	Register *RegisterAgent `json:"register,omitempty"`
	// Updates carries the STATUS_UPDATEs of a call, oldest first; an agent
	// sends every update that is due in one call.
	Updates        []*StatusUpdate  `json:"updates,omitempty"`
	Pong           *Pong            `json:"pong,omitempty"`
	Message        *ExecutorMessage `json:"message,omitempty"`
	ExecutorExited *ExecutorExited  `json:"executor_exited,omitempty"`
}

// RegisterAgent registers a new agent (Info.ID unset) or re-registers a known
// one, reporting what it still runs.
type RegisterAgent struct {
	Info       *mesos.AgentInfo       `json:"info"`
	Version    string                 `json:"version"`
	Tasks      []*mesos.Task          `json:"tasks,omitempty"`
	Executors  []*mesos.ExecutorInfo  `json:"executors,omitempty"`
	Frameworks []*mesos.FrameworkInfo `json:"frameworks,omitempty"`
	// Warnings are shown by the master in /master/state (for example
	// "isolation disabled: not running as root").
	Warnings []string `json:"warnings,omitempty"`
}

// StatusUpdate carries one task status from the agent's status update
// manager. Status.UUID is always set; the master forwards it to the
// framework and relays the framework's acknowledgement back as ACKNOWLEDGE.
type StatusUpdate struct {
	FrameworkID string            `json:"framework_id"`
	Status      *mesos.TaskStatus `json:"status"`
	// LatestState is the task's newest state on the agent, which may be ahead
	// of Status while earlier updates wait for acknowledgement (as in Mesos).
	LatestState *mesos.TaskState `json:"latest_state,omitempty"`
}

// Pong answers a PING.
type Pong struct {
	Seq uint64 `json:"seq"`
}

// ExecutorMessage carries opaque data from an executor to its framework.
type ExecutorMessage struct {
	FrameworkID string `json:"framework_id"`
	ExecutorID  string `json:"executor_id"`
	Data        []byte `json:"data"`
}

// ExecutorExited tells the master a custom executor has terminated.
type ExecutorExited struct {
	FrameworkID string `json:"framework_id"`
	ExecutorID  string `json:"executor_id"`
	Status      int32  `json:"status"`
}

// AgentEventType names a master→agent message.
type AgentEventType string

const (
	AgentRegistered        AgentEventType = "REGISTERED"
	AgentRunTask           AgentEventType = "RUN_TASK"
	AgentKillTask          AgentEventType = "KILL_TASK"
	AgentAcknowledge       AgentEventType = "ACKNOWLEDGE"
	AgentShutdownFramework AgentEventType = "SHUTDOWN_FRAMEWORK"
	AgentShutdownExecutor  AgentEventType = "SHUTDOWN_EXECUTOR"
	AgentFrameworkMessage  AgentEventType = "FRAMEWORK_MESSAGE"
	AgentPing              AgentEventType = "PING"
	AgentReconcileTasks    AgentEventType = "RECONCILE_TASKS"
)

// AgentEvent is one master→agent message on the registration stream.
type AgentEvent struct {
	Type AgentEventType `json:"type"`

	Registered        *AgentRegisteredInfo `json:"registered,omitempty"`
	RunTask           *RunTask             `json:"run_task,omitempty"`
	KillTask          *KillTask            `json:"kill_task,omitempty"`
	Acknowledge       *Acknowledge         `json:"acknowledge,omitempty"`
	ShutdownFramework *ShutdownFramework   `json:"shutdown_framework,omitempty"`
	ShutdownExecutor  *ShutdownExecutor    `json:"shutdown_executor,omitempty"`
	FrameworkMessage  *FrameworkMessage    `json:"framework_message,omitempty"`
	Ping              *Ping                `json:"ping,omitempty"`
	ReconcileTasks    *ReconcileTasks      `json:"reconcile_tasks,omitempty"`
}

// AgentRegisteredInfo confirms (re-)registration.
type AgentRegisteredInfo struct {
	AgentID string `json:"agent_id"`
	// PingInterval is how often the master will PING, in nanoseconds.
	PingIntervalNanos int64 `json:"ping_interval_nanos"`
	// MaxPingTimeouts is how many unanswered pings make the agent unreachable.
	MaxPingTimeouts int    `json:"max_ping_timeouts"`
	MasterID        string `json:"master_id"`
}

// RunTask asks the agent to launch a task (with the command executor when
// Task.Executor is unset, or on the custom executor it names).
type RunTask struct {
	Framework *mesos.FrameworkInfo `json:"framework"`
	Task      *mesos.TaskInfo      `json:"task"`
	// Group is set for LAUNCH_GROUP: all of its tasks start together on
	// Executor (the default executor).
	Group    *mesos.TaskGroupInfo `json:"group,omitempty"`
	Executor *mesos.ExecutorInfo  `json:"executor,omitempty"`
}

// KillTask asks the agent to kill a task.
type KillTask struct {
	FrameworkID string            `json:"framework_id"`
	TaskID      string            `json:"task_id"`
	KillPolicy  *mesos.KillPolicy `json:"kill_policy,omitempty"`
}

// Acknowledge relays a framework's acknowledgement of a status update.
type Acknowledge struct {
	FrameworkID string `json:"framework_id"`
	TaskID      string `json:"task_id"`
	UUID        []byte `json:"uuid"`
}

// ShutdownFramework tells the agent to kill all of a framework's tasks and
// executors (framework removed).
type ShutdownFramework struct {
	FrameworkID string `json:"framework_id"`
}

// ShutdownExecutor tells the agent to shut one executor down.
type ShutdownExecutor struct {
	FrameworkID string `json:"framework_id"`
	ExecutorID  string `json:"executor_id"`
}

// FrameworkMessage carries opaque data from a scheduler to an executor.
type FrameworkMessage struct {
	FrameworkID string `json:"framework_id"`
	ExecutorID  string `json:"executor_id"`
	Data        []byte `json:"data"`
}

// Ping checks the agent is alive; it answers with a PONG call carrying Seq.
type Ping struct {
	Seq uint64 `json:"seq"`
}

// ReconcileTasks asks the agent to resend the latest state of these tasks of
// a framework (those it does not know are answered by the master).
type ReconcileTasks struct {
	FrameworkID string   `json:"framework_id"`
	TaskIDs     []string `json:"task_ids"`
}
