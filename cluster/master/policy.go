package master

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/master"
	mquota "github.com/mesos/mesos-go/api/v1/lib/quota"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/registry"
)

// The sharing policy — role weights and quotas — is set through /weights,
// /quota and the operator API, kept in the registry, and restored into the
// allocator when a master starts.

// restorePolicy applies the registry's policy to a new master.
func (m *Master) restorePolicy() error {
	p, err := m.cfg.Registry.Policy()
	if err != nil {
		return err
	}
	m.policy = p
	for role, w := range p.Weights {
		m.alloc.SetWeight(role, w)
	}
	for role, q := range p.Quotas {
		if err := m.alloc.SetQuota(role, scalarResources(q.Guarantee), scalarResources(q.Limit)); err != nil {
			return fmt.Errorf("restore quota of role %s: %w", role, err)
		}
	}
	return m.restoreMaintenance()
}

// savePolicyNow writes the policy as it is, waiting on the loop; the
// caller is a start of the policy lane.
func (m *Master) savePolicyNow(p registry.Policy) error {
	return m.commitNow([]registry.Change{{Policy: &p}})
}

func scalarResources(s map[string]float64) mesos.Resources {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	sort.Strings(names)
	var out mesos.Resources
	for _, n := range names {
		out = append(out, mesos.Resource{Name: n, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: s[n]}})
	}
	return out
}

func scalarMap(rs []mesos.Resource) (map[string]float64, error) {
	out := map[string]float64{}
	for _, r := range rs {
		if r.GetType() != mesos.SCALAR {
			return nil, fmt.Errorf("quota supports only scalar resources, got %s of type %s", r.Name, r.GetType())
		}
		if r.GetScalar().GetValue() < 0 {
			return nil, fmt.Errorf("quota of %s must not be negative", r.Name)
		}
		out[r.Name] += r.GetScalar().GetValue()
	}
	return out, nil
}

// setWeights persists weights and then applies them, calling done on the
// loop; it runs on the loop.
func (m *Master) setWeights(ws []mesos.WeightInfo, done func(error)) {
	for _, w := range ws {
		if err := validateRole(w.GetRole()); err != nil {
			done(err)
			return
		}
		if w.GetRole() == "*" {
			done(errorf(http.StatusBadRequest, "the weight of role '*' cannot be changed"))
			return
		}
		if w.Weight <= 0 {
			done(errorf(http.StatusBadRequest, "weight of role %s must be positive, got %v", w.GetRole(), w.Weight))
			return
		}
	}
	m.inLane(policyLane, func() {
		next := m.policy
		next.Weights = map[string]float64{}
		for r, w := range m.policy.Weights {
			next.Weights[r] = w
		}
		for _, w := range ws {
			next.Weights[w.GetRole()] = w.Weight
		}
		m.commit(policyLane, []registry.Change{{Policy: &next}}, func(err error) {
			if err != nil {
				done(err)
				return
			}
			m.policy = next
			for _, w := range ws {
				m.alloc.SetWeight(w.GetRole(), w.Weight)
			}
			done(nil)
		})
	})
}

// quotaChange is one role's new quota; both maps empty removes it.
type quotaChange struct {
	role             string
	guarantee, limit map[string]float64
}

// setQuota applies and persists one role's quota (both empty removes it).
func (m *Master) setQuota(role string, guarantee, limit map[string]float64, done func(error)) {
	m.setQuotas([]quotaChange{{role, guarantee, limit}}, done)
}

// setQuotas applies and persists several roles' quotas all or nothing:
// every change is checked first, then applied to the allocator and
// written to the registry in one policy write; if the allocator refuses
// one or the write fails, the changes already applied are undone and the
// allocator and the policy are as before. The allocator is the judge of a
// quota (against reservations, the hierarchy), so the write happens
// between applying and keeping it, with the loop waiting for it; other
// policy changes wait in the lane meanwhile.
func (m *Master) setQuotas(changes []quotaChange, done func(error)) {
	m.inLane(policyLane, func() { done(m.setQuotasNow(changes)) })
}

