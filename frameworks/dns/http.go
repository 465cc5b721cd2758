package dns

import (
	"encoding/json"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// HTTPHandler serves Mesos-DNS's HTTP API: /v1/version, /v1/config,
// /v1/hosts/{host}, /v1/services/{service} and /v1/enumerate.
func (r *Resolver) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"Service": "Mesos-DNS", "URL": "https://github.com/agora-cluster/agora", "Version": r.version})
	})
	mux.HandleFunc("GET /v1/config", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, r.cfg.redacted())
	})
	mux.HandleFunc("GET /v1/hosts/{host}", r.serveHosts)
	mux.HandleFunc("GET /v1/services/{service}", r.serveServices)
	mux.HandleFunc("GET /v1/enumerate", r.serveEnumerate)
	mux.Handle("GET /ui/", uiHandler(r.changes))
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
	recs.mu.RLock()
	defer recs.mu.RUnlock()
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
	recs.mu.RLock()
	defer recs.mu.RUnlock()
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

// Mesos-DNS's /v1/enumerate: every framework, its published tasks, and
// each task's records (an SRV record's host is target:port).
type enumeration struct {
	Frameworks []enumFramework `json:"frameworks"`
}

type enumFramework struct {
	Tasks []enumTask `json:"tasks"`
	Name  string     `json:"name"`
}

type enumTask struct {
	Name    string       `json:"name"`
	ID      string       `json:"id"`
	Records []enumRecord `json:"records"`
}

type enumRecord struct {
	Name  string `json:"name"`
	Host  string `json:"host"`
	Rtype string `json:"rtype"`
}

func (r *Resolver) serveEnumerate(w http.ResponseWriter, _ *http.Request) {
	recs := r.loadedRecords(w)
	if recs == nil {
		return
	}
	recs.mu.RLock()
	byFramework := map[string][]enumTask{}
	for _, tr := range recs.tasks {
		t := enumTask{Name: tr.name, ID: tr.id, Records: make([]enumRecord, 0, len(tr.rrs))}
		for _, x := range tr.rrs {
			switch {
			case x.ip == nil:
				t.Records = append(t.Records, enumRecord{Name: x.name, Host: net.JoinHostPort(x.target, strconv.Itoa(int(x.port))), Rtype: "SRV"})
			case x.ip.To4() != nil:
				t.Records = append(t.Records, enumRecord{Name: x.name, Host: x.ip.String(), Rtype: "A"})
			default:
				t.Records = append(t.Records, enumRecord{Name: x.name, Host: x.ip.String(), Rtype: "AAAA"})
			}
		}
		byFramework[tr.frameworkID] = append(byFramework[tr.frameworkID], t)
	}
	out := enumeration{Frameworks: []enumFramework{}}
	for _, id := range sortedKeys(recs.frameworks) {
		ts := byFramework[id]
		sort.Slice(ts, func(i, j int) bool { return ts[i].ID < ts[j].ID })
		out.Frameworks = append(out.Frameworks, enumFramework{Name: recs.frameworks[id], Tasks: nonNil(ts)})
	}
	recs.mu.RUnlock()
	writeJSON(w, http.StatusOK, out)
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
