package marathon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
)

// These tests run the framework against a real in-process cluster of
// three agents and drive it as Marathon's users do: plain HTTP with
// Marathon's documented JSON (no Go client library for Marathon's API is
// served by the module proxy here).

// hosts are the agents' hostnames: distinct, so that hostname constraints
// have something to tell apart, and all this machine.
var hosts = []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}

type env struct {
	t       *testing.T
	c       *clustertest.Cluster
	workDir string
	fw      *Framework
	url     string
	stop    func()
}

// startEnv starts the cluster (each agent's configuration adjusted by
// adjust) and the framework.
func startEnv(t *testing.T, adjust ...func(*agent.Config)) *env {
	t.Helper()
	return startEnvWith(t, nil, adjust...)
}

// startEnvWith is startEnv with the master's configuration adjusted by
// adjustMaster (if not nil).
func startEnvWith(t *testing.T, adjustMaster func(*master.Config), adjust ...func(*agent.Config)) *env {
	t.Helper()
	base, _ := clustertest.PortRange(300)
	c := clustertest.Start(t, clustertest.Options{
		Agents: len(hosts),
		Master: adjustMaster,
		Agent: func(i int, cfg *agent.Config) {
			cfg.Hostname = hosts[i]
			cfg.Resources = fmt.Sprintf("cpus:2;mem:1024;disk:1000;ports:[%d-%d]", base+i*100, base+i*100+99)
			for _, f := range adjust {
				f(cfg)
			}
		},
	})
	t.Cleanup(c.Stop) // before the agents' directories go
	e := &env{t: t, c: c, workDir: t.TempDir()}
	e.startFramework()
	return e
}

// startFramework runs a framework on the env's work directory, with its
// API on a test server, until the test ends or stopFramework.
func (e *env) startFramework() {
	t := e.t
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fw, err := New(Config{Masters: []string{e.c.MasterAddr}, WorkDir: e.workDir, User: "root", HTTPAddress: ln.Addr().String()})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: fw.Handler()}}
	srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = fw.Run(ctx) }()
	stopped := false
	e.fw, e.url = fw, srv.URL
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		clustertest.AwaitStop(t, "the framework", done)
		srv.Close()
	}
	t.Cleanup(e.stop)
	e.waitFor("the framework to subscribe", fw.Subscribed)
}

// call sends a request with a JSON body and returns the status, body and
// headers.
func (e *env) call(method, path, body string) (int, []byte, http.Header) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(AgoraFieldsHeader, "true") // the tests read agora's fields too
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// must sends a request that must answer want, and decodes the answer
// into out (if not nil).
func (e *env) must(method, path, body string, want int, out any) http.Header {
	e.t.Helper()
	code, b, h := e.call(method, path, body)
	if code != want {
		e.t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return h
}

// waitFor polls cond with a generous bound (functional, not timing).
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tasks lists an app's tasks through the API.
func (e *env) tasks(id string) []Task {
	e.t.Helper()
	var out struct{ Tasks []Task }
	e.must("GET", "/v2/apps"+id+"/tasks", "", 200, &out)
	return out.Tasks
}

// waitRunning waits until app id has exactly n instances, all running,
// and no deployment in progress, and returns them.
func (e *env) waitRunning(id string, n int) []Task {
	e.t.Helper()
	var ts []Task
	e.waitFor(fmt.Sprintf("%s to run %d instances", id, n), func() bool {
		// Deployments first: the tasks read after them are at least as
		// recent as the deployment's end (a deployment ends once its
		// instances are ready; tasks read before could predate that).
		var ds []Deployment
		e.must("GET", "/v2/deployments", "", 200, &ds)
		if len(ds) != 0 {
			return false
		}
		ts = e.tasks(id)
		if len(ts) != n {
			return false
		}
		for _, t := range ts {
			if t.State != "TASK_RUNNING" {
				return false
			}
		}
		return true
	})
	return ts
}

// masterRunning counts the framework's running tasks the master knows.
func (e *env) masterRunning() int {
	s, err := e.c.State()
	if err != nil {
		return -1
	}
	n := 0
	for _, f := range s.Frameworks {
		if f.ID != e.fw.FrameworkID() {
			continue
		}
		for _, t := range f.Tasks {
			if t.State == "TASK_RUNNING" {
				n++
			}
		}
	}
	return n
}

func ids(ts []Task) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.ID)
	}
	slices.Sort(out)
	return out
}

