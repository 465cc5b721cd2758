package auth_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	sched "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
)

// viewACLs: team-a sees what runs as alice, team-b what runs as bob, ops
// everything; only ops sees the agents.
const viewACLs = `{
	"view_frameworks": [
		{"principals": {"values": ["team-a"]}, "users": {"values": ["alice"]}},
		{"principals": {"values": ["team-b"]}, "users": {"values": ["bob"]}},
		{"principals": {"values": ["ops"]}, "users": {"type": "ANY"}},
		{"principals": {"type": "ANY"}, "users": {"type": "NONE"}}],
	"view_tasks": [
		{"principals": {"values": ["team-a"]}, "users": {"values": ["alice"]}},
		{"principals": {"values": ["team-b"]}, "users": {"values": ["bob"]}},
		{"principals": {"values": ["ops"]}, "users": {"type": "ANY"}},
		{"principals": {"type": "ANY"}, "users": {"type": "NONE"}}],
	"view_executors": [
		{"principals": {"values": ["ops"]}, "users": {"type": "ANY"}},
		{"principals": {"type": "ANY"}, "users": {"type": "NONE"}}],
	"access_sandboxes": [
		{"principals": {"values": ["team-a"]}, "users": {"values": ["alice"]}},
		{"principals": {"values": ["ops"]}, "users": {"type": "ANY"}},
		{"principals": {"type": "ANY"}, "users": {"type": "NONE"}}],
	"view_agents": [
		{"principals": {"values": ["ops"]}, "agents": {"type": "ANY"}},
		{"principals": {"type": "ANY"}, "agents": {"type": "NONE"}}]
}`

