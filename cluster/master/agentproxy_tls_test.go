package master_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/master"
)

// TestAgentProxyOverTLS: a master with TLS relays to an agent that serves
// TLS, verifying its certificate; it refuses one whose certificate does
// not verify (502 naming the agent and why), also with downgrade; and it
// reaches an agent in plain HTTP only with downgrade, and then without
// the caller's Authorization header (which an attacker forcing the
// downgrade would read), logging the fallback.
func TestAgentProxyOverTLS(t *testing.T) {
	serve := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		io.WriteString(w, "state over "+scheme+", authorization "+strconv.Quote(r.Header.Get("Authorization")))
	})
	secure := httptest.NewTLSServer(serve)
	defer secure.Close()
	plain := httptest.NewServer(serve)
	defer plain.Close()
	trusting := secure.Client().Transport.(*http.Transport).TLSClientConfig
	untrusting := &tls.Config{MinVersion: tls.VersionTLS12}

	for _, tc := range []struct {
		name      string
		agent     *httptest.Server
		cfg       *tls.Config
		downgrade bool
		code      int
		says      string
	}{
		{"TLS agent", secure, trusting, false, 200, `state over https, authorization "Basic b3BzOnM="`},
		{"TLS agent, unknown CA", secure, untrusting, false, 502, "does not verify"},
		{"TLS agent, unknown CA, downgrade", secure, untrusting, true, 502, "does not verify"},
		{"plain agent", plain, trusting, false, 502, "cannot reach agent a1"},
		{"plain agent, downgrade", plain, trusting, true, 200, `state over http, authorization ""`},
		{"plain master, plain agent", plain, nil, false, 200, `state over http, authorization "Basic b3BzOnM="`},
	} {
		addr := strings.TrimPrefix(strings.TrimPrefix(tc.agent.URL, "https://"), "http://")
		var logged bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logged, nil))
		relay := httptest.NewServer(master.AgentProxyTLS(func(context.Context, string) (string, error) { return addr, nil }, tc.cfg, tc.downgrade, log))
		req, _ := http.NewRequest(http.MethodGet, relay.URL+"/agent/a1/state", nil)
		req.SetBasicAuth("ops", "s")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		relay.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.says) {
			t.Errorf("%s: %d %q, want %d saying %q", tc.name, resp.StatusCode, b, tc.code, tc.says)
		}
		if fellBack := strings.Contains(logged.String(), "plain HTTP"); fellBack != (tc.agent == plain && tc.downgrade) {
			t.Errorf("%s: log %q, want the plain-HTTP fallback logged only when it happens", tc.name, logged.String())
		}
	}
}
