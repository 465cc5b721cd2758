package auth

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// RedirectPolicy decides whether a Transport's credentials may go with a
// redirected request: first is the URL the client was asked for, next the
// URL of the hop. A non-nil error says why not.
//
// A client checks where it sends credentials against its first address
// only; the redirects it follows go wherever the server says, and the
// Transport would add the credentials on every hop. A policy is checked on
// each hop, where the credentials are added.
type RedirectPolicy func(first, next *url.URL) error

// SameOrigin lets credentials follow a redirect only to the first
// request's scheme and host:port, or from this host's loopback to another
// loopback address (nothing crosses a network). For a service's API,
// which has no business sending its callers elsewhere.
func SameOrigin(first, next *url.URL) error {
	if sameOrigin(first, next) || loopbackURL(first) && loopbackURL(next) {
		return nil
	}
	if next.Scheme != "https" && !loopbackURL(next) {
		return fmt.Errorf("%s is plain HTTP off this host", next.Redacted())
	}
	return fmt.Errorf("%s is not %s, the address the request was for", origin(next), origin(first))
}

// LeaderRedirect is SameOrigin, and also lets credentials follow a
// redirect from HTTPS to HTTPS on another host: a master that does not
// lead sends its callers to the one that does, and the leader's
// certificate is verified as the first master's was.
func LeaderRedirect(first, next *url.URL) error {
	if first.Scheme == "https" && next.Scheme == "https" {
		return nil
	}
	return SameOrigin(first, next)
}

func sameOrigin(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && strings.EqualFold(hostPort(a), hostPort(b))
}

// hostPort is u's host:port, with the scheme's default port made explicit.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

func origin(u *url.URL) string { return u.Scheme + "://" + u.Host }

// loopbackURL reports whether u names this host's loopback.
func loopbackURL(u *url.URL) bool {
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkRedirect applies t.Redirect to a redirected request (one the
// client made from a redirect response).
func (t *Transport) checkRedirect(req *http.Request) error {
	if t.Redirect == nil || req.Response == nil {
		return nil
	}
	first := req
	for first.Response != nil && first.Response.Request != nil {
		first = first.Response.Request
	}
	if err := t.Redirect(first.URL, req.URL); err != nil {
		return fmt.Errorf("refusing to send the credentials of %s on the redirect from %s to %s: %w",
			t.Credential.Principal, first.URL.Redacted(), req.URL.Redacted(), err)
	}
	return nil
}
