package master

import (
	"encoding/json"
	"fmt"
	"net/http"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/master"

	"github.com/agora-cluster/agora/cluster/registry"
)

// Dynamic reservations and persistent volumes change an agent's total
// resources. Frameworks make them with RESERVE/UNRESERVE/CREATE/DESTROY in
// an ACCEPT; operators with the operator API or /reserve, /unreserve,
// /create-volumes, /destroy-volumes. The converted total is kept in the
// agent's registry record, so it survives master and agent restarts.

// isResourceOperation reports whether op converts resources.
func isResourceOperation(t mesos.Offer_Operation_Type) bool {
	switch t {
	case mesos.Offer_Operation_RESERVE, mesos.Offer_Operation_UNRESERVE,
		mesos.Offer_Operation_CREATE, mesos.Offer_Operation_DESTROY:
		return true
	}
	return false
}

// applyOfferOperation converts offered resources (remaining) for a
// framework's RESERVE/UNRESERVE/CREATE/DESTROY. On error nothing changes.
func (m *Master) applyOfferOperation(f *framework, a *agent, remaining mesos.Resources, op mesos.Offer_Operation) (mesos.Resources, error) {
	if !f.multiRole {
		// Operations name resources without allocation_info; they were
		// offered in the framework's single role.
		op = withOperationRole(op, f.roles()[0])
	}
	if m.laneBusy(agentLane(a.id)) {
		// Its total is about to change: this operation would be
		// computed on, and recorded over, a record in flight.
		return remaining, fmt.Errorf("agent %s has a registry change in flight; offer the operation again", a.id)
	}
	converted, err := m.alloc.UpdateAllocation(f.id, a.id, remaining, []mesos.Offer_Operation{op})
	if err != nil {
		return remaining, err
	}
	// Inside an ACCEPT, which goes on with the converted resources: the
	// loop waits for this one write.
	info := m.convertedInfo(a)
	if err := m.commitNow([]registry.Change{{Agent: &registry.AgentRecord{ID: a.id, State: registry.AgentAdmitted, Info: &info, Since: m.now(), Principal: a.principal, PID: a.pid}}}); err != nil {
		if _, uerr := m.alloc.UpdateAllocation(f.id, a.id, converted, []mesos.Offer_Operation{inverseOperation(op)}); uerr != nil {
			m.log.Error("undoing a resource operation the registry refused failed", "agent", a.id, "operation", op.GetType(), "err", uerr)
		}
		return remaining, err
	}
	a.info = info
	return converted, nil
}

// withOperationRole sets allocation_info on an operation's resources.
func withOperationRole(op mesos.Offer_Operation, role string) mesos.Offer_Operation {
	switch {
	case op.Reserve != nil:
		r := *op.Reserve
		r.Resources = withAllocationInfo(r.Resources, role)
		op.Reserve = &r
	case op.Unreserve != nil:
		u := *op.Unreserve
		u.Resources = withAllocationInfo(u.Resources, role)
		op.Unreserve = &u
	case op.Create != nil:
		c := *op.Create
		c.Volumes = withAllocationInfo(c.Volumes, role)
		op.Create = &c
	case op.Destroy != nil:
		d := *op.Destroy
		d.Volumes = withAllocationInfo(d.Volumes, role)
		op.Destroy = &d
	}
	return op
}

// convertedInfo is the agent's info with the allocator's (converted)
// total resources.
func (m *Master) convertedInfo(a *agent) mesos.AgentInfo {
	info := a.info
	if total, _, ok := m.alloc.AgentResources(a.id); ok {
		info.Resources = stripAllocationInfo(total)
	}
	return info
}

