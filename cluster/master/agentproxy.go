package master

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/tlsconf"
)

// The master relays to its agents what the web UI reads from them — an
// agent's /state and its sandbox files — so that the UI stays on the
// master's origin: agents answer no page on another origin (see
// api.HTTPOptions), and a browser may not reach them at all.
//
//	GET /agent/<agent-id>/state
//	GET /agent/<agent-id>/files/browse?path=...
//	GET /agent/<agent-id>/files/read?path=...&offset=...&length=...
//	GET /agent/<agent-id>/files/download?path=...   (Range works)

// AgentProxyPrefix is where the relay is mounted.
const AgentProxyPrefix = "/agent/"

// agentProxyPaths are the agent endpoints relayed: reads only.
var agentProxyPaths = map[string]bool{"state": true, "files/browse": true, "files/read": true, "files/download": true}

// Request and answer headers relayed: what ranges, caching and the
// download need, and the caller's credentials for an agent that asks for
// them (--authenticate_http_readonly). Cookies and the page's Origin stay
// with the master.
var (
	proxyRequestHeaders  = []string{"Accept", "Range", "If-Range", "If-Modified-Since", "If-None-Match", "Authorization"}
	proxyResponseHeaders = []string{"Content-Type", "Content-Length", "Content-Range", "Content-Disposition",
		"Accept-Ranges", "Last-Modified", "ETag", "X-Content-Type-Options"}
)

// AgentLocator returns the host:port of the agent with the given ID, or an
// *api.HTTPError saying why it cannot (404 unknown, 503 unreachable).
type AgentLocator func(ctx context.Context, agentID string) (string, error)

// AgentProxy serves AgentProxyPrefix by relaying GETs to the agent locate
// finds, streaming the answer as it comes (a download is never held
// whole). An agent that does not answer is a 502 naming it.
func AgentProxy(locate AgentLocator) http.Handler { return AgentProxyTLS(locate, nil, false, nil) }

// AgentProxyTLS is AgentProxy calling the agents over HTTPS with cfg
// (verifying their certificates, and presenting the master's to agents
// that require one), as a libprocess with SSL enabled calls every peer.
// With downgrade (LIBPROCESS_SSL_SUPPORT_DOWNGRADE), an agent that
// answers the handshake in plain HTTP is asked again in plain HTTP; a
// certificate that does not verify is never downgraded. The plain-HTTP
// retry does not carry the caller's Authorization header: a network
// attacker can force the downgrade, and must not get the credentials for
// it (the master holds none of its own for agents, so an agent that
// requires authentication answers such a retry 401). Each agent's first
// fallback is logged on log. A nil cfg calls them in plain HTTP, with
// the header: the operator chose no TLS at all.
func AgentProxyTLS(locate AgentLocator, cfg *tls.Config, downgrade bool, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	var downgraded sync.Map // agent address → true once its fallback is logged
	transport := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		ResponseHeaderTimeout: 15 * time.Second,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       time.Minute,
		TLSClientConfig:       cfg.Clone(),
	}
	client := &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.Path, "/master")
		rest = strings.TrimPrefix(rest, AgentProxyPrefix)
		id, endpoint, _ := strings.Cut(rest, "/")
		if id == "" || !agentProxyPaths[endpoint] {
			writeError(w, errorf(http.StatusNotFound, "%s is not relayed: the master relays %s<agent-id>/ state, files/browse, files/read and files/download", r.URL.Path, AgentProxyPrefix))
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, r, "GET, HEAD", "GET or HEAD")
			return
		}
		addr, err := locate(r.Context(), id)
		if err != nil {
			var he *api.HTTPError
			if !errors.As(err, &he) {
				he = &api.HTTPError{Code: http.StatusBadGateway, Message: err.Error()}
			}
			writeError(w, errorf(he.Code, "%s", he.Message))
			return
		}
		relay := func(scheme string, withAuth bool) (*http.Response, error) {
			target := url.URL{Scheme: scheme, Host: addr, Path: "/" + endpoint, RawQuery: r.URL.RawQuery}
			req, err := http.NewRequestWithContext(r.Context(), r.Method, target.String(), nil)
			if err != nil {
				return nil, err
			}
			for _, h := range proxyRequestHeaders {
				if h == "Authorization" && !withAuth {
					continue
				}
				if v := r.Header.Get(h); v != "" {
					req.Header.Set(h, v)
				}
			}
			return client.Do(req)
		}
		resp, err := relay(tlsconf.Scheme(cfg), true)
		if err != nil && cfg != nil && downgrade && answeredPlainHTTP(err) {
			if _, logged := downgraded.LoadOrStore(addr, true); !logged {
				log.Warn("agent answered the relay in plain HTTP; relaying to it without TLS and without the caller's Authorization header (LIBPROCESS_SSL_SUPPORT_DOWNGRADE)",
					"agent", id, "address", addr)
			}
			resp, err = relay("http", false) // a GET: asking again is harmless
		}
		if err != nil {
			if verr := tlsconf.VerifyError("agent "+id+" at "+addr, err); verr != nil {
				writeError(w, errorf(http.StatusBadGateway, "%v", verr))
				return
			}
			if r.Context().Err() != nil {
				return // the browser left
			}
			writeError(w, errorf(http.StatusBadGateway, "cannot reach agent %s at %s: %v", id, addr, err))
			return
		}
		defer resp.Body.Close()
		for _, h := range proxyResponseHeaders {
			if v := resp.Header.Get(h); v != "" {
				w.Header().Set(h, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
}

// answeredPlainHTTP reports a TLS handshake that a plain HTTP server
// answered.
func answeredPlainHTTP(err error) bool {
	var rh tls.RecordHeaderError
	return errors.As(err, &rh) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// locateAgent is the master's AgentLocator: the address in the agent's
// pid, for an agent the master knows and has not lost.
func (m *Master) locateAgent(ctx context.Context, id string) (string, error) {
	var addr string
	var herr *api.HTTPError
	err := m.do(ctx, func() {
		a := m.agents[id]
		switch {
		case a == nil:
			herr = &api.HTTPError{Code: http.StatusNotFound, Message: fmt.Sprintf("agent %s is not registered with this master", id)}
		case a.unreachable:
			herr = &api.HTTPError{Code: http.StatusServiceUnavailable, Message: fmt.Sprintf(
				"agent %s (%s) is unreachable since %s", id, a.info.Hostname, a.unreachableTime.UTC().Format(time.RFC3339))}
		default:
			addr = agentAddr(a)
		}
	})
	if err != nil {
		return "", &api.HTTPError{Code: http.StatusServiceUnavailable, Message: "the master is stopping"}
	}
	if herr != nil {
		return "", herr
	}
	return addr, nil
}

// agentAddr is host:port of the agent's HTTP server, from its pid
// ("slave(1)@10.0.0.7:5051").
func agentAddr(a *agent) string {
	if i := strings.LastIndex(a.pid, "@"); i >= 0 {
		return a.pid[i+1:]
	}
	return net.JoinHostPort(a.info.Hostname, fmt.Sprint(a.info.GetPort()))
}
