package master

import (
	"sort"
	"time"

	"github.com/agora-cluster/agora/cluster/registry"
)

// The registry keeps unreachable and gone agents so that one coming back
// is recognised (or refused). Without a bound the list only grows, so,
// like Mesos (--registry_max_agent_age, --registry_max_agent_count), the
// master forgets those older than RegistryMaxAgentAge and, beyond
// RegistryMaxAgentCount of them, the oldest. A forgotten agent that comes
// back is told to register afresh.

// gcRegistry removes unreachable and gone agents past the bounds; the
// housekeeping tick calls it.
func (m *Master) gcRegistry(now time.Time) {
	if now.Sub(m.lastRegistryGC) < m.cfg.RegistryGCInterval {
		return
	}
	m.lastRegistryGC = now
	m.gcFrameworkRecords(now) // framework_registry.go
	type old struct {
		id    string
		since time.Time
	}
	var olds []old
	for id, r := range m.admitted {
		if r.State == registry.AgentUnreachable || r.State == registry.AgentGone {
			olds = append(olds, old{id, r.Since})
		}
	}
	sort.Slice(olds, func(i, j int) bool { return olds[i].since.Before(olds[j].since) })
	excess := len(olds) - m.cfg.RegistryMaxAgentCount
	for i, o := range olds {
		if !(now.Sub(o.since) > m.cfg.RegistryMaxAgentAge || i < excess) {
			continue
		}
		id := o.id
		if m.laneBusy(agentLane(id)) {
			continue
		}
		m.inLane(agentLane(id), func() {
			r, ok := m.admitted[id]
			if !ok || (r.State != registry.AgentUnreachable && r.State != registry.AgentGone) {
				return
			}
			m.commit(agentLane(id), []registry.Change{{DeleteAgent: id}}, func(err error) {
				if err != nil {
					return // tried again at the next collection
				}
				if cur, ok := m.admitted[id]; ok && cur.State == r.State {
					delete(m.admitted, id)
				}
				m.counters.registryAgentsCollected++
				m.log.Info("forgot an agent the registry kept too long", "agent_id", id, "state", r.State, "since", r.Since)
			})
		})
	}
}
