package main

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/tlsconf"
)

// benchSecurity is a simulated-agent benchmark's master run with every
// security feature on (`agora bench scale --secure`): TLS with a CA made
// for the run, and HTTP Basic credentials required of frameworks, agents
// and every other caller (all four --authenticate_* flags). One
// principal, made for the run, is what agents, frameworks and the
// bench's own metric reads present. The zero value is a plain master.
type benchSecurity struct {
	on                bool
	tls               *tls.Config // verifies the master with the run's CA
	principal, secret string
	masterArgs        []string
	client            *http.Client // the bench's metric reads
}

// newBenchSecurity writes the run's CA, certificate and credentials file
// into dir and returns what the master and its callers need.
func newBenchSecurity(dir string) (benchSecurity, error) {
	files, err := tlsconf.GenerateCA(filepath.Join(dir, "tls"), []string{"127.0.0.1", "localhost"}, 24*time.Hour)
	if err != nil {
		return benchSecurity{}, fmt.Errorf("generating the run's TLS certificate: %w", err)
	}
	cfg, err := tlsconf.ClientConfig(files.CA)
	if err != nil {
		return benchSecurity{}, err
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return benchSecurity{}, err
	}
	s := benchSecurity{on: true, tls: cfg, principal: "bench", secret: base64.RawURLEncoding.EncodeToString(b)}
	// The master's file holds the secret's hash, as an operator's would.
	creds, err := json.Marshal(map[string][]auth.Credential{"credentials": {{Principal: s.principal, Secret: auth.HashSecret(s.secret)}}})
	if err != nil {
		return benchSecurity{}, err
	}
	path := filepath.Join(dir, "credentials.json")
	if err := os.WriteFile(path, creds, 0o600); err != nil {
		return benchSecurity{}, err
	}
	s.client = &http.Client{Timeout: benchHTTP.Timeout, CheckRedirect: benchHTTP.CheckRedirect, Transport: &http.Transport{TLSClientConfig: cfg}}
	s.masterArgs = []string{"--credentials=" + path, "--authenticate_frameworks", "--authenticate_agents",
		"--authenticate_http_readonly", "--authenticate_http_readwrite",
		"--ssl_cert_file=" + files.Cert, "--ssl_key_file=" + files.Key}
	return s, nil
}

// metrics fetches the master's /metrics/snapshot over the run's scheme
// with the run's credentials.
func (s benchSecurity) metrics(addr string) (map[string]float64, error) {
	if !s.on {
		return masterMetrics(addr)
	}
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/metrics/snapshot", nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(s.principal, s.secret)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	return decodeMetrics(addr, resp)
}

// check makes sure the master the run measures does refuse callers
// without credentials, so that a --secure figure is one of a secured
// master.
func (s benchSecurity) check(addr string) error {
	if !s.on {
		return nil
	}
	resp, err := s.client.Get("https://" + addr + "/master/state")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("the master answered /master/state without credentials with %s, not 401 Unauthorized: it is not secured", resp.Status)
	}
	return nil
}
