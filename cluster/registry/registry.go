// Package registry keeps the master's durable state: which agents were
// admitted to the cluster and which are unreachable or gone, so that a
// restarted master accepts the re-registration of agents it admitted and
// refuses IDs it never knew; which frameworks it handed an ID to and which
// of them were torn down, so that a torn-down framework stays torn down and
// one that never comes back is removed after its failover timeout; and the
// sharing policy. Backends: an embedded bbolt file (the default), ZooKeeper
// (masters that elect a leader) and memory (tests).
package registry

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// AgentState is an agent's standing in the registry.
type AgentState string

const (
	AgentAdmitted    AgentState = "admitted"
	AgentUnreachable AgentState = "unreachable"
	AgentGone        AgentState = "gone"
)

// AgentRecord is one agent's durable entry.
type AgentRecord struct {
	ID    string           `json:"id"`
	State AgentState       `json:"state"`
	Info  *mesos.AgentInfo `json:"info"`
	// Since is when State was entered.
	Since time.Time `json:"since"`
	// Principal is the principal the agent authenticated as when it was
	// admitted (with --authenticate_agents): a master that takes over
	// re-admits the agent's ID for that principal alone. Records written
	// before it existed have none (the field is absent), and their agent
	// is re-admitted for the principal of the agent the record describes
	// (its hostname and port, from the IP in PID or an address of its
	// hostname), which is then recorded.
	Principal string `json:"principal,omitempty"`
	// PID is the agent's address as the master saw it, "slave(1)@IP:PORT"
	// (the IP its connection came from, the port it serves on), written
	// at admission and with every later record of the agent. A record
	// without a principal is re-admitted for an authenticated agent from
	// that IP, or from an address its recorded hostname resolves to
	// (master/authz.go). Records written before it existed have none (the
	// field is absent).
	PID string `json:"pid,omitempty"`
}

// FrameworkState is a framework's standing in the registry.
type FrameworkState string

const (
	// FrameworkActive: the master handed the framework its ID (or took
	// it back at a re-subscription) and has not torn it down.
	FrameworkActive FrameworkState = "active"
	// FrameworkCompleted: torn down (TEARDOWN, or its failover timeout
	// ran out); its ID is refused from then on.
	FrameworkCompleted FrameworkState = "completed"
)

// FrameworkRecord is one framework's durable entry: its FrameworkInfo as
// last subscribed or updated (name, roles, principal, checkpoint,
// failover_timeout, capabilities, ...) and its state.
type FrameworkRecord struct {
	ID    string               `json:"id"`
	State FrameworkState       `json:"state"`
	Info  *mesos.FrameworkInfo `json:"info"`
	// Since is when State was entered.
	Since time.Time `json:"since"`
}

// Quota is a role's durable quota: scalar guarantees and limits by name.
type Quota struct {
	Guarantee map[string]float64 `json:"guarantee,omitempty"`
	Limit     map[string]float64 `json:"limit,omitempty"`
}

// Policy is the operator's sharing policy: role weights and quotas, and
// the maintenance schedule, as set through the operator API.
type Policy struct {
	Weights map[string]float64 `json:"weights,omitempty"`
	Quotas  map[string]Quota   `json:"quotas,omitempty"`
	// Maintenance is the schedule as the operator API's JSON.
	Maintenance json.RawMessage `json:"maintenance,omitempty"`
	// Down lists machines (hostname/ip) in maintenance, down.
	Down []string `json:"down,omitempty"`
}

// Registry is the master's durable store. Every method is synchronous: when
// it returns nil the change is durable.
type Registry interface {
	PutAgent(rec AgentRecord) error
	DeleteAgent(id string) error
	Agents() ([]AgentRecord, error)
	// Frameworks lists the frameworks' records, active and completed.
	Frameworks() ([]FrameworkRecord, error)
	PutPolicy(p Policy) error
	Policy() (Policy, error)
	// Apply makes changes durable together, in order: all of them or,
	// with an error, none. A Registrar batches the master's writes
	// through it, so that many changes cost one commit (one fsync for
	// bbolt, one multi-op for ZooKeeper).
	Apply(changes []Change) error
	Close() error
}

// Change is one write of a batch: exactly one of its fields is set.
type Change struct {
	// Agent stores an agent's record.
	Agent *AgentRecord
	// DeleteAgent removes an agent's record.
	DeleteAgent string
	// Policy stores the sharing policy.
	Policy *Policy
	// Framework stores a framework's record.
	Framework *FrameworkRecord
	// DeleteFramework removes a framework's record.
	DeleteFramework string
}

