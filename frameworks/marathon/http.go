package marathon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/frameworks/marathon/plan"
)

// maxBody bounds a request body: an app definition is small.
const maxBody = 1 << 20

// Handler serves Marathon's REST API.
func (f *Framework) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "pong\n")
	})
	mux.Handle("GET /ui/", uiHandler())
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	mux.HandleFunc("GET /v2/info", f.serveInfo)
	mux.HandleFunc("GET /v2/leader", f.serveLeader)
	mux.HandleFunc("GET /v2/apps", f.serveApps)
	mux.HandleFunc("POST /v2/apps", f.serveCreate)
	mux.HandleFunc("/v2/apps/", f.serveApp)
	mux.HandleFunc("GET /v2/tasks", func(w http.ResponseWriter, r *http.Request) {
		ts, _ := f.Tasks("")
		if st := r.URL.Query().Get("status"); st != "" {
			ts = slices.DeleteFunc(ts, func(t Task) bool { return !strings.EqualFold(t.State, "TASK_"+st) })
		}
		reply(w, http.StatusOK, map[string]any{"tasks": tasksFor(r, ts)})
	})
	mux.HandleFunc("GET /v2/queue", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, map[string]any{"queue": f.Queue(slices.Contains(r.URL.Query()["embed"], "lastUnusedOffers"))})
	})
	mux.HandleFunc("DELETE /v2/queue/{rest...}", func(w http.ResponseWriter, r *http.Request) {
		id, ok := strings.CutSuffix(r.PathValue("rest"), "/delay")
		if !ok {
			fail(w, &APIError{Code: http.StatusNotFound, Body: message{"no such queue resource"}})
			return
		}
		if err := f.ResetDelay(id); err != nil {
			fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /v2/deployments", func(w http.ResponseWriter, r *http.Request) {
		if embeds(r, "history") {
			reply(w, http.StatusOK, f.DeploymentHistory())
			return
		}
		reply(w, http.StatusOK, deploymentsFor(r, f.Deployments()))
	})
	mux.HandleFunc("DELETE /v2/deployments/{id}", func(w http.ResponseWriter, r *http.Request) {
		c, err := f.CancelDeployment(r.PathValue("id"), flag(r, "force"))
		switch {
		case err != nil:
			fail(w, err)
		case c == nil:
			reply(w, http.StatusAccepted, message{"canceled; not rolled back"})
		default:
			deployed(w, http.StatusOK, *c)
		}
	})
	mux.HandleFunc("GET /v2/groups", func(w http.ResponseWriter, r *http.Request) { f.serveGroup(w, r, "/") })
	mux.HandleFunc("GET /v2/groups/{id...}", func(w http.ResponseWriter, r *http.Request) { f.serveGroup(w, r, r.PathValue("id")) })
	mux.HandleFunc("POST /v2/groups", func(w http.ResponseWriter, r *http.Request) { f.serveDeployGroup(w, r, "", true) })
	mux.HandleFunc("PUT /v2/groups/{id...}", func(w http.ResponseWriter, r *http.Request) {
		f.serveDeployGroup(w, r, r.PathValue("id"), false)
	})
	mux.HandleFunc("DELETE /v2/groups/{id...}", func(w http.ResponseWriter, r *http.Request) {
		c, err := f.DeleteGroup(r.PathValue("id"), flag(r, "force"))
		if err != nil {
			fail(w, err)
			return
		}
		deployed(w, http.StatusOK, c)
	})
	mux.HandleFunc("GET /v2/events", f.serveEvents)
	return mux
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, err error) {
	var e *APIError
	if errors.As(err, &e) {
		reply(w, e.Code, e.Body)
		return
	}
	reply(w, http.StatusInternalServerError, message{err.Error()})
}

func deployed(w http.ResponseWriter, code int, c Change) {
	w.Header().Set("Marathon-Deployment-Id", c.DeploymentID)
	reply(w, code, c)
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		fail(w, &APIError{Code: http.StatusBadRequest, Body: message{"request body: " + err.Error()}})
		return nil, false
	}
	return b, true
}

// flag reads a boolean query parameter (force, scale).
func flag(r *http.Request, name string) bool {
	v, err := strconv.ParseBool(r.URL.Query().Get(name))
	return err == nil && v
}

