package chronos

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds a request body: a job definition is small.
const maxBody = 1 << 20

// Handler serves Chronos's REST API under /v1/scheduler.
func (f *Framework) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /ui/", uiHandler(f.store.changes))
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	mux.HandleFunc("GET /v1/scheduler/jobs", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, http.StatusOK, f.Jobs())
	})
	mux.HandleFunc("GET /v1/scheduler/jobs/search", f.serveSearch)
	mux.HandleFunc("POST /v1/scheduler/iso8601", f.servePut(kindScheduled))
	mux.HandleFunc("POST /v1/scheduler/dependency", f.servePut(kindDependent))
	mux.HandleFunc("PUT /v1/scheduler/job/{name}", func(w http.ResponseWriter, r *http.Request) {
		done(w, f.Start(r.PathValue("name")))
	})
	mux.HandleFunc("DELETE /v1/scheduler/job/{name}", func(w http.ResponseWriter, r *http.Request) {
		done(w, f.Delete(r.Context(), r.PathValue("name")))
	})
	mux.HandleFunc("DELETE /v1/scheduler/task/kill/{name}", func(w http.ResponseWriter, r *http.Request) {
		done(w, f.Kill(r.Context(), r.PathValue("name")))
	})
	mux.HandleFunc("PUT /v1/scheduler/task/{id}", f.serveReport)
	mux.HandleFunc("GET /v1/scheduler/job/stat/{name}", func(w http.ResponseWriter, r *http.Request) {
		h, err := f.History(r.PathValue("name"))
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, stats(h))
	})
	// An agora addition: the next runs of a job (?n=, default 10).
	mux.HandleFunc("GET /v1/scheduler/job/next/{name}", func(w http.ResponseWriter, r *http.Request) {
		n := 10
		if s := r.URL.Query().Get("n"); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v < 1 || v > 1000 {
				fail(w, badRequest("n %q is not a number from 1 to 1000", s))
				return
			}
			n = v
		}
		ts, err := f.NextRuns(r.PathValue("name"), n)
		if err != nil {
			fail(w, err)
			return
		}
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = t.Format(time.RFC3339)
		}
		reply(w, http.StatusOK, map[string]any{"name": r.PathValue("name"), "nextRuns": out})
	})
	mux.HandleFunc("GET /v1/scheduler/graph/csv", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		io.WriteString(w, f.graphCSV())
	})
	mux.HandleFunc("GET /v1/scheduler/graph/dot", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/vnd.graphviz")
		io.WriteString(w, f.graphDot())
	})
	mux.HandleFunc("GET /leader", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, http.StatusOK, map[string]string{"leader": f.cfg.HTTPAddress})
	})
	return mux
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers an error: an *APIError with its code and message, others
// with 500.
func fail(w http.ResponseWriter, err error) {
	var e *APIError
	if errors.As(err, &e) {
		http.Error(w, e.Msg, e.Code)
		return
	}
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

// done answers 204, Chronos's answer to a change, or the error.
func done(w http.ResponseWriter, err error) {
	if err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *Framework) servePut(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			fail(w, badRequest("request body: %v", err))
			return
		}
		var j Job
		if err := json.Unmarshal(b, &j); err != nil {
			fail(w, badRequest("the job is not valid JSON: %v", err))
			return
		}
		done(w, f.Put(kind, j))
	}
}

// serveReport takes an async job's report of its run: {"statusCode": N}.
func (f *Framework) serveReport(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		fail(w, badRequest("request body: %v", err))
		return
	}
	var n struct {
		StatusCode *int `json:"statusCode"`
	}
	if err := json.Unmarshal(b, &n); err != nil || n.StatusCode == nil {
		fail(w, badRequest(`the report must be {"statusCode": N} (0 for success), not %q`, b))
		return
	}
	done(w, f.Report(r.PathValue("id"), *n.StatusCode))
}

// serveSearch is Chronos's case-insensitive search by name, command or
// either (any).
func (f *Framework) serveSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name, cmd, anyOf := strings.ToLower(q.Get("name")), strings.ToLower(q.Get("command")), strings.ToLower(q.Get("any"))
	out := []JobView{}
	for _, j := range f.Jobs() {
		n, c := strings.ToLower(j.Name), strings.ToLower(j.Command)
		if name != "" && !strings.Contains(n, name) || cmd != "" && !strings.Contains(c, cmd) ||
			anyOf != "" && !strings.Contains(n, anyOf) && !strings.Contains(c, anyOf) {
			continue
		}
		out = append(out, j)
	}
	reply(w, http.StatusOK, out)
}

// lastState is a job's last outcome as the graph shows it.
func lastState(j JobView) string {
	switch {
	case j.LastSuccess == "" && j.LastError == "":
		return "fresh"
	case j.LastError > j.LastSuccess:
		return "failure"
	}
	return "success"
}

// graphCSV is Chronos's graph/csv: a node line per job and a link line
// per dependency.
func (f *Framework) graphCSV() string {
	var b strings.Builder
	jobs := f.Jobs()
	for _, j := range jobs {
		fmt.Fprintf(&b, "node,%s,%s,%s\n", j.Name, lastState(j), j.State)
	}
	for _, j := range jobs {
		for _, p := range j.Parents {
			fmt.Fprintf(&b, "link,%s,%s\n", p, j.Name)
		}
	}
	return b.String()
}

// graphDot is the dependency graph in Graphviz DOT.
func (f *Framework) graphDot() string {
	var b strings.Builder
	b.WriteString("digraph G {\n")
	for _, j := range f.Jobs() {
		fmt.Fprintf(&b, "  %q;\n", j.Name)
		for _, p := range j.Parents {
			fmt.Fprintf(&b, "  %q -> %q;\n", p, j.Name)
		}
	}
	b.WriteString("}\n")
	return b.String()
}