// events reads /v2/events into a queue.
func (e *env) events() *clustertest.Queue[map[string]any] {
	e.t.Helper()
	q := clustertest.NewQueue[map[string]any](e.t)
	req, _ := http.NewRequest("GET", e.url+"/v2/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		e.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		e.t.Fatalf("/v2/events Content-Type %q", ct)
	}
	attached := make(chan struct{})
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var ev map[string]any
			if json.Unmarshal([]byte(data), &ev) == nil {
				if ev["eventType"] == "event_stream_attached" {
					close(attached)
					continue
				}
				q.Put(ev)
			}
		}
	}()
	select {
	case <-attached:
	case <-time.After(30 * time.Second):
		e.t.Fatal("the event stream did not attach")
	}
	return q
}

// nextEvent waits for an event that match accepts.
func nextEvent(t *testing.T, q *clustertest.Queue[map[string]any], what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	timeout := time.After(90 * time.Second)
	for {
		select {
		case ev := <-q.C():
			if match(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event", what)
		}
	}
}

// basicApp is the first app of Marathon's "application basics" docs,
// as they give it.
const basicApp = `{
    "id": "basic-0",
    "cmd": "while [ true ] ; do echo 'Hello Marathon' ; sleep 5 ; done",
    "cpus": 0.1,
    "mem": 10.0,
    "instances": 1
}`

// TestAppLifecycle posts the docs' app as-is, then scales it 1→3→5→1,
// restarts it and deletes it, following the event stream.
func TestAppLifecycle(t *testing.T) {
	e := startEnv(t)
	evs := e.events()

	var created AppView
	h := e.must("POST", "/v2/apps", basicApp, http.StatusCreated, &created)
	if h.Get("Location") != "/v2/apps/basic-0" || h.Get("Marathon-Deployment-Id") == "" {
		t.Fatalf("create headers: Location %q, Marathon-Deployment-Id %q", h.Get("Location"), h.Get("Marathon-Deployment-Id"))
	}
	if created.ID != "/basic-0" || created.Instances != 1 || len(created.Deployments) != 1 {
		t.Fatalf("created %+v", created)
	}
	nextEvent(t, evs, "deployment_info", func(ev map[string]any) bool { return ev["eventType"] == "deployment_info" })
	first := e.waitRunning("/basic-0", 1)
	nextEvent(t, evs, "status_update_event TASK_RUNNING", func(ev map[string]any) bool {
		return ev["eventType"] == "status_update_event" && ev["taskStatus"] == "TASK_RUNNING" &&
			ev["appId"] == "/basic-0" && ev["taskId"] == first[0].ID
	})
	nextEvent(t, evs, "deployment_success", func(ev map[string]any) bool { return ev["eventType"] == "deployment_success" })
	if first[0].Host == "" || len(first[0].Ports) != 1 {
		t.Fatalf("the instance has no host or not its one port: %+v", first[0])
	}

	var dup struct{ Message string }
	e.must("POST", "/v2/apps", basicApp, http.StatusConflict, &dup)
	if !strings.Contains(dup.Message, "/basic-0") {
		t.Fatalf("409 message %q does not name the app", dup.Message)
	}

	for _, n := range []int{3, 5} {
		var c Change
		h := e.must("PUT", "/v2/apps/basic-0", fmt.Sprintf(`{"instances": %d}`, n), http.StatusOK, &c)
		if c.DeploymentID == "" || h.Get("Marathon-Deployment-Id") != c.DeploymentID {
			t.Fatalf("scale answer %+v, header %q", c, h.Get("Marathon-Deployment-Id"))
		}
		e.waitRunning("/basic-0", n)
	}
	// A scale keeps the instances that run: the first one is still there.
	five := e.waitRunning("/basic-0", 5)
	if !slices.Contains(ids(five), first[0].ID) {
		t.Fatalf("scaling up replaced the first instance: %v", ids(five))
	}
	e.must("PUT", "/v2/apps/basic-0", `{"instances": 1}`, http.StatusOK, nil)
	one := e.waitRunning("/basic-0", 1)
	if one[0].ID != first[0].ID {
		t.Fatalf("scale down kept %s, want the oldest %s (YOUNGEST_FIRST)", one[0].ID, first[0].ID)
	}
	e.waitFor("the master to run one task", func() bool { return e.masterRunning() == 1 })
	var c Change

	// Nothing waits: offers are suppressed.
	e.waitFor("offers suppressed", e.fw.Suppressed)

	// Killing one instance replaces it; with scale=true it is not.
	e.must("PUT", "/v2/apps/basic-0", `{"instances": 2}`, http.StatusOK, nil)
	two := ids(e.waitRunning("/basic-0", 2))
	var killed struct{ Task Task }
	e.must("DELETE", "/v2/apps/basic-0/tasks/"+two[0], "", http.StatusOK, &killed)
	if killed.Task.ID != two[0] {
		t.Fatalf("kill answered %+v", killed)
	}
	e.waitFor("the killed instance replaced", func() bool {
		ts := e.waitRunning("/basic-0", 2)
		return !slices.Contains(ids(ts), two[0])
	})
	before := ids(e.waitRunning("/basic-0", 2))
	var all struct{ Tasks []Task }
	e.must("GET", "/v2/tasks", "", 200, &all)
	if !slices.Equal(ids(all.Tasks), before) {
		t.Fatalf("/v2/tasks %v, want %v", ids(all.Tasks), before)
	}
	e.must("DELETE", "/v2/apps/basic-0/tasks/"+before[0]+"?scale=true", "", http.StatusOK, &c)
	if c.DeploymentID == "" {
		t.Fatalf("kill with scale answered %+v", c)
	}
	if left := ids(e.waitRunning("/basic-0", 1)); left[0] != before[1] {
		t.Fatalf("after the kill with scale: %v", left)
	}
	var scaled struct{ App AppView }
	e.must("GET", "/v2/apps/basic-0", "", 200, &scaled)
	if scaled.App.Instances != 1 {
		t.Fatalf("instances %d after a kill with scale, want 1", scaled.App.Instances)
	}

	// Restart: every instance replaced.
	e.must("PUT", "/v2/apps/basic-0", `{"instances": 2}`, http.StatusOK, nil)
	before = ids(e.waitRunning("/basic-0", 2))
	e.must("POST", "/v2/apps/basic-0/restart", "", http.StatusOK, &c)
	e.waitFor("every instance replaced", func() bool {
		ts := e.tasks("/basic-0")
		if len(ts) != 2 {
			return false
		}
		for _, t := range ts {
			if t.State != "TASK_RUNNING" || slices.Contains(before, t.ID) {
				return false
			}
		}
		return true
	})
	e.waitFor("the master to run the two new tasks only", func() bool { return e.masterRunning() == 2 })

	// Delete: every instance killed, the app gone.
	e.must("DELETE", "/v2/apps/basic-0", "", http.StatusOK, &c)
	e.waitFor("the master to run no task", func() bool { return e.masterRunning() == 0 })
	var nf struct{ Message string }
	e.must("GET", "/v2/apps/basic-0", "", http.StatusNotFound, &nf)
	if nf.Message != "App '/basic-0' does not exist" {
		t.Fatalf("404 message %q", nf.Message)
	}
	nextEvent(t, evs, "app_terminated_event", func(ev map[string]any) bool {
		return ev["eventType"] == "app_terminated_event" && ev["appId"] == "/basic-0"
	})
}

// TestEnvironment checks the variables an instance gets, as the instance
// sees them: it writes its environment to a file the test reads.
func TestEnvironment(t *testing.T) {
	e := startEnv(t)
	out := t.TempDir()
	// Its fetch and uris are in the sandbox (its working directory)
	// before the command starts.
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hello.sh":
			io.WriteString(w, "#!/bin/sh\necho fetched script ran\n")
		case "/data.txt":
			io.WriteString(w, "fetched data\n")
		default:
			http.NotFound(w, r)
		}
	}))
	defer files.Close()
	cmd := `{ ./hello.sh && cat data.txt; } > "$OUT/$MESOS_TASK_ID.fetched" && ` +
		`env > "$OUT/$MESOS_TASK_ID.tmp" && mv "$OUT/$MESOS_TASK_ID.tmp" "$OUT/$MESOS_TASK_ID.env" && exec sleep 300`
	body, _ := json.Marshal(map[string]any{"id": "/prod/env", "cmd": cmd, "cpus": 0.1, "mem": 16, "instances": 1,
		"portDefinitions": []map[string]any{{"port": 0, "name": "http"}, {"port": 0}},
		"env":             map[string]string{"OUT": out}, "labels": map[string]string{"team": "data"},
		"fetch": []map[string]any{{"uri": files.URL + "/hello.sh", "executable": true}},
		"uris":  []string{files.URL + "/data.txt"}})
	e.must("POST", "/v2/apps", string(body), http.StatusCreated, nil)
	task := e.waitRunning("/prod/env", 1)[0]
	var b []byte
	e.waitFor("the instance to write its environment", func() bool {
		var err error
		b, err = os.ReadFile(filepath.Join(out, task.ID+".env"))
		return err == nil
	})
	got := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			got[k] = v
		}
	}
	var app struct{ App AppView }
	e.must("GET", "/v2/apps/prod/env", "", 200, &app)
	if len(task.Ports) != 2 {
		t.Fatalf("ports %v, want two", task.Ports)
	}
	p0, p1 := fmt.Sprint(task.Ports[0]), fmt.Sprint(task.Ports[1])
	want := map[string]string{
		"PORT0": p0, "PORT1": p1, "PORT": p0, "PORTS": p0 + "," + p1, "PORT_HTTP": p0,
		"HOST": task.Host, "MARATHON_APP_ID": "/prod/env", "MARATHON_APP_VERSION": app.App.Version,
		"MARATHON_APP_RESOURCE_CPUS": "0.1", "MARATHON_APP_RESOURCE_MEM": "16",
		"MARATHON_APP_LABELS": "TEAM", "MARATHON_APP_LABEL_TEAM": "data", "MESOS_TASK_ID": task.ID, "OUT": out,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	if f, err := os.ReadFile(filepath.Join(out, task.ID+".fetched")); err != nil || string(f) != "fetched script ran\nfetched data\n" {
		t.Errorf("the fetched files gave %q (%v)", f, err)
	}
	var leader struct{ Leader string }
	if e.must("GET", "/v2/leader", "", 200, &leader); "http://"+leader.Leader != e.url {
		t.Fatalf("/v2/leader %q, want this framework's API (%s)", leader.Leader, e.url)
	}
}

