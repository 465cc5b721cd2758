package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAppsCommands drives `agora apps` and `agora app ...` against a real
// `agora marathon` process on a real master and agent: deploy, scale,
// restart, a new version and its rollback, each followed with --watch to
// its end; a deployment that cannot finish exits 1 with the reason; bad
// input exits 1 (refused by the API, its fields named) or 2 (usage).
func TestAppsCommands(t *testing.T) {
	dir := t.TempDir()
	_, master := startBound(t, "master", "--work_dir="+filepath.Join(dir, "master"), "--port=0",
		"--agent_ping_timeout=1s", "--max_agent_ping_timeouts=30", "--allocation_interval=100ms")
	startBound(t, "agent", "--master="+master, "--work_dir="+filepath.Join(dir, "agent"),
		"--port=0", "--resources=cpus:2;mem:1024;disk:1024;ports:[31000-31100]", "--switch_user=false")
	waitState(t, "http://"+master, "agent registered", func(s *masterState) bool { return len(s.Slaves) == 1 })
	_, api := startBound(t, "marathon", "--master="+master, "--work_dir="+filepath.Join(dir, "marathon"),
		"--hostname=127.0.0.1", "--http_port=0", "--deployment_timeout=20s")
	flag := "--marathon=" + api
	app := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := func(want string, args ...string) string {
		t.Helper()
		out, errOut, code := runClient(t, master, args...)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("agora %s: exit %d, stdout %q, stderr %q; want exit 0 saying %q", strings.Join(args, " "), code, out, errOut, want)
		}
		return out
	}
	show := func() (v struct {
		Cmd       string `json:"cmd"`
		Instances int    `json:"instances"`
		Running   int    `json:"tasksRunning"`
	}) {
		t.Helper()
		out := ok("", "app", "show", flag, "--json", "web")
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("agora app show --json: %v in %q", err, out)
		}
		return v
	}

	v1 := app("v1.json", `{"id":"/web","cmd":"sleep 600","cpus":0.1,"mem":16,"instances":2}`)
	ok("succeeded", "app", "deploy", v1, flag, "--watch")
	if out := ok("/web", "apps", flag); !strings.Contains(out, "2/2") || !strings.Contains(out, "RUNNING") {
		t.Fatalf("agora apps:\n%s", out)
	}
	var list []map[string]any
	if out := ok("", "apps", flag, "--json"); json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0]["id"] != "/web" {
		t.Fatalf("agora apps --json: %q", out)
	}

	ok("succeeded", "app", "scale", "web", "3", flag, "--watch")
	if v := show(); v.Instances != 3 || v.Running != 3 {
		t.Fatalf("after scale 3: %+v", v)
	}
	if out := ok("INSTANCE", "app", "show", flag, "web"); strings.Count(out, "TASK_RUNNING") != 3 {
		t.Fatalf("agora app show web: want 3 running instances:\n%s", out)
	}
	ok("succeeded", "app", "restart", flag, "--watch", "web")

	ok("succeeded", "app", "deploy", flag, "--watch", app("v2.json", `{"id":"/web","cmd":"sleep 601","cpus":0.1,"mem":16,"instances":3}`))
	if v := show(); v.Cmd != "sleep 601" {
		t.Fatalf("after deploying v2: cmd %q", v.Cmd)
	}
	ok("succeeded", "app", "rollback", flag, "--watch", "web")
	if v := show(); v.Cmd != "sleep 600" || v.Instances != 3 {
		t.Fatalf("after the rollback: %+v, want sleep 600 with 3 instances", v)
	}

	// A version whose health check never passes misses its deadline: the
	// watch says so and exits 1; the deployment rolled back.
	never := app("never.json", `{"id":"/web","cmd":"sleep 602","cpus":0.1,"mem":16,"instances":3,
		"healthChecks":[{"protocol":"COMMAND","command":{"value":"false"},"delaySeconds":0,"intervalSeconds":0.5,
			"timeoutSeconds":5,"gracePeriodSeconds":600,"maxConsecutiveFailures":0}],
		"upgradeStrategy":{"minimumHealthCapacity":1,"maximumOverCapacity":0}}`)
	out, errOut, code := runClient(t, master, "app", "deploy", never, flag, "--watch")
	if code != 1 || !strings.Contains(out, "failed") || !strings.Contains(out, "progress deadline") ||
		!strings.Contains(out, "rollback") || !strings.Contains(out, "done: the previous version runs") {
		t.Fatalf("deploying a version that never turns healthy: exit %d, %q %q; want exit 1 with the reason, after the rollback", code, out, errOut)
	}
	// The watch ended with the rollback: the app is free for the next
	// change (a deployment in progress would lock it).
	resp, err := http.Get("http://" + strings.TrimPrefix(api, "http://") + "/v2/deployments")
	if err != nil {
		t.Fatal(err)
	}
	var running []map[string]any
	err = json.NewDecoder(resp.Body).Decode(&running)
	resp.Body.Close()
	if err != nil || len(running) != 0 {
		t.Fatalf("after the watched failure: deployments in progress %v (%v)", running, err)
	}

	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"app", "deploy", app("bad.json", `{"id":"/bad","cmd":"true","cpus":-1}`), flag}, 1, "/cpus"},
		{[]string{"app", "show", flag, "nosuch"}, 1, "404"},
		{[]string{"app", "scale", flag, "web"}, 2, "usage"},
		{[]string{"app", "scale", flag, "web", "many"}, 2, "not an instance count"},
		{[]string{"app", "deploy", app("noid.json", `{"cmd":"true"}`), flag}, 2, `no "id"`},
		{[]string{"app", "frob"}, 2, "unknown command"},
		{[]string{"apps", "--marathon=127.0.0.1:1"}, 1, "is `agora marathon` or `agora dev` running?"},
	} {
		_, errOut, code := runClient(t, master, c.args...)
		if code != c.code || !strings.Contains(errOut, c.says) {
			t.Errorf("agora %s: exit %d, stderr %q; want exit %d saying %q", strings.Join(c.args, " "), code, errOut, c.code, c.says)
		}
	}
	ok("succeeded", "app", "delete", flag, "--watch", "web")
	if out := ok("", "apps", flag, "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("after delete: %q", out)
	}
}
