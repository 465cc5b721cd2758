package webui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/webui"
	"github.com/agora-cluster/agora/cluster/webui/webuitest"
)

// Fixture shapes: only the fields the tests read; the UI reads the JSON.
type fixtureState struct {
	Slaves []struct {
		ID       string   `json:"id"`
		Hostname string   `json:"hostname"`
		Warnings []string `json:"warnings"`
	} `json:"slaves"`
	Frameworks          []fixtureFramework `json:"frameworks"`
	CompletedFrameworks []fixtureFramework `json:"completed_frameworks"`
}

type fixtureFramework struct {
	ID               string        `json:"id"`
	Name             string        `json:"name"`
	Tasks            []fixtureTask `json:"tasks"`
	UnreachableTasks []fixtureTask `json:"unreachable_tasks"`
	CompletedTasks   []fixtureTask `json:"completed_tasks"`
}

type fixtureTask struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

// fixtureMaster serves the UI and fixture JSON in place of a real master.
type fixtureMaster struct {
	srv     *httptest.Server
	failing atomic.Bool
}

// newMaster serves testdata/state.json with agent pids replaced by pids
// (agent id → host:port), so the sandbox view can reach fake agents.
func newMaster(t *testing.T, pids map[string]string) *fixtureMaster {
	t.Helper()
	var state map[string]any
	if err := json.Unmarshal(readFile(t, "testdata/state.json"), &state); err != nil {
		t.Fatalf("testdata/state.json: %v", err)
	}
	for _, s := range state["slaves"].([]any) {
		s := s.(map[string]any)
		if addr, ok := pids[s["id"].(string)]; ok {
			s["pid"] = "slave(1)@" + addr
		}
	}
	stateJSON, err := json.Marshal(state)
	if err != nil {
		t.Fatal(err)
	}
	metricsJSON := readFile(t, "testdata/metrics.json")

	m := &fixtureMaster{}
	mux := http.NewServeMux()
	mux.Handle("/", webui.Handler())
	serve := func(body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if m.failing.Load() {
				http.Error(w, "registry unavailable", http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}
	}
	mux.Handle("/master/state", serve(stateJSON))
	newFakeLists(t, stateJSON).handle(mux, func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if m.failing.Load() {
				http.Error(w, "registry unavailable", http.StatusInternalServerError)
				return
			}
			h(w, r)
		}
	})
	// The master's relay to its agents, found by ID as the master does.
	mux.Handle(master.AgentProxyPrefix, master.AgentProxy(func(_ context.Context, id string) (string, error) {
		if addr, ok := pids[id]; ok {
			return addr, nil
		}
		return "", &api.HTTPError{Code: http.StatusNotFound, Message: "agent " + id + " is not registered with this master"}
	}))
	mux.Handle("/metrics/snapshot", serve(metricsJSON))
	m.srv = httptest.NewServer(mux)
	t.Cleanup(m.srv.Close)
	return m
}

const sandboxDir = "/var/lib/agora/slaves/S0/frameworks/F1/executors/spark-exec-1/runs/7e1d"

const stdoutText = "Registered executor on node-a.dc1.example.com\nStarting task spark-exec-1\nstage 3 finished in 1.2 s\n"