// deployOptions reads a deployable request's options: force,
// deploymentTimeout (seconds, or a duration such as 90s; 0 or negative:
// no deadline) and autoRollback.
func deployOptions(r *http.Request) (DeployOptions, error) {
	q := r.URL.Query()
	o := DeployOptions{Force: flag(r, "force")}
	if v := q.Get("deploymentTimeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			s, ferr := strconv.ParseFloat(v, 64)
			if ferr != nil {
				return o, &APIError{Code: http.StatusBadRequest, Body: message{fmt.Sprintf(
					"query parameter deploymentTimeout: %q is neither seconds nor a duration such as 90s", v)}}
			}
			d = time.Duration(s * float64(time.Second))
		}
		if d <= 0 {
			d = -1 // no deadline
		}
		o.Timeout = d
	}
	if v := q.Get("autoRollback"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return o, &APIError{Code: http.StatusBadRequest, Body: message{fmt.Sprintf(
				"query parameter autoRollback: %q is not true or false", v)}}
		}
		o.AutoRollback = &b
	}
	return o, nil
}

func embeds(r *http.Request, what ...string) bool {
	for _, e := range r.URL.Query()["embed"] {
		if slices.Contains(what, e) {
			return true
		}
	}
	return false
}

func (f *Framework) serveInfo(w http.ResponseWriter, r *http.Request) {
	addr := f.cfg.HTTPAddress
	reply(w, http.StatusOK, map[string]any{
		"name": "marathon", "version": "1.4.0", "buildref": "agora " + api.Version,
		"elected": true, "leader": addr, "frameworkId": f.FrameworkID(),
		"marathon_config": map[string]any{
			"master": strings.Join(f.cfg.Masters, ","), "framework_name": f.cfg.Name, "mesos_role": f.cfg.Role,
			"failover_timeout": int(f.cfg.FailoverTimeout.Seconds()), "checkpoint": true,
			"decline_offer_duration": refuseUnfit.Milliseconds(), "reconciliation_interval": tick.Milliseconds(),
		},
		"zookeeper_config": map[string]any{},
		"http_config":      map[string]any{"http_port": portOf(addr)},
	})
}

func portOf(addr string) int {
	i := strings.LastIndex(addr, ":")
	p, _ := strconv.Atoi(addr[i+1:])
	return p
}

func (f *Framework) serveLeader(w http.ResponseWriter, _ *http.Request) {
	addr := f.cfg.HTTPAddress
	if addr == "" {
		reply(w, http.StatusNotFound, message{"There is no leader"})
		return
	}
	reply(w, http.StatusOK, map[string]string{"leader": addr})
}

func (f *Framework) serveApps(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	apps := f.Apps(q.Get("id"), q.Get("cmd"), embeds(r, "apps.tasks", "app.tasks"))
	if embeds(r, "apps.readiness", "app.readiness") {
		f.WithReadiness(apps)
	}
	reply(w, http.StatusOK, map[string]any{"apps": appsFor(r, apps)})
}

