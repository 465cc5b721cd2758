package master

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/registry"
)

// TestRefusedAgentRegistrationLoggedOnce: an agent that register_agents
// refuses is logged once, however often it retries; another agent is
// logged too; each refusal is still a 403.
func TestRefusedAgentRegistrationLoggedOnce(t *testing.T) {
	acls, err := auth.ParseACLs([]byte(`{"permissive": false}`))
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	m, err := New(Config{Hostname: "localhost", IP: "127.0.0.1", Port: 5050, Registry: registry.NewMemory(),
		ACLs: acls, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range []*mesos.AgentInfo{
		{Hostname: "h1", ID: &mesos.AgentID{Value: "a1"}}, {Hostname: "h1", ID: &mesos.AgentID{Value: "a1"}},
		{Hostname: "h2"}, {Hostname: "h2"},
	} {
		if err := m.authorizeAgentRegistration(httptest.NewRequest("POST", "/api/v1/agent", nil), info); err == nil || !strings.Contains(err.Error(), "register_agents") {
			t.Errorf("registration of %s: %v, want 403 naming register_agents", info.Hostname, err)
		}
	}
	if n := strings.Count(logged.String(), "agent registration refused"); n != 2 {
		t.Errorf("log has %d refusals, want one per agent (2):\n%s", n, logged.String())
	}
}