// inverseOperation is the operation that undoes op: UNRESERVE for
// RESERVE, DESTROY for CREATE, and back.
func inverseOperation(op mesos.Offer_Operation) mesos.Offer_Operation {
	switch {
	case op.Reserve != nil:
		return mesos.Offer_Operation{Type: mesos.Offer_Operation_UNRESERVE, Unreserve: &mesos.Offer_Operation_Unreserve{Resources: op.Reserve.Resources}}
	case op.Unreserve != nil:
		return mesos.Offer_Operation{Type: mesos.Offer_Operation_RESERVE, Reserve: &mesos.Offer_Operation_Reserve{Resources: op.Unreserve.Resources}}
	case op.Create != nil:
		return mesos.Offer_Operation{Type: mesos.Offer_Operation_DESTROY, Destroy: &mesos.Offer_Operation_Destroy{Volumes: op.Create.Volumes}}
	case op.Destroy != nil:
		return mesos.Offer_Operation{Type: mesos.Offer_Operation_CREATE, Create: &mesos.Offer_Operation_Create{Volumes: op.Destroy.Volumes}}
	}
	return op
}

// operatorOperation applies an operator's operation to an agent's free
// resources, rescinding the agent's offers once if they hold what is
// needed, and calls done once the registry has the converted total. Until
// then the agent is out of allocation, so that nothing is offered from a
// conversion that is not durable; if the registry refuses, the
// conversion is undone and the agent is as before.
func (m *Master) operatorOperation(agentID string, op mesos.Offer_Operation, done func(error)) {
	m.inLane(agentLane(agentID), func() {
		a := m.agents[agentID]
		if a == nil || a.unreachable {
			done(errorf(http.StatusBadRequest, "agent %s is not registered", agentID))
			return
		}
		err := m.alloc.UpdateAvailable(a.id, []mesos.Offer_Operation{op})
		if err != nil && len(a.offers) > 0 {
			for _, o := range a.offers {
				m.rescindOffer(o, 0)
			}
			err = m.alloc.UpdateAvailable(a.id, []mesos.Offer_Operation{op})
		}
		if err != nil {
			done(errorf(http.StatusConflict, "%s on agent %s: %v", op.GetType(), a.id, err))
			return
		}
		info := m.convertedInfo(a)
		a.converting = true
		m.alloc.DeactivateAgent(a.id)
		rec := registry.AgentRecord{ID: a.id, State: registry.AgentAdmitted, Info: &info, Since: m.now(), Principal: a.principal, PID: a.pid}
		m.commit(agentLane(a.id), []registry.Change{{Agent: &rec}}, func(err error) {
			a.converting = false
			if m.agents[a.id] != a || a.unreachable {
				// Gone meanwhile (the lane makes this unlikely): the
				// allocator no longer has it; nothing to undo.
				if err == nil {
					a.info = info
				}
				done(err)
				return
			}
			if a.out != nil && !a.deactivated && !a.draining {
				m.alloc.ActivateAgent(a.id)
			}
			m.requestAllocation()
			if err != nil {
				if uerr := m.alloc.UpdateAvailable(a.id, []mesos.Offer_Operation{inverseOperation(op)}); uerr != nil {
					m.log.Error("undoing a resource operation the registry refused failed", "agent", a.id, "operation", op.GetType(), "err", uerr)
					done(errorf(http.StatusInternalServerError, "%v; undoing it in the allocator failed too: %v", err, uerr))
					return
				}
				done(err)
				return
			}
			a.info = info
			done(nil)
		})
	})
}

// resourceOperation builds a RESERVE, UNRESERVE, CREATE or DESTROY.
func resourceOperation(t mesos.Offer_Operation_Type, rs []mesos.Resource) mesos.Offer_Operation {
	op := mesos.Offer_Operation{Type: t}
	switch t {
	case mesos.Offer_Operation_RESERVE:
		op.Reserve = &mesos.Offer_Operation_Reserve{Resources: rs}
	case mesos.Offer_Operation_UNRESERVE:
		op.Unreserve = &mesos.Offer_Operation_Unreserve{Resources: rs}
	case mesos.Offer_Operation_CREATE:
		op.Create = &mesos.Offer_Operation_Create{Volumes: rs}
	case mesos.Offer_Operation_DESTROY:
		op.Destroy = &mesos.Offer_Operation_Destroy{Volumes: rs}
	}
	return op
}

