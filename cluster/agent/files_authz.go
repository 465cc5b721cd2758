package agent

import (
	"net/http"
	"path/filepath"
	"strings"

	"github.com/agora-cluster/agora/cluster/auth"
)

// Authorization of the agent's /files endpoints with the ACLs it is given
// (--acls, as a Mesos agent takes them): a file in a framework's sandbox
// is served only to a principal allowed access_sandboxes on the user of
// that framework; a path in no framework's sandbox (the directories
// above them) needs access_sandboxes on any user. The principal is the
// one the request authenticated as (--authenticate_http_readonly), or
// nobody.

// authorizeSandbox is nil when r's principal may read the sandbox path
// clean (inside WORK_DIR/slaves), a 403 naming the action otherwise.
func (a *Agent) authorizeSandbox(r *http.Request, clean string) error {
	if a.cfg.ACLs == nil {
		return nil
	}
	principal, _ := auth.Principal(r.Context())
	user := ""
	if id := a.sandboxFramework(clean); id != "" {
		user = a.frameworkUser(id)
	}
	if a.cfg.ACLs.Allowed(auth.AccessSandboxes, principal, user) {
		return nil
	}
	return filesErr(http.StatusForbidden, "%v", auth.Denied(auth.AccessSandboxes, principal, user))
}

// sandboxFramework is the framework whose sandbox path clean is in
// (WORK_DIR/slaves/<agent>/frameworks/<framework>/...), "" if none.
func (a *Agent) sandboxFramework(clean string) string {
	rel, err := filepath.Rel(filepath.Join(a.workDir, "slaves"), clean)
	if err != nil {
		return ""
	}
	parts := strings.Split(rel, string(filepath.Separator))
	if len(parts) >= 3 && parts[1] == "frameworks" {
		return parts[2]
	}
	return ""
}

// frameworkUser is the user of framework id as this agent knows it from
// its tasks and executors, live or completed; "" when it knows none.
func (a *Agent) frameworkUser(id string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, e := range a.executors {
		if k.framework == id {
			return e.framework.User
		}
	}
	for k, t := range a.tasks {
		if k.framework == id {
			return t.framework.User
		}
	}
	for _, t := range a.recentCompleted() {
		if t.key.framework == id {
			return t.framework.User
		}
	}
	return ""
}