func (m *Master) setQuotasNow(changes []quotaChange) error {
	seen := map[string]bool{}
	for _, c := range changes {
		if err := validateRole(c.role); err != nil {
			return err
		}
		if c.role == "*" {
			return errorf(http.StatusBadRequest, "role '*' cannot have a quota")
		}
		if seen[c.role] {
			return errorf(http.StatusBadRequest, "role %s is given two quotas in one call", c.role)
		}
		seen[c.role] = true
		for name, g := range c.guarantee {
			if l, ok := c.limit[name]; ok && l < g {
				return errorf(http.StatusBadRequest, "quota of role %s: the %s guarantee %v exceeds its limit %v", c.role, name, g, l)
			}
		}
	}
	prevPolicy := map[string]registry.Quota{}
	for r, q := range m.policy.Quotas {
		prevPolicy[r] = q
	}
	applied := 0
	undo := func() error {
		m.policy.Quotas = prevPolicy
		var errs []string
		for _, c := range changes[:applied] {
			prev := prevPolicy[c.role] // zero: no quota before
			if err := m.alloc.SetQuota(c.role, scalarResources(prev.Guarantee), scalarResources(prev.Limit)); err != nil {
				errs = append(errs, fmt.Sprintf("role %s: %v", c.role, err))
			}
		}
		if len(errs) > 0 {
			m.log.Error("restoring the allocator's quotas failed", "errors", errs)
			return fmt.Errorf("and restoring the earlier quotas failed: %s", strings.Join(errs, "; "))
		}
		return nil
	}
	for _, c := range changes {
		if err := m.alloc.SetQuota(c.role, scalarResources(c.guarantee), scalarResources(c.limit)); err != nil {
			if uerr := undo(); uerr != nil {
				return errorf(http.StatusInternalServerError, "quota of role %s: %v (%v)", c.role, err, uerr)
			}
			return errorf(http.StatusBadRequest, "quota of role %s: %v; no quota was changed", c.role, err)
		}
		applied++
	}
	next := map[string]registry.Quota{}
	for r, q := range prevPolicy {
		next[r] = q
	}
	for _, c := range changes {
		if len(c.guarantee) == 0 && len(c.limit) == 0 {
			delete(next, c.role)
		} else {
			next[c.role] = registry.Quota{Guarantee: c.guarantee, Limit: c.limit}
		}
	}
	m.policy.Quotas = next
	if err := m.savePolicyNow(m.policy); err != nil {
		// The allocator must not run a policy the registry lacks.
		if uerr := undo(); uerr != nil {
			return errorf(http.StatusInternalServerError, "%v (%v)", err, uerr)
		}
		return err
	}
	// Offers made under the old quotas may now exceed a lowered limit.
	for _, f := range m.frameworks {
		for _, o := range f.offers {
			for _, c := range changes {
				if o.role == c.role || strings.HasPrefix(o.role, c.role+"/") {
					m.rescindOffer(o, 0)
					break
				}
			}
		}
	}
	m.requestAllocation()
	return nil
}

func (m *Master) quotaStatus() *mquota.QuotaStatus {
	st := &mquota.QuotaStatus{}
	for _, q := range m.alloc.Quotas() {
		guarantee := scalarResources(q.Guarantee)
		st.Infos = append(st.Infos, mquota.QuotaInfo{Role: strPtr(q.Role), Guarantee: guarantee})
		cfg := mquota.QuotaConfig{Role: q.Role, Guarantees: map[string]mesos.Value_Scalar{}, Limits: map[string]mesos.Value_Scalar{}}
		for n, v := range q.Guarantee {
			cfg.Guarantees[n] = mesos.Value_Scalar{Value: v}
		}
		for n, v := range q.Limit {
			cfg.Limits[n] = mesos.Value_Scalar{Value: v}
		}
		st.Configs = append(st.Configs, cfg)
	}
	return st
}

// serveWeights is GET and PUT /weights.
func (m *Master) serveWeights(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		var out []mesos.WeightInfo
		m.do(r.Context(), func() { out = m.weightInfos() })
		writeJSON(w, r, out)
	case http.MethodPut, http.MethodPost:
		var ws []mesos.WeightInfo
		if err := readJSONBody(r, &ws); err != nil {
			writeError(w, err)
			return
		}
		if !m.authorizeHTTP(w, r, auth.UpdateWeights, weightRoles(ws)...) { // authz.go
			return
		}
		m.serveCommit(w, r, http.StatusOK, func(done func(error)) { m.setWeights(ws, done) })
	default:
		methodNotAllowed(w, r, "GET, PUT", "GET or PUT")
	}
}

func (m *Master) weightInfos() []mesos.WeightInfo {
	out := []mesos.WeightInfo{}
	for _, role := range sortedKeys(m.policy.Weights) {
		out = append(out, mesos.WeightInfo{Role: strPtr(role), Weight: m.policy.Weights[role]})
	}
	return out
}

