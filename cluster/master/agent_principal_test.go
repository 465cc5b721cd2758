package master_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
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
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("REGISTER as %s: %v", cred.Principal, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b)
}

// An agent's principal is kept with its record in the registry (bbolt, and
// ZooKeeper where a new master takes over): after the master restarts,
// another principal cannot re-register the agent's ID (403 naming the
// agent and both principals; nothing is recorded), the agent's own
// principal can. A record written before principals were kept (none in
// it) takes the principal of the agent it describes (same hostname and
// port) when it comes back, and records it; another agent claiming its ID
// is refused and changes nothing.
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
	c := clustertest.Start(t, clustertest.Options{
		Registry: reg,
		Master:   func(cfg *master.Config) { cfg.HTTP.Auth = authn },
		Agent:    func(_ int, cfg *agent.Config) { cfg.Credential = agentPrincipal },
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

	// The same agent under a record without a principal, as an older
	// master wrote it.
	c.Agents[0].Stop()
	c.StopMaster()
	legacy := agentRecord(t, reg)
	legacy.Principal = ""
	if err := reg.PutAgent(legacy); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(legacy)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "principal") {
		t.Fatalf("a record without a principal is written as %s, want no principal field (as older masters wrote it)", raw)
	}
	c.StartMaster()
	// Another agent credential cannot take the unclaimed record: the
	// re-registering agent is not the one recorded.
	code, body = registerAs(t, c.MasterURL, clustertest.Reregistration(id, "hijacker", 0), intruder)
	if code != http.StatusForbidden || !strings.Contains(body, id) || !strings.Contains(body, "'intruder'") || !strings.Contains(body, "hijacker") {
		t.Fatalf("takeover of agent %s (recorded without a principal) by intruder as host hijacker: %d %q, want 403 naming the agent, the principal and the hostname", id, code, body)
	}
	if rec := agentRecord(t, reg); rec.Principal != "" || rec.Info.GetHostname() != legacy.Info.GetHostname() {
		t.Fatalf("the refused takeover changed the record: principal %q, hostname %q", rec.Principal, rec.Info.GetHostname())
	}
	c.StartAgent(0, "")
	c.WaitFor("the agent re-admitted from a record without a principal", func(s *clustertest.State) bool {
		return len(s.Slaves) == 1 && s.Slaves[0].ID == id
	})
	deadline := time.Now().Add(30 * time.Second)
	for agentRecord(t, reg).Principal != "agent" {
		if time.Now().After(deadline) {
			t.Fatalf("the re-admitted agent's record still has principal %q, want \"agent\"", agentRecord(t, reg).Principal)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