func (f *Framework) serveCreate(w http.ResponseWriter, r *http.Request) {
	o, err := deployOptions(r)
	if err != nil {
		fail(w, err)
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	v, dep, err := f.CreateApp(body, o)
	if err != nil {
		fail(w, err)
		return
	}
	v.Deployments = []DeploymentRef{{dep.ID}}
	w.Header().Set("Location", "/v2/apps"+v.ID)
	w.Header().Set("Marathon-Deployment-Id", dep.ID)
	reply(w, http.StatusCreated, v)
}

// serveApp serves /v2/apps/{id}, whose id may hold slashes, and its
// sub-resources /restart, /tasks and /tasks/{taskId}.
func (f *Framework) serveApp(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/v2/apps")
	force := flag(r, "force")
	o, err := deployOptions(r)
	if err != nil {
		fail(w, err)
		return
	}
	switch {
	case strings.HasSuffix(rest, "/versions") && r.Method == http.MethodGet:
		vs, err := f.Versions(strings.TrimSuffix(rest, "/versions"))
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, map[string]any{"versions": vs})
	case strings.Contains(rest, "/versions/") && r.Method == http.MethodGet:
		i := strings.LastIndex(rest, "/versions/")
		a, err := f.Version(rest[:i], rest[i+len("/versions/"):])
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, a)
	case strings.HasSuffix(rest, "/restart") && r.Method == http.MethodPost:
		c, err := f.RestartApp(strings.TrimSuffix(rest, "/restart"), o)
		if err != nil {
			fail(w, err)
			return
		}
		deployed(w, http.StatusOK, c)
	case strings.HasSuffix(rest, "/tasks") && r.Method == http.MethodGet:
		ts, err := f.Tasks(strings.TrimSuffix(rest, "/tasks"))
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, map[string]any{"tasks": tasksFor(r, ts)})
	case strings.Contains(rest, "/tasks/") && r.Method == http.MethodDelete:
		i := strings.LastIndex(rest, "/tasks/")
		res, err := f.KillTask(rest[:i], rest[i+len("/tasks/"):], flag(r, "scale"), force)
		if err != nil {
			fail(w, err)
			return
		}
		if c, ok := res.(Change); ok {
			deployed(w, http.StatusOK, c)
			return
		}
		if k, ok := res.(struct {
			Task Task `json:"task"`
		}); ok && marathonOnly(r) {
			reply(w, http.StatusOK, map[string]any{"task": toMarathonTask(k.Task)})
			return
		}
		reply(w, http.StatusOK, res)
	case r.Method == http.MethodGet:
		v, err := f.App(rest, embeds(r, "app.tasks", "apps.tasks"))
		if err != nil {
			fail(w, err)
			return
		}
		if embeds(r, "app.readiness", "apps.readiness") {
			vs := []AppView{v}
			f.WithReadiness(vs)
			v = vs[0]
		}
		reply(w, http.StatusOK, map[string]any{"app": appFor(r, v)})
	case r.Method == http.MethodPut:
		body, ok := readBody(w, r)
		if !ok {
			return
		}
		c, created, err := f.PutApp(rest, body, o)
		if err != nil {
			fail(w, err)
			return
		}
		code := http.StatusOK
		if created {
			code = http.StatusCreated
			w.Header().Set("Location", "/v2/apps"+plan.CanonicalID(rest))
		}
		deployed(w, code, c)
	case r.Method == http.MethodDelete:
		c, err := f.DeleteApp(rest, force)
		if err != nil {
			fail(w, err)
			return
		}
		deployed(w, http.StatusOK, c)
	default:
		w.Header().Set("Allow", "GET, PUT, DELETE")
		reply(w, http.StatusMethodNotAllowed, message{fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path)})
	}
}

// serveEvents streams the event bus as server-sent events, each with a
// monotonic id; ?event_type= (repeatable) picks the types.
func (f *Framework) serveEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		reply(w, http.StatusInternalServerError, message{"streaming is not supported here"})
		return
	}
	types := r.URL.Query()["event_type"]
	ch, cancel := f.events.subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	attached, _ := json.Marshal(map[string]any{"eventType": "event_stream_attached", "remoteAddress": r.RemoteAddr,
		"timestamp": stamp(time.Now())})
	fmt.Fprintf(w, "event: event_stream_attached\ndata: %s\n\n", attached)
	fl.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepalive.C:
			io.WriteString(w, ":\n\n")
			fl.Flush()
		case ev, ok := <-ch:
			if !ok {
				return
			}
			if len(types) > 0 && !slices.Contains(types, ev.Type) {
				continue
			}
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.ID, ev.Type, ev.Data)
			fl.Flush()
		}
	}
}

func (f *Framework) serveGroup(w http.ResponseWriter, _ *http.Request, id string) {
	g, err := f.Group(id)
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, http.StatusOK, g)
}

func (f *Framework) serveDeployGroup(w http.ResponseWriter, r *http.Request, id string, create bool) {
	o, err := deployOptions(r)
	if err != nil {
		fail(w, err)
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	c, err := f.DeployGroup(id, body, create, o)
	if err != nil {
		fail(w, err)
		return
	}
	code := http.StatusOK
	if create {
		code = http.StatusCreated
	}
	deployed(w, code, c)
}
