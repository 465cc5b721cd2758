package master_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/registry"
)

// TestMasterWarnsACLsRefuseEveryAgent: ACLs with "permissive": false and
// no register_agents rule (written before the action was enforced) make
// the master warn at start-up that agents will be refused, naming the
// rule to add; with the rule, or permissive, it says nothing.
func TestMasterWarnsACLsRefuseEveryAgent(t *testing.T) {
	for _, tc := range []struct {
		acls string
		warn bool
	}{
		{`{"permissive": false, "run_tasks": [{"principals": {"type": "ANY"}, "users": {"type": "ANY"}}]}`, true},
		{`{"permissive": false, "register_agents": [{"principals": {"type": "ANY"}, "agents": {"type": "ANY"}}]}`, false},
		{`{"run_tasks": [{"principals": {"type": "ANY"}, "users": {"type": "ANY"}}]}`, false},
	} {
		acls, err := auth.ParseACLs([]byte(tc.acls))
		if err != nil {
			t.Fatal(err)
		}
		var logged bytes.Buffer
		_, err = master.New(master.Config{Hostname: "localhost", IP: "127.0.0.1", Port: 5050, Registry: registry.NewMemory(),
			ACLs: acls, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
		if err != nil {
			t.Fatal(err)
		}
		warned := strings.Contains(logged.String(), "agents will be refused") && strings.Contains(logged.String(), "add \\\"register_agents\\\"")
		if warned != tc.warn {
			t.Errorf("acls %s: log %q, want the warning %v", tc.acls, logged.String(), tc.warn)
		}
	}
}