// newAgent is a fake agent serving /state and /files/*.
func newAgent(t *testing.T) *httptest.Server {
	t.Helper()
	files := map[string]string{
		sandboxDir + "/stdout": stdoutText,
		sandboxDir + "/stderr": "WARN low disk headroom\n",
	}
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("/state", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"frameworks": []any{map[string]any{
				"id": "7c9e2a41-5b6d-4f8e-a1c2-3d4e5f6a7b8c-0001",
				"executors": []any{map[string]any{
					"id": "spark-exec-1", "directory": sandboxDir,
					"tasks": []any{map[string]any{"id": "spark-exec-1"}},
				}},
			}},
			"completed_frameworks": []any{},
		})
	})
	mux.HandleFunc("/files/browse", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("path") != sandboxDir {
			http.NotFound(w, r)
			return
		}
		var list []any
		for p, body := range files {
			list = append(list, map[string]any{"path": p, "size": len(body), "mode": "-rw-r--r--",
				"mtime": 1767229200, "nlink": 1, "uid": "root", "gid": "root"})
		}
		list = append(list, map[string]any{"path": sandboxDir + "/spark-work", "size": 4096, "mode": "drwxr-xr-x",
			"mtime": 1767229200, "nlink": 2, "uid": "root", "gid": "root"})
		writeJSON(w, list)
	})
	mux.HandleFunc("/files/read", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		body, ok := files[q.Get("path")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		var off, n int
		fmt.Sscan(q.Get("offset"), &off)
		if off < 0 {
			writeJSON(w, map[string]any{"data": "", "offset": len(body)})
			return
		}
		n = len(body)
		fmt.Sscan(q.Get("length"), &n)
		off = min(off, len(body))
		writeJSON(w, map[string]any{"data": body[off:min(len(body), off+n)], "offset": off})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// droppingAddr is the host:port of a server that drops every connection
// at once, as a dying agent does.
func droppingAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadFixture(t *testing.T) fixtureState {
	t.Helper()
	var s fixtureState
	if err := json.Unmarshal(readFile(t, "testdata/state.json"), &s); err != nil {
		t.Fatalf("testdata/state.json: %v", err)
	}
	return s
}

// run runs one chromedp action with a per-step timeout.
func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitFor waits until the JavaScript expression is truthy.
func waitFor(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	run(t, ctx, "waiting for "+what, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
}

// texts returns the trimmed text of every element matching the CSS selector.
func texts(t *testing.T, ctx context.Context, sel string) []string {
	t.Helper()
	q, _ := json.Marshal(sel)
	return run(t, ctx, "reading "+sel, chromedp.Evaluate[[]string](
		fmt.Sprintf(`Array.from(document.querySelectorAll(%s), e => e.textContent.trim())`, q)))
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	got := texts(t, ctx, sel)
	if len(got) != 1 {
		t.Fatalf("%s: want one element, found %d", sel, len(got))
	}
	return got[0]
}

// rowStates maps task id to data-state for the rows of a task table.
func rowStates(t *testing.T, ctx context.Context, table string) map[string]string {
	t.Helper()
	q, _ := json.Marshal("#" + table + " tbody tr[data-task-id]")
	return run(t, ctx, "reading "+table, chromedp.Evaluate[map[string]string](fmt.Sprintf(
		`Object.fromEntries(Array.from(document.querySelectorAll(%s), r => [r.dataset.taskId, r.dataset.state]))`, q)))
}

func setFilter(t *testing.T, ctx context.Context, value string) {
	t.Helper()
	v, _ := json.Marshal(value)
	run(t, ctx, "setting the filter", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`(() => { const f = document.getElementById('task-filter'); f.value = %s; f.dispatchEvent(new Event('input')); })()`, v)))
}

func sorted(xs []string) []string {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs
}

func TestUIInChromium(t *testing.T) {
	fx := loadFixture(t)
	liveAgent := newAgent(t)
	downAgent := droppingAddr(t)
	agentA, agentB := fx.Slaves[0].ID, fx.Slaves[1].ID
	m := newMaster(t, map[string]string{
		agentA: strings.TrimPrefix(liveAgent.URL, "http://"),
		agentB: downAgent,
	})
	ctx := webuitest.NewBrowser(t)

	// Expected rows, straight from the fixture.
	wantActive, wantCompleted := map[string]string{}, map[string]string{}
	for _, f := range append(slices.Clone(fx.Frameworks), fx.CompletedFrameworks...) {
		for _, tk := range append(slices.Clone(f.Tasks), f.UnreachableTasks...) {
			wantActive[tk.ID] = tk.State
		}
		for _, tk := range f.CompletedTasks {
			wantCompleted[tk.ID] = tk.State
		}
	}

	run(t, ctx, "opening the UI", chromedp.Navigate(m.srv.URL+"/?refresh=0.5#/tasks"))
	waitFor(t, ctx, "task rows", `document.querySelectorAll('#tasks-active tbody tr[data-task-id]').length > 0`)

	t.Run("summary", func(t *testing.T) {
		for sel, want := range map[string]string{
			"#sum-agents":        "3",
			"#sum-agents-note":   "1 unreachable · 1 disconnected",
			"#sum-frameworks":    fmt.Sprint(len(fx.Frameworks)),
			"#sum-tasks-running": "4",
			"#sum-tasks-note":    "1 staging · 1 killing · 1 unreachable",
			"#sum-offers":        "2",
			"#sum-cpus":          "7 / 24",
			"#sum-cpus-pct":      "29% used · 3.5 offered",
			"#sum-mem":           "12.5 GB / 96 GB",
		} {
			if got := text(t, ctx, sel); got != want {
				t.Errorf("%s = %q, want %q", sel, got, want)
			}
		}
		if got := text(t, ctx, "#master-info"); !strings.HasPrefix(got, "master-1.dc1.example.com · Mesos API 1.11.0 · agora 0.1.0-dev") {
			t.Errorf("master info = %q", got)
		}
	})

	t.Run("tasks", func(t *testing.T) {
		if got := rowStates(t, ctx, "tasks-active"); !maps(got, wantActive) {
			t.Errorf("active tasks = %v, want %v", got, wantActive)
		}
		if got := rowStates(t, ctx, "tasks-completed"); !maps(got, wantCompleted) {
			t.Errorf("completed tasks = %v, want %v", got, wantCompleted)
		}
		// The visible state is the state without its TASK_ prefix, in a
		// badge coloured by state.
		states := texts(t, ctx, "#tasks-active tbody tr[data-task-id] .state")
		for _, want := range []string{"RUNNING", "STAGING", "KILLING", "UNREACHABLE"} {
			if !slices.Contains(states, want) {
				t.Errorf("active task states %v lack %s", states, want)
			}
		}
		bg := run(t, ctx, "reading a badge colour", chromedp.Evaluate[[]string](
			`[...new Set(Array.from(document.querySelectorAll('#tasks-active .state'), e => getComputedStyle(e).backgroundColor))]`))
		if len(bg) < 3 {
			t.Errorf("task states share colours %v; want one per kind of state", bg)
		}
		if got := text(t, ctx, "#task-count"); got != "11 tasks" {
			t.Errorf("task count = %q", got)
		}
	})

	t.Run("warnings", func(t *testing.T) {
		waitFor(t, ctx, "the warnings banner", `!document.getElementById('warnings').hidden`)
		got := text(t, ctx, "#warnings-list")
		for _, want := range []string{fx.Slaves[0].Hostname, fx.Slaves[0].Warnings[0], "1 agent is unreachable", fx.Slaves[2].Hostname + " (" + fx.Slaves[2].ID + ") is disconnected"} {
			if !strings.Contains(got, want) {
				t.Errorf("warnings %q lack %q", got, want)
			}
		}
	})

	t.Run("filter", func(t *testing.T) {
		run(t, ctx, "typing a filter", chromedp.SendKeys(chromedp.ID("task-filter"), "SPARK"))
		// Typed a key at a time, the filter runs for "S", "SP"... first:
		// the rows are the whole word's once the count says so (it reads
		// "Filtering…" while the master's answer is on its way).
		waitFor(t, ctx, "the filter's count", `document.getElementById('task-count').textContent === '3 of 11 tasks match'`)
		waitFor(t, ctx, "the filter", `document.querySelectorAll('#tasks-active tbody tr[data-task-id]').length === 2`)
		if got := sorted(keys(rowStates(t, ctx, "tasks-active"))); !slices.Equal(got, []string{"spark-exec-1", "spark-exec-2"}) {
			t.Errorf("active tasks filtered by SPARK = %v", got)
		}
		if got := keys(rowStates(t, ctx, "tasks-completed")); !slices.Equal(got, []string{"spark-exec-0"}) {
			t.Errorf("completed tasks filtered by SPARK = %v", got)
		}
		if got := run(t, ctx, "reading the location", chromedp.Location()); !strings.HasSuffix(got, "#/tasks?q=SPARK") {
			t.Errorf("location = %q, want the filter in the fragment", got)
		}
		if got := text(t, ctx, "#task-count"); got != "3 of 11 tasks match" {
			t.Errorf("task count = %q", got)
		}

		// Every word must match: framework name and state.
		setFilter(t, ctx, "wordcount running")
		waitFor(t, ctx, "the filter", `document.querySelectorAll('#tasks-active tbody tr[data-task-id]').length === 1`)
		if got := keys(rowStates(t, ctx, "tasks-active")); !slices.Equal(got, []string{"storm-worker-31000"}) {
			t.Errorf("active tasks filtered by 'wordcount running' = %v", got)
		}
		// Agent hostname.
		setFilter(t, ctx, "node-c")
		waitFor(t, ctx, "the filter", `document.querySelectorAll('#tasks-completed tbody tr[data-task-id]').length === 2`)
		if got := sorted(keys(rowStates(t, ctx, "tasks-completed"))); !slices.Equal(got, []string{"spark-exec-0", "terasort-reduce-0"}) {
			t.Errorf("completed tasks on node-c = %v", got)
		}

		setFilter(t, ctx, "no-such-task")
		waitFor(t, ctx, "the empty result", `document.querySelector('#tasks-active tbody tr.empty') !== null`)
		if got := text(t, ctx, "#tasks-active tbody"); got != "No active tasks match “no-such-task”." {
			t.Errorf("empty filter result = %q", got)
		}

		setFilter(t, ctx, "")
		waitFor(t, ctx, "all tasks", fmt.Sprintf(`document.querySelectorAll('#tasks-active tbody tr[data-task-id]').length === %d`, len(wantActive)))
	})

	t.Run("frameworks", func(t *testing.T) {
		run(t, ctx, "clicking Frameworks", chromedp.Click(chromedp.ID("tab-frameworks")))
		waitFor(t, ctx, "the frameworks view", `!document.getElementById('view-frameworks').hidden`)
		// The view reads the state when it opens.
		waitFor(t, ctx, "the frameworks", `!!document.querySelector('#frameworks-completed tbody .fw-name')`)
		var want []string
		for _, f := range fx.Frameworks {
			want = append(want, f.Name)
		}
		if got := texts(t, ctx, "#frameworks-table tbody .fw-name"); !slices.Equal(got, want) {
			t.Errorf("frameworks = %v, want %v", got, want)
		}
		if got := texts(t, ctx, "#frameworks-completed tbody .fw-name"); !slices.Equal(got, []string{fx.CompletedFrameworks[0].Name}) {
			t.Errorf("completed frameworks = %v", got)
		}
		if got := text(t, ctx, "nav.tabs a[aria-current=page]"); got != "Frameworks" {
			t.Errorf("current tab = %q", got)
		}
		shot(t, ctx, "frameworks")
	})

	t.Run("agents", func(t *testing.T) {
		run(t, ctx, "clicking Agents", chromedp.Click(chromedp.ID("tab-agents")))
		waitFor(t, ctx, "the agents view", `!document.getElementById('view-agents').hidden`)
		waitFor(t, ctx, "the agents' page", `!!document.querySelector('#agents-table tbody .agent-host')`)
		var want []string
		for _, s := range fx.Slaves {
			want = append(want, s.Hostname)
		}
		if got := texts(t, ctx, "#agents-table tbody .agent-host"); !slices.Equal(got, want) {
			t.Errorf("agents = %v, want %v", got, want)
		}
		if got := texts(t, ctx, "#agents-table tr.has-warning .agent-host"); !slices.Equal(got, want[:1]) {
			t.Errorf("agents flagged with warnings = %v, want %v", got, want[:1])
		}
		shot(t, ctx, "agents")
	})

	t.Run("task detail and sandbox", func(t *testing.T) {
		run(t, ctx, "clicking Tasks", chromedp.Click(chromedp.ID("tab-tasks")))
		webuitest.Click(t, ctx, "opening spark-exec-1", `tr[data-task-id="spark-exec-1"] a.task-id`)
		waitFor(t, ctx, "the task view", `!document.getElementById('view-task').hidden`)
		waitFor(t, ctx, "the task read", `document.getElementById('task-fields').textContent !== ''`)
		if got := text(t, ctx, "#task-title"); got != "Task spark-exec-1" {
			t.Errorf("title = %q", got)
		}
		fields := text(t, ctx, "#task-fields")
		for _, want := range []string{"RUNNING", "spark-etl-nightly", fx.Slaves[0].Hostname, "2 CPUs · 4 GB memory", "healthy"} {
			if !strings.Contains(fields, want) {
				t.Errorf("task fields %q lack %q", fields, want)
			}
		}
		if got := texts(t, ctx, "#task-statuses tbody .state"); !slices.Equal(got, []string{"RUNNING", "STARTING", "STAGING"}) {
			t.Errorf("status history = %v", got)
		}
		waitFor(t, ctx, "the sandbox listing", `!document.getElementById('sandbox-files').hidden`)
		if got := texts(t, ctx, "#sandbox-files tbody th"); !slices.Equal(got, []string{"spark-work/", "stderr", "stdout"}) {
			t.Errorf("sandbox files = %v", got)
		}
		webuitest.Click(t, ctx, "opening stdout", `#sandbox-files tr[data-path$="/stdout"] button`)
		waitFor(t, ctx, "stdout", `document.getElementById('file-body').textContent.includes('stage 3 finished')`)
		shot(t, ctx, "task")

		// An agent the master cannot reach: say so, with its address.
		addr := downAgent
		run(t, ctx, "opening web-2", chromedp.Navigate(m.srv.URL+"/?refresh=0.5#/task/"+fx.Frameworks[0].ID+"/web.9c0b4e11-web-2"))
		waitFor(t, ctx, "the sandbox error", `document.getElementById('sandbox-status').textContent.startsWith('Could not read')`)
		if got := text(t, ctx, "#sandbox-status .agent-address"); got != addr {
			t.Errorf("agent address = %q, want %q", got, addr)
		}
		if got := text(t, ctx, "#sandbox-status"); !strings.Contains(got, "HTTP 502") || !strings.Contains(got, agentB) {
			t.Errorf("sandbox error %q does not give the relay's 502 naming agent %s", got, agentB)
		}
	})

	t.Run("error banner", func(t *testing.T) {
		run(t, ctx, "opening the task list", chromedp.Navigate(m.srv.URL+"/?refresh=0.5#/tasks"))
		waitFor(t, ctx, "task rows", `document.querySelectorAll('#tasks-active tbody tr[data-task-id]').length > 0`)
		if got := run(t, ctx, "reading the banner", chromedp.Evaluate[bool](`document.getElementById('error-banner').hidden`)); !got {
			t.Errorf("the error banner shows while the master answers")
		}
		m.failing.Store(true)
		waitFor(t, ctx, "the error banner", `!document.getElementById('error-banner').hidden`)
		got := text(t, ctx, "#error-banner")
		for _, want := range []string{"The master answers with errors", "HTTP 500", "registry unavailable", "Retrying every 0.5 s"} {
			if !strings.Contains(got, want) {
				t.Errorf("banner %q lacks %q", got, want)
			}
		}
		// The last data stays on screen, marked stale.
		if n := len(rowStates(t, ctx, "tasks-active")); n != len(wantActive) {
			t.Errorf("%d active rows while the master fails, want the last %d", n, len(wantActive))
		}
		shot(t, ctx, "error")
		m.failing.Store(false)
		waitFor(t, ctx, "the banner to clear", `document.getElementById('error-banner').hidden`)

		m.srv.CloseClientConnections()
		m.srv.Close()
		// A master that is gone.
		waitFor(t, ctx, "the error banner", `document.getElementById('error-banner').textContent.includes('cannot connect')`)
		if got := text(t, ctx, "#error-banner"); !strings.HasPrefix(got, "Cannot reach the master since") {
			t.Errorf("banner for a master that is gone = %q", got)
		}
	})
}

// shot saves a full-page screenshot: into $AGORA_WEBUI_SCREENSHOTS when set
// (to look at), else into the test's temp dir.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("AGORA_WEBUI_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	png := run(t, ctx, "taking a screenshot", chromedp.FullScreenshot(100))
	path := filepath.Join(dir, "agora-webui-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return sorted(out)
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(webui.Handler())
	defer srv.Close()
	get := func(method, path string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script src="app.js" defer></script>`},
		{"/index.html", "text/html; charset=utf-8", "<title>agora</title>"},
		{"/app.js", "text/javascript; charset=utf-8", "/master/summary"},
		{"/style.css", "text/css; charset=utf-8", "prefers-color-scheme"},
		{"/favicon.svg", "image/svg+xml", "<svg"},
		{"/ui/", "text/html; charset=utf-8", "<title>agora</title>"},
		{"/ui/app.js", "text/javascript; charset=utf-8", "/metrics/snapshot"},
	} {
		resp, body := get(http.MethodGet, tc.path, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != tc.ctype || !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: %d %q, body has %q: %v", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.contains, strings.Contains(body, tc.contains))
		}
		if resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("ETag") == "" {
			t.Errorf("GET %s: no CSP or ETag header", tc.path)
		}
		// No framework, no CDN: the machine running agora may have no internet.
		if u := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`).FindString(body); u != "" && tc.ctype != "image/svg+xml" {
			t.Errorf("GET %s: the UI refers to an external URL %q", tc.path, u)
		}
	}
	resp, _ := get(http.MethodGet, "/", nil)
	if resp, _ := get(http.MethodGet, "/", map[string]string{"If-None-Match": resp.Header.Get("ETag")}); resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET / with a matching ETag: %d, want 304", resp.StatusCode)
	}
	for _, p := range []string{"/nope", "/master/stat", "/assets/app.js", "/ui/nope"} {
		if resp, _ := get(http.MethodGet, p, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	if resp, _ := get(http.MethodPost, "/", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", resp.StatusCode)
	}
	if resp, body := get(http.MethodHead, "/app.js", nil); resp.StatusCode != http.StatusOK || body != "" {
		t.Errorf("HEAD /app.js: %d with %d bytes", resp.StatusCode, len(body))
	}
}
