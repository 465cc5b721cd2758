package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/auth"
)

// TestFilesEndpointsCheckAccessSandboxes: with --acls and
// --authenticate_http_readonly, the agent serves a framework's sandbox
// (browse, read, download) only to a principal allowed access_sandboxes
// on that framework's user; another team's sandbox and the directories
// above the sandboxes are 403 naming the action; /files/debug lists only
// what the principal may read; without credentials it is 401.
func TestFilesEndpointsCheckAccessSandboxes(t *testing.T) {
	creds, err := auth.ParseCredentials([]byte(`{"credentials": [{"principal": "ops-a", "secret": "sa"}, {"principal": "admin", "secret": "sx"}]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Options{Credentials: creds, HTTPReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	acls, err := auth.ParseACLs([]byte(`{"permissive": false, "access_sandboxes": [
		{"principals": {"values": ["ops-a"]}, "users": {"values": ["alice"]}},
		{"principals": {"values": ["admin"]}, "users": {"type": "ANY"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	fm := newFakeMaster(t)
	cfg := testConfig(t, fm, "")
	cfg.HTTP = api.HTTPOptions{Auth: authn}
	cfg.ACLs = acls
	ta, _ := startRegistered(t, fm, cfg)

	sandbox := map[string]string{}
	for _, user := range []string{"alice", "bob"} {
		rt := shellTask(user, "echo hello-"+user)
		rt.Framework.ID = &mesos.FrameworkID{Value: "fw-" + user}
		rt.Framework.User = user
		run(fm, rt)
		ups := fm.expectStates(t, user, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
		cid := ups[1].Status.GetContainerStatus().GetContainerID().GetValue()
		sandbox[user] = filepath.Join(ta.WorkDir(), "slaves", ta.ID(), "frameworks", "fw-"+user, "executors", user, "runs", cid)
	}
	do := func(principal, secret, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+ta.Addr()+path, nil)
		if principal != "" {
			req.SetBasicAuth(principal, secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	q := url.QueryEscape
	for _, tc := range []struct {
		principal, secret, path string
		code                    int
		says                    string
	}{
		{"", "", "/files/read?offset=0&path=" + q(sandbox["alice"]+"/stdout"), 401, "authentication required"},
		{"ops-a", "sa", "/files/read?offset=0&path=" + q(sandbox["alice"]+"/stdout"), 200, "hello-alice"},
		{"ops-a", "sa", "/files/browse?path=" + q(sandbox["alice"]), 200, "stdout"},
		{"ops-a", "sa", "/files/read?offset=0&path=" + q(sandbox["bob"]+"/stdout"), 403, "may not access_sandboxes on users 'bob'"},
		{"ops-a", "sa", "/files/browse?path=" + q(sandbox["bob"]), 403, "access_sandboxes"},
		{"ops-a", "sa", "/files/download?path=" + q(sandbox["bob"]+"/stdout"), 403, "access_sandboxes"},
		{"ops-a", "sa", "/files/browse?path=" + q(filepath.Join(ta.WorkDir(), "slaves")), 403, "access_sandboxes"},
		{"admin", "sx", "/files/read?offset=0&path=" + q(sandbox["bob"]+"/stdout"), 200, "hello-bob"},
		{"admin", "sx", "/files/browse?path=" + q(filepath.Join(ta.WorkDir(), "slaves")), 200, ta.ID()},
	} {
		code, body := do(tc.principal, tc.secret, tc.path)
		if code != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("%s GET %s: %d %q, want %d saying %q", tc.principal, tc.path, code, body, tc.code, tc.says)
		}
	}
}

// TestFilesSymlinkToAnotherSandboxIsChecked: a symlink in alice's sandbox
// that leads into bob's (a file link and a directory link, both relative,
// so they stay under the sandboxes) does not let a principal allowed only
// alice's sandboxes read bob's files: the check runs on where the link
// leads as well as on the path asked for. A link inside alice's own
// sandbox still serves, and a principal allowed both reads through it.
func TestFilesSymlinkToAnotherSandboxIsChecked(t *testing.T) {
	creds, err := auth.ParseCredentials([]byte(`{"credentials": [{"principal": "ops-a", "secret": "sa"}, {"principal": "admin", "secret": "sx"}]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Options{Credentials: creds, HTTPReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	acls, err := auth.ParseACLs([]byte(`{"permissive": false, "access_sandboxes": [
		{"principals": {"values": ["ops-a"]}, "users": {"values": ["alice"]}},
		{"principals": {"values": ["admin"]}, "users": {"type": "ANY"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	fm := newFakeMaster(t)
	cfg := testConfig(t, fm, "")
	cfg.HTTP = api.HTTPOptions{Auth: authn}
	cfg.ACLs = acls
	ta, _ := startRegistered(t, fm, cfg)

	sandbox := map[string]string{}
	for _, user := range []string{"alice", "bob"} {
		rt := shellTask(user, "echo hello-"+user)
		rt.Framework.ID = &mesos.FrameworkID{Value: "fw-" + user}
		rt.Framework.User = user
		run(fm, rt)
		ups := fm.expectStates(t, user, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
		cid := ups[1].Status.GetContainerStatus().GetContainerID().GetValue()
		sandbox[user] = filepath.Join(ta.WorkDir(), "slaves", ta.ID(), "frameworks", "fw-"+user, "executors", user, "runs", cid)
	}
	toBob, err := filepath.Rel(sandbox["alice"], sandbox["bob"])
	if err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"peek":    filepath.Join(toBob, "stdout"), // file link
		"peekdir": toBob,                          // directory link
		"self":    "stdout",                       // alice's own file
	} {
		if err := os.Symlink(target, filepath.Join(sandbox["alice"], name)); err != nil {
			t.Fatal(err)
		}
	}
	do := func(principal, secret, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+ta.Addr()+path, nil)
		req.SetBasicAuth(principal, secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	q := url.QueryEscape
	alice := sandbox["alice"]
	for _, tc := range []struct {
		principal, secret, path string
		code                    int
		says                    string
	}{
		{"ops-a", "sa", "/files/read?offset=0&path=" + q(alice+"/peek"), 403, "may not access_sandboxes on users 'bob'"},
		{"ops-a", "sa", "/files/download?path=" + q(alice+"/peek"), 403, "access_sandboxes"},
		{"ops-a", "sa", "/files/browse?path=" + q(alice+"/peek"), 403, "access_sandboxes"},
		{"ops-a", "sa", "/files/browse?path=" + q(alice+"/peekdir"), 403, "access_sandboxes"},
		{"ops-a", "sa", "/files/read?offset=0&path=" + q(alice+"/peekdir/stdout"), 403, "access_sandboxes"},
		{"ops-a", "sa", "/files/download?path=" + q(alice+"/peekdir/stdout"), 403, "access_sandboxes"},
		{"ops-a", "sa", "/files/read?offset=0&path=" + q(alice+"/self"), 200, "hello-alice"},
		{"admin", "sx", "/files/read?offset=0&path=" + q(alice+"/peek"), 200, "hello-bob"},
		{"admin", "sx", "/files/read?offset=0&path=" + q(alice+"/peekdir/stdout"), 200, "hello-bob"},
	} {
		code, body := do(tc.principal, tc.secret, tc.path)
		if code != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("%s GET %s: %d %q, want %d saying %q", tc.principal, tc.path, code, body, tc.code, tc.says)
		}
	}
}

// TestFilesDebugListsOnlyReadableSandboxes: /files/debug hides the
// sandboxes the principal may not read.
func TestFilesDebugListsOnlyReadableSandboxes(t *testing.T) {
	acls, err := auth.ParseACLs([]byte(`{"permissive": false, "access_sandboxes": [{"principals": {"type": "ANY"}, "users": {"values": ["alice"]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	fm := newFakeMaster(t)
	cfg := testConfig(t, fm, "")
	cfg.ACLs = acls
	ta, _ := startRegistered(t, fm, cfg)
	for _, user := range []string{"alice", "bob"} {
		rt := shellTask(user, "sleep 30")
		rt.Framework.ID = &mesos.FrameworkID{Value: "fw-" + user}
		rt.Framework.User = user
		run(fm, rt)
		fm.expectStates(t, user, mesos.TASK_STARTING, mesos.TASK_RUNNING)
	}
	var dirs map[string]string
	getJSON(t, ta.Agent, "/files/debug", &dirs)
	b, _ := json.Marshal(dirs)
	if len(dirs) != 1 || !strings.Contains(string(b), "/frameworks/fw-alice/") {
		t.Errorf("/files/debug = %s, want alice's sandbox alone", b)
	}
}

// TestAgentViewsFilteredByACLs: the agent's /state, the operator API's
// GET_STATE and GET_CONTAINERS and /monitor/statistics show a principal only the frameworks, tasks and executors
// view_frameworks, view_tasks and view_executors let it see.
func TestAgentViewsFilteredByACLs(t *testing.T) {
	creds, err := auth.ParseCredentials([]byte(`{"credentials": [{"principal": "ops-a", "secret": "sa"}, {"principal": "admin", "secret": "sx"}]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Options{Credentials: creds, HTTPReadOnly: true, HTTPReadWrite: true})
	if err != nil {
		t.Fatal(err)
	}
	rules := func(action string) string {
		return `"` + action + `": [{"principals": {"values": ["ops-a"]}, "users": {"values": ["alice"]}},
			{"principals": {"values": ["admin"]}, "users": {"type": "ANY"}}]`
	}
	acls, err := auth.ParseACLs([]byte(`{"permissive": false, ` + rules("view_frameworks") + `, ` + rules("view_tasks") + `, ` + rules("view_executors") + `}`))
	if err != nil {
		t.Fatal(err)
	}
	fm := newFakeMaster(t)
	cfg := testConfig(t, fm, "")
	cfg.HTTP = api.HTTPOptions{Auth: authn}
	cfg.ACLs = acls
	ta, _ := startRegistered(t, fm, cfg)
	for _, user := range []string{"alice", "bob"} {
		rt := shellTask("task-"+user, "sleep 30")
		rt.Framework.ID = &mesos.FrameworkID{Value: "fw-" + user}
		rt.Framework.User = user
		run(fm, rt)
		fm.expectStates(t, "task-"+user, mesos.TASK_STARTING, mesos.TASK_RUNNING)
	}
	do := func(principal, secret, method, path, body string) string {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+ta.Addr()+path, strings.NewReader(body))
		req.SetBasicAuth(principal, secret)
		if body != "" {
			req.Header.Set("Content-Type", api.MediaJSON)
			req.Header.Set("Accept", api.MediaJSON)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s as %s: %d %s", method, path, principal, resp.StatusCode, b)
		}
		return string(b)
	}
	for _, tc := range []struct {
		principal, secret string
		sees, hidden      []string
	}{
		{"ops-a", "sa", []string{"fw-alice", "task-alice"}, []string{"fw-bob", "task-bob"}},
		{"admin", "sx", []string{"fw-alice", "task-alice", "fw-bob", "task-bob"}, nil},
	} {
		for _, view := range []string{
			do(tc.principal, tc.secret, http.MethodGet, "/state", ""),
			do(tc.principal, tc.secret, http.MethodPost, "/api/v1", `{"type":"GET_STATE"}`),
			do(tc.principal, tc.secret, http.MethodGet, "/monitor/statistics", ""),
			do(tc.principal, tc.secret, http.MethodPost, "/api/v1", `{"type":"GET_CONTAINERS"}`),
		} {
			for _, s := range tc.sees {
				if !strings.Contains(view, s) {
					t.Errorf("%s does not see %s: %.400s", tc.principal, s, view)
				}
			}
			for _, s := range tc.hidden {
				if strings.Contains(view, s) {
					t.Errorf("%s sees %s: %.400s", tc.principal, s, view)
				}
			}
		}
	}
}
