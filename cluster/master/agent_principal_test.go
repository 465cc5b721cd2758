package master_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/registry"
)

var (
	agentPrincipal = auth.Credential{Principal: "agent", Secret: "agent-secret"}
	intruder       = auth.Credential{Principal: "intruder", Secret: "intruder-secret"}
)

// registerAs posts call to the master's agent API as cred and returns the
// status and, for a refusal, its body; an accepted REGISTER's event stream
// is closed at once.
func registerAs(t *testing.T, url string, call *api.AgentCall, cred auth.Credential) (int, string) {
	t.Helper()
	return registerFrom(t, url, call, cred, "")
}

// registerFrom is registerAs from the local IP from ("" for any).
func registerFrom(t *testing.T, url string, call *api.AgentCall, cred auth.Credential, from string) (int, string) {
	t.Helper()
	code, body, _ := registerAnswer(t, url, call, cred, from)
	return code, body
}

// registerAnswer is registerFrom with the answer's header.
func registerAnswer(t *testing.T, url string, call *api.AgentCall, cred auth.Credential, from string) (int, string, http.Header) {
	t.Helper()
	body, err := api.JSON.MarshalAgent(call)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+api.AgentPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", api.MediaJSON)
	req.SetBasicAuth(cred.Principal, cred.Secret)
	client := http.DefaultClient
	if from != "" {
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 30 * time.Second}
		tr := &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("REGISTER as %s: %v", cred.Principal, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, "", resp.Header
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b), resp.Header
}

// An agent's principal is kept with its record in the registry (bbolt, and
// ZooKeeper where a new master takes over): after the master restarts,
// another principal cannot re-register the agent's ID (403 naming the
// agent and both principals; nothing is recorded), the agent's own
// principal can. A record written before principals were kept (none in
// it) takes the principal of the agent it describes (same hostname and
// port, from the IP in the record's pid or from an address its hostname
// resolves to) when it comes back, and records it with the pid; another
// agent claiming its ID under another hostname gets 409, with the
// recorded hostname and port from another address 403, and changes
// nothing. An agent whose address changed keeps its ID through a failed
// lookup of its hostname (503), a hostname that does not exist (403
// naming it) and a refusal (403), and is let in once
// its hostname resolves to its new address. The master's lookups go to a
// stub resolver.
func TestAgentPrincipalSurvivesMasterFailover(t *testing.T) {
	for _, kind := range []string{"bolt", "zookeeper"} {
		t.Run(kind, func(t *testing.T) { agentPrincipalAcrossFailover(t, openRegistry(t, kind)) })
	}
}

