package dns

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// HTTPHandler serves Mesos-DNS's HTTP API: /v1/version, /v1/config,
// /v1/hosts/{host} and /v1/services/{service}.
func (r *Resolver) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"Service": "Mesos-DNS", "URL": "https://github.com/agora-cluster/agora", "Version": r.version})
	})
	mux.HandleFunc("GET /v1/config", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, r.cfg)
	})
	mux.HandleFunc("GET /v1/hosts/{host}", r.serveHosts)
	mux.HandleFunc("GET /v1/services/{service}", r.serveServices)
	return mux
}

type hostJSON struct {
	Host string `json:"host"`
	IP   string `json:"ip"`
}

type serviceJSON struct {
	Service string `json:"service"`
	Host    string `json:"host"`
	IP      string `json:"ip"`
	Port    string `json:"port"`
}

// httpName makes a query name an FQDN; a bare name is taken as under the
// domain when it does not already end in it.
func (r *Resolver) httpName(s string) string {
	n := strings.ToLower(dns.Fqdn(s))
	if dom := r.cfg.Domain + "."; n != dom && !strings.HasSuffix(n, "."+dom) {
		n += dom
	}
	return n
}

func (r *Resolver) loadedRecords(w http.ResponseWriter) *records {
	recs := r.recs.Load()
	if recs == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no records yet: the master has not been read"})
	}
	return recs
}

func (r *Resolver) serveHosts(w http.ResponseWriter, req *http.Request) {
	recs := r.loadedRecords(w)
	if recs == nil {
		return
	}
	name := r.httpName(req.PathValue("host"))
	out := []hostJSON{}
	for _, ip := range recs.a[name] {
		out = append(out, hostJSON{Host: name, IP: ip.String()})
	}
	writeJSON(w, http.StatusOK, out)
}

func (r *Resolver) serveServices(w http.ResponseWriter, req *http.Request) {
	recs := r.loadedRecords(w)
	if recs == nil {
		return
	}
	name := r.httpName(req.PathValue("service"))
	out := []serviceJSON{}
	for _, s := range recs.srv[name] {
		port := strconv.Itoa(int(s.port))
		ips := recs.a[s.target]
		if len(ips) == 0 {
			out = append(out, serviceJSON{Service: name, Host: s.target, Port: port})
		}
		for _, ip := range ips {
			out = append(out, serviceJSON{Service: name, Host: s.target, IP: ip.String(), Port: port})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Host != out[j].Host {
			return out[i].Host < out[j].Host
		}
		return out[i].Port < out[j].Port
	})
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
