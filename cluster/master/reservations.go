package master

import (
	"encoding/json"
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
	converted, err := m.alloc.UpdateAllocation(f.id, a.id, remaining, []mesos.Offer_Operation{op})
	if err != nil {
		return remaining, err
	}
	if err := m.agentTotalChanged(a); err != nil {
		if _, uerr := m.alloc.UpdateAllocation(f.id, a.id, converted, []mesos.Offer_Operation{inverseOperation(op)}); uerr != nil {
			m.log.Error("undoing a resource operation the registry refused failed", "agent", a.id, "operation", op.GetType(), "err", uerr)
		}
		return remaining, err
	}
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

// agentTotalChanged records an agent's converted total resources in the
// registry and then in the agent's info; if the registry cannot, the info
// is left as it was and the error says so (the caller undoes the
// conversion in the allocator).
func (m *Master) agentTotalChanged(a *agent) error {
	total, _, ok := m.alloc.AgentResources(a.id)
	if !ok {
		return nil
	}
	info := a.info
	info.Resources = stripAllocationInfo(total)
	if err := m.cfg.Registry.PutAgent(registry.AgentRecord{ID: a.id, State: registry.AgentAdmitted, Info: &info, Since: m.now()}); err != nil {
		return errorf(http.StatusServiceUnavailable, "cannot record the converted resources of agent %s in the registry: %v; nothing was changed", a.id, err)
	}
	a.info = info
	return nil
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
// resources, rescinding the agent's offers once if they hold what is needed.
func (m *Master) operatorOperation(agentID string, op mesos.Offer_Operation) error {
	a := m.agents[agentID]
	if a == nil || a.unreachable {
		return errorf(http.StatusBadRequest, "agent %s is not registered", agentID)
	}
	err := m.alloc.UpdateAvailable(a.id, []mesos.Offer_Operation{op})
	if err != nil && len(a.offers) > 0 {
		for _, o := range a.offers {
			m.rescindOffer(o, 0)
		}
		err = m.alloc.UpdateAvailable(a.id, []mesos.Offer_Operation{op})
	}
	if err != nil {
		return errorf(http.StatusConflict, "%s on agent %s: %v", op.GetType(), a.id, err)
	}
	if err := m.agentTotalChanged(a); err != nil {
		if uerr := m.alloc.UpdateAvailable(a.id, []mesos.Offer_Operation{inverseOperation(op)}); uerr != nil {
			m.log.Error("undoing a resource operation the registry refused failed", "agent", a.id, "operation", op.GetType(), "err", uerr)
			return errorf(http.StatusInternalServerError, "%v; undoing it in the allocator failed too: %v", err, uerr)
		}
		m.requestAllocation()
		return err
	}
	m.requestAllocation()
	return nil
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

// reservationCall answers the operator API's reservation and volume calls.
func (m *Master) reservationCall(c *master.Call) (resp *master.Response, handled bool, err error) {
	switch c.Type {
	case master.Call_RESERVE_RESOURCES:
		if c.ReserveResources == nil {
			return nil, true, missingField("reserve_resources")
		}
		return nil, true, m.operatorOperation(c.ReserveResources.AgentID.Value, resourceOperation(mesos.Offer_Operation_RESERVE, c.ReserveResources.Resources))
	case master.Call_UNRESERVE_RESOURCES:
		if c.UnreserveResources == nil {
			return nil, true, missingField("unreserve_resources")
		}
		return nil, true, m.operatorOperation(c.UnreserveResources.AgentID.Value, resourceOperation(mesos.Offer_Operation_UNRESERVE, c.UnreserveResources.Resources))
	case master.Call_CREATE_VOLUMES:
		if c.CreateVolumes == nil {
			return nil, true, missingField("create_volumes")
		}
		return nil, true, m.operatorOperation(c.CreateVolumes.AgentID.Value, resourceOperation(mesos.Offer_Operation_CREATE, c.CreateVolumes.Volumes))
	case master.Call_DESTROY_VOLUMES:
		if c.DestroyVolumes == nil {
			return nil, true, missingField("destroy_volumes")
		}
		return nil, true, m.operatorOperation(c.DestroyVolumes.AgentID.Value, resourceOperation(mesos.Offer_Operation_DESTROY, c.DestroyVolumes.Volumes))
	}
	return nil, false, nil
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
		m.serveChange(w, r, http.StatusAccepted, func() error { return m.operatorOperation(agentID, op) })
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
