package master

import (
	"net/http"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

// Handler returns the master's HTTP API. extra, if non-nil, serves every
// path the master does not (the web UI).
//
// No page on another origin may change anything (see api.HTTPOptions): the
// v1 APIs take only JSON or protobuf (api.ReadCall), the JSON endpoints
// below are wrapped in jsonBody, and Mesos's form endpoints in formBody.
func (m *Master) Handler(extra http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/scheduler", m.serveScheduler)
	mux.HandleFunc("/master/api/v1/scheduler", m.serveScheduler)
	mux.HandleFunc("/api/v1", m.serveOperator)
	mux.HandleFunc("/master/api/v1", m.serveOperator)
	mux.Handle(api.AgentPath, typedBody(http.HandlerFunc(m.serveAgent), api.MediaJSON, api.MediaProtobuf))
	mux.Handle(AgentProxyPrefix, m.guardAgentProxy(AgentProxyTLS(m.locateAgent, m.cfg.AgentTLS, m.cfg.AgentTLSDowngrade, m.log))) // agentproxy.go, authz_sandbox.go
	both := func(path string, h http.Handler) {
		mux.Handle(path, h)
		mux.Handle("/master"+path, h)
	}
	both("/state", m.serveJSON(func(*http.Request) any { return m.stateDoc() }))
	both("/state.json", m.serveJSON(func(*http.Request) any { return m.stateDoc() }))
	both("/state-summary", m.serveJSON(func(*http.Request) any { return m.stateSummaryDoc() }))
	both("/frameworks", m.serveList(m.serveFrameworks)) // lists.go: tasks=false
	both("/slaves", m.serveList(m.serveSlaves))         // lists.go: pages, filters
	both("/tasks", m.serveList(m.serveTasks))
	both("/summary", m.serveList(m.serveSummary))
	both("/roles", m.serveList(m.serveRoles))
	both("/flags", m.serveJSON(func(*http.Request) any { return doc{"flags": m.flagsDoc()} }))
	// Mesos documents /weights with curl -d, which sends a form's type.
	both("/weights", formBody(http.HandlerFunc(m.serveWeights), api.MediaJSON))
	both("/reserve", formBody(m.serveReservation(mesos.Offer_Operation_RESERVE)))
	both("/unreserve", formBody(m.serveReservation(mesos.Offer_Operation_UNRESERVE)))
	both("/create-volumes", formBody(m.serveReservation(mesos.Offer_Operation_CREATE)))
	both("/destroy-volumes", formBody(m.serveReservation(mesos.Offer_Operation_DESTROY)))
	both("/explain", http.HandlerFunc(m.serveExplain))
	both("/explain/", http.HandlerFunc(m.serveExplain))
	both("/quota", jsonBody(http.HandlerFunc(m.serveQuota)))
	both("/quota/", jsonBody(http.HandlerFunc(m.serveQuota)))
	both("/maintenance/schedule", jsonBody(http.HandlerFunc(m.serveSchedule)))
	both("/maintenance/status", m.serveJSON(func(*http.Request) any { st := m.maintenanceStatus(); return &st }))
	both("/machine/down", jsonBody(m.serveMachines(true)))
	both("/machine/up", jsonBody(m.serveMachines(false)))
	both("/health", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	mux.Handle("/version", m.serveJSON(func(*http.Request) any {
		return doc{"version": api.MesosVersion, "agora_version": api.Version, "build_date": "", "build_user": "", "build_time": 0}
	}))
	mux.Handle("/metrics/snapshot", m.serveJSON(func(*http.Request) any { return m.snapshot() }))
	mux.Handle("/metrics", m.prometheusHandler())
	mux.Handle("/metrics/history", m.serveJSON(m.historyDoc)) // history.go
	if extra != nil {
		mux.Handle("/", extra)
	} else {
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte("agora master " + api.Version + "\nSee /master/state, /metrics/snapshot and /api/v1/scheduler.\n"))
		})
	}
	// Go's profiles (/debug/pprof) only with Config.HTTP.EnablePprof.
	return m.cfg.HTTP.Wrap(stripSlash(mux))
}

// jsonBody guards an endpoint whose changes come as a JSON body: a request
// that carries one (POST, PUT, PATCH) must say so in its Content-Type, or
// it is refused with 415 before it is read. A page on another origin can
// post text/plain or a form without asking, but not JSON.
func jsonBody(h http.Handler) http.Handler { return typedBody(h, api.MediaJSON) }

// typedBody is jsonBody for an endpoint that takes any of accepted (none
// of which a page may post cross-origin without a preflight).
func typedBody(h http.Handler, accepted ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hasBody(r) {
			if herr := api.CheckContentType(r, accepted...); herr != nil {
				writeError(w, errorf(herr.Code, "%s", herr.Message))
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// formBody guards one of the form endpoints Mesos documents (curl -d):
// a change must come as a form (or one of also), and a browser may send
// it only from a page of this server (api.SameOrigin): the CSRF guard.
func formBody(h http.Handler, also ...string) http.Handler {
	accepted := append([]string{"application/x-www-form-urlencoded"}, also...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hasBody(r) {
			herr := api.CheckContentType(r, accepted...)
			if herr == nil {
				herr = api.SameOrigin(r)
			}
			if herr != nil {
				writeError(w, errorf(herr.Code, "%s", herr.Message))
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// hasBody reports whether r is a method that carries a change in its body.
func hasBody(r *http.Request) bool {
	return r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch
}

// stripSlash tolerates a trailing slash on endpoint paths (/master/state/).
func stripSlash(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.URL.Path) > 1 && strings.HasSuffix(r.URL.Path, "/") && !strings.HasPrefix(r.URL.Path, "/ui/") {
			r.URL.Path = strings.TrimSuffix(r.URL.Path, "/")
		}
		h.ServeHTTP(w, r)
	})
}

// serveChange runs change on the master's loop and answers status, or the
// error change returns. If the request ends or the master stops first,
// nothing is written: the client has gone or the server is closing.
func (m *Master) serveChange(w http.ResponseWriter, r *http.Request, status int, change func() error) {
	m.serveCommit(w, r, status, func(done func(error)) { done(change()) })
}

// serveCommit is serveChange for a change that answers later, once the
// registry has it: change calls done, on the loop, exactly once.
func (m *Master) serveCommit(w http.ResponseWriter, r *http.Request, status int, change func(done func(error))) {
	err, derr := m.await(r.Context(), change)
	if derr != nil {
		answerLoopFailure(w, derr)
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(status)
}

// methodNotAllowed answers 405 with the methods the endpoint takes: allow
// for the Allow header, expecting in words for the message.
func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow, expecting string) {
	w.Header().Set("Allow", allow)
	writeError(w, errorf(http.StatusMethodNotAllowed, "expecting %s, got %s", expecting, r.Method))
}