// reservationChange starts the operator API's reservation and volume
// calls, which answer once the registry has them; handled is false for
// other calls.
func (m *Master) reservationChange(c *master.Call, done func(error)) (handled bool) {
	var (
		agentID *mesos.AgentID
		t       mesos.Offer_Operation_Type
		rs      []mesos.Resource
		field   string
	)
	switch c.Type {
	case master.Call_RESERVE_RESOURCES:
		if x := c.ReserveResources; x != nil {
			agentID, t, rs = &x.AgentID, mesos.Offer_Operation_RESERVE, x.Resources
		}
		field = "reserve_resources"
	case master.Call_UNRESERVE_RESOURCES:
		if x := c.UnreserveResources; x != nil {
			agentID, t, rs = &x.AgentID, mesos.Offer_Operation_UNRESERVE, x.Resources
		}
		field = "unreserve_resources"
	case master.Call_CREATE_VOLUMES:
		if x := c.CreateVolumes; x != nil {
			agentID, t, rs = &x.AgentID, mesos.Offer_Operation_CREATE, x.Volumes
		}
		field = "create_volumes"
	case master.Call_DESTROY_VOLUMES:
		if x := c.DestroyVolumes; x != nil {
			agentID, t, rs = &x.AgentID, mesos.Offer_Operation_DESTROY, x.Volumes
		}
		field = "destroy_volumes"
	default:
		return false
	}
	if agentID == nil {
		done(missingField(field))
		return true
	}
	m.operatorOperation(agentID.Value, resourceOperation(t, rs), done)
	return true
}

// serveReservation is Mesos's POST /reserve, /unreserve, /create-volumes
// and /destroy-volumes: a form with slaveId and resources (or volumes) as
// a JSON array of Resource.
func (m *Master) serveReservation(t mesos.Offer_Operation_Type) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			methodNotAllowed(w, r, "POST", "POST")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBody)
		if err := r.ParseForm(); err != nil {
			writeError(w, errorf(http.StatusBadRequest, "cannot parse the form: %v", err))
			return
		}
		agentID := r.PostForm.Get("slaveId")
		field := "resources"
		if t == mesos.Offer_Operation_CREATE || t == mesos.Offer_Operation_DESTROY {
			field = "volumes"
		}
		text := r.PostForm.Get(field)
		if agentID == "" || text == "" {
			writeError(w, errorf(http.StatusBadRequest, "missing 'slaveId' or '%s' in the form", field))
			return
		}
		var rs []mesos.Resource
		if err := json.Unmarshal([]byte(text), &rs); err != nil {
			writeError(w, errorf(http.StatusBadRequest, "'%s' is not a JSON array of Resource: %v", field, err))
			return
		}
		op := resourceOperation(t, rs)
		if !m.authorizeHTTPOperation(w, r, op) { // authz.go
			return
		}
		m.serveCommit(w, r, http.StatusAccepted, func(done func(error)) { m.operatorOperation(agentID, op, done) })
	}
}

// compatibleTotal reports whether a registry total (with reservations and
// volumes) is the same amount of resources as what an agent now reports,
// so that the checkpointed conversions can be kept.
func compatibleTotal(recorded, reported []mesos.Resource) bool {
	sum := func(rs []mesos.Resource) map[string]float64 {
		out := map[string]float64{}
		for _, r := range rs {
			if r.GetType() == mesos.SCALAR {
				out[r.Name] += r.GetScalar().GetValue()
			}
		}
		return out
	}
	a, b := sum(recorded), sum(reported)
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if d := v - b[k]; d > 0.0005 || d < -0.0005 {
			return false
		}
	}
	return true
}
