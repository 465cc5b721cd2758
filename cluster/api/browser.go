package api

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"net/http/pprof"
	"net/url"
	"strings"

	"github.com/agora-cluster/agora/cluster/auth"
)

// What a web page may do with a master's or an agent's endpoints. Browsers
// send a page's requests to any host:port, with the user's network
// position: without care, any page the operator opens could read sandbox
// files or post changes to the cluster. So, by default:
//
//   - nothing is readable cross-origin (no Access-Control-Allow-Origin,
//     no JSONP) unless the operator lists the page's origin;
//   - a change must come as JSON or protobuf, content types a page on
//     another origin cannot send without a CORS preflight, which is never
//     granted; the form endpoints Mesos documents (/reserve, /weights...)
//     take forms only from this server's own pages (SameOrigin);
//   - Go's profiles (/debug/pprof) are served only when asked for.

// HTTPOptions are the browser- and operator-facing options of a server's
// HTTP endpoints; the zero value is the safe default.
type HTTPOptions struct {
	// CORSAllowedOrigins lists the origins ("https://dash.example.com")
	// whose pages may read the JSON endpoints cross-origin, with CORS or
	// JSONP. It grants reads only: changes stay same-origin.
	CORSAllowedOrigins []string
	// EnablePprof serves Go's profiles under /debug/pprof/.
	EnablePprof bool
	// Auth, if set, asks for HTTP Basic credentials on the requests its
	// flags cover (see AuthRealm); nil asks for none.
	Auth *auth.Authenticator
}

// ParseOrigins parses a comma-separated list of origins, as given to
// --cors_allowed_origins: each scheme://host[:port], without a path. "*"
// is refused: any page could then read sandbox files.
func ParseOrigins(s string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(s, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o == "*" || o == "null" {
			return nil, fmt.Errorf("origin %q would let any web page read the cluster's files; list origins such as https://dash.example.com", o)
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("origin %q is not scheme://host[:port] (for example https://dash.example.com:8443)", o)
		}
		out = append(out, u.Scheme+"://"+strings.ToLower(u.Host))
	}
	return out, nil
}

type jsonpKey struct{}

// Wrap applies the options to h: authentication first (a refused request
// reaches nothing, profiles included), then the CORS answer for listed
// origins (with Vary: Origin, since the answer depends on it), whether
// JSONP is served (see WriteJSON) and /debug/pprof.
func (o HTTPOptions) Wrap(h http.Handler) http.Handler {
	allowed := map[string]bool{}
	for _, origin := range o.CORSAllowedOrigins {
		allowed[origin] = true
	}
	var profiles http.Handler
	if o.EnablePprof {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index) // and the named profiles: heap, goroutine...
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		profiles = mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r = o.Auth.Authenticate(w, r, AuthRealm(r)); r == nil {
			return
		}
		if profiles != nil && strings.HasPrefix(r.URL.Path, "/debug/pprof/") {
			profiles.ServeHTTP(w, r)
			return
		}
		if len(allowed) > 0 {
			w.Header().Add("Vary", "Origin")
			if origin := r.Header.Get("Origin"); allowed[origin] {
				w.Header().Set("Access-Control-Allow-Origin", origin)
			}
			// A <script> sends no Origin; its Referer names the page.
			if allowed[pageOrigin(r)] {
				r = r.WithContext(context.WithValue(r.Context(), jsonpKey{}, true))
			}
		}
		h.ServeHTTP(w, r)
	})
}

// The endpoints of the master and the agent that change something
// whatever the method, as Mesos files them under
// --authenticate_http_readwrite (with or without the /master or /slave(1)
// prefix).
var readWritePaths = map[string]bool{
	"/api/v1": true, "/reserve": true, "/unreserve": true, "/create-volumes": true, "/destroy-volumes": true,
	"/quota": true, "/weights": true, "/maintenance/schedule": true, "/machine/down": true, "/machine/up": true,
	"/teardown": true,
}

// AuthRealm is the realm of a request to the master or an agent: which
// --authenticate_* flag covers it. /health and /version stay open, as in
// Mesos, and so does the executor API (its callers are the agent's own
// executors, which hold no credentials yet). Every other request is
// read-only if it is a GET or HEAD of a path not in readWritePaths, and
// read-write otherwise: a route added later is covered without being
// listed here.
func AuthRealm(r *http.Request) auth.Realm {
	path := strings.TrimSuffix(r.URL.Path, "/")
	for _, prefix := range []string{"/master", "/slave(1)"} {
		if rest, ok := strings.CutPrefix(path, prefix); ok && (rest == "" || rest[0] == '/') {
			path = rest
			break
		}
	}
	switch {
	case path == "/health" || path == "/version":
		return auth.Open
	case path == "/api/v1/executor":
		return auth.Open
	case path == "/api/v1/scheduler":
		return auth.Frameworks
	case path == AgentPath:
		return auth.Agents
	case readWritePaths[path] || strings.HasPrefix(path, "/quota/"):
		return auth.ReadWrite
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		return auth.ReadOnly
	}
	return auth.ReadWrite
}

// pageOrigin is the origin of the page that sent r, from Origin or else
// Referer; "" when neither says.
func pageOrigin(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		return o
	}
	u, err := url.Parse(r.Header.Get("Referer"))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + strings.ToLower(u.Host)
}

// jsonpAllowed reports whether r came from a page whose origin the
// operator listed (Wrap says so in the request's context).
func jsonpAllowed(r *http.Request) bool {
	ok, _ := r.Context().Value(jsonpKey{}).(bool)
	return ok
}

// CheckContentType refuses, with 415 naming the accepted types, a request
// whose Content-Type is missing or none of accepted (parameters such as
// charset are tolerated).
func CheckContentType(r *http.Request, accepted ...string) *HTTPError {
	got := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(got); err == nil {
		for _, a := range accepted {
			if mt == a {
				return nil
			}
		}
	}
	if strings.TrimSpace(got) == "" {
		got = "none"
	} else {
		got = fmt.Sprintf("%q", got)
	}
	return &HTTPError{http.StatusUnsupportedMediaType,
		fmt.Sprintf("expecting 'Content-Type' of %s, got %s", strings.Join(accepted, " or "), got)}
}

// SameOrigin is the CSRF guard of the endpoints that take forms, which a
// page on any origin can post without a preflight. A request a browser
// sends says where from (Origin, Sec-Fetch-Site): one from another origin
// — or another port of the same host — is refused with 403 naming it.
// Clients that send neither header (curl, Mesos tools) are not browsers
// and pass unchanged.
func SameOrigin(r *http.Request) *HTTPError {
	origin := r.Header.Get("Origin")
	site := r.Header.Get("Sec-Fetch-Site")
	if origin == "" && site == "" {
		return nil
	}
	refuse := func(why string) *HTTPError {
		return &HTTPError{http.StatusForbidden, fmt.Sprintf(
			"refusing a change sent by a page on another origin (%s): only pages this server serves may post forms here; other clients should not send Origin", why)}
	}
	if site != "" && site != "same-origin" && site != "none" {
		return refuse(fmt.Sprintf("Origin %q, Sec-Fetch-Site %q", origin, site))
	}
	if origin != "" && origin != selfOrigin(r) {
		return refuse(fmt.Sprintf("Origin %q, this server is %q", origin, selfOrigin(r)))
	}
	return nil
}

// selfOrigin is the origin r was addressed to.
func selfOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + strings.ToLower(r.Host)
}
