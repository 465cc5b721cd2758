package master

import (
	"fmt"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// allocate runs one allocator cycle and sends the resulting offers.
func (m *Master) allocate() {
	if m.cfg.Leading != nil && !m.cfg.Leading() {
		return // fenced: another master may lead by now
	}
	start := time.Now()
	decisions := m.alloc.Allocate(m.now())
	elapsed := time.Since(start)
	m.counters.allocationRuns++
	m.counters.allocationNanos += uint64(elapsed)
	m.counters.lastAllocationNanos = uint64(elapsed)
	m.timers.allocation.observe(elapsed)
	if len(decisions) == 0 {
		return
	}
	now := m.now()
	byFramework := map[*framework][]mesos.Offer{}
	for _, d := range decisions {
		f := m.frameworks[d.FrameworkID]
		a := m.agents[d.AgentID]
		if f == nil || a == nil || f.conn == nil || a.unreachable {
			// Should not happen (the allocator knows who is active), but
			// never lose resources: hand them straight back.
			m.alloc.Recover(d.FrameworkID, d.AgentID, d.Resources, 0, now)
			continue
		}
		o := &offer{id: m.newID("O"), fw: f, agent: a, role: d.Role, resources: d.Resources, created: now}
		if u := d.Unavailability; u != nil {
			o.unavailability = &mesos.Unavailability{Start: mesos.TimeInfo{Nanoseconds: u.Start.UnixNano()}}
			if u.Duration > 0 {
				o.unavailability.Duration = &mesos.DurationInfo{Nanoseconds: int64(u.Duration)}
			}
		}
		m.offers[o.id] = o
		f.offers[o.id] = o
		a.offers[o.id] = o
		byFramework[f] = append(byFramework[f], m.offerMessage(o))
	}
	for f, offers := range byFramework {
		m.counters.offersSent += uint64(len(offers))
		m.sendEvent(f, &scheduler.Event{Type: scheduler.Event_OFFERS, Offers: &scheduler.Event_Offers{Offers: offers}})
	}
}

// offerMessage renders an offer in the format the framework's capabilities
// ask for.
func (m *Master) offerMessage(o *offer) mesos.Offer {
	res := o.resources
	if !o.fw.multiRole {
		res = stripAllocationInfo(res)
	}
	if !refines(o.fw) {
		res = toPreRefinement(res)
	}
	msg := mesos.Offer{
		ID:          mesos.OfferID{Value: o.id},
		FrameworkID: mesos.FrameworkID{Value: o.fw.id},
		AgentID:     mesos.AgentID{Value: o.agent.id},
		Hostname:    o.agent.info.Hostname,
		Resources:   res,
		Attributes:  o.agent.info.Attributes,
		URL: &mesos.URL{
			Scheme:  "http",
			Address: mesos.Address{Hostname: &o.agent.info.Hostname, IP: strPtr(agentIP(o.agent)), Port: o.agent.info.GetPort()},
			Path:    strPtr("/slave(1)"),
		},
	}
	if o.fw.multiRole {
		msg.AllocationInfo = &mesos.Resource_AllocationInfo{Role: strPtr(o.role)}
	}
	msg.Unavailability = o.unavailability
	for key, e := range o.agent.executors {
		if len(key) > len(o.fw.id) && key[:len(o.fw.id)+1] == o.fw.id+"/" {
			msg.ExecutorIDs = append(msg.ExecutorIDs, e.ExecutorID)
		}
	}
	return msg
}

func stripAllocationInfo(rs mesos.Resources) mesos.Resources {
	out := make(mesos.Resources, len(rs))
	for i := range rs {
		out[i] = rs[i]
		out[i].AllocationInfo = nil
	}
	return out
}

// withAllocationInfo sets allocation_info.role on resources that lack it
// (what Mesos does for frameworks without MULTI_ROLE).
func withAllocationInfo(rs []mesos.Resource, role string) mesos.Resources {
	out := make(mesos.Resources, len(rs))
	for i := range rs {
		out[i] = rs[i]
		if out[i].AllocationInfo == nil {
			out[i].AllocationInfo = &mesos.Resource_AllocationInfo{Role: strPtr(role)}
		}
	}
	return out
}

// allocated reports whether every resource of rs already names the role
// it is allocated to (what withAllocationInfo would add to none of them).
func allocated(rs []mesos.Resource) bool {
	for i := range rs {
		if rs[i].AllocationInfo == nil {
			return false
		}
	}
	return true
}

// removeOffer forgets an offer without recovering its resources.
func (m *Master) removeOffer(o *offer) {
	delete(m.offers, o.id)
	delete(o.fw.offers, o.id)
	delete(o.agent.offers, o.id)
}

// rescindOffer withdraws an outstanding offer and recovers its resources.
func (m *Master) rescindOffer(o *offer, refuse time.Duration) {
	m.removeOffer(o)
	m.alloc.Recover(o.fw.id, o.agent.id, o.resources, refuse, m.now())
	m.counters.offersRescinded++
	m.sendEvent(o.fw, &scheduler.Event{Type: scheduler.Event_RESCIND, Rescind: &scheduler.Event_Rescind{OfferID: mesos.OfferID{Value: o.id}}})
	m.requestAllocation()
}

func (m *Master) rescindFrameworkOffers(f *framework) {
	for _, o := range f.offers {
		m.rescindOffer(o, 0)
	}
}

// refuseDuration reads filters.refuse_seconds (default 5 s, capped at a year).
func refuseDuration(f *mesos.Filters) time.Duration {
	secs := 5.0
	if f != nil && f.RefuseSeconds != nil {
		secs = *f.RefuseSeconds
	}
	if secs < 0 {
		secs = 0
	}
	if secs > 365*24*3600 {
		secs = 365 * 24 * 3600
	}
	return time.Duration(secs * float64(time.Second))
}

// decline returns offers with a filter. Unknown offers are ignored, as in
// Mesos (the offer may have been rescinded meanwhile).
func (m *Master) decline(f *framework, ids []mesos.OfferID, filters *mesos.Filters) {
	refuse := refuseDuration(filters)
	for _, id := range ids {
		o := f.offers[id.Value]
		if o == nil {
			continue
		}
		m.removeOffer(o)
		m.counters.offersDeclined++
		m.alloc.Recover(f.id, o.agent.id, o.resources, refuse, m.now())
	}
	m.requestAllocation()
}

// offerError explains why the offers of an ACCEPT are unusable.
func (m *Master) validateOffers(f *framework, ids []mesos.OfferID) ([]*offer, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("no offer IDs given")
	}
	seen := map[string]bool{}
	var offers []*offer
	var agentID string
	for _, id := range ids {
		if seen[id.Value] {
			return nil, fmt.Errorf("offer %s appears more than once", id.Value)
		}
		seen[id.Value] = true
		o := m.offers[id.Value]
		if o == nil {
			return nil, fmt.Errorf("offer %s is no longer valid (unknown, already used, declined or rescinded)", id.Value)
		}
		if o.fw != f {
			return nil, fmt.Errorf("offer %s belongs to another framework", id.Value)
		}
		if agentID != "" && o.agent.id != agentID {
			return nil, fmt.Errorf("offers %s span several agents; an ACCEPT may only combine offers of one agent", id.Value)
		}
		agentID = o.agent.id
		offers = append(offers, o)
	}
	return offers, nil
}
