package dns

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/agora-cluster/agora/cluster/clustertest"
)

// served is a resolver running on loopback sockets for one test.
type served struct {
	*Resolver
	udp, tcp, http string // addresses
}

// serve runs a resolver with cfg (listener and ports filled in for a
// test) until the test ends.
func serve(t *testing.T, cfg Config) *served {
	t.Helper()
	return serveWith(t, cfg, Options{Version: "test"})
}

// serveWith is serve with opts.
func serveWith(t *testing.T, cfg Config, opts Options) *served {
	t.Helper()
	cfg.Listener = "127.0.0.1"
	cfg.Port, cfg.HTTPPort = 0, 0
	r, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := r.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, ls) }()
	t.Cleanup(func() {
		cancel()
		clustertest.AwaitStop(t, "resolver", done)
	})
	return &served{Resolver: r, udp: ls.UDP.LocalAddr().String(), tcp: ls.TCP.Addr().String(), http: "http://" + ls.HTTP.Addr().String()}
}

// testConfig is the default config reading the master at addr.
func testConfig(masters ...string) Config {
	c := DefaultConfig()
	c.Masters = masters
	return c
}

// query asks the resolver over network ("udp" or "tcp").
func (s *served) query(t *testing.T, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	addr := s.udp
	if network == "tcp" {
		addr = s.tcp
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	in, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, name, dns.TypeToString[qtype], err)
	}
	return in
}

// waitFor polls the resolver over UDP until cond holds of the answer to
// name, failing after a bound.
func (s *served) waitFor(t *testing.T, what, name string, qtype uint16, cond func(*dns.Msg) bool) *dns.Msg {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		in := s.query(t, "udp", name, qtype)
		if cond(in) {
			return in
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last answer:\n%v", what, in)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// srvPorts are the ports of an answer's SRV records, sorted.
func srvPorts(m *dns.Msg) []int {
	var out []int
	for _, rr := range m.Answer {
		if s, ok := rr.(*dns.SRV); ok {
			out = append(out, int(s.Port))
		}
	}
	sort.Ints(out)
	return out
}

// aIPs are the addresses of an answer's A records, sorted.
func aIPs(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	sort.Strings(out)
	return out
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	return resp.StatusCode
}
