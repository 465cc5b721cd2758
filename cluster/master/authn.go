package master

import (
	"net/http"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/auth"
)

// checkPrincipal: with --authenticate_frameworks, a framework subscribes
// (and updates its FrameworkInfo) only as the principal it authenticated
// as (api.HTTPOptions put it in r's context), so that one team's
// credentials cannot register a framework in another's name. As Mesos,
// a mismatch (or no principal in FrameworkInfo) is a 400 naming both.
// Then a SUBSCRIBE counts against --rate_limits and is authorized
// (register_frameworks, authz.go).
func (m *Master) checkPrincipal(r *http.Request, c *scheduler.Call) error {
	if err := checkPrincipal(r, c); err != nil {
		return err
	}
	if c.GetType() != scheduler.Call_SUBSCRIBE {
		return nil
	}
	if err := m.limitCall(frameworkPrincipal(r, c.GetSubscribe().FrameworkInfo)); err != nil { // ratelimit.go
		return err
	}
	return m.authorizeSubscribe(r, c)
}

func checkPrincipal(r *http.Request, c *scheduler.Call) error {
	principal, ok := auth.Principal(r.Context())
	if !ok {
		return nil
	}
	var fi *mesos.FrameworkInfo
	switch c.GetType() {
	case scheduler.Call_SUBSCRIBE:
		fi = c.GetSubscribe().FrameworkInfo
	case scheduler.Call_UPDATE_FRAMEWORK:
		if u := c.GetUpdateFramework(); u != nil {
			fi = &u.FrameworkInfo
		}
	}
	if fi == nil || fi.GetPrincipal() == principal {
		return nil
	}
	return errorf(http.StatusBadRequest, "authenticated principal '%s' does not match principal '%s' set in `FrameworkInfo`", principal, fi.GetPrincipal())
}

// checkCallPrincipal: with --authenticate_frameworks, the calls after
// SUBSCRIBE (ACCEPT, KILL, ACKNOWLEDGE, TEARDOWN...) are made only as the
// principal the framework subscribed as, so that one team's credentials
// and a stream ID it learned cannot act on another team's framework. A
// mismatch is a 403 naming both; the call goes no further. It runs on the
// master's loop (it reads m.frameworks); an unknown framework is left for
// handleCall to refuse. The call counts against --rate_limits first
// (ratelimit.go), and is authorized last (authz.go).
func (m *Master) checkCallPrincipal(r *http.Request, c *scheduler.Call) error {
	f, known := m.frameworks[c.GetFrameworkID().GetValue()]
	if !known {
		return nil
	}
	// Counted under the caller's own principal when it authenticated, so
	// that another principal's calls cannot spend this framework's limit.
	if err := m.limitCall(frameworkPrincipal(r, &f.info)); err != nil { // ratelimit.go
		return err
	}
	principal, ok := auth.Principal(r.Context())
	if !ok || f.info.GetPrincipal() == principal {
		if f.conn == nil || r.Header.Get("Mesos-Stream-Id") != f.conn.streamID {
			return nil // not its stream: handleCall refuses it (400/403) before anything
		}
		subject := frameworkPrincipal(r, &f.info)
		switch c.GetType() {
		case scheduler.Call_ACCEPT:
			return m.authorizeAccept(subject, f, c.Accept)
		case scheduler.Call_UPDATE_FRAMEWORK:
			return m.authorizeSubscribe(r, c)
		}
		return nil
	}
	return errorf(http.StatusForbidden, "authenticated principal '%s' does not match principal '%s' of framework %s (its `FrameworkInfo`): %s refused",
		principal, f.info.GetPrincipal(), f.id, c.GetType())
}
