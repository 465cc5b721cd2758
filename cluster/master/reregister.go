package master

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/agora-cluster/agora/cluster/registry"
	"github.com/agora-cluster/agora/frameworks/executor"
)

// After a restart or a failover the master knows the agents it admitted
// only from the registry. It gives them AgentReregisterTimeout to
// re-register (Mesos's --agent_reregister_timeout, 10 minutes); those
// that do not are marked unreachable in the registry — so their tasks
// are reported TASK_UNREACHABLE or TASK_LOST to frameworks that
// reconcile, and they may still come back — at most AgentRemovalRate of
// them at a time (--agent_removal_rate_limit), so that a master cut off
// from much of the cluster does not declare it all gone at once.

// RemovalRate is "N agents per Per" (Mesos's --agent_removal_rate_limit,
// written "N/DURATION", e.g. "1/20mins"). The zero value is no limit.
type RemovalRate struct {
	N   int
	Per time.Duration
}

// ParseRemovalRate reads Mesos's "N/DURATION" form.
func ParseRemovalRate(s string) (RemovalRate, error) {
	if s == "" {
		return RemovalRate{}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	count, err := strconv.Atoi(n)
	if !ok || err != nil || count <= 0 {
		return RemovalRate{}, fmt.Errorf("agent removal rate %q: want N/DURATION, e.g. 1/20mins, with N a positive number", s)
	}
	d, err := executor.ParseDuration(per)
	if err != nil || d <= 0 {
		return RemovalRate{}, fmt.Errorf("agent removal rate %q: %q is not a positive duration (e.g. 20mins)", s, per)
	}
	return RemovalRate{N: count, Per: d}, nil
}

// expireRecoveredAgents marks unreachable the recovered agents that have
// not re-registered in time; the housekeeping tick calls it.
func (m *Master) expireRecoveredAgents(now time.Time) {
	if len(m.awaiting) == 0 || now.Sub(m.start) < m.cfg.AgentReregisterTimeout {
		return
	}
	for id := range m.awaiting {
		rec, ok := m.admitted[id]
		if !ok || rec.State != registry.AgentAdmitted {
			delete(m.awaiting, id) // re-registered, or moved on
			continue
		}
		if m.laneBusy(agentLane(id)) {
			continue
		}
		if !m.takeRemovalToken(now) {
			return
		}
		m.inLane(agentLane(id), func() {
			rec, ok := m.admitted[id]
			if !ok || rec.State != registry.AgentAdmitted {
				return
			}
			next := rec
			next.State, next.Since = registry.AgentUnreachable, now
			m.commit(agentLane(id), []registry.Change{{Agent: &next}}, func(err error) {
				if err != nil {
					return // still awaited: tried again at a later tick
				}
				if cur, ok := m.admitted[id]; ok && cur.State == registry.AgentAdmitted {
					m.admitted[id] = next
				}
				delete(m.awaiting, id)
				m.counters.recoveredAgentsUnreachable++
				m.log.Warn("agent did not re-register after the master recovered; marked unreachable",
					"agent_id", id, "agent_reregister_timeout", m.cfg.AgentReregisterTimeout)
			})
		})
	}
}

// takeRemovalToken reports whether one more agent may be marked now under
// AgentRemovalRate: N per Per, spaced Per/N apart as Mesos spaces them.
func (m *Master) takeRemovalToken(now time.Time) bool {
	r := m.cfg.AgentRemovalRate
	if r.N <= 0 {
		return true
	}
	if now.Before(m.nextRemoval) {
		return false
	}
	m.nextRemoval = now.Add(r.Per / time.Duration(r.N))
	return true
}
