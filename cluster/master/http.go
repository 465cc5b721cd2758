package master

import (
	"net/http"
	"net/http/pprof"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

// Handler returns the master's HTTP API. extra, if non-nil, serves every
// path the master does not (the web UI).
func (m *Master) Handler(extra http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/scheduler", m.serveScheduler)
	mux.HandleFunc("/master/api/v1/scheduler", m.serveScheduler)
	mux.HandleFunc("/api/v1", m.serveOperator)
	mux.HandleFunc("/master/api/v1", m.serveOperator)
	mux.HandleFunc(api.AgentPath, m.serveAgent)
	both := func(path string, h http.Handler) {
		mux.Handle(path, h)
		mux.Handle("/master"+path, h)
	}
	both("/state", m.serveJSON(func(*http.Request) any { return m.stateDoc() }))
	both("/state.json", m.serveJSON(func(*http.Request) any { return m.stateDoc() }))
	both("/state-summary", m.serveJSON(func(*http.Request) any { return m.stateSummaryDoc() }))
	both("/frameworks", m.serveJSON(func(r *http.Request) any { return m.frameworksDoc(r) }))
	both("/slaves", m.serveJSON(func(r *http.Request) any { return m.slavesDoc(r) }))
	both("/tasks", m.serveJSON(func(r *http.Request) any { return m.tasksDoc(r) }))
	both("/flags", m.serveJSON(func(*http.Request) any { return doc{"flags": m.flagsDoc()} }))
	both("/weights", http.HandlerFunc(m.serveWeights))
	both("/reserve", m.serveReservation(mesos.Offer_Operation_RESERVE))
	both("/unreserve", m.serveReservation(mesos.Offer_Operation_UNRESERVE))
	both("/create-volumes", m.serveReservation(mesos.Offer_Operation_CREATE))
	both("/destroy-volumes", m.serveReservation(mesos.Offer_Operation_DESTROY))
	both("/explain", http.HandlerFunc(m.serveExplain))
	both("/explain/", http.HandlerFunc(m.serveExplain))
	both("/quota", http.HandlerFunc(m.serveQuota))
	both("/quota/", http.HandlerFunc(m.serveQuota))
	both("/maintenance/schedule", http.HandlerFunc(m.serveSchedule))
	both("/maintenance/status", m.serveJSON(func(*http.Request) any { st := m.maintenanceStatus(); return &st }))
	both("/machine/down", m.serveMachines(true))
	both("/machine/up", m.serveMachines(false))
	both("/health", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	mux.Handle("/version", m.serveJSON(func(*http.Request) any {
		return doc{"version": api.MesosVersion, "agora_version": api.Version, "build_date": "", "build_user": "", "build_time": 0}
	}))
	mux.Handle("/metrics/snapshot", m.serveJSON(func(*http.Request) any { return m.snapshot() }))
	mux.Handle("/metrics", m.prometheusHandler())
	// Go runtime profiles, for operators chasing a slow master.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
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
	return stripSlash(mux)
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
