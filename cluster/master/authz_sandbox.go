package master

import (
	"net/http"
	"path"
	"strings"

	"github.com/agora-cluster/agora/cluster/auth"
)

// guardAgentProxy applies --acls to the relay of agents' endpoints
// (agentproxy.go): a sandbox file (files/browse, read, download) is
// relayed only to a principal allowed access_sandboxes on the user of the
// framework whose sandbox it is (its path,
// .../slaves/<agent>/frameworks/<framework>/executors/...); a path in no
// framework's sandbox needs access_sandboxes on any user. An agent's
// /state lists every framework's tasks and executors, and the relay does
// not filter it: it is relayed only to a principal that may view all of
// them (view_frameworks, view_tasks and view_executors on any user).
func (m *Master) guardAgentProxy(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.cfg.ACLs == nil {
			h.ServeHTTP(w, r)
			return
		}
		_, endpoint, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, AgentProxyPrefix), "/")
		var err error
		if derr := m.do(r.Context(), func() {
			err = m.authorizeRelay(requestPrincipal(r), endpoint, r.URL.Query().Get("path"))
		}); derr != nil {
			answerLoopFailure(w, derr)
			return
		}
		if err != nil {
			writeError(w, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// authorizeRelay runs on the loop (it reads the frameworks' users).
func (m *Master) authorizeRelay(principal, endpoint, sandboxPath string) error {
	if strings.HasPrefix(endpoint, "files/") {
		user := ""
		if id := sandboxFramework(sandboxPath); id != "" {
			user = m.frameworkUser(id)
		}
		return m.check(auth.AccessSandboxes, principal, user)
	}
	for _, action := range []auth.Action{auth.ViewFrameworks, auth.ViewTasks, auth.ViewExecutors} {
		if err := m.check(action, principal, ""); err != nil {
			return err
		}
	}
	return nil
}

// sandboxFramework is the framework ID in a sandbox path, "" if none.
func sandboxFramework(p string) string {
	parts := strings.Split(path.Clean("/"+p), "/")
	for i := 0; i+3 < len(parts); i++ {
		if parts[i] == "slaves" && parts[i+2] == "frameworks" {
			return parts[i+3]
		}
	}
	return ""
}
