package agent

import (
	"net/http"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/auth"
)

// The agent's views (/state, and the operator API's GET_STATE, GET_TASKS,
// GET_EXECUTORS and GET_FRAMEWORKS) show a principal only what the ACLs
// (--acls) let it view, as a Mesos agent filters them: a framework needs
// view_frameworks on its user, a task view_tasks on the user it runs as
// and view_executors on the user of its executor. Without ACLs everything
// is shown.

// viewer is who reads a view.
type viewer struct {
	acls      *auth.ACLs
	principal string
}

// viewerOf is the viewer of r: its authenticated principal, or nobody.
func (a *Agent) viewerOf(r *http.Request) viewer {
	p, _ := auth.Principal(r.Context())
	return viewer{acls: a.cfg.ACLs, principal: p}
}

// framework reports whether the viewer may see framework fw.
func (v viewer) framework(fw *mesos.FrameworkInfo) bool {
	return v.acls.Allowed(auth.ViewFrameworks, v.principal, fw.User)
}

// executor reports whether the viewer may see an executor of fw whose
// command is cmd.
func (v viewer) executor(fw *mesos.FrameworkInfo, cmd *mesos.CommandInfo) bool {
	return v.acls.Allowed(auth.ViewExecutors, v.principal, ownUser(fw, cmd))
}

// task reports whether the viewer may see t (and its executor); a.mu is
// held.
func (v viewer) task(t *task) bool {
	if v.acls == nil {
		return true
	}
	execCmd := t.info.Command // a command task is its own executor
	if t.exec != nil {
		execCmd = t.exec.info.Command
	} else if t.info.Executor != nil {
		execCmd = t.info.Executor.Command
	}
	return v.acls.Allowed(auth.ViewTasks, v.principal, ownUser(&t.framework, t.info.Command)) &&
		v.executor(&t.framework, execCmd) && v.framework(&t.framework)
}

// ownUser is the user a command runs as: its own, or its framework's.
func ownUser(fw *mesos.FrameworkInfo, cmd *mesos.CommandInfo) string {
	if u := cmd.GetUser(); u != "" {
		return u
	}
	return fw.User
}
