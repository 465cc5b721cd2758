package auth

import (
	"fmt"
	"strings"
	"testing"
)

// TestACLsMatching: the first rule matching both principal and object
// decides; with none, permissive does; ANY/NONE and unauthenticated
// callers as in Mesos's local authorizer.
func TestACLsMatching(t *testing.T) {
	acls, err := ParseACLs([]byte(`{
		"permissive": false,
		"register_frameworks": [
			{"principals": {"values": ["ops"]}, "roles": {"type": "ANY"}},
			{"principals": {"values": ["team-a"]}, "roles": {"values": ["a", "shared"]}},
			{"principals": {"type": "ANY"}, "roles": {"values": ["guest"]}},
			{"principals": {"values": ["team-a"]}, "roles": {"values": ["b"]}}
		],
		"run_tasks": [
			{"principals": {"values": ["team-a"]}, "users": {"type": "NONE"}},
			{"principals": {"type": "ANY"}, "users": {"type": "ANY"}}
		],
		"drain_agents": [{"principals": {"values": ["ops"]}, "agents": {"type": "ANY"}}]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		action            Action
		principal, object string
		want              bool
	}{
		{RegisterFrameworks, "ops", "anything", true},
		{RegisterFrameworks, "team-a", "a", true},
		{RegisterFrameworks, "team-a", "other", false}, // no rule matches; not permissive
		{RegisterFrameworks, "team-b", "guest", true},
		{RegisterFrameworks, "", "guest", true}, // ANY principal matches the unauthenticated
		{RegisterFrameworks, "", "a", false},
		{RegisterFrameworks, "team-a", "b", true}, // the fourth rule
		{RunTasks, "team-a", "root", false},       // NONE: the first rule matches and denies
		{RunTasks, "team-b", "root", true},
		{RunTasks, "", "", true},
		{DrainAgents, "ops", "", true},
		{DrainAgents, "team-a", "", false},
		{UpdateWeights, "ops", "x", false}, // no rules at all: permissive false
	} {
		if got := acls.Allowed(tc.action, tc.principal, tc.object); got != tc.want {
			t.Errorf("%s by %q on %q: %v, want %v", tc.action, tc.principal, tc.object, got, tc.want)
		}
	}
	if refused, ok := acls.AllowedAll(RegisterFrameworks, "team-a", []string{"a", "c"}); ok || refused != "c" {
		t.Errorf("AllowedAll: refused %q ok %v, want c refused", refused, ok)
	}
	permissive, err := ParseACLs([]byte(`{"update_weights": [{"principals": {"type": "ANY"}, "roles": {"type": "NONE"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !permissive.Allowed(UpdateQuotas, "x", "r") || permissive.Allowed(UpdateWeights, "x", "r") {
		t.Error("permissive by default, and a NONE object denies every role")
	}
	var none *ACLs
	if !none.Allowed(DrainAgents, "", "") {
		t.Error("nil ACLs must allow everything")
	}
}

// TestACLsParseErrors: each malformed file is refused with an error that
// says where.
func TestACLsParseErrors(t *testing.T) {
	for _, tc := range []struct{ json, says string }{
		{`{"launch_rockets": []}`, `unknown action "launch_rockets"`},
		{`{"access_mesos_logs": []}`, `"access_mesos_logs" is not enforced`},
		{`{"permissive": "yes"}`, "permissive"},
		{`{"run_tasks": [{"principals": {"type": "ANY"}, "users": {"type": "ANY"}}, {"principals": {"type": "ANY"}}]}`, `run_tasks[1]: missing "users"`},
		{`{"run_tasks": [{"principals": {"type": "ANY"}, "roles": {"type": "ANY"}}]}`, `run_tasks[0]: unknown field "roles"`},
		{`{"run_tasks": [{"principals": {}, "users": {"type": "ANY"}}]}`, `run_tasks[0]: principals: give "values"`},
		{`{"run_tasks": [{"principals": {"type": "SOMEONE"}, "users": {"type": "ANY"}}]}`, `unknown type "SOMEONE"`},
		{`{"run_tasks": [{"principals": {"type": "ANY", "values": ["x"]}, "users": {"type": "ANY"}}]}`, "takes no values"},
		{`{"run_tasks": [{"principals": {"type": "ANY", "value": "x"}, "users": {"type": "ANY"}}]}`, `unknown field "value"`},
		{`{"run_tasks": {}}`, "run_tasks: want a list"},
		{`[`, "malformed JSON"},
		{`null`, "want a JSON object"},
	} {
		_, err := ParseACLs([]byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want an error saying %q", tc.json, err, tc.says)
		}
	}
	if _, err := LoadACLs("/nonexistent/acls.json"); err == nil || !strings.Contains(err.Error(), "acls file") {
		t.Errorf("a missing file: %v", err)
	}
}

// BenchmarkACLsAllowed: a decision that walks 100 rules before the one
// that matches (the cost a call pays with a long --acls list).
func BenchmarkACLsAllowed(b *testing.B) {
	var rules []string
	for i := 0; i < 100; i++ {
		rules = append(rules, fmt.Sprintf(`{"principals": {"values": ["p%d"]}, "users": {"values": ["u%d"]}}`, i, i))
	}
	acls, err := ParseACLs([]byte(`{"permissive": false, "run_tasks": [` + strings.Join(rules, ",") + `]}`))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if !acls.Allowed(RunTasks, "p99", "u99") {
			b.Fatal("p99 may run tasks as u99")
		}
	}
}

// BenchmarkRateLimitsAllow: one call counted against a principal's limit.
func BenchmarkRateLimitsAllow(b *testing.B) {
	l, err := ParseRateLimits([]byte(`{"limits": [{"principal": "a", "qps": 1e9, "capacity": 1e9}]}`))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		l.Allow("a")
	}
}

// FuzzParseACLs: no --acls text crashes the parser, and whatever it
// accepts answers every question.
func FuzzParseACLs(f *testing.F) {
	f.Add([]byte(`{"permissive": false, "run_tasks": [{"principals": {"values": ["a"]}, "users": {"type": "ANY"}}]}`), "a", "root")
	f.Add([]byte(`{"register_frameworks": [{"principals": {"type": "NONE"}, "roles": {"values": ["x", ""]}}]}`), "", "x")
	f.Add([]byte(`{"view_agents": [{"principals": {"type": "ANY"}, "agents": {"type": "NONE"}}], "permissive": true}`), "p", "")
	f.Add([]byte(`{"run_tasks": [{}]}`), "a", "b")
	f.Fuzz(func(t *testing.T, data []byte, principal, object string) {
		acls, err := ParseACLs(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		for action := range actionObjects {
			acls.Allowed(action, principal, object)
		}
	})
}