// serveQuota is GET /quota, POST /quota (a QuotaRequest) and DELETE /quota/ROLE.
func (m *Master) serveQuota(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		var st *mquota.QuotaStatus
		m.do(r.Context(), func() { st = m.quotaStatus(); m.viewerOf(r).filterQuota(st) }) // authz_view.go
		writeJSON(w, r, st)
	case http.MethodPost:
		var req mquota.QuotaRequest
		if err := readJSONBody(r, &req); err != nil {
			writeError(w, err)
			return
		}
		guarantee, err := scalarMap(req.Guarantee)
		if err != nil {
			writeError(w, errorf(http.StatusBadRequest, "%v", err))
			return
		}
		if !m.authorizeHTTP(w, r, auth.UpdateQuotas, req.GetRole()) { // authz.go
			return
		}
		m.serveCommit(w, r, http.StatusOK, func(done func(error)) { m.setQuota(req.GetRole(), guarantee, guarantee, done) })
	case http.MethodDelete:
		role := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/master"), "/quota/")
		if role == "" || role == r.URL.Path {
			writeError(w, errorf(http.StatusBadRequest, "DELETE /quota/ROLE needs a role"))
			return
		}
		if !m.authorizeHTTP(w, r, auth.UpdateQuotas, role) { // authz.go
			return
		}
		m.serveCommit(w, r, http.StatusOK, func(done func(error)) {
			m.inLane(policyLane, func() {
				if _, ok := m.policy.Quotas[role]; !ok {
					done(errorf(http.StatusBadRequest, "role %s has no quota", role))
					return
				}
				done(m.setQuotasNow([]quotaChange{{role: role}}))
			})
		})
	default:
		methodNotAllowed(w, r, "GET, POST, DELETE", "GET, POST or DELETE")
	}
}

// policyCall answers the operator API's policy queries; handled is false
// for other calls.
func (m *Master) policyCall(c *master.Call) (resp *master.Response, handled bool, err error) {
	switch c.Type {
	case master.Call_GET_WEIGHTS:
		return &master.Response{Type: master.Response_GET_WEIGHTS, GetWeights: &master.Response_GetWeights{WeightInfos: m.weightInfos()}}, true, nil
	case master.Call_GET_QUOTA:
		return &master.Response{Type: master.Response_GET_QUOTA, GetQuota: &master.Response_GetQuota{Status: *m.quotaStatus()}}, true, nil
	}
	return nil, false, nil
}

// policyChange starts the operator API's policy changes, which answer
// once the registry has them; handled is false for other calls.
func (m *Master) policyChange(c *master.Call, done func(error)) (handled bool) {
	switch c.Type {
	case master.Call_UPDATE_WEIGHTS:
		if c.UpdateWeights == nil {
			done(missingField("update_weights"))
			return true
		}
		m.setWeights(c.UpdateWeights.WeightInfos, done)
	case master.Call_UPDATE_QUOTA:
		if c.UpdateQuota == nil {
			done(missingField("update_quota"))
			return true
		}
		// All or nothing, as in Mesos: one bad config changes no quota.
		var changes []quotaChange
		for _, qc := range c.UpdateQuota.QuotaConfigs {
			g, l := map[string]float64{}, map[string]float64{}
			for n, v := range qc.Guarantees {
				g[n] = v.Value
			}
			for n, v := range qc.Limits {
				l[n] = v.Value
			}
			changes = append(changes, quotaChange{qc.Role, g, l})
		}
		m.setQuotas(changes, done)
	case master.Call_SET_QUOTA:
		if c.SetQuota == nil {
			done(missingField("set_quota"))
			return true
		}
		g, err := scalarMap(c.SetQuota.QuotaRequest.Guarantee)
		if err != nil {
			done(errorf(http.StatusBadRequest, "%v", err))
			return true
		}
		m.setQuota(c.SetQuota.QuotaRequest.GetRole(), g, g, done)
	case master.Call_REMOVE_QUOTA:
		if c.RemoveQuota == nil {
			done(missingField("remove_quota"))
			return true
		}
		m.setQuota(c.RemoveQuota.Role, nil, nil, done)
	default:
		return false
	}
	return true
}

// readJSONBody decodes a bounded JSON request body.
func readJSONBody(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBody+1))
	if err != nil {
		return errorf(http.StatusBadRequest, "cannot read the request body: %v", err)
	}
	if len(b) > MaxRequestBody {
		return errorf(http.StatusRequestEntityTooLarge, "request body exceeds %d bytes", MaxRequestBody)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errorf(http.StatusBadRequest, "cannot parse the request body as %T: %v", v, err)
	}
	return nil
}
