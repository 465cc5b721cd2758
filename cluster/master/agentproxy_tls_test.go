package master_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/master"
)

// TestAgentProxyOverTLS: a master with TLS relays to an agent that serves
// TLS, verifying its certificate; it refuses one whose certificate does
// not verify (502 naming the agent and why), also with downgrade; and it
// reaches an agent in plain HTTP only with downgrade.
func TestAgentProxyOverTLS(t *testing.T) {
	serve := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		io.WriteString(w, "state over "+scheme)
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
		{"TLS agent", secure, trusting, false, 200, "state over https"},
		{"TLS agent, unknown CA", secure, untrusting, false, 502, "does not verify"},
		{"TLS agent, unknown CA, downgrade", secure, untrusting, true, 502, "does not verify"},
		{"plain agent", plain, trusting, false, 502, "cannot reach agent a1"},
		{"plain agent, downgrade", plain, trusting, true, 200, "state over http"},
		{"plain master, plain agent", plain, nil, false, 200, "state over http"},
	} {
		addr := strings.TrimPrefix(strings.TrimPrefix(tc.agent.URL, "https://"), "http://")
		relay := httptest.NewServer(master.AgentProxyTLS(func(context.Context, string) (string, error) { return addr, nil }, tc.cfg, tc.downgrade))
		resp, err := http.Get(relay.URL + "/agent/a1/state")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		relay.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.says) {
			t.Errorf("%s: %d %q, want %d saying %q", tc.name, resp.StatusCode, b, tc.code, tc.says)
		}
	}
}
