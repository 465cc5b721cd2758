package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"sync/atomic"
)

// ServiceGuard asks every request to a built-in service's own API
// (Marathon's /v2, Chronos's /v1/scheduler, the DNS server's /v1, the
// Hadoop framework's /api/v1) for HTTP Basic credentials, as Marathon's
// and Chronos's --http_credentials do, except on the paths that must stay
// reachable without them: /ping for a load balancer, and the paths a
// service's own executors call. A nil guard asks for nothing.
type ServiceGuard struct {
	creds *Credentials
	realm string
	open  []string
	// flags name where the accepted credentials come from, for the 401's
	// message.
	flags     string
	successes atomic.Uint64
	failures  atomic.Uint64
}

// ServiceOptions configure a ServiceGuard.
type ServiceOptions struct {
	// Credentials are the accepted principals. Required.
	Credentials *Credentials
	// Realm names the API in the challenge (WWW-Authenticate: Basic
	// realm="..."), e.g. "marathon".
	Realm string
	// Open are the paths served without credentials: an exact path
	// ("/ping"), or a prefix ending in "/" ("/umbilical/v1/").
	Open []string
	// Flags say where the server's accepted credentials come from, for
	// the message of a refusal (default "--credentials or --http_credentials").
	Flags string
}

// NewServiceGuard checks o: credentials and a realm are needed, and open
// paths must be absolute.
func NewServiceGuard(o ServiceOptions) (*ServiceGuard, error) {
	if o.Credentials == nil {
		return nil, errors.New("service authentication needs credentials to check requests against")
	}
	if o.Realm == "" || strings.ContainsAny(o.Realm, "\"\\\r\n") {
		return nil, fmt.Errorf("service authentication: realm %q must be a non-empty name without quotes", o.Realm)
	}
	for _, p := range o.Open {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("service authentication: open path %q is not absolute", p)
		}
	}
	if o.Flags == "" {
		o.Flags = "--credentials or --http_credentials"
	}
	return &ServiceGuard{creds: o.Credentials, realm: o.Realm, open: o.Open, flags: o.Flags}, nil
}

// ParseUserPassword reads Marathon's and Chronos's --http_credentials
// value, "user:password", as the one accepted credential. The password
// may itself hold colons.
func ParseUserPassword(s string) (*Credentials, error) {
	user, password, ok := strings.Cut(s, ":")
	switch {
	case !ok:
		return nil, errors.New("not of the form user:password")
	case user == "":
		return nil, errors.New("empty user before the ':' of user:password")
	case password == "":
		return nil, fmt.Errorf("empty password for user %q", user)
	}
	// The same parsing as a credentials file, so a password is checked as
	// any other secret (a "sha256:..." one as its hash).
	b, err := json.Marshal(map[string][]Credential{"credentials": {{Principal: user, Secret: password}}})
	if err != nil {
		return nil, err
	}
	return ParseCredentials(b, "")
}

// Open reports whether p is served without credentials. A path that is
// not in its clean form ("/ping/../v2/apps") is never open.
func (g *ServiceGuard) Open(p string) bool {
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	if clean != p {
		return false
	}
	for _, o := range g.open {
		if p == o || (strings.HasSuffix(o, "/") && strings.HasPrefix(p, o)) {
			return true
		}
	}
	return false
}

// Wrap is next behind the guard: a request to a path that is not open
// needs valid credentials, or is answered 401 with Basic's challenge and
// a message naming what is wrong, and goes no further. The principal of
// an authenticated request is in its context (Principal).
func (g *ServiceGuard) Wrap(next http.Handler) http.Handler {
	if g == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.Open(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		principal, secret, ok := r.BasicAuth()
		switch {
		case !ok:
			g.failures.Add(1)
			g.refuse(w, fmt.Sprintf("authentication required: the %s API asks for HTTP Basic credentials (a principal and secret its server accepts through %s)", g.realm, g.flags))
		case !g.creds.Verify(principal, secret):
			g.failures.Add(1)
			g.refuse(w, fmt.Sprintf("invalid credentials for principal %q: the %s API accepts only the principals and secrets of %s", principal, g.realm, g.flags))
		default:
			g.successes.Add(1)
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), principal)))
		}
	})
}

func (g *ServiceGuard) refuse(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", g.realm))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	io.WriteString(w, msg+"\n")
}

// Counts are the requests authenticated and refused so far.
func (g *ServiceGuard) Counts() (successes, failures uint64) {
	if g == nil {
		return 0, 0
	}
	return g.successes.Load(), g.failures.Load()
}

// Credentials are the principals the guard accepts (nil for a nil
// guard), for an API beside it that checks Basic credentials itself.
func (g *ServiceGuard) Credentials() *Credentials {
	if g == nil {
		return nil
	}
	return g.creds
}