// TestUniqueHostnameAndQueue places one instance per agent with
// hostname:UNIQUE; a fourth waits in /v2/queue, which says why.
func TestUniqueHostnameAndQueue(t *testing.T) {
	e := startEnv(t)
	e.must("POST", "/v2/apps", `{"id":"/spread","cmd":"sleep 300","cpus":0.1,"mem":16,"instances":3,
		"constraints":[["hostname","UNIQUE"]]}`, http.StatusCreated, nil)
	ts := e.waitRunning("/spread", 3)
	var hs []string
	for _, t := range ts {
		hs = append(hs, t.Host)
	}
	slices.Sort(hs)
	if !slices.Equal(hs, hosts) {
		t.Fatalf("instances on %v, want one on each of %v", hs, hosts)
	}

	e.must("PUT", "/v2/apps/spread", `{"instances": 4}`, http.StatusOK, nil)
	type queue struct {
		Queue []QueueEntry `json:"queue"`
	}
	var q queue
	e.waitFor("the queue to show the fourth instance declined for its constraint", func() bool {
		e.must("GET", "/v2/queue?embed=lastUnusedOffers", "", 200, &q)
		if len(q.Queue) != 1 || q.Queue[0].Count != 1 || q.Queue[0].App.ID != "/spread" {
			return false
		}
		for _, r := range q.Queue[0].ProcessedOffersSummary.RejectSummaryLaunchAttempt {
			if r.Reason == "UnfulfilledConstraint" && r.Declined > 0 {
				return true
			}
		}
		return false
	})
	s := q.Queue[0].ProcessedOffersSummary
	if s.ProcessedOffersCount < 1 || s.UnusedOffersCount < 1 || s.LastUnusedOfferAt == "" {
		t.Fatalf("summary %+v", s)
	}
	last := q.Queue[0].LastUnusedOffers
	if len(last) == 0 || last[0].Reasons[0] != "UnfulfilledConstraint" || !strings.Contains(strings.Join(last[0].Details, " "), "hostname:UNIQUE") {
		t.Fatalf("last unused offers %+v", last)
	}
	if n := len(e.tasks("/spread")); n != 3 {
		t.Fatalf("%d instances; the fourth must wait", n)
	}
}

