package allocator

import (
	"slices"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Maintenance, as in Mesos's maintenance primitives. An agent with
// scheduled unavailability is draining: its resources are still offered
// (Offer.Unavailability tells the master what to put in the offer) and the
// frameworks holding resources on it are due inverse offers. An agent whose
// machine is down gets no offers at all until it is brought up; what it
// holds stays allocated until the master recovers or removes it.

// Unavailability is a maintenance window. Duration 0 means open-ended.
type Unavailability struct {
	Start    time.Time
	Duration time.Duration
}

// SetAgentUnavailability schedules maintenance on an agent (replacing any
// earlier window).
func (a *Allocator) SetAgentUnavailability(agentID string, start time.Time, duration time.Duration) {
	if ag := a.agents[agentID]; ag != nil {
		ag.unavail = &Unavailability{Start: start, Duration: max(0, duration)}
	}
}

// ClearAgentUnavailability cancels an agent's scheduled maintenance.
func (a *Allocator) ClearAgentUnavailability(agentID string) {
	if ag := a.agents[agentID]; ag != nil {
		ag.unavail = nil
	}
}

// AgentUnavailability returns an agent's scheduled maintenance, if any.
func (a *Allocator) AgentUnavailability(agentID string) (Unavailability, bool) {
	if ag := a.agents[agentID]; ag != nil && ag.unavail != nil {
		return *ag.unavail, true
	}
	return Unavailability{}, false
}

// SetAgentDown marks an agent's machine down (/machine/down: no offers)
// or up again (/machine/up).
func (a *Allocator) SetAgentDown(agentID string, down bool) {
	ag := a.agents[agentID]
	if ag == nil || ag.down == down {
		return
	}
	ag.down = down
	ag.version++
	if !down {
		a.epoch++
	}
}

// InverseOffer asks a framework to give back what it holds on an agent
// scheduled for maintenance.
type InverseOffer struct {
	FrameworkID    string
	AgentID        string
	Unavailability Unavailability
	Resources      mesos.Resources // what the framework holds there, by allocation role
}

// InverseOffers lists, for every agent with scheduled maintenance, the
// frameworks holding resources on it, sorted by agent then framework.
func (a *Allocator) InverseOffers() []InverseOffer {
	var out []InverseOffer
	for _, ag := range a.agentList {
		if ag.unavail == nil {
			continue
		}
		held := map[string]mesos.Resources{}
		for _, e := range ag.allocs {
			held[e.frameworkID] = append(held[e.frameworkID], render(&e.v, &ag.pools[e.pool].kind, e.role)...)
		}
		for _, fw := range sortedKeys(held) {
			out = append(out, InverseOffer{FrameworkID: fw, AgentID: ag.id, Unavailability: *ag.unavail, Resources: held[fw]})
		}
	}
	slices.SortFunc(out, func(x, y InverseOffer) int {
		if c := cmpString(x.AgentID, y.AgentID); c != 0 {
			return c
		}
		return cmpString(x.FrameworkID, y.FrameworkID)
	})
	return out
}
