package allocator

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Explain: why a framework or role got no offers.
//
// Allocate keeps a small ring of its last cycles: for each, a handful of
// counters and one record per offer (who got which agent, at what dominant
// share). That costs an append per offer. Explain combines the ring with
// the allocator's current state (activity, suppression, quota, decline
// filters, maintenance, free resources per agent), which it inspects on
// demand, so the cycles themselves do no per-framework bookkeeping.

const defaultExplainCycles = 8

// cycleStats is what the ring keeps of one cycle.
type cycleStats struct {
	at      int64
	offers  []offerRecord
	offered int
	// agents skipped, and why
	unusable, stuck, notAllocatable, fullyFiltered, quotaBlocked int
	heldBack                                                     bool
}

// offerRecord is one offer: who got which agent, and the receiver's
// dominant share and its role's weighted share just before.
type offerRecord struct {
	c                *client
	ag               *agent
	share, roleShare float32
}

type explainRing struct {
	off    bool
	cycles []cycleStats
	next   int
	n      int
	cur    *cycleStats
	dummy  cycleStats
}

func (a *Allocator) beginCycle(now time.Time) *cycleStats {
	r := &a.explain
	if r.off {
		r.dummy = cycleStats{}
		return &r.dummy
	}
	cs := &r.cycles[r.next]
	offers := cs.offers[:0]
	clear(offers[:cap(offers)]) // drop references to removed clients and agents
	*cs = cycleStats{at: now.UnixNano(), offers: offers}
	r.cur = cs
	return cs
}

func (a *Allocator) endCycle(cs *cycleStats, offered int) {
	r := &a.explain
	cs.offered = offered
	if r.off {
		return
	}
	r.cur = nil
	r.next = (r.next + 1) % len(r.cycles)
	r.n = min(r.n+1, len(r.cycles))
}

func (a *Allocator) recordOffer(c *client, ag *agent) {
	if cs := a.explain.cur; cs != nil {
		n := c.leaf
		if n.virtual {
			n = n.parent
		}
		cs.offers = append(cs.offers, offerRecord{c: c, ag: ag, share: float32(c.key), roleShare: float32(n.key)})
	}
}

// ReasonCode names why resources were not offered.
type ReasonCode string

const (
	ReasonUnknown           ReasonCode = "unknown"                  // no framework or role by that name
	ReasonNoFrameworks      ReasonCode = "no_frameworks"            // no framework is subscribed to the role
	ReasonFrameworkInactive ReasonCode = "framework_inactive"       // the framework is disconnected or deactivated
	ReasonNotSubscribed     ReasonCode = "not_subscribed"           // the framework is not subscribed to the role
	ReasonSuppressed        ReasonCode = "suppressed"               // the framework suppressed offers for the role
	ReasonQuotaLimit        ReasonCode = "quota_limit"              // the role (or an ancestor) is at its quota limit
	ReasonQuotaHeadroom     ReasonCode = "quota_headroom"           // unreserved resources held back for other roles' guarantees
	ReasonDeclined          ReasonCode = "declined"                 // decline filters on these agents
	ReasonMinAllocatable    ReasonCode = "min_allocatable"          // what is free there is below the minimum allocatable
	ReasonAgentDown         ReasonCode = "agent_down"               // machine down for maintenance
	ReasonAgentDeactivated  ReasonCode = "agent_deactivated"        // agent deactivated (or draining via DRAIN_AGENT)
	ReasonReservedElsewhere ReasonCode = "reserved_for_other_roles" // what is free is reserved for other roles
	ReasonFairShare         ReasonCode = "fair_share"               // agents went to frameworks with a lower share
	ReasonAllAllocated      ReasonCode = "all_allocated"            // nothing free: everything is offered or in use
	ReasonNoAgents          ReasonCode = "no_agents"                // the cluster has no agents
)

// Reason is one reason, with the numbers behind it.
type Reason struct {
	Code        ReasonCode
	FrameworkID string
	Role        string
	// Agents concerned (for per-agent reasons), with up to 5 examples.
	Agents   int
	AgentIDs []string
	// Until is when the last of the decline filters expires; Forever is
	// set instead when one never does (refuse_seconds of years).
	Until   time.Time
	Forever bool
	// fair_share: the framework's dominant share and its role's weighted
	// share now, and the highest ones among those who got the agents.
	Share, RoleShare, OtherShare, OtherRoleShare float64
	// quota_limit and quota_headroom: the role whose quota applies and its
	// numbers; for quota_headroom, Limit holds what is held back and
	// Consumed what is available.
	QuotaRole                  string
	Guarantee, Limit, Consumed map[string]float64
	Message                    string
}