// TestRestartedFrameworkAdopts stops the framework (its tasks keep
// running) and starts another on the same work directory: it
// re-subscribes as the same framework and adopts the instances it has
// records of. One record is lost meanwhile: that task, which the master
// still runs for the framework, is unknown to it and is killed (no
// zombie), and the app gets a replacement.
func TestRestartedFrameworkAdopts(t *testing.T) {
	e := startEnv(t)
	e.must("POST", "/v2/apps", `{"id":"/keep","cmd":"sleep 300","cpus":0.1,"mem":16,"instances":3}`, http.StatusCreated, nil)
	before := ids(e.waitRunning("/keep", 3))
	id := e.fw.FrameworkID()
	e.stop()
	lost := before[0]
	if err := os.Remove(filepath.Join(e.workDir, "instances", lost+".json")); err != nil {
		t.Fatal(err)
	}
	// And an instance on disk whose task the master never saw (its launch
	// did not reach the master): the master answers TASK_UNKNOWN to a
	// partition-aware framework, and it must be replaced.
	b, err := os.ReadFile(filepath.Join(e.workDir, "instances", before[1]+".json"))
	if err != nil {
		t.Fatal(err)
	}
	phantom := taskIDFor("/keep")
	b = bytes.ReplaceAll(b, []byte(before[1]), []byte(phantom))
	if err := os.WriteFile(filepath.Join(e.workDir, "instances", phantom+".json"), b, 0o644); err != nil {
		t.Fatal(err)
	}

	e.startFramework()
	if e.fw.FrameworkID() != id {
		t.Fatalf("re-subscribed as %q, want %q", e.fw.FrameworkID(), id)
	}
	e.waitFor("the unknown task killed", func() bool {
		s, err := e.c.State()
		if err != nil {
			return false
		}
		for _, f := range s.Frameworks {
			for _, t := range append(f.Tasks, f.CompletedTasks...) {
				if t.ID == lost && t.State == "TASK_KILLED" {
					return true
				}
			}
		}
		return false
	})
	after := ids(e.waitRunning("/keep", 3))
	for _, b := range before[1:] {
		if !slices.Contains(after, b) {
			t.Fatalf("instance %s was not adopted; instances now %v", b, after)
		}
	}
	if slices.Contains(after, lost) || slices.Contains(after, phantom) {
		t.Fatalf("the unknown task %s or the never launched %s is counted as an instance: %v", lost, phantom, after)
	}
	e.waitFor("the master to run the three instances only", func() bool { return e.masterRunning() == 3 })
}