// TestClusterACLFilteredViews: two teams' frameworks (users alice and
// bob) each with a task. /master/state, /master/frameworks,
// /master/tasks, the operator API's GET_STATE / GET_FRAMEWORKS /
// GET_TASKS and its SUBSCRIBE stream show each team only its own; ops
// sees both; only ops sees the agents. The sandbox relay serves alice's
// sandbox to team-a and refuses it to team-b (access_sandboxes).
func TestClusterACLFilteredViews(t *testing.T) {
	c := aclCluster(t, viewACLs, "")
	a := clustertest.SubscribeWith(t, c.MasterURL, `{"user":"alice","name":"fa","principal":"team-a"}`, teamA)
	launchAndStep(a, "ta")
	b := clustertest.SubscribeWith(t, c.MasterURL, `{"user":"bob","name":"fb","principal":"team-b"}`, teamB)
	launchAndStep(b, "tb")
	waitTasks(t, c, 2)

	type task struct {
		ID string `json:"id"`
	}
	type framework struct {
		Name           string `json:"name"`
		Tasks          []task `json:"tasks"`
		CompletedTasks []task `json:"completed_tasks"`
	}
	type view struct {
		Frameworks []framework `json:"frameworks"`
		Tasks      []task      `json:"tasks"`
		Slaves     []any       `json:"slaves"`
	}
	read := func(path string, cred auth.Credential) view {
		t.Helper()
		code, body := do(t, c, http.MethodGet, path, "", "", cred)
		var v view
		if err := json.Unmarshal([]byte(body), &v); code != http.StatusOK || err != nil {
			t.Fatalf("GET %s as %s: %d %s (%v)", path, cred.Principal, code, body, err)
		}
		return v
	}
	names := func(v view) (fws, tasks []string) {
		for _, f := range v.Frameworks {
			fws = append(fws, f.Name)
			for _, t := range append(f.Tasks, f.CompletedTasks...) {
				tasks = append(tasks, t.ID)
			}
		}
		for _, t := range v.Tasks {
			tasks = append(tasks, t.ID)
		}
		return fws, tasks
	}
	for _, tc := range []struct {
		cred          auth.Credential
		fws, tasks    string
		agentsVisible bool
	}{
		{teamA, "fa", "ta", false},
		{teamB, "fb", "tb", false},
		{ops, "fa,fb", "ta,tb", true},
	} {
		for _, path := range []string{"/master/state", "/master/frameworks", "/master/tasks"} {
			v := read(path, tc.cred)
			fws, tasks := names(v)
			want := tc.fws
			if path == "/master/tasks" {
				want = ""
			}
			if strings.Join(sorted(fws), ",") != want || strings.Join(sorted(tasks), ",") != tc.tasks {
				t.Errorf("GET %s as %s: frameworks %v, tasks %v; want [%s], [%s]", path, tc.cred.Principal, fws, tasks, want, tc.tasks)
			}
			if path == "/master/state" && (len(v.Slaves) > 0) != tc.agentsVisible {
				t.Errorf("GET %s as %s: %d agents, want them visible: %v", path, tc.cred.Principal, len(v.Slaves), tc.agentsVisible)
			}
		}
		code, body := operatorCall(t, c, tc.cred, `{"type":"GET_STATE"}`)
		var st struct {
			GetState struct {
				GetFrameworks struct {
					Frameworks []struct {
						FrameworkInfo struct{ Name string } `json:"framework_info"`
					} `json:"frameworks"`
				} `json:"get_frameworks"`
				GetTasks struct {
					Tasks, CompletedTasks []struct {
						TaskID struct{ Value string } `json:"task_id"`
					}
				} `json:"get_tasks"`
				GetAgents struct {
					Agents []any `json:"agents"`
				} `json:"get_agents"`
			} `json:"get_state"`
		}
		if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil {
			t.Fatalf("GET_STATE as %s: %d %s (%v)", tc.cred.Principal, code, body, err)
		}
		var fws, tasks []string
		for _, f := range st.GetState.GetFrameworks.Frameworks {
			fws = append(fws, f.FrameworkInfo.Name)
		}
		for _, t := range append(st.GetState.GetTasks.Tasks, st.GetState.GetTasks.CompletedTasks...) {
			tasks = append(tasks, t.TaskID.Value)
		}
		if strings.Join(sorted(fws), ",") != tc.fws || strings.Join(sorted(tasks), ",") != tc.tasks ||
			(len(st.GetState.GetAgents.Agents) > 0) != tc.agentsVisible {
			t.Errorf("GET_STATE as %s: frameworks %v, tasks %v, %d agents; want [%s], [%s], agents visible %v",
				tc.cred.Principal, fws, tasks, len(st.GetState.GetAgents.Agents), tc.fws, tc.tasks, tc.agentsVisible)
		}
		// The operator event stream starts with the same filtered state.
		if first := firstOperatorEvent(t, c, tc.cred); strings.Contains(first, `"fa"`) != strings.Contains(tc.fws, "fa") ||
			strings.Contains(first, `"fb"`) != strings.Contains(tc.fws, "fb") {
			t.Errorf("SUBSCRIBE as %s: the first event shows other teams' frameworks (want [%s]): %s", tc.cred.Principal, tc.fws, first)
		}
	}

	// The sandbox relay: alice's sandbox for team-a and ops, not team-b.
	ag := c.Agents[0]
	sandbox := filepath.Join(ag.Config.WorkDir, "slaves", ag.ID(), "frameworks", a.ID, "executors", "ta")
	relay := "/agent/" + ag.ID() + "/files/browse?path=" + sandbox
	// The master lists a task once it is launched; the agent makes its
	// sandbox a moment later.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sandbox); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's sandbox %s was not made in 60 s", sandbox)
		}
	}
	for _, tc := range []struct {
		cred auth.Credential
		code int
	}{{teamA, 200}, {ops, 200}, {teamB, 403}} {
		code, body := do(t, c, http.MethodGet, relay, "", "", tc.cred)
		if code != tc.code || (code == 403) != strings.Contains(body, "access_sandboxes") {
			t.Errorf("browse alice's sandbox as %s: %d %q, want %d", tc.cred.Principal, code, body, tc.code)
		}
	}
	// An agent's /state is not filtered: relayed only to whom may view all.
	if code, body := do(t, c, http.MethodGet, "/agent/"+ag.ID()+"/state", "", "", teamA); code != 403 {
		t.Errorf("an agent's /state as team-a: %d %q, want 403", code, body)
	}
	if code, _ := do(t, c, http.MethodGet, "/agent/"+ag.ID()+"/state", "", "", ops); code != 200 {
		t.Errorf("an agent's /state as ops: %d, want 200", code)
	}
}

