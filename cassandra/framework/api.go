package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// Status is GET /v1/status: the cluster at a glance.
type Status struct {
	Cluster     string `json:"cluster"`
	FrameworkID string `json:"framework_id"`
	Role        string `json:"role"`
	Nodes       int    `json:"nodes"`
	Placed      int    `json:"placed"`
	Running     int    `json:"running"`
	Up          int    `json:"up"`
	HeapMB      int    `json:"heap_mb"`
	// Replacing counts the nodes being placed in a lost node's stead (or
	// repaired after joining in its place);
	// Retired, the placements left whose reservations and volumes are
	// still to be released.
	Replacing int `json:"replacing"`
	Retired   int `json:"retired"`
	// Destroying: a destroy is under way; Destroyed: it has ended.
	Destroying bool `json:"destroying"`
	Destroyed  bool `json:"destroyed"`
	// NumTokens is each node's num_tokens; MasterURL, the master's web UI
	// (the subscribed master's, else the first given as host:port), where
	// the nodes' tasks and sandboxes are.
	NumTokens int    `json:"num_tokens"`
	MasterURL string `json:"master_url,omitempty"`
}

// Endpoints is GET /v1/endpoints: where clients connect.
type Endpoints struct {
	Cluster string `json:"cluster"`
	// Native are the native-transport (CQL) addresses of the nodes that
	// are up, host:port, for gocql or `cqlsh HOST PORT`.
	Native []string `json:"native"`
	// JMX are the nodes' JMX addresses (bound on their agent's loopback),
	// for nodetool there.
	JMX []string `json:"jmx"`
}

// Status is the cluster at a glance.
func (f *Framework) Status() Status {
	master := f.masterURL()
	f.mu.Lock()
	defer f.mu.Unlock()
	s := Status{Cluster: f.spec.Name, FrameworkID: f.frameworkID, Role: f.spec.Role, Nodes: len(f.nodes), HeapMB: f.spec.HeapMB(),
		Retired: len(f.retired), Destroying: f.destroying, Destroyed: f.destroyedAt(), NumTokens: f.spec.NumTokens, MasterURL: master}
	for _, n := range f.nodes {
		if n.ReplaceAddress != "" || n.RepairPending {
			s.Replacing++
		}
		if n.AgentID != "" {
			s.Placed++
		}
		if n.State == "TASK_RUNNING" {
			s.Running++
		}
		if n.Up {
			s.Up++
		}
	}
	return s
}

// Endpoints are the addresses of the nodes that are up.
func (f *Framework) Endpoints() Endpoints {
	e := Endpoints{Cluster: f.spec.Name, Native: []string{}, JMX: []string{}}
	for _, n := range f.Nodes() {
		if n.Up {
			e.Native = append(e.Native, n.NativeAddr())
			e.JMX = append(e.JMX, n.Host+":"+strconv.FormatUint(n.JMXPort, 10))
		}
	}
	return e
}

// Handler is the scheduler's REST API and the ring's web page at /ui/
// (the webui_url, /, leads there): GET /v1/status, /v1/nodes,
// /v1/endpoints and /v1/config (the spec); POST /v1/nodes/add?count=N to
// scale out; POST /v1/restart ({"yaml": {...}} or nothing) for a rolling
// restart or configuration change, and GET /v1/restart for its progress;
// POST /v1/repair and /v1/cleanup (?keyspace=K) run nodetool repair -pr
// or cleanup on each node in turn, and GET /v1/job follows the last;
// POST /v1/destroy?cluster=NAME kills the nodes, destroys their volumes,
// unreserves their resources and ends the framework (the name guards
// against destroying another ring by mistake).
func (f *Framework) Handler() http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		b, _ := json.MarshalIndent(v, "", "  ")
		w.Write(append(b, '\n'))
	}
	mux.Handle("GET /ui/", uiHandler(f.changes))
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { reply(w, f.Status()) })
	mux.HandleFunc("GET /v1/nodes", func(w http.ResponseWriter, r *http.Request) { reply(w, f.Nodes()) })
	mux.HandleFunc("GET /v1/endpoints", func(w http.ResponseWriter, r *http.Request) { reply(w, f.Endpoints()) })
	mux.HandleFunc("GET /v1/config", func(w http.ResponseWriter, r *http.Request) { reply(w, f.Spec()) })
	mux.HandleFunc("GET /v1/restart", func(w http.ResponseWriter, r *http.Request) {
		st, ok := f.RollingStatus()
		if !ok {
			http.Error(w, "no rolling restart yet", http.StatusNotFound)
			return
		}
		reply(w, st)
	})
	mux.HandleFunc("POST /v1/restart", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			YAML map[string]json.RawMessage `json:"yaml"`
		}
		if r.ContentLength != 0 {
			d := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
			d.DisallowUnknownFields()
			if err := d.Decode(&req); err != nil {
				http.Error(w, "the body: "+err.Error()+` (want {"yaml": {"key": value, ...}})`, http.StatusBadRequest)
				return
			}
		}
		if err := f.RollingRestart(req.YAML); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		st, _ := f.RollingStatus()
		w.WriteHeader(http.StatusAccepted)
		reply(w, st)
	})
	mux.HandleFunc("POST /v1/destroy", func(w http.ResponseWriter, r *http.Request) {
		if name := r.URL.Query().Get("cluster"); name != f.Spec().Name {
			http.Error(w, fmt.Sprintf("cluster %q: this scheduler runs ring %q; name it (?cluster=NAME) to destroy it", name, f.Spec().Name), http.StatusBadRequest)
			return
		}
		f.Destroy(context.WithoutCancel(r.Context()))
		w.WriteHeader(http.StatusAccepted)
		reply(w, f.Status())
	})
	for _, kind := range []string{JobRepair, JobCleanup} {
		mux.HandleFunc("POST /v1/"+kind, func(w http.ResponseWriter, r *http.Request) {
			j, err := f.StartJob(kind, r.URL.Query().Get("keyspace"))
			if err != nil {
				http.Error(w, err.Error(), http.StatusConflict)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
			b, _ := json.MarshalIndent(j, "", "  ")
			w.Write(append(b, '\n'))
		})
	}
	mux.HandleFunc("GET /v1/job", func(w http.ResponseWriter, r *http.Request) {
		j, ok := f.JobStatus()
		if !ok {
			http.Error(w, "no repair or cleanup yet", http.StatusNotFound)
			return
		}
		reply(w, j)
	})
	mux.HandleFunc("POST /v1/nodes/add", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("count"))
		if err != nil {
			http.Error(w, "count: give the number of nodes to add (?count=N)", http.StatusBadRequest)
			return
		}
		if err := f.AddNodes(r.Context(), n); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		reply(w, f.Nodes())
	})
	return mux
}
