package plan

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/frameworks/offers"
)

// Reason is why an offer was not used for an app: Marathon's
// NoOfferMatchReason names, which /v2/queue reports.
type Reason string

// The reasons, in the order Marathon's funnel checks them.
const (
	UnfulfilledRole                 Reason = "UnfulfilledRole"
	UnfulfilledConstraint           Reason = "UnfulfilledConstraint"
	NoCorrespondingReservationFound Reason = "NoCorrespondingReservationFound"
	AgentMaintenance                Reason = "AgentMaintenance"
	InsufficientCpus                Reason = "InsufficientCpus"
	InsufficientMemory              Reason = "InsufficientMemory"
	InsufficientDisk                Reason = "InsufficientDisk"
	InsufficientGpus                Reason = "InsufficientGpus"
	InsufficientPorts               Reason = "InsufficientPorts"
	DeclinedScarceResources         Reason = "DeclinedScarceResources"
)

// Reasons lists every reason in funnel order.
var Reasons = []Reason{UnfulfilledRole, UnfulfilledConstraint, NoCorrespondingReservationFound, AgentMaintenance,
	InsufficientCpus, InsufficientMemory, InsufficientDisk, InsufficientGpus, InsufficientPorts, DeclinedScarceResources}

// Decline is why one offer was not used: the reasons (funnel order) and a
// sentence per reason for people.
type Decline struct {
	Reasons []Reason `json:"reason"`
	Details []string `json:"details"`
}

// First is the first reason in funnel order, the one Marathon's summary
// counts the offer under.
func (d Decline) First() Reason {
	if len(d.Reasons) == 0 {
		return ""
	}
	return d.Reasons[0]
}

// Fit is one instance placed on an offer: the resources to launch it with
// and the host ports it was given, in the order of the app's ports.
type Fit struct {
	Resources []mesos.Resource
	Ports     []uint64
}

// AgentOf is what constraints see of an offer's agent.
func AgentOf(o *mesos.Offer) Agent {
	a := Agent{ID: o.AgentID.Value, Host: o.Hostname, Attrs: map[string]string{}}
	if d := o.Domain; d != nil && d.FaultDomain != nil {
		a.Region = d.FaultDomain.Region.Name
		a.Zone = d.FaultDomain.Zone.Name
	}
	for _, at := range o.Attributes {
		a.Attrs[at.Name] = attributeText(at)
	}
	return a
}

// attributeText is an attribute's value as constraints compare it.
func attributeText(at mesos.Attribute) string {
	switch at.GetType() {
	case mesos.SCALAR:
		return strconv.FormatFloat(at.GetScalar().GetValue(), 'f', -1, 64)
	case mesos.RANGES:
		var parts []string
		for _, r := range at.GetRanges().GetRange() {
			parts = append(parts, fmt.Sprintf("%d-%d", r.Begin, r.End))
		}
		return "[" + strings.Join(parts, ",") + "]"
	case mesos.SET:
		return "{" + strings.Join(at.GetSet().GetItem(), ",") + "}"
	}
	return at.GetText().GetValue()
}

// Match decides whether one more instance of app fits what is left of an
// offer (pool), given the agents of the app's active instances (placed).
// It takes the resources from the pool when it does; otherwise it leaves
// the pool alone and says why not, with every reason that applies.
func Match(app *App, cons []Constraint, pool *offers.Pool, placed []Agent) (*Fit, *Decline) {
	d := &Decline{}
	no := func(r Reason, format string, args ...any) {
		if !slices.Contains(d.Reasons, r) {
			d.Reasons = append(d.Reasons, r)
		}
		d.Details = append(d.Details, fmt.Sprintf(format, args...))
	}
	o := pool.Offer()
	role := ""
	if len(app.AcceptedResourceRoles) > 0 {
		roles := offers.Roles(o.Resources)
		ok := false
		for _, r := range app.AcceptedResourceRoles {
			if slices.Contains(roles, r) || (r == "*" && slices.Contains(roles, "")) {
				ok, role = true, r
				break
			}
		}
		if !ok {
			no(UnfulfilledRole, "the offer has none of the roles %v", app.AcceptedResourceRoles)
		}
		if role == "*" && slices.Contains(roles, "") {
			role = ""
		}
	}
	agent := AgentOf(o)
	for _, k := range cons {
		if ok, why := k.Allows(agent, placed); !ok {
			no(UnfulfilledConstraint, "%s", why)
		}
	}
	need := offers.Need{CPUs: app.CPUs, Mem: app.Mem, Disk: app.Disk, Ports: app.PortCount(), Role: role}
	have := pool.Sum(role)
	for _, s := range []struct {
		r          Reason
		name       string
		want, have float64
	}{
		{InsufficientCpus, "cpus", need.CPUs, have["cpus"]},
		{InsufficientMemory, "mem", need.Mem, have["mem"]},
		{InsufficientDisk, "disk", need.Disk, have["disk"]},
	} {
		if s.want > s.have+1e-6 {
			no(s.r, "%s: want %g, have %g", s.name, s.want, s.have)
		}
	}
	if need.Ports > 0 {
		if n := freePorts(pool.Free(), role); n < need.Ports {
			no(InsufficientPorts, "ports: want %d, have %d", need.Ports, n)
		}
	}
	if len(d.Reasons) > 0 {
		slices.SortStableFunc(d.Reasons, func(a, b Reason) int { return slices.Index(Reasons, a) - slices.Index(Reasons, b) })
		return nil, d
	}
	rs, ok := pool.Take(need)
	if !ok {
		// The sums fit, but no single role holds all of it.
		no(InsufficientCpus, "%s", pool.Shortfall(need))
		return nil, d
	}
	return &Fit{Resources: rs, Ports: portsOf(rs)}, nil
}

// freePorts counts the ports left for role.
func freePorts(rs []mesos.Resource, role string) int {
	n := 0
	for _, r := range rs {
		if r.Name != "ports" || r.GetType() != mesos.RANGES || r.IsRevocable() {
			continue
		}
		if role != "" && r.AllocationInfo != nil && r.AllocationInfo.GetRole() != role {
			continue
		}
		for _, rg := range r.GetRanges().GetRange() {
			n += int(rg.End - rg.Begin + 1)
		}
	}
	return n
}

// portsOf lists the ports of taken resources in order.
func portsOf(rs []mesos.Resource) []uint64 {
	var out []uint64
	for _, r := range rs {
		if r.Name != "ports" {
			continue
		}
		for _, rg := range r.GetRanges().GetRange() {
			for p := rg.Begin; p <= rg.End; p++ {
				out = append(out, p)
			}
		}
	}
	return out
}

// Constraints parses an app's constraints, which Validate has checked.
func (a *App) ParsedConstraints() []Constraint {
	out := make([]Constraint, 0, len(a.Constraints))
	for _, c := range a.Constraints {
		if k, err := ParseConstraint(c); err == nil {
			out = append(out, k)
		}
	}
	return out
}
