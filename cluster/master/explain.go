package master

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/agora-cluster/agora/cluster/allocator"
)

// serveExplain is GET /explain?framework_id=ID or ?role=ROLE (or
// /explain/SUBJECT): why a framework or role got no offers recently, with
// the numbers. It answers the most common question asked of Mesos
// operators: "my framework gets no offers".
func (m *Master) serveExplain(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r, "GET", "GET")
		return
	}
	q := r.URL.Query()
	subject := q.Get("framework_id")
	if subject == "" {
		subject = q.Get("role")
	}
	if subject == "" {
		subject = strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/master"), "/explain/")
		if subject == "/explain" {
			subject = ""
		}
	}
	if subject == "" {
		writeError(w, errorf(http.StatusBadRequest, "say what to explain: /explain?framework_id=ID or /explain?role=ROLE"))
		return
	}
	var out doc
	if err := m.do(r.Context(), func() { out = explanationDoc(m.viewerOf(r).explanation(m.alloc.Explain(m.now(), subject))) }); err != nil {
		answerLoopFailure(w, err)
		return
	}
	if out["kind"] == "unknown" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
	}
	writeJSON(w, r, out)
}

// explanation is what of e the viewer may see (authz_view.go's rules):
// a framework it may not view (view_frameworks) is explained as unknown,
// as if it did not exist, and the reasons naming such a framework are
// left out of a role's explanation.
func (v *viewer) explanation(e allocator.Explanation) allocator.Explanation {
	if v == nil {
		return e
	}
	if e.Kind == "framework" && !v.framework(e.Subject) {
		e.Kind, e.Offers = "unknown", 0
		e.Reasons = []allocator.Reason{{Code: allocator.ReasonUnknown,
			Message: fmt.Sprintf("no framework or role named %q is known to the allocator", e.Subject)}}
		return e
	}
	reasons := make([]allocator.Reason, 0, len(e.Reasons))
	for _, r := range e.Reasons {
		if r.FrameworkID == "" || v.framework(r.FrameworkID) {
			reasons = append(reasons, r)
		}
	}
	e.Reasons = reasons
	return e
}

func explanationDoc(e allocator.Explanation) doc {
	reasons := []any{}
	for _, r := range e.Reasons {
		rd := doc{"code": string(r.Code), "message": r.Message}
		if r.FrameworkID != "" {
			rd["framework_id"] = r.FrameworkID
		}
		if r.Role != "" {
			rd["role"] = r.Role
		}
		if r.Agents > 0 {
			rd["agents"] = r.Agents
			rd["agent_ids"] = r.AgentIDs
		}
		if r.Forever {
			rd["forever"] = true
		} else if !r.Until.IsZero() {
			rd["until"] = timeSecs(r.Until)
		}
		if r.Code == allocator.ReasonFairShare {
			rd["share"], rd["role_share"], rd["other_share"], rd["other_role_share"] = r.Share, r.RoleShare, r.OtherShare, r.OtherRoleShare
		}
		if r.QuotaRole != "" {
			rd["quota_role"], rd["guarantee"], rd["limit"], rd["consumed"] = r.QuotaRole, r.Guarantee, r.Limit, r.Consumed
		}
		reasons = append(reasons, rd)
	}
	return doc{
		"subject": e.Subject, "kind": e.Kind, "cycles": e.Cycles, "offers": e.Offers,
		"since": timeSecs(e.Since), "reasons": reasons, "text": e.String(),
	}
}