// Explanation says why a framework or role was not offered resources in
// the last cycles.
type Explanation struct {
	Subject string
	Kind    string // "framework", "role" or "unknown"
	Now     time.Time
	// Cycles examined (at most the ring size) and when the oldest ran.
	Cycles int
	Since  time.Time
	// Offers the subject received in those cycles.
	Offers  int
	Reasons []Reason
	// Recent summarises the cycles examined, oldest first.
	Recent []CycleSummary
}

// CycleSummary is what one allocation cycle did, cluster-wide.
type CycleSummary struct {
	At     time.Time
	Offers int
	// Agents skipped: deactivated or down; unchanged since a cycle that
	// could offer nothing; nothing free above the minimum allocatable;
	// declined by every eligible framework; only unreserved resources left
	// while every role is at its limit or they are held for guarantees.
	Unusable, Unchanged, NotAllocatable, AllDeclined, QuotaBlocked int
	// HeldBack: some quota guarantee was unsatisfied, so unreserved
	// resources were held back for it.
	HeldBack bool
}

// Has reports whether the explanation gives reason code.
func (e *Explanation) Has(code ReasonCode) bool {
	return slices.ContainsFunc(e.Reasons, func(r Reason) bool { return r.Code == code })
}

// String renders the explanation for humans, one reason per line.
func (e Explanation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d offers in the last %d allocation cycles\n", e.Kind, e.Subject, e.Offers, e.Cycles)
	for _, r := range e.Reasons {
		fmt.Fprintf(&b, "  %s: %s\n", r.Code, r.Message)
	}
	return b.String()
}

// Explain says why subject, a framework ID or else a role, was not offered
// resources in recent cycles.
func (a *Allocator) Explain(now time.Time, subject string) Explanation {
	a.settle()
	a.settleQuota()
	e := a.explanationFrame(now, subject)
	var targets []*client
	if fw := a.frameworks[subject]; fw != nil {
		e.Kind = "framework"
		targets = slices.Clone(fw.clients)
		if len(targets) == 0 {
			e.Reasons = append(e.Reasons, Reason{Code: ReasonNotSubscribed, FrameworkID: subject,
				Message: fmt.Sprintf("framework %s is subscribed to no role", subject)})
		}
	} else {
		for _, id := range sortedFrameworkIDs(a.frameworks) {
			if c := a.frameworks[id].client(subject); c != nil {
				targets = append(targets, c)
			}
		}
		switch {
		case len(targets) > 0 || a.leaves[subject] != nil || a.inner[subject] != nil || a.quota[subject] != nil:
			e.Kind = "role"
			if !slices.ContainsFunc(targets, func(c *client) bool { return c.subscribed }) {
				e.Reasons = append(e.Reasons, Reason{Code: ReasonNoFrameworks, Role: subject,
					Message: fmt.Sprintf("no framework is subscribed to role %s", subject)})
			}
		default:
			e.Kind = "unknown"
			e.Reasons = append(e.Reasons, Reason{Code: ReasonUnknown,
				Message: fmt.Sprintf("no framework or role named %q is known to the allocator", subject)})
			return e
		}
	}
	for _, c := range targets {
		e.Reasons = append(e.Reasons, a.explainClient(now, c, &e)...)
	}
	return e
}

// ExplainFrameworkRole explains one framework in one role; a role the
// framework is not subscribed to gets not_subscribed.
func (a *Allocator) ExplainFrameworkRole(now time.Time, frameworkID, role string) Explanation {
	a.settle()
	a.settleQuota()
	e := a.explanationFrame(now, frameworkID+" in role "+role)
	fw := a.frameworks[frameworkID]
	if fw == nil {
		e.Kind = "unknown"
		e.Reasons = append(e.Reasons, Reason{Code: ReasonUnknown, FrameworkID: frameworkID, Role: role,
			Message: fmt.Sprintf("no framework %q is known to the allocator", frameworkID)})
		return e
	}
	e.Kind = "framework"
	c := fw.client(role)
	if c == nil {
		e.Reasons = append(e.Reasons, Reason{Code: ReasonNotSubscribed, FrameworkID: frameworkID, Role: role,
			Message: fmt.Sprintf("framework %s is not subscribed to role %s (its roles: %s)", frameworkID, role, strings.Join(fw.roles(), ", "))})
		return e
	}
	e.Reasons = a.explainClient(now, c, &e)
	return e
}

func (fw *framework) roles() []string {
	var rs []string
	for _, c := range fw.clients {
		if c.subscribed {
			rs = append(rs, c.role)
		}
	}
	return rs
}

func sortedFrameworkIDs(m map[string]*framework) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (a *Allocator) explanationFrame(now time.Time, subject string) Explanation {
	e := Explanation{Subject: subject, Now: now, Cycles: a.explain.n}
	for _, cs := range a.recentCycles() {
		e.Recent = append(e.Recent, CycleSummary{
			At: time.Unix(0, cs.at).UTC(), Offers: cs.offered,
			Unusable: cs.unusable, Unchanged: cs.stuck, NotAllocatable: cs.notAllocatable,
			AllDeclined: cs.fullyFiltered, QuotaBlocked: cs.quotaBlocked, HeldBack: cs.heldBack,
		})
	}
	if len(e.Recent) > 0 {
		e.Since = e.Recent[0].At
	}
	return e
}

