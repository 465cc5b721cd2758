package auth_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
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