// TestBadInput checks that invalid definitions are refused with
// Marathon's error shapes, naming the field, and change nothing.
func TestBadInput(t *testing.T) {
	fw, err := New(Config{Masters: []string{"127.0.0.1:1"}, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fw.Handler())
	defer srv.Close()
	e := &env{t: t, fw: fw, url: srv.URL}

	var inv struct {
		Message string
		Details []struct {
			Path   string
			Errors []string
		}
	}
	e.must("POST", "/v2/apps", `{"id":"/bad","cmd":"sleep 1","cpus":0,"constraints":[["hostname","SOMETIMES"]]}`, 422, &inv)
	paths := map[string]string{}
	for _, d := range inv.Details {
		paths[d.Path] = strings.Join(d.Errors, "; ")
	}
	if inv.Message != "Object is not valid" || paths["/cpus"] == "" || !strings.Contains(paths["/constraints(0)"], "UNIQUE, CLUSTER") {
		t.Fatalf("422 body %+v", inv)
	}
	e.must("POST", "/v2/apps", `{"id":"/hc","cmd":"sleep 1","healthChecks":[{"protocol":"MESOS_HTTP","portIndex":4},
		{"protocol":"COMMAND"}]}`, 422, &inv)
	paths = map[string]string{}
	for _, d := range inv.Details {
		paths[d.Path] = strings.Join(d.Errors, "; ")
	}
	if !strings.Contains(paths["/healthChecks(0)/portIndex"], "has 1 port") || !strings.Contains(paths["/healthChecks(1)/command"], "command.value") {
		t.Fatalf("422 body for bad health checks %+v", inv)
	}
	var bad struct{ Message string }
	e.must("POST", "/v2/apps?deploymentTimeout=soon", `{"id":"/t","cmd":"sleep 1"}`, 400, &bad)
	if !strings.Contains(bad.Message, "deploymentTimeout") {
		t.Fatalf("400 body %+v", bad)
	}
	e.must("POST", "/v2/apps", `{"id": 3}`, 400, &bad)
	if bad.Message != "Invalid JSON" {
		t.Fatalf("400 body %+v", bad)
	}
	var apps struct{ Apps []AppView }
	e.must("GET", "/v2/apps", "", 200, &apps)
	if len(apps.Apps) != 0 {
		t.Fatalf("a refused app was stored: %+v", apps.Apps)
	}

	e.must("POST", "/v2/apps", `{"id":"/good","cmd":"sleep 1","cpus":0.1,"mem":16,"instances":0}`, 201, nil)
	e.must("PUT", "/v2/apps/good?force=true", `{"mem": -5}`, 422, nil)
	var got struct{ App AppView }
	e.must("GET", "/v2/apps/good", "", 200, &got)
	if got.App.Mem != 16 {
		t.Fatalf("a refused update changed the app: mem %g", got.App.Mem)
	}
	var created Change
	h := e.must("PUT", "/v2/apps/made/by-put", `{"cmd":"sleep 1","cpus":0.1,"mem":16,"instances":0}`, 201, &created)
	if h.Get("Location") != "/v2/apps/made/by-put" || created.DeploymentID == "" {
		t.Fatalf("PUT of a new app: Location %q, %+v", h.Get("Location"), created)
	}
	e.must("GET", "/v2/apps/made/by-put", "", 200, nil)
	e.must("DELETE", "/v2/apps/nope", "", 404, nil)
	e.must("POST", "/v2/apps/nope/restart", "", 404, nil)

	// And the stored app survives a restart of the framework.
	fw2, err := New(Config{Masters: []string{"127.0.0.1:1"}, WorkDir: fw.cfg.WorkDir})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := fw2.App("/good", false); err != nil || v.Mem != 16 {
		t.Fatalf("the app was not kept: %+v %v", v, err)
	}

	code, b, _ := e.call("GET", "/ping", "")
	if code != 200 || !bytes.HasPrefix(b, []byte("pong")) {
		t.Fatalf("/ping: %d %s", code, b)
	}
	e.must("GET", "/v2/info", "", 200, nil)
}

func TestTaskName(t *testing.T) {
	for id, want := range map[string]string{"/basic-0": "basic-0", "/prod/web": "web.prod", "/a/b/c": "c.b.a"} {
		if got := taskName(id); got != want {
			t.Errorf("taskName(%s) = %s, want %s", id, got, want)
		}
	}
	if got := envName("web-api.v2"); got != "WEB_API_V2" {
		t.Errorf("envName: %s", got)
	}
}

// TestCrashingAppBacksOff runs an app whose command fails: the failure is
// reported as its lastTaskFailure and the instance waits in the queue
// with a launch delay, rather than being relaunched at once.
func TestCrashingAppBacksOff(t *testing.T) {
	e := startEnv(t)
	e.must("POST", "/v2/apps", `{"id":"/crash","cmd":"exit 3","cpus":0.1,"mem":16,"instances":1,
		"backoffSeconds":60,"maxLaunchDelaySeconds":120}`, http.StatusCreated, nil)
	var app struct{ App AppView }
	e.waitFor("the failure reported", func() bool {
		e.must("GET", "/v2/apps/crash", "", 200, &app)
		return app.App.LastTaskFailure != nil
	})
	if f := app.App.LastTaskFailure; f.State != "TASK_FAILED" || f.AppID != "/crash" {
		t.Fatalf("lastTaskFailure %+v", f)
	}
	var q struct{ Queue []QueueEntry }
	e.must("GET", "/v2/queue", "", 200, &q)
	if len(q.Queue) != 1 || q.Queue[0].Count != 1 || q.Queue[0].Delay.Overdue || q.Queue[0].Delay.TimeLeftSeconds <= 0 {
		t.Fatalf("queue %+v, want the instance delayed", q.Queue)
	}
	if n := len(e.tasks("/crash")); n != 0 {
		t.Fatalf("%d instances during the launch delay", n)
	}
	// Resetting the delay launches it again (and it fails again).
	first := app.App.LastTaskFailure.TaskID
	e.must("DELETE", "/v2/queue/crash/delay", "", http.StatusNoContent, nil)
	e.waitFor("a relaunch after the reset", func() bool {
		e.must("GET", "/v2/apps/crash", "", 200, &app)
		return app.App.LastTaskFailure.TaskID != first
	})
}

// TestRollingRestartBounds restarts an app whose upgradeStrategy allows
// no capacity below its count and none above but the one Marathon adds:
// the event stream shows the running instances never below 3 nor above 4
// while every instance is replaced, one at a time.
func TestRollingRestartBounds(t *testing.T) {
	e := startEnv(t)
	e.must("POST", "/v2/apps", `{"id":"/roll","cmd":"sleep 300","cpus":0.1,"mem":16,"instances":3,
		"upgradeStrategy":{"minimumHealthCapacity":1,"maximumOverCapacity":0}}`, http.StatusCreated, nil)
	before := ids(e.waitRunning("/roll", 3))
	evs := e.events()
	running := map[string]bool{}
	for _, id := range before {
		running[id] = true
	}
	e.must("POST", "/v2/apps/roll/restart", "", http.StatusOK, nil)
	most := 0
	for replaced := 0; replaced < 3; {
		ev := nextEvent(t, evs, "status_update_event", func(ev map[string]any) bool { return ev["eventType"] == "status_update_event" })
		id, _ := ev["taskId"].(string)
		switch ev["taskStatus"] {
		case "TASK_RUNNING":
			running[id] = true
		case "TASK_KILLED", "TASK_FAILED", "TASK_FINISHED", "TASK_LOST":
			if !slices.Contains(before, id) {
				t.Fatalf("a new instance ended: %v", ev)
			}
			delete(running, id)
			replaced++
		}
		most = max(most, len(running))
		if len(running) < 3 || len(running) > 4 {
			t.Fatalf("%d instances running during the restart, want 3 or 4: %v", len(running), running)
		}
	}
	if most != 4 {
		t.Fatalf("at most %d instances ran; a one-at-a-time replacement runs 4", most)
	}
	after := ids(e.waitRunning("/roll", 3))
	for _, id := range after {
		if slices.Contains(before, id) {
			t.Fatalf("instance %s was not replaced", id)
		}
	}
}