// recentCycles returns the recorded cycles, oldest first.
func (a *Allocator) recentCycles() []*cycleStats {
	r := &a.explain
	out := make([]*cycleStats, 0, r.n)
	for i := r.n; i > 0; i-- {
		out = append(out, &r.cycles[(r.next-i+len(r.cycles))%len(r.cycles)])
	}
	return out
}

// agentSample collects agent IDs for a reason.
type agentSample struct {
	n   int
	ids []string
}

func (s *agentSample) add(id string) {
	s.n++
	if len(s.ids) < 5 {
		s.ids = append(s.ids, id)
	}
}

func (a *Allocator) explainClient(now time.Time, c *client, e *Explanation) []Reason {
	fwID, role := c.fw.id, c.role
	base := Reason{FrameworkID: fwID, Role: role}
	with := func(code ReasonCode, msg string, args ...any) Reason {
		r := base
		r.Code, r.Message = code, fmt.Sprintf(msg, args...)
		return r
	}
	for _, cs := range a.recentCycles() {
		for _, o := range cs.offers {
			if o.c == c {
				e.Offers++
			}
		}
	}
	switch {
	case !c.fw.active:
		return []Reason{with(ReasonFrameworkInactive, "framework %s is inactive (disconnected or deactivated): it gets no offers until it subscribes again", fwID)}
	case !c.subscribed:
		return []Reason{with(ReasonNotSubscribed, "framework %s is not subscribed to role %s (it still holds resources allocated in it)", fwID, role)}
	case c.suppressed:
		return []Reason{with(ReasonSuppressed, "framework %s suppressed offers for role %s; it gets none until it revives", fwID, role)}
	}
	var out []Reason
	unresBlocked := false
	if a.quotaOn {
		for r := role; r != ""; r = parentRole(r) {
			q := a.quota[r]
			if q == nil || !q.hasLimit || a.limitFitsMin(q) {
				continue
			}
			st := a.quotaStatus(q)
			x := with(ReasonQuotaLimit, "role %s is at its quota limit: consumed %s of limit %s; only resources reserved for %s can be offered",
				r, fmtScalars(st.Consumed), fmtScalars(st.Limit), role)
			x.QuotaRole, x.Consumed, x.Limit, x.Guarantee = r, st.Consumed, st.Limit, st.Guarantee
			out = append(out, x)
			unresBlocked = true
			break
		}
		if !a.required.scalarsZero() {
			a.computeAvail()
			var need capVec
			a.guaranteeNeed(role, &need)
			if !a.surplusFitsMin() && !a.fitsMinCap(&need) {
				req, avail := scalarMap(&a.required, nil), scalarMap(&a.avail, nil)
				x := with(ReasonQuotaHeadroom, "unreserved resources are held back for other roles' unsatisfied quota guarantees: %s needed, %s unallocated",
					fmtScalars(req), fmtScalars(avail))
				x.Limit, x.Consumed = req, avail
				out = append(out, x)
				unresBlocked = true
			}
		}
	}
	t := now.UnixNano()
	var down, deactivated, declined, tiny, elsewhere, full, offerable agentSample
	var until int64
	var biggest vec
	for _, ag := range a.agentList {
		var usableFree, otherFree, usableUnres bool
		for i := range ag.pools {
			if ag.pools[i].free.isZero() {
				continue
			}
			if ag.usable(i, role) {
				usableFree = true
				usableUnres = usableUnres || ag.pools[i].role == ""
			} else {
				otherFree = true
			}
		}
		switch {
		case !usableFree && otherFree:
			elsewhere.add(ag.id)
			continue
		case !usableFree:
			full.add(ag.id)
			continue
		case ag.down:
			down.add(ag.id)
			continue
		case !ag.active:
			deactivated.add(ag.id)
			continue
		}
		var memo int8
		if ag.filtered(c, t, &memo, nil) {
			declined.add(ag.id)
			for _, f := range ag.filters.list {
				if f.client == c.idx && t < f.expires {
					until = max(until, f.expires)
				}
			}
			continue
		}
		if !a.allocatable(ag, role) {
			tiny.add(ag.id)
			var sum vec
			for i := range ag.pools {
				if ag.usable(i, role) {
					sum.addScalars(&ag.pools[i].free, +1)
				}
			}
			if sum.s[cpus] > biggest.s[cpus] || sum.s[mem] > biggest.s[mem] {
				biggest = sum
			}
			continue
		}
		if unresBlocked && usableUnres && a.unreservedOnly(ag) {
			continue // counted under the quota reason
		}
		offerable.add(ag.id)
	}
	add := func(code ReasonCode, s *agentSample, msg string, args ...any) *Reason {
		if s.n == 0 {
			return nil
		}
		r := with(code, msg, args...)
		r.Agents, r.AgentIDs = s.n, s.ids
		out = append(out, r)
		return &out[len(out)-1]
	}
	if len(a.agentList) == 0 {
		out = append(out, with(ReasonNoAgents, "the cluster has no agents"))
	}
	add(ReasonAgentDown, &down, "%d agents with free resources are down for maintenance (e.g. %s)", down.n, strings.Join(down.ids, ", "))
	add(ReasonAgentDeactivated, &deactivated, "%d agents with free resources are deactivated or draining (e.g. %s)", deactivated.n, strings.Join(deactivated.ids, ", "))
	if r := add(ReasonDeclined, &declined, "framework %s declined %d agents with filters that still apply (e.g. %s)", fwID, declined.n, strings.Join(declined.ids, ", ")); r != nil {
		if until >= math.MaxInt64/2 {
			r.Forever = true
			r.Message += "; the longest never expires (revive to clear them)"
		} else {
			r.Until = time.Unix(0, until).UTC()
			r.Message += fmt.Sprintf(" until %s at the latest (revive to clear them)", r.Until.Format(time.RFC3339))
		}
	}
	add(ReasonMinAllocatable, &tiny, "%d agents have free resources below the minimum allocatable (largest: %s)", tiny.n, fmtScalars(scalarMap(&biggest, nil)))
	add(ReasonReservedElsewhere, &elsewhere, "%d agents' free resources are all reserved for other roles (e.g. %s)", elsewhere.n, strings.Join(elsewhere.ids, ", "))
	if fs := a.explainFairShare(c, t); fs != nil {
		out = append(out, *fs)
	}
	if full.n > 0 && full.n == len(a.agentList) {
		add(ReasonAllAllocated, &full, "all %d agents are fully allocated (offered or in use); framework %s holds a dominant share of %.3f in role %s",
			full.n, fwID, c.key, role)
	}
	_ = offerable
	return out
}