// launchAndStep launches one task on s's next offer and refuses the rest
// of the agent for an hour, so that the other team's framework gets it.
func launchAndStep(s *clustertest.Scheduler, id string) {
	offer := s.Offer()
	hour := 3600.0
	s.MustCall(&sched.Call{Type: sched.Call_ACCEPT, Accept: &sched.Call_Accept{
		OfferIDs: []mesos.OfferID{offer.ID}, Filters: &mesos.Filters{RefuseSeconds: &hour},
		Operations: []mesos.Offer_Operation{{Type: mesos.Offer_Operation_LAUNCH,
			Launch: &mesos.Offer_Operation_Launch{TaskInfos: []mesos.TaskInfo{sleepTask(id, offer)}}}}}})
}

func sleepTask(id string, offer mesos.Offer) mesos.TaskInfo {
	return mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: offer.AgentID,
		Command:   &mesos.CommandInfo{Value: proto("sleep 600")},
		Resources: []mesos.Resource{scalar("cpus", 0.5), scalar("mem", 32)}}
}

// waitTasks waits until the master lists n tasks (ops sees them all).
func waitTasks(t *testing.T, c *clustertest.Cluster, n int) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var v struct{ Tasks []any }
		if json.Unmarshal([]byte(get(t, c, "/master/tasks")), &v) == nil && len(v.Tasks) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the master did not list %d tasks in 60 s", n)
		}
	}
}

// firstOperatorEvent subscribes to the operator API as cred and returns
// its first event (SUBSCRIBED, with the state) as JSON.
func firstOperatorEvent(t *testing.T, c *clustertest.Cluster, cred auth.Credential) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.MasterURL+"/api/v1", strings.NewReader(`{"type":"SUBSCRIBE"}`))
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
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("operator SUBSCRIBE as %s: %d %s", cred.Principal, resp.StatusCode, b)
	}
	rec, err := api.NewRecordReader(resp.Body).ReadRecord()
	if err != nil {
		t.Fatalf("operator SUBSCRIBE as %s: %v", cred.Principal, err)
	}
	return string(rec)
}

