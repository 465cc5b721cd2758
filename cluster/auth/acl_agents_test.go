package auth_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
)

// TestClusterRegisterAgentsACL: with register_agents allowing principal
// agent alone, the cluster's agent (presenting agent) registers, and a
// REGISTER made as team-a is refused with 403 naming the action; the
// master still lists the one agent.
func TestClusterRegisterAgentsACL(t *testing.T) {
	c := aclCluster(t, `{"register_agents": [
		{"principals": {"values": ["agent"]}, "agents": {"type": "ANY"}},
		{"principals": {"type": "ANY"}, "agents": {"type": "NONE"}}]}`, "")
	body, err := api.JSON.MarshalAgent(clustertest.Reregistration("intruder-agent", "intruder", 0))
	if err != nil {
		t.Fatal(err)
	}
	code, answer := do(t, c, http.MethodPost, api.AgentPath, api.MediaJSON, string(body), teamA)
	if code != http.StatusForbidden || !strings.Contains(answer, "'team-a' may not register_agents") {
		t.Errorf("REGISTER as team-a: %d %q, want 403 naming register_agents", code, answer)
	}
	if s := slaves(t, c); strings.Contains(s, "intruder") {
		t.Errorf("the master lists the refused agent: %s", s)
	}
	if st, err := c.State(); err != nil || len(st.Slaves) != 1 {
		t.Errorf("the master lists %v agents (%v), want the cluster's one", st, err)
	}
}

// TestClusterAgentCallsNeedTheAgentsPrincipal: with --authenticate_agents,
// a principal other than the one an agent registered as can neither send
// that agent's calls (a PONG) nor re-register it: 403 naming both, and
// the agent stays registered; the agent's own principal is accepted.
func TestClusterAgentCallsNeedTheAgentsPrincipal(t *testing.T) {
	c := teamsCluster(t, "", func(*master.Config) {})
	id := agentID(t, c)
	reg, err := api.JSON.MarshalAgent(clustertest.Reregistration(id, "hijacker", 0))
	if err != nil {
		t.Fatal(err)
	}
	pong := `{"type":"PONG","agent_id":"` + id + `","pong":{"seq":1}}`
	for _, tc := range []struct{ what, body string }{{"PONG", pong}, {"REGISTER", string(reg)}} {
		code, answer := do(t, c, http.MethodPost, api.AgentPath, api.MediaJSON, tc.body, teamA)
		if code != http.StatusForbidden || !strings.Contains(answer, "'team-a' does not match principal 'agent'") || !strings.Contains(answer, tc.what) {
			t.Errorf("%s for agent %s as team-a: %d %q, want 403 naming both principals", tc.what, id, code, answer)
		}
	}
	if code, answer := do(t, c, http.MethodPost, api.AgentPath, api.MediaJSON, pong, agentCred); code != http.StatusAccepted {
		t.Errorf("PONG as the agent's own principal: %d %q, want 202", code, answer)
	}
	if s := slaves(t, c); strings.Contains(s, "hijacker") || !c.Agents[0].Registered() {
		t.Errorf("after the refused re-registration: the master lists %s; the agent registered=%v", s, c.Agents[0].Registered())
	}
}
