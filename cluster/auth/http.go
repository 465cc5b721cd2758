package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
)

// Realm is the kind of request an authentication flag covers, as Mesos
// splits them.
type Realm int

const (
	// Open requests never need credentials (/health, /version).
	Open Realm = iota
	// Frameworks: the scheduler API (--authenticate_frameworks).
	Frameworks
	// Agents: the agents' protocol with the master (--authenticate_agents).
	Agents
	// ReadOnly: requests that cannot change the cluster
	// (--authenticate_http_readonly).
	ReadOnly
	// ReadWrite: the operator API and the endpoints that change the
	// cluster (--authenticate_http_readwrite).
	ReadWrite
	realms
)

// Flag is the flag that makes r's requests need credentials.
func (r Realm) Flag() string {
	switch r {
	case Frameworks:
		return "--authenticate_frameworks"
	case Agents:
		return "--authenticate_agents"
	case ReadOnly:
		return "--authenticate_http_readonly"
	case ReadWrite:
		return "--authenticate_http_readwrite"
	}
	return "none"
}

// Options say which realms need credentials and against what.
type Options struct {
	// Credentials are the accepted principals (--credentials).
	Credentials *Credentials
	// Frameworks, Agents, HTTPReadOnly and HTTPReadWrite are the
	// --authenticate_* flags.
	Frameworks, Agents, HTTPReadOnly, HTTPReadWrite bool
}

// Authenticator checks the HTTP Basic credentials of the requests whose
// realm its options cover, and counts the outcomes. The zero value and
// nil require nothing.
type Authenticator struct {
	creds     *Credentials
	required  [realms]bool
	successes atomic.Uint64
	failures  atomic.Uint64
}

// New checks o: a realm cannot need credentials without a credentials
// file to check them against.
func New(o Options) (*Authenticator, error) {
	a := &Authenticator{creds: o.Credentials}
	a.required[Frameworks] = o.Frameworks
	a.required[Agents] = o.Agents
	a.required[ReadOnly] = o.HTTPReadOnly
	a.required[ReadWrite] = o.HTTPReadWrite
	if o.Credentials == nil {
		for r, on := range a.required {
			if on {
				return nil, fmt.Errorf("%s needs --credentials (the file of accepted principals and secrets)", Realm(r).Flag())
			}
		}
	}
	return a, nil
}

// Clone is an Authenticator with a's credentials and flags and counters of
// its own, for another server (the agents beside a dev master).
func (a *Authenticator) Clone() *Authenticator {
	if a == nil {
		return nil
	}
	return &Authenticator{creds: a.creds, required: a.required}
}

// Required reports whether requests of realm r need credentials.
func (a *Authenticator) Required(r Realm) bool {
	return a != nil && r > Open && r < realms && a.required[r]
}

// Enabled reports whether any realm needs credentials.
func (a *Authenticator) Enabled() bool {
	for r := Open + 1; r < realms; r++ {
		if a.Required(r) {
			return true
		}
	}
	return false
}

// ErrNoCredentials and ErrBadCredentials are why a request was refused.
var (
	ErrNoCredentials  = errors.New("no credentials")
	ErrBadCredentials = errors.New("invalid credentials")
)

// Check authenticates r for realm: the principal, or an error when realm
// needs credentials and r has none that are valid. A realm that needs
// none gives "" and no error.
func (a *Authenticator) Check(r *http.Request, realm Realm) (string, error) {
	if !a.Required(realm) {
		return "", nil
	}
	return a.check(r)
}

// check verifies r's credentials for Check. It is a function of its own
// so that Check's frame stays small where no credentials are needed:
// every request passes through Check on a fresh goroutine's stack, and
// the header parsing here made that stack grow (a copy of the whole
// handler chain) for requests of realms that need none.
//
//go:noinline
func (a *Authenticator) check(r *http.Request) (string, error) {
	principal, secret, ok := r.BasicAuth()
	if !ok {
		a.failures.Add(1)
		return "", ErrNoCredentials
	}
	if !a.creds.Verify(principal, secret) {
		a.failures.Add(1)
		return principal, ErrBadCredentials
	}
	a.successes.Add(1)
	return principal, nil
}