func sorted(xs []string) []string {
	out := append([]string(nil), xs...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestClusterACLGetQuotas: GET_QUOTA and GET /quota show a principal the
// quotas of the roles it may get (get_quotas), as Mesos does.
func TestClusterACLGetQuotas(t *testing.T) {
	c := aclCluster(t, `{"get_quotas": [
		{"principals": {"values": ["team-b"]}, "roles": {"values": ["ml"]}},
		{"principals": {"values": ["team-b"]}, "roles": {"type": "NONE"}}]}`, "")
	if code, body := operatorCall(t, c, ops, `{"type":"UPDATE_QUOTA","update_quota":{"quota_configs":[`+
		`{"role":"eng","guarantees":{"cpus":{"value":1}}},{"role":"ml","guarantees":{"cpus":{"value":1}}}]}}`); code != http.StatusOK {
		t.Fatalf("UPDATE_QUOTA: %d %s", code, body)
	}
	roles := func(body string) string {
		var st struct {
			GetQuota struct {
				Status struct {
					Configs []struct{ Role string } `json:"configs"`
				} `json:"status"`
			} `json:"get_quota"`
			Configs []struct{ Role string } `json:"configs"`
		}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		var out []string
		for _, c := range append(st.GetQuota.Status.Configs, st.Configs...) {
			out = append(out, c.Role)
		}
		return strings.Join(sorted(out), ",")
	}
	for _, tc := range []struct {
		cred auth.Credential
		want string
	}{{ops, "eng,ml"}, {teamB, "ml"}} {
		code, body := operatorCall(t, c, tc.cred, `{"type":"GET_QUOTA"}`)
		if got := roles(body); code != http.StatusOK || got != tc.want {
			t.Errorf("GET_QUOTA as %s: %d, roles %q; want %q", tc.cred.Principal, code, got, tc.want)
		}
		code, body = do(t, c, http.MethodGet, "/quota", "", "", tc.cred)
		if got := roles(body); code != http.StatusOK || got != tc.want {
			t.Errorf("GET /quota as %s: %d, roles %q; want %q", tc.cred.Principal, code, got, tc.want)
		}
	}
}

// TestClusterACLExplain: /explain shows a framework's allocation only to
// a principal that may view it (view_frameworks); to the others it is an
// unknown subject, and a role's explanation leaves it out.
func TestClusterACLExplain(t *testing.T) {
	c := aclCluster(t, viewACLs, "")
	a := clustertest.SubscribeWith(t, c.MasterURL, `{"user":"alice","name":"fa","principal":"team-a"}`, teamA)
	b := clustertest.SubscribeWith(t, c.MasterURL, `{"user":"bob","name":"fb","principal":"team-b"}`, teamB)
	for _, x := range []struct {
		cred auth.Credential
		id   string
		want int
	}{{teamA, a.ID, http.StatusOK}, {teamB, b.ID, http.StatusOK}, {ops, b.ID, http.StatusOK},
		{teamA, b.ID, http.StatusNotFound}, {teamB, a.ID, http.StatusNotFound}} {
		code, body := do(t, c, http.MethodGet, "/explain?framework_id="+x.id, "", "", x.cred)
		if code != x.want {
			t.Errorf("/explain?framework_id=%s as %s: want %d, got %d %s", x.id, x.cred.Principal, x.want, code, body)
		}
		if kind := map[bool]string{true: `"kind":"framework"`, false: `"kind":"unknown"`}[x.want == http.StatusOK]; !strings.Contains(body, kind) {
			t.Errorf("/explain?framework_id=%s as %s: want %s in %s", x.id, x.cred.Principal, kind, body)
		}
	}
	if code, body := do(t, c, http.MethodGet, "/explain?role=*", "", "", teamA); code != http.StatusOK || strings.Contains(body, b.ID) {
		t.Errorf("/explain?role=* as team-a: want 200 without team-b's framework %s, got %d %s", b.ID, code, body)
	}
}

// TestClusterACLPagedListFilters: a page's filter searches only what the
// principal may view, so team-a (no view_agents) cannot find its task by
// the agent's hostname, which ops can; a huge limit is not an overflow.
func TestClusterACLPagedListFilters(t *testing.T) {
	c := aclCluster(t, viewACLs, "")
	a := clustertest.SubscribeWith(t, c.MasterURL, `{"user":"alice","name":"fa","principal":"team-a"}`, teamA)
	launchAndStep(a, "ta")
	waitTasks(t, c, 1)
	total := func(path string, cred auth.Credential) int {
		t.Helper()
		code, body := do(t, c, http.MethodGet, path, "", "", cred)
		var p struct {
			Total int `json:"total"`
		}
		if err := json.Unmarshal([]byte(body), &p); code != http.StatusOK || err != nil {
			t.Fatalf("GET %s as %s: %d %s (%v)", path, cred.Principal, code, body, err)
		}
		return p.Total
	}
	if n := total("/master/tasks?filter=localhost", ops); n != 1 {
		t.Errorf("ops filtering by the agent's hostname: %d tasks, want 1", n)
	}
	if n := total("/master/tasks?filter=localhost", teamA); n != 0 {
		t.Errorf("team-a, who may not view agents, found %d tasks by the agent's hostname, want 0", n)
	}
	if n := total("/master/tasks?filter=fa", teamA); n != 1 {
		t.Errorf("team-a filtering by its framework's name: %d tasks, want 1", n)
	}
	if n := total("/master/tasks?limit=9223372036854775807&offset=1", ops); n != 1 {
		t.Errorf("a limit near MaxInt: total %d, want 1", n)
	}
}
