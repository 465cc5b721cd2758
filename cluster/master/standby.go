package master

import (
	"encoding/json"
	"net/http"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

// LeaderFunc tells a master that does not lead who does: the leader's
// HTTP address (host:port) and MasterInfo, or ok false while no master
// leads.
type LeaderFunc func() (addr string, info *mesos.MasterInfo, ok bool)

// StandbyHandler is the HTTP API of a master that is not the leader (Mesos's
// high-availability.md): every call that only the leader can answer gets
// 307 Temporary Redirect to the same path on the leader, or 503 with
// Retry-After while no master leads. /redirect and /master/redirect send
// there too; /health, /version, /flags and /metrics/snapshot answer
// locally (master/elected is 0), so monitoring sees every master. The
// body of a redirect says who leads, for tools that do not follow it; a
// browser opening the web UI here is sent to the leader's.
func StandbyHandler(self mesos.MasterInfo, flags map[string]string, leader LeaderFunc, opts api.HTTPOptions) http.Handler {
	mux := http.NewServeMux()
	both := func(path string, h http.HandlerFunc) {
		mux.HandleFunc(path, h)
		mux.HandleFunc("/master"+path, h)
	}
	redirect := func(w http.ResponseWriter, r *http.Request) {
		addr, info, ok := leader()
		doc := map[string]any{"elected": false, "id": self.GetID(), "pid": self.GetPID(), "hostname": self.GetHostname()}
		if !ok {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			doc["error"] = "no master is the leader now; retry shortly"
			json.NewEncoder(w).Encode(doc)
			return
		}
		path := r.URL.EscapedPath()
		if strings.HasSuffix(path, "/redirect") {
			path = ""
		}
		loc := "//" + addr + path
		if r.URL.RawQuery != "" && path != "" {
			loc += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", loc)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTemporaryRedirect)
		doc["leader"] = info.GetPID()
		if b, err := api.JSON.Marshal(info); err == nil {
			doc["leader_info"] = json.RawMessage(b)
		}
		json.NewEncoder(w).Encode(doc)
	}
	both("/redirect", redirect)
	both("/health", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, r, doc{"version": api.MesosVersion, "agora_version": api.Version})
	})
	both("/flags", func(w http.ResponseWriter, r *http.Request) { api.WriteJSON(w, r, doc{"flags": flags}) })
	mux.HandleFunc("/metrics/snapshot", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, r, doc{"master/elected": 0.0, "master/uptime_secs": 0.0})
	})
	mux.HandleFunc("/", redirect)
	return opts.Wrap(mux)
}
