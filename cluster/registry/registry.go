// Package registry keeps the master's durable state: which agents were
// admitted to the cluster and which are unreachable or gone, so that a
// restarted master accepts the re-registration of agents it admitted and
// refuses IDs it never knew. Backends: an embedded bbolt file (the default)
// and memory (tests); ZooKeeper comes with HA.
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
	}
	return "empty change"
}

// encoded is a change ready to store: its key and value (nil deletes).
type encoded struct {
	agent  bool // else the policy
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
			out = append(out, encoded{agent: true, key: c.Agent.ID, value: b})
		case c.DeleteAgent != "":
			out = append(out, encoded{agent: true, key: c.DeleteAgent, remove: true})
		case c.Policy != nil:
			b, err := json.Marshal(c.Policy)
			if err != nil {
				return nil, fmt.Errorf("registry: encode policy: %w", err)
			}
			out = append(out, encoded{value: b})
		default:
			return nil, fmt.Errorf("registry: a change sets none of agent, delete or policy")
		}
	}
	return out, nil
}

// Memory is an in-memory Registry for tests and for masters run without a
// work directory.
type Memory struct {
	mu     sync.Mutex
	agents map[string][]byte
	policy []byte
}

// NewMemory returns an empty in-memory registry.
func NewMemory() *Memory { return &Memory{agents: map[string][]byte{}} }

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
		case !e.agent:
			m.policy = e.value
		case e.remove:
			delete(m.agents, e.key)
		default:
			m.agents[e.key] = e.value
		}
	}
	return nil
}

func (m *Memory) Close() error { return nil }
