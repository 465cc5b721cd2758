package auth_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	sched "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
)

var (
	ops   = auth.Credential{Principal: "ops", Secret: "ops-secret"}
	teamA = auth.Credential{Principal: "team-a", Secret: "a-secret"}
	teamB = auth.Credential{Principal: "team-b", Secret: "b-secret"}
)

// aclCluster runs a master with authentication on everywhere and acls
// (Mesos's ACL JSON) as --acls, with one agent of resources ("" for the
// default).
func aclCluster(t *testing.T, acls, resources string) *clustertest.Cluster {
	t.Helper()
	parsed, err := auth.ParseACLs([]byte(acls))
	if err != nil {
		t.Fatalf("acls: %v", err)
	}
	return teamsCluster(t, resources, func(c *master.Config) { c.ACLs = parsed })
}

// teamsCluster runs a master with authentication on everywhere for the
// principals ops, team-a, team-b and agent, configured further by cfg.
func teamsCluster(t *testing.T, resources string, cfg func(*master.Config)) *clustertest.Cluster {
	t.Helper()
	creds, err := auth.ParseCredentials([]byte(`{"credentials": [
		{"principal": "ops", "secret": "ops-secret"}, {"principal": "agent", "secret": "agent-secret"},
		{"principal": "team-a", "secret": "a-secret"}, {"principal": "team-b", "secret": "b-secret"}]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Options{Credentials: creds, Frameworks: true, Agents: true, HTTPReadOnly: true, HTTPReadWrite: true})
	if err != nil {
		t.Fatal(err)
	}
	return clustertest.Start(t, clustertest.Options{
		AgentResources: resources,
		Master:         func(c *master.Config) { c.HTTP.Auth = authn; cfg(c) },
		Agent: func(i int, c *agent.Config) {
			c.Credential = agentCred
			c.HTTP.Auth = authn.Clone()
		},
		Credential: ops,
	})
}

// operatorCall posts one operator API call (JSON) as cred.
func operatorCall(t *testing.T, c *clustertest.Cluster, cred auth.Credential, call string) (int, string) {
	t.Helper()
	return do(t, c, http.MethodPost, "/api/v1", "application/json", call, cred)
}

// get reads a master endpoint as ops (who may see everything).
func get(t *testing.T, c *clustertest.Cluster, path string) string {
	t.Helper()
	code, body := do(t, c, http.MethodGet, path, "", "", ops)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	return body
}

func agentID(t *testing.T, c *clustertest.Cluster) string {
	t.Helper()
	st, err := c.State()
	if err != nil || len(st.Slaves) != 1 {
		t.Fatalf("state: %v", err)
	}
	return st.Slaves[0].ID
}

// subscribe sends a SUBSCRIBE as cred and returns the status; a stream
// that opened is closed at once (the framework stays, disconnected).
func subscribe(t *testing.T, c *clustertest.Cluster, cred auth.Credential, fi string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.MasterURL+"/api/v1/scheduler",
		strings.NewReader(`{"type":"SUBSCRIBE","subscribe":{"framework_info":`+fi+`}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	cred.Apply(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b)
}

func reservation(role, principal string) string {
	return `[{"name":"cpus","type":"SCALAR","scalar":{"value":1},"reservations":[{"type":"DYNAMIC","role":"` + role + `","principal":"` + principal + `"}]}]`
}

func volume(principal string) string {
	return `[{"name":"disk","type":"SCALAR","scalar":{"value":50},"reservations":[{"type":"STATIC","role":"a"}],` +
		`"disk":{"persistence":{"id":"data","principal":"` + principal + `"},"volume":{"container_path":"data","mode":"RW"}}}]`
}

// aclCase is one action: its rules, what is set up before the call, the
// call as a principal, and a look at what the call would change.
type aclCase struct {
	action             string
	rules              string // the action's list in the ACL JSON
	resources          string
	allowed, denied    auth.Credential
	allowedCode        int
	prepare            func(t *testing.T, c *clustertest.Cluster, cred auth.Credential) (act func() (int, string))
	look               func(t *testing.T, c *clustertest.Cluster) string
	unchangedByAllowed bool // a read: the allowed call changes nothing either
}

func operatorAct(call func(agentID string, cred auth.Credential) string) func(*testing.T, *clustertest.Cluster, auth.Credential) func() (int, string) {
	return func(t *testing.T, c *clustertest.Cluster, cred auth.Credential) func() (int, string) {
		id := agentID(t, c)
		return func() (int, string) { return operatorCall(t, c, cred, call(id, cred)) }
	}
}

// slaves is what the master says of its agents: /master/slaves (drains,
// reservations) and GET_AGENTS (volumes too).
func slaves(t *testing.T, c *clustertest.Cluster) string {
	code, body := operatorCall(t, c, ops, `{"type":"GET_AGENTS"}`)
	if code != http.StatusOK {
		t.Fatalf("GET_AGENTS: %d %s", code, body)
	}
	return get(t, c, "/master/slaves") + body
}

// frameworksLook is each framework's name, principal and activity.
func frameworksLook(t *testing.T, c *clustertest.Cluster) string {
	type fw struct {
		Name, Principal string
		Active          bool
		Offers          []struct{ ID string }
	}
	var fs struct {
		Frameworks          []fw
		CompletedFrameworks []fw `json:"completed_frameworks"`
	}
	body := get(t, c, "/master/frameworks")
	if err := json.Unmarshal([]byte(body), &fs); err != nil {
		t.Fatalf("/master/frameworks: %v: %s", err, body)
	}
	b, _ := json.Marshal(fs)
	return string(b)
}

// TestClusterACLPerAction: for each action, a principal the ACLs allow
// succeeds (and changes what it should), and one they deny gets a 403
// naming the action and itself, and nothing changes.
func TestClusterACLPerAction(t *testing.T) {
	onlyOps := func(object string) string {
		return `[{"principals": {"values": ["ops"]}, "` + object + `": {"type": "ANY"}},
			{"principals": {"type": "NONE"}, "` + object + `": {"type": "ANY"}}]`
	}
	notTeamB := func(object string) string {
		return `[{"principals": {"values": ["team-b"]}, "` + object + `": {"type": "NONE"}}]`
	}
	cases := []aclCase{{
		action: "register_frameworks", allowed: teamA, denied: teamB, allowedCode: 200,
		rules: `[{"principals": {"values": ["team-a"]}, "roles": {"values": ["a"]}},
			{"principals": {"type": "NONE"}, "roles": {"values": ["a"]}}]`,
		prepare: func(t *testing.T, c *clustertest.Cluster, cred auth.Credential) func() (int, string) {
			return func() (int, string) {
				return subscribe(t, c, cred, `{"user":"root","name":"fw","role":"a","principal":"`+cred.Principal+`"}`)
			}
		},
		look: frameworksLook,
	}, {
		action: "run_tasks", allowed: teamA, denied: teamB, allowedCode: 202,
		rules: `[{"principals": {"values": ["team-b"]}, "users": {"type": "NONE"}}]`,
		prepare: func(t *testing.T, c *clustertest.Cluster, cred auth.Credential) func() (int, string) {
			s := clustertest.SubscribeWith(t, c.MasterURL, `{"user":"root","name":"fw","principal":"`+cred.Principal+`"}`, cred)
			offer := s.Offer()
			task := mesos.TaskInfo{Name: "t", TaskID: mesos.TaskID{Value: "t"}, AgentID: offer.AgentID,
				Command:   &mesos.CommandInfo{Value: proto("true")},
				Resources: []mesos.Resource{scalar("cpus", 0.1), scalar("mem", 32)}}
			return func() (int, string) {
				return s.CallBody(&sched.Call{Type: sched.Call_ACCEPT, Accept: &sched.Call_Accept{OfferIDs: []mesos.OfferID{offer.ID},
					Operations: []mesos.Offer_Operation{{Type: mesos.Offer_Operation_LAUNCH, Launch: &mesos.Offer_Operation_Launch{TaskInfos: []mesos.TaskInfo{task}}}}}})
			}
		},
		look: func(t *testing.T, c *clustertest.Cluster) string {
			return get(t, c, "/master/tasks") + frameworksLook(t, c)
		},
	}, {
		action: "teardown_frameworks", allowed: ops, denied: teamB, allowedCode: 200,
		rules: `[{"principals": {"values": ["ops"]}, "framework_principals": {"values": ["team-a"]}},
			{"principals": {"type": "NONE"}, "framework_principals": {"values": ["team-a"]}}]`,
		prepare: func(t *testing.T, c *clustertest.Cluster, cred auth.Credential) func() (int, string) {
			s := clustertest.SubscribeWith(t, c.MasterURL, `{"user":"root","name":"fw","principal":"team-a"}`, teamA)
			return func() (int, string) {
				return operatorCall(t, c, cred, `{"type":"TEARDOWN","teardown":{"framework_id":{"value":"`+s.ID+`"}}}`)
			}
		},
		look: frameworkNames,
	}, {
		action: "reserve_resources", allowed: ops, denied: teamB, allowedCode: 200,
		rules: `[{"principals": {"values": ["ops"]}, "roles": {"values": ["eng"]}},
			{"principals": {"type": "NONE"}, "roles": {"values": ["eng"]}}]`,
		prepare: operatorAct(func(id string, cred auth.Credential) string {
			return `{"type":"RESERVE_RESOURCES","reserve_resources":{"agent_id":{"value":"` + id + `"},"resources":` + reservation("eng", cred.Principal) + `}}`
		}),
		look: slaves,
	}, {
		action: "reserve_resources", allowed: teamA, denied: teamB, allowedCode: 202, rules: notTeamB("roles"),
		prepare: func(t *testing.T, c *clustertest.Cluster, cred auth.Credential) func() (int, string) { // a framework's ACCEPT
			s := clustertest.SubscribeWith(t, c.MasterURL, `{"user":"root","name":"fw","role":"eng","principal":"`+cred.Principal+`"}`, cred)
			offer := s.Offer()
			var rs []mesos.Resource
			if err := json.Unmarshal([]byte(reservation("eng", cred.Principal)), &rs); err != nil {
				t.Fatal(err)
			}
			return func() (int, string) {
				return s.CallBody(&sched.Call{Type: sched.Call_ACCEPT, Accept: &sched.Call_Accept{OfferIDs: []mesos.OfferID{offer.ID},
					Operations: []mesos.Offer_Operation{{Type: mesos.Offer_Operation_RESERVE, Reserve: &mesos.Offer_Operation_Reserve{Resources: rs}}}}})
			}
		},
		look: func(t *testing.T, c *clustertest.Cluster) string { return slaves(t, c) + frameworksLook(t, c) },
	}, {
		action: "unreserve_resources", allowed: ops, denied: teamB, allowedCode: 200,
		rules: `[{"principals": {"values": ["ops"]}, "reserver_principals": {"values": ["ops"]}},
			{"principals": {"type": "NONE"}, "reserver_principals": {"values": ["ops"]}}]`,
		prepare: func(t *testing.T, c *clustertest.Cluster, cred auth.Credential) func() (int, string) {
			id := agentID(t, c)
			if code, body := operatorCall(t, c, ops, `{"type":"RESERVE_RESOURCES","reserve_resources":{"agent_id":{"value":"`+id+`"},"resources":`+reservation("eng", "ops")+`}}`); code != 200 {
				t.Fatalf("reserve: %d %s", code, body)
			}
			return func() (int, string) {
				return operatorCall(t, c, cred, `{"type":"UNRESERVE_RESOURCES","unreserve_resources":{"agent_id":{"value":"`+id+`"},"resources":`+reservation("eng", "ops")+`}}`)
			}
		},
		look: slaves,
	}, {
		action: "create_volumes", allowed: ops, denied: teamB, allowedCode: 200, resources: "cpus:2;mem:1024;disk:100;disk(a):200",
		rules: notTeamB("roles"),
		prepare: operatorAct(func(id string, cred auth.Credential) string {
			return `{"type":"CREATE_VOLUMES","create_volumes":{"agent_id":{"value":"` + id + `"},"volumes":` + volume(cred.Principal) + `}}`
		}),
		look: slaves,
	}, {
		action: "destroy_volumes", allowed: ops, denied: teamB, allowedCode: 200, resources: "cpus:2;mem:1024;disk:100;disk(a):200",
		rules: `[{"principals": {"values": ["ops"]}, "creator_principals": {"values": ["ops"]}},
			{"principals": {"type": "NONE"}, "creator_principals": {"values": ["ops"]}}]`,
		prepare: func(t *testing.T, c *clustertest.Cluster, cred auth.Credential) func() (int, string) {
			id := agentID(t, c)
			if code, body := operatorCall(t, c, ops, `{"type":"CREATE_VOLUMES","create_volumes":{"agent_id":{"value":"`+id+`"},"volumes":`+volume("ops")+`}}`); code != 200 {
				t.Fatalf("create: %d %s", code, body)
			}
			return func() (int, string) {
				return operatorCall(t, c, cred, `{"type":"DESTROY_VOLUMES","destroy_volumes":{"agent_id":{"value":"`+id+`"},"volumes":`+volume("ops")+`}}`)
			}
		},
		look: slaves,
	}, {
		action: "update_quotas", allowed: ops, denied: teamB, allowedCode: 200, rules: onlyOps("roles"),
		prepare: operatorAct(func(string, auth.Credential) string {
			return `{"type":"UPDATE_QUOTA","update_quota":{"quota_configs":[{"role":"eng","guarantees":{"cpus":{"value":1}}}]}}`
		}),
		look: func(t *testing.T, c *clustertest.Cluster) string { return get(t, c, "/quota") },
	}, {
		action: "update_weights", allowed: ops, denied: teamB, allowedCode: 200, rules: onlyOps("roles"),
		prepare: operatorAct(func(string, auth.Credential) string {
			return `{"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[{"role":"eng","weight":2.5}]}}`
		}),
		look: func(t *testing.T, c *clustertest.Cluster) string { return get(t, c, "/weights") },
	}, {
		action: "update_weights", allowed: ops, denied: teamB, allowedCode: 200, rules: onlyOps("roles"),
		prepare: func(t *testing.T, c *clustertest.Cluster, cred auth.Credential) func() (int, string) { // Mesos's PUT /weights
			return func() (int, string) {
				return do(t, c, http.MethodPut, "/weights", "application/json", `[{"role":"eng","weight":2.5}]`, cred)
			}
		},
		look: func(t *testing.T, c *clustertest.Cluster) string { return get(t, c, "/weights") },
	}, {
		action: "drain_agents", allowed: ops, denied: teamB, allowedCode: 200, rules: notTeamB("agents"),
		prepare: operatorAct(func(id string, _ auth.Credential) string {
			return `{"type":"DRAIN_AGENT","drain_agent":{"agent_id":{"value":"` + id + `"}}}`
		}),
		look: slaves,
	}, {
		action: "mark_agents_gone", allowed: ops, denied: teamB, allowedCode: 200, rules: notTeamB("agents"),
		prepare: operatorAct(func(id string, _ auth.Credential) string {
			return `{"type":"DRAIN_AGENT","drain_agent":{"agent_id":{"value":"` + id + `"},"mark_gone":true}}`
		}),
		look: slaves,
	}, {
		action: "deactivate_agents", allowed: ops, denied: teamB, allowedCode: 200, rules: notTeamB("agents"),
		prepare: operatorAct(func(id string, _ auth.Credential) string {
			return `{"type":"DEACTIVATE_AGENT","deactivate_agent":{"agent_id":{"value":"` + id + `"}}}`
		}),
		look: slaves,
	}}
	for _, tc := range cases {
		t.Run(tc.action, func(t *testing.T) {
			acls := `{"` + tc.action + `": ` + tc.rules + `}`
			for _, who := range []struct {
				cred  auth.Credential
				allow bool
			}{{tc.denied, false}, {tc.allowed, true}} {
				c := aclCluster(t, acls, tc.resources)
				act := tc.prepare(t, c, who.cred)
				before := tc.look(t, c)
				code, body := act()
				after := tc.look(t, c)
				if !who.allow {
					if code != http.StatusForbidden || !strings.Contains(body, tc.action) || !strings.Contains(body, "'"+who.cred.Principal+"'") {
						t.Errorf("as %s: %d %q, want 403 naming %s and the principal", who.cred.Principal, code, body, tc.action)
					}
					if after != before {
						t.Errorf("a refused %s changed the cluster:\n%s\nwas\n%s", tc.action, after, before)
					}
					continue
				}
				if code != tc.allowedCode {
					t.Errorf("as %s (allowed): %d %q, want %d", who.cred.Principal, code, body, tc.allowedCode)
				}
				if changed := after != before; changed == tc.unchangedByAllowed {
					t.Errorf("as %s (allowed): changed %v, want %v:\n%s\nwas\n%s", who.cred.Principal, changed, !tc.unchangedByAllowed, after, before)
				}
			}
		})
	}
}

// frameworkNames lists the frameworks' names, principals and activity.
func frameworkNames(t *testing.T, c *clustertest.Cluster) string {
	var fs struct {
		Frameworks []struct {
			Name, Principal string
			Active          bool
		}
	}
	body := get(t, c, "/master/frameworks")
	if err := json.Unmarshal([]byte(body), &fs); err != nil {
		t.Fatalf("/master/frameworks: %v: %s", err, body)
	}
	b, _ := json.Marshal(fs)
	return string(b)
}

func proto(s string) *string { return &s }

func scalar(name string, v float64) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
}

// TestClusterACLUncoveredCalls: the calls that change something but that
// no enforced ACL action covers (maintenance) are refused to every
// principal when --acls is not permissive, and allowed when it is.
func TestClusterACLUncoveredCalls(t *testing.T) {
	calls := []struct {
		name, method, path, body string
	}{
		{"UPDATE_MAINTENANCE_SCHEDULE", http.MethodPost, "/api/v1", `{"type":"UPDATE_MAINTENANCE_SCHEDULE","update_maintenance_schedule":{"schedule":{}}}`},
		{"START_MAINTENANCE", http.MethodPost, "/api/v1", `{"type":"START_MAINTENANCE","start_maintenance":{"machines":[{"hostname":"h1"}]}}`},
		{"STOP_MAINTENANCE", http.MethodPost, "/api/v1", `{"type":"STOP_MAINTENANCE","stop_maintenance":{"machines":[{"hostname":"h1"}]}}`},
		{"/maintenance/schedule", http.MethodPost, "/maintenance/schedule", `{}`},
		{"/machine/down", http.MethodPost, "/machine/down", `[{"hostname":"h1"}]`},
		{"/machine/up", http.MethodPost, "/machine/up", `[{"hostname":"h1"}]`},
	}
	for _, permissive := range []bool{false, true} {
		// view_agents for everyone: the cluster's start waits to see its
		// agent, which register_agents lets in.
		c := aclCluster(t, `{"permissive": `+map[bool]string{false: "false", true: "true"}[permissive]+
			`, "view_agents": [{"principals": {"type": "ANY"}, "agents": {"type": "ANY"}}]`+
			`, "register_agents": [{"principals": {"type": "ANY"}, "agents": {"type": "ANY"}}]}`, "")
		for _, call := range calls {
			for _, cred := range []auth.Credential{ops, teamA} {
				code, body := do(t, c, call.method, call.path, "application/json", call.body, cred)
				if !permissive {
					if code != http.StatusForbidden || !strings.Contains(body, call.name) || !strings.Contains(body, "no ACL action covers") {
						t.Errorf("permissive false: %s as %s: want a 403 naming the call and that no ACL action covers it, got %d %s", call.name, cred.Principal, code, body)
					}
					continue
				}
				if code == http.StatusForbidden || code == http.StatusUnauthorized {
					t.Errorf("permissive true: %s as %s: refused: %d %s", call.name, cred.Principal, code, body)
				}
			}
		}
		// The read-only counterpart stays open either way.
		if code, body := do(t, c, http.MethodGet, "/maintenance/schedule", "", "", teamA); code != http.StatusOK {
			t.Errorf("permissive %v: GET /maintenance/schedule: %d %s", permissive, code, body)
		}
	}
}
