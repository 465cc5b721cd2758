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
	Close() error
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

func (m *Memory) Close() error { return nil }