// String names what the change writes, for errors.
func (c Change) String() string {
	switch {
	case c.Agent != nil:
		return fmt.Sprintf("agent %s (%s)", c.Agent.ID, c.Agent.State)
	case c.DeleteAgent != "":
		return "deletion of agent " + c.DeleteAgent
	case c.Policy != nil:
		return "policy"
	case c.Framework != nil:
		return fmt.Sprintf("framework %s (%s)", c.Framework.ID, c.Framework.State)
	case c.DeleteFramework != "":
		return "deletion of framework " + c.DeleteFramework
	}
	return "empty change"
}

// kind is what an encoded change stores.
type kind int

const (
	kindPolicy kind = iota
	kindAgent
	kindFramework
)

// encoded is a change ready to store: its key and value (nil deletes).
type encoded struct {
	kind   kind
	key    string
	value  []byte
	remove bool
}

func encode(changes []Change) ([]encoded, error) {
	out := make([]encoded, 0, len(changes))
	for _, c := range changes {
		switch {
		case c.Agent != nil:
			b, err := json.Marshal(c.Agent)
			if err != nil {
				return nil, fmt.Errorf("registry: encode agent %s: %w", c.Agent.ID, err)
			}
			out = append(out, encoded{kind: kindAgent, key: c.Agent.ID, value: b})
		case c.DeleteAgent != "":
			out = append(out, encoded{kind: kindAgent, key: c.DeleteAgent, remove: true})
		case c.Framework != nil:
			if c.Framework.ID == "" {
				return nil, fmt.Errorf("registry: a framework record without an ID")
			}
			b, err := json.Marshal(c.Framework)
			if err != nil {
				return nil, fmt.Errorf("registry: encode framework %s: %w", c.Framework.ID, err)
			}
			out = append(out, encoded{kind: kindFramework, key: c.Framework.ID, value: b})
		case c.DeleteFramework != "":
			out = append(out, encoded{kind: kindFramework, key: c.DeleteFramework, remove: true})
		case c.Policy != nil:
			b, err := json.Marshal(c.Policy)
			if err != nil {
				return nil, fmt.Errorf("registry: encode policy: %w", err)
			}
			out = append(out, encoded{value: b})
		default:
			return nil, fmt.Errorf("registry: a change sets none of agent, framework, delete or policy")
		}
	}
	return out, nil
}

func decodeFramework(id string, b []byte) (FrameworkRecord, error) {
	var rec FrameworkRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("registry: decode framework %s: %w", id, err)
	}
	return rec, nil
}

// Memory is an in-memory Registry for tests and for masters run without a
// work directory.
type Memory struct {
	mu         sync.Mutex
	agents     map[string][]byte
	frameworks map[string][]byte
	policy     []byte
}

// NewMemory returns an empty in-memory registry.
func NewMemory() *Memory {
	return &Memory{agents: map[string][]byte{}, frameworks: map[string][]byte{}}
}

func (m *Memory) PutAgent(rec AgentRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("registry: encode agent %s: %w", rec.ID, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.agents[rec.ID] = b
	return nil
}

func (m *Memory) DeleteAgent(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.agents, id)
	return nil
}

func (m *Memory) Agents() ([]AgentRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []AgentRecord
	for id, b := range m.agents {
		var rec AgentRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("registry: decode agent %s: %w", id, err)
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *Memory) Frameworks() ([]FrameworkRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []FrameworkRecord
	for id, b := range m.frameworks {
		rec, err := decodeFramework(id, b)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *Memory) PutPolicy(p Policy) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("registry: encode policy: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.policy = b
	return nil
}

func (m *Memory) Policy() (Policy, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var p Policy
	if m.policy == nil {
		return p, nil
	}
	if err := json.Unmarshal(m.policy, &p); err != nil {
		return p, fmt.Errorf("registry: decode policy: %w", err)
	}
	return p, nil
}

func (m *Memory) Apply(changes []Change) error {
	enc, err := encode(changes)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range enc {
		switch {
		case e.kind == kindPolicy:
			m.policy = e.value
		case e.remove && e.kind == kindAgent:
			delete(m.agents, e.key)
		case e.kind == kindAgent:
			m.agents[e.key] = e.value
		case e.remove:
			delete(m.frameworks, e.key)
		default:
			m.frameworks[e.key] = e.value
		}
	}
	return nil
}

func (m *Memory) Close() error { return nil }
