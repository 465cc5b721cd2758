// Package state reads the legacy JSON state endpoints that Mesos masters
// and agents serve — GET /master/state, /master/slaves and an agent's
// /state — into typed views of the fields frameworks and tools use. Field
// names are Mesos's, so the views work against Mesos as well as agora.
package state

import (
	"strconv"
	"strings"
)

// Master is GET /master/state (the parts tools read).
type Master struct {
	ID                  string      `json:"id"`
	PID                 string      `json:"pid"`
	Hostname            string      `json:"hostname"`
	Version             string      `json:"version"`
	Leader              string      `json:"leader"`
	Slaves              []Agent     `json:"slaves"`
	UnreachableSlaves   int         `json:"unreachable_slaves"`
	Frameworks          []Framework `json:"frameworks"`
	CompletedFrameworks []Framework `json:"completed_frameworks"`
}

// Agent is one element of slaves[].
type Agent struct {
	ID               string         `json:"id"`
	PID              string         `json:"pid"` // "slave(1)@ip:port"
	Hostname         string         `json:"hostname"`
	Port             int            `json:"port"`
	Active           bool           `json:"active"`
	Resources        Resources      `json:"resources"`
	UsedResources    Resources      `json:"used_resources"`
	OfferedResources Resources      `json:"offered_resources"`
	Attributes       map[string]any `json:"attributes"`
}

// Endpoint is the agent's host:port for its HTTP endpoints, taken from its
// libprocess pid, or from hostname and port when the pid has no address.
func (a Agent) Endpoint() string {
	if i := strings.LastIndex(a.PID, "@"); i >= 0 && i+1 < len(a.PID) {
		return a.PID[i+1:]
	}
	port := a.Port
	if port == 0 {
		port = 5051
	}
	return a.Hostname + ":" + strconv.Itoa(port)
}

// Framework is one element of frameworks[] or completed_frameworks[].
type Framework struct {
	ID               string    `json:"id"`
	Name             string    `json:"name"`
	User             string    `json:"user"`
	Hostname         string    `json:"hostname"`
	Role             string    `json:"role"`
	Roles            []string  `json:"roles"`
	Active           bool      `json:"active"`
	Connected        bool      `json:"connected"`
	FailoverTimeout  float64   `json:"failover_timeout"`
	UsedResources    Resources `json:"used_resources"`
	OfferedResources Resources `json:"offered_resources"`
	Tasks            []Task    `json:"tasks"`
	UnreachableTasks []Task    `json:"unreachable_tasks"`
	CompletedTasks   []Task    `json:"completed_tasks"`
}

// RoleNames are the framework's roles: roles[] if given, else role.
func (f Framework) RoleNames() []string {
	if len(f.Roles) > 0 {
		return f.Roles
	}
	if f.Role != "" {
		return []string{f.Role}
	}
	return nil
}

// Task is one element of a framework's tasks[] or completed_tasks[].
type Task struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	FrameworkID string       `json:"framework_id"`
	ExecutorID  string       `json:"executor_id"`
	SlaveID     string       `json:"slave_id"`
	State       string       `json:"state"`
	Role        string       `json:"role"`
	Resources   Resources    `json:"resources"`
	Statuses    []TaskStatus `json:"statuses"`
}

// TaskStatus is one element of a task's statuses[].
type TaskStatus struct {
	State     string  `json:"state"`
	Timestamp float64 `json:"timestamp"`
}

// Resources is the flattened form of the JSON endpoints:
// {"cpus":n,"gpus":n,"mem":n,"disk":n,"ports":"[31000-32000]"}.
type Resources struct {
	CPUs  float64 `json:"cpus"`
	GPUs  float64 `json:"gpus"`
	Mem   float64 `json:"mem"`
	Disk  float64 `json:"disk"`
	Ports string  `json:"ports,omitempty"`
}

// Slaves is GET /master/slaves.
type Slaves struct {
	Slaves []Agent `json:"slaves"`
}

// AgentState is an agent's GET /state (the parts tools read).
type AgentState struct {
	ID                  string           `json:"id"`
	PID                 string           `json:"pid"`
	Hostname            string           `json:"hostname"`
	Frameworks          []AgentFramework `json:"frameworks"`
	CompletedFrameworks []AgentFramework `json:"completed_frameworks"`
}

// AgentFramework is a framework as an agent sees it.
type AgentFramework struct {
	ID                 string     `json:"id"`
	Name               string     `json:"name"`
	Executors          []Executor `json:"executors"`
	CompletedExecutors []Executor `json:"completed_executors"`
}

// Executor is an executor on an agent; for a command task its ID is the
// task's ID.
type Executor struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Source    string `json:"source"`
	Container string `json:"container"`
	Directory string `json:"directory"` // the sandbox, on the agent's file system
}

// Sandbox finds the sandbox directory of an executor of a framework, among
// running and completed frameworks and executors.
func (s *AgentState) Sandbox(frameworkID, executorID string) (string, bool) {
	for _, fws := range [][]AgentFramework{s.Frameworks, s.CompletedFrameworks} {
		for _, f := range fws {
			if f.ID != frameworkID {
				continue
			}
			for _, es := range [][]Executor{f.Executors, f.CompletedExecutors} {
				for _, e := range es {
					if e.ID == executorID && e.Directory != "" {
						return e.Directory, true
					}
				}
			}
		}
	}
	return "", false
}