// explainFairShare reports agents that c could have used but that went
// to others in the recent cycles.
func (a *Allocator) explainFairShare(c *client, t int64) *Reason {
	seen := map[*agent]bool{}
	var sameRole, otherRole int
	var otherShare, otherRoleShare float32
	var ids []string
	for _, cs := range a.recentCycles() {
		for _, o := range cs.offers {
			if o.c == c || o.ag.removed || seen[o.ag] {
				continue
			}
			usable := false
			for i := range o.ag.pools {
				usable = usable || ag0(o.ag, i, c.role)
			}
			var memo int8
			if !usable || o.ag.filtered(c, t, &memo, nil) {
				continue
			}
			seen[o.ag] = true
			if len(ids) < 5 {
				ids = append(ids, o.ag.id)
			}
			if o.c.role == c.role {
				sameRole++
				otherShare = max(otherShare, o.share)
			} else {
				otherRole++
				otherRoleShare = max(otherRoleShare, o.roleShare)
			}
		}
	}
	if len(seen) == 0 {
		return nil
	}
	n := c.leaf
	if n.virtual {
		n = n.parent
	}
	r := &Reason{Code: ReasonFairShare, FrameworkID: c.fw.id, Role: c.role, Agents: len(seen), AgentIDs: ids,
		Share: c.key, RoleShare: n.key, OtherShare: float64(otherShare), OtherRoleShare: float64(otherRoleShare)}
	var parts []string
	if otherRole > 0 {
		parts = append(parts, fmt.Sprintf("%d went to other roles whose weighted share was at most %.3f (role %s: %.3f now)", otherRole, otherRoleShare, c.role, n.key))
	}
	if sameRole > 0 {
		parts = append(parts, fmt.Sprintf("%d went to frameworks of role %s whose dominant share was at most %.3f (framework %s: %.3f now)", sameRole, c.role, otherShare, c.fw.id, c.key))
	}
	r.Message = fmt.Sprintf("of %d agents offered to others in the last cycles, %s", len(seen), strings.Join(parts, "; "))
	return r
}

// ag0 reports whether pool i of ag, if it had anything, could go to role.
func ag0(ag *agent, i int, role string) bool {
	return !ag.pools[i].total.isZero() && ag.usable(i, role)
}

// fitsMinCap reports whether caps c hold one of the minimum allocatable
// alternatives.
func (a *Allocator) fitsMinCap(c *capVec) bool {
	return a.fitsMinIn(func(j int) int64 { return c.s[j] }, c.extraCap)
}

func fmtScalars(m map[string]float64) string {
	if len(m) == 0 {
		return "nothing"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%g", k, m[k])
	}
	return strings.Join(parts, ";")
}
