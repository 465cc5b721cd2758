package plan

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/frameworks/offers"
)

// Constraint is one attribute an agent must have: a text attribute equal
// to Value, or a scalar one equal to it as a number.
type Constraint struct {
	Attribute, Value string
}

func (c Constraint) String() string { return c.Attribute + ":" + c.Value }

// ParseConstraints reads "attr:value;attr2:value2" (commas separate too).
func ParseConstraints(v string) ([]Constraint, error) {
	var out []Constraint
	for _, part := range strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == ',' }) {
		part = strings.TrimSpace(part)
		a, val, ok := strings.Cut(part, ":")
		a, val = strings.TrimSpace(a), strings.TrimSpace(val)
		if !ok || a == "" || val == "" {
			return nil, fmt.Errorf("constraint %q is not of the form attribute:value", part)
		}
		out = append(out, Constraint{a, val})
	}
	return out, nil
}

// Allows says whether a supervisor may run on o's agent: its host is
// allowed and every constraint holds; if not, the reason.
func (s Settings) Allows(o *mesos.Offer) (bool, string) {
	if slices.Contains(s.Forbidden, o.Hostname) {
		return false, "host " + o.Hostname + " is in " + KeyDisallowedHosts
	}
	if len(s.Allowed) > 0 && !slices.Contains(s.Allowed, o.Hostname) {
		return false, "host " + o.Hostname + " is not in " + KeyAllowedHosts
	}
	for _, c := range s.Constraints {
		if !hasAttribute(o.Attributes, c) {
			return false, "agent does not have " + c.String()
		}
	}
	return true, ""
}

func hasAttribute(attrs []mesos.Attribute, c Constraint) bool {
	for _, a := range attrs {
		if a.Name != c.Attribute {
			continue
		}
		switch a.GetType() {
		case mesos.TEXT:
			if a.GetText().GetValue() == c.Value {
				return true
			}
		case mesos.SCALAR:
			if f, err := strconv.ParseFloat(c.Value, 64); err == nil && a.GetScalar().GetValue() == f {
				return true
			}
		case mesos.SET:
			if slices.Contains(a.GetSet().GetItem(), c.Value) {
				return true
			}
		case mesos.RANGES:
			if n, err := strconv.ParseUint(c.Value, 10, 64); err == nil {
				for _, r := range a.GetRanges().GetRange() {
					if n >= r.Begin && n <= r.End {
						return true
					}
				}
			}
		}
	}
	return false
}

// Supervisor is a supervisor sized for an offer.
type Supervisor struct {
	AgentID string `json:"agent_id"`
	Host    string `json:"host"`
	// Port is its supervisor.thrift.port; SlotPorts its supervisor.slots.ports.
	Port      uint64   `json:"port"`
	SlotPorts []uint64 `json:"slot_ports"`
	CPUs      float64  `json:"cpus"`
	Mem       float64  `json:"mem"`
}

// Slots is how many workers it runs.
func (s Supervisor) Slots() int { return len(s.SlotPorts) }

// Size fits a supervisor of at most want slots into o: its own cpus and
// memory (mesos.executor.*) plus each slot's (mesos.worker.*), a port for
// its Thrift server and one per slot, all from one role. It returns the
// supervisor and the resources of its task, or why none fits.
func (s Settings) Size(o *mesos.Offer, want int) (Supervisor, []mesos.Resource, string) {
	if want < 1 {
		return Supervisor{}, nil, "no slots wanted"
	}
	if ok, why := s.Allows(o); !ok {
		return Supervisor{}, nil, why
	}
	pool := offers.NewPool(o)
	var best int
	var bestRole string
	for _, role := range offers.Roles(o.Resources) {
		have := pool.Sum(role)
		n := min(want,
			slotsFor(have["cpus"]-s.ExecutorCPU, s.WorkerCPU),
			slotsFor(have["mem"]-s.ExecutorMem, s.WorkerMem),
			portsIn(o, role)-1)
		if n > best {
			best, bestRole = n, role
		}
	}
	if best < 1 {
		return Supervisor{}, nil, fmt.Sprintf("does not hold a supervisor with one slot (%s)",
			pool.Shortfall(s.need(1, "")))
	}
	need := s.need(best, bestRole)
	res, ok := pool.Take(need)
	if !ok {
		return Supervisor{}, nil, pool.Shortfall(need)
	}
	ports := portsOf(res)
	return Supervisor{
		AgentID: o.AgentID.Value, Host: o.Hostname,
		Port: ports[0], SlotPorts: ports[1:], CPUs: need.CPUs, Mem: need.Mem,
	}, res, ""
}

func (s Settings) need(slots int, role string) offers.Need {
	return offers.Need{
		CPUs:  round(s.ExecutorCPU + float64(slots)*s.WorkerCPU),
		Mem:   round(s.ExecutorMem + float64(slots)*s.WorkerMem),
		Ports: slots + 1, Role: role,
	}
}

// SizeNimbus takes a Nimbus's cpus, memory and one port from o.
func (s Settings) SizeNimbus(o *mesos.Offer) (port uint64, res []mesos.Resource, why string) {
	pool := offers.NewPool(o)
	need := offers.Need{CPUs: s.NimbusCPU, Mem: s.NimbusMem, Ports: 1}
	res, ok := pool.Take(need)
	if !ok {
		return 0, nil, pool.Shortfall(need)
	}
	return portsOf(res)[0], res, ""
}

func slotsFor(have, per float64) int {
	if have <= 0 {
		return 0
	}
	return int(math.Floor(have/per + 1e-9))
}

func portsIn(o *mesos.Offer, role string) int {
	n := 0
	for _, r := range offers.NewPool(o).Free() {
		if r.Name != "ports" || r.GetType() != mesos.RANGES || r.IsRevocable() {
			continue
		}
		if role != "" && r.GetAllocationInfo().GetRole() != role {
			continue
		}
		for _, rg := range r.GetRanges().GetRange() {
			if rg.End >= rg.Begin {
				n += int(rg.End - rg.Begin + 1)
			}
		}
	}
	return n
}

// portsOf lists the ports in res, in order.
func portsOf(res []mesos.Resource) []uint64 {
	var ports []uint64
	for _, r := range res {
		if r.Name != "ports" {
			continue
		}
		for _, rg := range r.GetRanges().GetRange() {
			for p := rg.Begin; p <= rg.End; p++ {
				ports = append(ports, p)
			}
		}
	}
	slices.Sort(ports)
	return ports
}

func round(f float64) float64 { return math.Round(f*1000) / 1000 }