// Authenticate is Check for a handler: on success it returns r with the
// principal in its context; otherwise it has answered 401 (with Basic's
// challenge and a message naming the flag) and returns nil, and the
// request goes no further.
func (a *Authenticator) Authenticate(w http.ResponseWriter, r *http.Request, realm Realm) *http.Request {
	principal, err := a.Check(r, realm)
	switch {
	case err == nil && principal == "":
		return r
	case err == nil:
		return r.WithContext(WithPrincipal(r.Context(), principal))
	}
	refuse(w, principal, realm, err)
	return nil
}

// refuse answers 401 for Authenticate. It is a function of its own so
// that Authenticate's frame stays small: every request passes through
// Authenticate on a fresh goroutine's stack, and its formatting here
// made that stack grow for requests that never come here.
//
//go:noinline
func refuse(w http.ResponseWriter, principal string, realm Realm, err error) {
	w.Header().Set("WWW-Authenticate", `Basic realm="agora"`)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	if errors.Is(err, ErrBadCredentials) {
		io.WriteString(w, fmt.Sprintf("invalid credentials for principal %q: %s is on; the principal and secret must be in the server's --credentials file\n", principal, realm.Flag()))
	} else {
		io.WriteString(w, fmt.Sprintf("authentication required: %s is on; send HTTP Basic credentials (a principal and secret from the server's --credentials file)\n", realm.Flag()))
	}
}

// Metrics are the outcome counters, named under prefix ("master",
// "slave") for /metrics/snapshot.
func (a *Authenticator) Metrics(prefix string) map[string]float64 {
	var ok, failed uint64
	if a != nil {
		ok, failed = a.successes.Load(), a.failures.Load()
	}
	return map[string]float64{
		prefix + "/http_authentication_successes": float64(ok),
		prefix + "/http_authentication_failures":  float64(failed),
	}
}

type principalKey struct{}

// WithPrincipal returns ctx carrying the authenticated principal.
func WithPrincipal(ctx context.Context, principal string) context.Context {
	return context.WithValue(ctx, principalKey{}, principal)
}

// Principal is the principal a request was authenticated as, if any.
func Principal(ctx context.Context) (string, bool) {
	p, ok := ctx.Value(principalKey{}).(string)
	return p, ok && p != ""
}

// Apply adds c to req as HTTP Basic credentials; an empty credential
// adds nothing.
func (c Credential) Apply(req *http.Request) {
	if c.Principal != "" {
		req.SetBasicAuth(c.Principal, c.Secret)
	}
}

// Transport sends every request with Credential (HTTP Basic), for
// clients that do not build their requests one by one.
type Transport struct {
	Base       http.RoundTripper // nil: http.DefaultTransport
	Credential Credential
	// Redirect, if set, is asked before the credentials go with a
	// redirected request; a hop it refuses is not sent, and the client
	// gets its reason as the error. Nil sends them on every hop.
	Redirect RedirectPolicy
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if t.Credential.Principal == "" {
		return base.RoundTrip(req)
	}
	// Checked before a caller's own Authorization is let through: the
	// client copies that header onto redirects to the same host name,
	// whatever the scheme and port.
	if err := t.checkRedirect(req); err != nil { // redirect.go
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	if req.Header.Get("Authorization") != "" {
		return base.RoundTrip(req)
	}
	req = req.Clone(req.Context())
	t.Credential.Apply(req)
	return base.RoundTrip(req)
}

// CloseIdleConnections closes the base transport's idle connections, as
// http.Client.CloseIdleConnections expects of a transport.
func (t *Transport) CloseIdleConnections() {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if c, ok := base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