func agentPrincipalAcrossFailover(t *testing.T, reg registry.Registry) {
	creds, err := auth.ParseCredentials([]byte(`{"credentials": [
		{"principal": "agent", "secret": "agent-secret"}, {"principal": "intruder", "secret": "intruder-secret"}]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Options{Credentials: creds, Agents: true})
	if err != nil {
		t.Fatal(err)
	}
	dns := &stubResolver{}
	dns.set([]string{"127.0.0.1", "::1"}, nil)
	c := clustertest.Start(t, clustertest.Options{
		Registry: reg,
		Master: func(cfg *master.Config) {
			cfg.HTTP.Auth = authn
			cfg.LookupHost = dns.lookup
		},
		Agent: func(_ int, cfg *agent.Config) { cfg.Credential = agentPrincipal },
	})
	id := c.Agents[0].ID()
	if rec := agentRecord(t, reg); rec.Principal != "agent" {
		t.Fatalf("agent %s admitted with principal %q in its record, want \"agent\"", id, rec.Principal)
	}

	// A new master, nothing in memory; the agent is away.
	c.Agents[0].Stop()
	c.StopMaster()
	c.StartMaster()
	code, body := registerAs(t, c.MasterURL, clustertest.Reregistration(id, "hijacker", 0), intruder)
	if code != http.StatusForbidden || !strings.Contains(body, id) || !strings.Contains(body, "'intruder'") || !strings.Contains(body, "'agent'") {
		t.Fatalf("re-registration of agent %s as intruder after the failover: %d %q, want 403 naming the agent and both principals", id, code, body)
	}
	if rec := agentRecord(t, reg); rec.Principal != "agent" || rec.Info.GetHostname() == "hijacker" {
		t.Fatalf("the refused re-registration changed the record: principal %q, hostname %q", rec.Principal, rec.Info.GetHostname())
	}
	c.StartAgent(0, "")
	c.WaitFor("the agent back under its own principal", func(s *clustertest.State) bool {
		return len(s.Slaves) == 1 && s.Slaves[0].ID == id && s.Slaves[0].Hostname != "hijacker"
	})

	// The same agent under a record without a principal, as a master
	// wrote it before principals were kept (or while agents did not
	// authenticate): it has the agent's pid, slave(1)@IP:PORT.
	c.Agents[0].Stop()
	c.StopMaster()
	legacy := agentRecord(t, reg)
	if want := "slave(1)@127.0.0.1:" + strconv.Itoa(int(legacy.Info.GetPort())); legacy.PID != want {
		t.Fatalf("the agent's record has pid %q, want %q", legacy.PID, want)
	}
	legacy.Principal = ""
	putRecord(t, reg, legacy, "principal")
	c.StartMaster()
	unclaimedRecordRefusesImpostors(t, c, reg, legacy)
	c.StartAgent(0, "")
	readmittedWithPrincipal(t, c, reg, id)

	// A record from before pids were kept either: the agent's hostname
	// (localhost) stands for its address, resolved by the master.
	c.Agents[0].Stop()
	c.StopMaster()
	oldest := agentRecord(t, reg)
	oldest.Principal, oldest.PID = "", ""
	putRecord(t, reg, oldest, "principal", "pid")
	c.StartMaster()
	unclaimedRecordRefusesImpostors(t, c, reg, oldest)
	c.StartAgent(0, "")
	readmittedWithPrincipal(t, c, reg, id)

	addressChangedAgentKeepsItsID(t, c, reg, dns, id)
}

// addressChangedAgentKeepsItsID: the agent's record has no principal and
// a pid with another IP than the one the agent now connects from (a
// source address that changed without a move: dual stack, several
// interfaces, a NAT pool). While its hostname cannot be looked up, the
// master answers 503 with Retry-After; while the resolver says it does
// not exist, 403 naming it; while the hostname resolves to addresses
// without the agent's, 403. Each time the record stays as it
// is and the agent keeps its ID, and retries: once its hostname resolves
// to its address, it is re-admitted under its ID.
func addressChangedAgentKeepsItsID(t *testing.T, c *clustertest.Cluster, reg registry.Registry, dns *stubResolver, id string) {
	t.Helper()
	c.Agents[0].Stop()
	c.StopMaster()
	rec := agentRecord(t, reg)
	rec.Principal = ""
	rec.PID = "slave(1)@192.0.2.7:" + strconv.Itoa(int(rec.Info.GetPort()))
	putRecord(t, reg, rec, "principal")
	unchanged := func(what string) {
		t.Helper()
		got := agentRecord(t, reg)
		if got.Principal != "" || got.PID != rec.PID || got.State != rec.State {
			t.Fatalf("%s changed the record: principal %q, pid %q, state %s; want it as it was (pid %q, state %s)",
				what, got.Principal, got.PID, got.State, rec.PID, rec.State)
		}
	}
	// The agent's own re-registration, sent from the test.
	own := clustertest.Reregistration(id, rec.Info.GetHostname(), 0)
	port := rec.Info.GetPort()
	own.Register.Info.Port = &port

	// The lookup fails: 503, Retry-After, nothing changes.
	dns.set(nil, &net.DNSError{Err: "server misbehaving", Name: "localhost", IsTemporary: true})
	c.StartMaster()
	code, body, header := registerAnswer(t, c.MasterURL, own, agentPrincipal, "127.0.0.1")
	if code != http.StatusServiceUnavailable || header.Get("Retry-After") == "" || !strings.Contains(body, id) ||
		!strings.Contains(body, `"localhost"`) || !strings.Contains(body, "server misbehaving") {
		t.Fatalf("re-registration of agent %s while its hostname does not resolve: %d (Retry-After %q) %q; want 503 with Retry-After naming the agent, its hostname and the lookup's error",
			id, code, header.Get("Retry-After"), body)
	}
	unchanged("the re-registration whose lookup failed")
	if dns.calls() == 0 {
		t.Fatal("the master answered 503 without looking the hostname up")
	}
	logs := &lockedBuffer{}
	c.Agents[0].Config.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c.Agents[0].Config.RegistrationBackoffMax = 500 * time.Millisecond
	c.StartAgent(0, "")
	waitUntil(t, "the agent to be answered 503", func() bool {
		return strings.Contains(logs.String(), "503 Service Unavailable") && strings.Contains(logs.String(), "server misbehaving")
	})
	unchanged("the agent's re-registration whose lookup failed")

	// The resolver says the hostname does not exist: a definite answer,
	// 403 naming it, and the agent, still retrying, keeps its ID.
	c.StopMaster()
	dns.set(nil, &net.DNSError{Err: "no such host", Name: "localhost", IsNotFound: true})
	c.StartMaster()
	code, body, header = registerAnswer(t, c.MasterURL, own, agentPrincipal, "127.0.0.1")
	if code != http.StatusForbidden || header.Get("Retry-After") != "" || !strings.Contains(body, id) ||
		!strings.Contains(body, `"localhost", which does not resolve for the master`) || !strings.Contains(body, "no such host") {
		t.Fatalf("re-registration of agent %s whose hostname does not exist: %d (Retry-After %q) %q; want 403 naming the agent and its hostname",
			id, code, header.Get("Retry-After"), body)
	}
	waitUntil(t, "the agent to be answered 403 for its hostname", func() bool {
		return strings.Contains(logs.String(), "master forbids the registration") && strings.Contains(logs.String(), "does not resolve for the master")
	})
	unchanged("the re-registration of a hostname that does not exist")

	// The hostname resolves, but not to the agent's address: 403, and
	// the agent, still retrying, keeps its ID.
	c.StopMaster()
	dns.set([]string{"192.0.2.8"}, nil)
	c.StartMaster()
	code, body = registerFrom(t, c.MasterURL, own, agentPrincipal, "127.0.0.1")
	if code != http.StatusForbidden || !strings.Contains(body, id) || !strings.Contains(body, "127.0.0.1") ||
		!strings.Contains(body, rec.PID) || !strings.Contains(body, "192.0.2.8") {
		t.Fatalf("re-registration of agent %s from an address that is neither its pid's nor its hostname's: %d %q; want 403 naming the agent, the address, the pid and the hostname's addresses",
			id, code, body)
	}
	waitUntil(t, "the agent to be answered 403", func() bool {
		return strings.Contains(logs.String(), "master forbids the registration") && strings.Contains(logs.String(), "192.0.2.8")
	})
	unchanged("the refused re-registration")

	// Its hostname resolves to its address: it is back under its ID.
	c.StopMaster()
	dns.set([]string{"192.0.2.8", "127.0.0.1"}, nil)
	c.StartMaster()
	readmittedWithPrincipal(t, c, reg, id)
	if c.Agents[0].ID() != id || strings.Contains(logs.String(), "forgot the agent ID") {
		t.Fatalf("the agent's ID is %q, want %q kept through the 503 and the 403:\n%s", c.Agents[0].ID(), id, logs.String())
	}
}

// stubResolver answers the master's lookups of agents' hostnames
// (master.Config.LookupHost): localhost's addresses or an error, as the
// test sets them; other names do not exist.
type stubResolver struct {
	mu    sync.Mutex
	addrs []string
	err   error
	n     int
}

func (r *stubResolver) set(addrs []string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addrs, r.err = addrs, err
}

func (r *stubResolver) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func (r *stubResolver) lookup(_ context.Context, host string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	if host != "localhost" {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return append([]string(nil), r.addrs...), r.err
}

// putRecord writes rec as an older master would have, without the JSON
// fields absent.
func putRecord(t *testing.T, reg registry.Registry, rec registry.AgentRecord, absent ...string) {
	t.Helper()
	if err := reg.PutAgent(rec); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range absent {
		if strings.Contains(string(raw), `"`+field+`"`) {
			t.Fatalf("the record is written as %s, want no %s field (as older masters wrote it)", raw, field)
		}
	}
}

// unclaimedRecordRefusesImpostors: another agent credential cannot take a
// record without a principal, neither under another hostname (409:
// register again without an ID) nor with the recorded hostname and port
// from another address (403: the real agent keeps its ID), naming the
// agent, the principal and what differs, and the record stays as it is.
func unclaimedRecordRefusesImpostors(t *testing.T, c *clustertest.Cluster, reg registry.Registry, rec registry.AgentRecord) {
	t.Helper()
	id := rec.ID
	unchanged := func(what string) {
		t.Helper()
		got := agentRecord(t, reg)
		if got.Principal != "" || got.PID != rec.PID || got.Info.GetHostname() != rec.Info.GetHostname() || got.State != rec.State {
			t.Fatalf("%s changed the record: principal %q, pid %q, hostname %q, state %s; want it as it was (pid %q, hostname %q, state %s)",
				what, got.Principal, got.PID, got.Info.GetHostname(), got.State, rec.PID, rec.Info.GetHostname(), rec.State)
		}
	}
	code, body := registerAs(t, c.MasterURL, clustertest.Reregistration(id, "hijacker", 0), intruder)
	if code != http.StatusConflict || !strings.Contains(body, id) || !strings.Contains(body, "'intruder'") || !strings.Contains(body, "hijacker") {
		t.Fatalf("takeover of agent %s (recorded without a principal) by intruder as host hijacker: %d %q, want 409 naming the agent, the principal and the hostname", id, code, body)
	}
	unchanged("the takeover under another hostname")

	// The recorded hostname and port, copied, from another address.
	if !canDialFrom(t, "127.0.0.2", c.MasterAddr) {
		return
	}
	copied := clustertest.Reregistration(id, rec.Info.GetHostname(), 0)
	port := rec.Info.GetPort()
	copied.Register.Info.Port = &port
	code, body = registerFrom(t, c.MasterURL, copied, intruder, "127.0.0.2")
	if code != http.StatusForbidden || !strings.Contains(body, id) || !strings.Contains(body, "'intruder'") || !strings.Contains(body, "127.0.0.2") {
		t.Fatalf("takeover of agent %s (recorded without a principal) by intruder with its hostname and port from 127.0.0.2: %d %q, want 403 naming the agent, the principal and the address", id, code, body)
	}
	unchanged("the takeover with the recorded hostname and port")
}

// readmittedWithPrincipal: the agent, back from its own address, is
// re-admitted under its ID and its principal and pid are recorded.
func readmittedWithPrincipal(t *testing.T, c *clustertest.Cluster, reg registry.Registry, id string) {
	t.Helper()
	c.WaitFor("the agent re-admitted from a record without a principal", func(s *clustertest.State) bool {
		return len(s.Slaves) == 1 && s.Slaves[0].ID == id
	})
	deadline := time.Now().Add(30 * time.Second)
	for rec := agentRecord(t, reg); rec.Principal != "agent" || !strings.HasPrefix(rec.PID, "slave(1)@127.0.0.1:"); rec = agentRecord(t, reg) {
		if time.Now().After(deadline) {
			t.Fatalf("the re-admitted agent's record has principal %q and pid %q, want \"agent\" and its address", rec.Principal, rec.PID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// canDialFrom reports whether a connection to addr can come from local IP
// ip (another loopback address); false, with the reason logged, if not.
func canDialFrom(t *testing.T, ip, addr string) bool {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Logf("skipping the check from another address: cannot connect from %s: %v", ip, err)
		return false
	}
	conn.Close()
	return true
}

// An agent recorded without a principal that comes back moved (another
// hostname) cannot be told from an impostor: the master answers 409, the
// agent forgets its ID, saying why, and registers as a new agent under
// its principal. The old ID is not given to it, and the old record stays
// as it was, awaiting its agent (bbolt and ZooKeeper).
func TestMovedAgentWithUnclaimedRecordRegistersAnew(t *testing.T) {
	for _, kind := range []string{"bolt", "zookeeper"} {
		t.Run(kind, func(t *testing.T) { movedAgentRegistersAnew(t, openRegistry(t, kind)) })
	}
}

func movedAgentRegistersAnew(t *testing.T, reg registry.Registry) {
	creds, err := auth.ParseCredentials([]byte(`{"credentials": [{"principal": "agent", "secret": "agent-secret"}]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Options{Credentials: creds, Agents: true})
	if err != nil {
		t.Fatal(err)
	}
	c := clustertest.Start(t, clustertest.Options{
		Registry: reg,
		Master:   func(cfg *master.Config) { cfg.HTTP.Auth = authn },
		Agent:    func(_ int, cfg *agent.Config) { cfg.Credential = agentPrincipal },
	})
	old := c.Agents[0].ID()
	c.Agents[0].Stop()
	c.StopMaster()
	legacy := agentRecord(t, reg)
	legacy.Principal = ""
	putRecord(t, reg, legacy, "principal")
	c.StartMaster()

	logs := &lockedBuffer{}
	c.Agents[0].Config.Hostname = "moved.test"
	c.Agents[0].Config.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c.StartAgent(0, "")
	s := c.WaitFor("the moved agent registered anew", func(s *clustertest.State) bool {
		return len(s.Slaves) == 1 && s.Slaves[0].Hostname == "moved.test"
	})
	if s.Slaves[0].ID == old {
		t.Fatalf("the moved agent was given the ID %s recorded without a principal, want a new one", old)
	}
	fresh := s.Slaves[0].ID
	waitUntil(t, "the agent to learn its new ID", func() bool { return c.Agents[0].ID() == fresh })
	if !strings.Contains(logs.String(), "master refused the agent ID") || !strings.Contains(logs.String(), `not the recorded \"localhost\"`) {
		t.Fatalf("the agent's log does not say why its ID was refused (the master's answer naming the recorded hostname):\n%s", logs.String())
	}

	recs, err := reg.Agents()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]registry.AgentRecord{}
	for _, r := range recs {
		byID[r.ID] = r
	}
	if len(recs) != 2 {
		t.Fatalf("registry has %d agent records, want 2 (the old one and the moved agent's new one): %+v", len(recs), recs)
	}
	if r := byID[old]; r.State != legacy.State || r.Principal != "" || r.PID != legacy.PID || r.Info.GetHostname() != "localhost" {
		t.Fatalf("the old record changed: state %s, principal %q, pid %q, hostname %q; want it as it was", r.State, r.Principal, r.PID, r.Info.GetHostname())
	}
	if r := byID[fresh]; r.Principal != "agent" || r.Info.GetHostname() != "moved.test" || !strings.HasPrefix(r.PID, "slave(1)@127.0.0.1:") {
		t.Fatalf("the new agent's record: principal %q, hostname %q, pid %q; want \"agent\", \"moved.test\" and its address", r.Principal, r.Info.GetHostname(), r.PID)
	}
}

// waitUntil polls cond for at most a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
