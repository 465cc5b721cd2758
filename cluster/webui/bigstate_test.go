package webui_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agora-cluster/agora/cluster/webui"
	"github.com/agora-cluster/agora/cluster/webui/webuitest"
)

// bigState is a /master/state of a simulated cluster: agents agents
// (attribute rack=r<i%10>) and tasks tasks of 10 frameworks spread over them,
// every seventh task completed.
func bigState(agents, tasks int) []byte {
	now := float64(time.Now().Unix())
	slaves := make([]any, agents)
	for i := range slaves {
		slaves[i] = map[string]any{
			"id": fmt.Sprintf("S%d", i), "hostname": fmt.Sprintf("node-%05d", i), "pid": fmt.Sprintf("slave(1)@10.0.%d.%d:5051", i/250, i%250),
			"resources":          map[string]any{"cpus": 32, "mem": 131072, "disk": 1e6, "ports": "[31000-32000]"},
			"used_resources":     map[string]any{"cpus": 8, "mem": 16384, "disk": 0},
			"offered_resources":  map[string]any{},
			"reserved_resources": map[string]any{},
			"attributes":         map[string]any{"rack": fmt.Sprintf("r%d", i%10)},
			"active":             true, "connected": true, "registered_time": now,
		}
	}
	type fw struct{ active, done []any }
	fws := make([]fw, 10)
	for i := 0; i < tasks; i++ {
		state := "TASK_RUNNING"
		if i%7 == 0 {
			state = "TASK_FINISHED"
		}
		t := map[string]any{
			"id": fmt.Sprintf("task-%06d", i), "name": fmt.Sprintf("job-%d", i%100), "framework_id": fmt.Sprintf("F%d", i%10),
			"slave_id": fmt.Sprintf("S%d", i%max(1, agents)), "state": state, "role": "*",
			"resources": map[string]any{"cpus": 0.5, "mem": 256},
			"statuses":  []any{map[string]any{"state": state, "timestamp": now}},
		}
		if state == "TASK_RUNNING" {
			fws[i%10].active = append(fws[i%10].active, t)
		} else {
			fws[i%10].done = append(fws[i%10].done, t)
		}
	}
	frameworks := make([]any, len(fws))
	for i, f := range fws {
		frameworks[i] = map[string]any{
			"id": fmt.Sprintf("F%d", i), "name": fmt.Sprintf("framework-%d", i), "roles": []string{"*"}, "active": true,
			"tasks": append([]any{}, f.active...), "completed_tasks": append([]any{}, f.done...), "unreachable_tasks": []any{},
			"used_resources": map[string]any{}, "offered_resources": map[string]any{}, "registered_time": now,
		}
	}
	b, _ := json.Marshal(map[string]any{
		"hostname": "big-master", "pid": "master@10.0.0.1:5050", "leader": "master@10.0.0.1:5050", "version": "1.11.0",
		"start_time": now, "activated_slaves": agents, "slaves": slaves, "frameworks": frameworks, "completed_frameworks": []any{},
	})
	return b
}

// bigMaster serves the UI with a simulated state; there is no event stream.
func bigMaster(t testing.TB, agents, tasks int) *httptest.Server {
	t.Helper()
	state := bigState(agents, tasks)
	mux := http.NewServeMux()
	mux.Handle("/", webui.Handler())
	mux.HandleFunc("/master/state", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(state)
	})
	mux.HandleFunc("/metrics/snapshot", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	})
	newFakeLists(t, state).handle(mux, func(h http.HandlerFunc) http.HandlerFunc { return h })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestPaginationAndFilters pages and filters the task and agent lists of a
// simulated cluster bigger than a page.
func TestPaginationAndFilters(t *testing.T) {
	const agents, tasks = 250, 1400 // 1200 running, 200 completed
	srv := bigMaster(t, agents, tasks)
	ctx := webuitest.NewBrowser(t)
	rows := func(table string) []string { return texts(t, ctx, "#"+table+" tbody tr[data-task-id] th") }

	run(t, ctx, "opening the tasks view", chromedp.Navigate(srv.URL+"/?refresh=600&rows=100#/tasks"))
	waitFor(t, ctx, "task rows", `document.querySelectorAll('#tasks-active tbody tr[data-task-id]').length > 0`)
	first := rows("tasks-active")
	if len(first) != 100 {
		t.Fatalf("first page has %d active rows, want 100", len(first))
	}
	if got := text(t, ctx, "#pager-active .range"); got != "Active tasks 1–100 of 1200" {
		t.Errorf("pager = %q", got)
	}
	if got := text(t, ctx, "#pager-completed .range"); got != "Completed tasks 1–100 of 200" {
		t.Errorf("completed pager = %q", got)
	}
	run(t, ctx, "clicking Next", chromedp.Click(chromedp.CSS("#pager-active button.next")))
	waitFor(t, ctx, "page 2", `document.querySelector('#pager-active .range').textContent.startsWith('Active tasks 101–200')`)
	second := rows("tasks-active")
	if len(second) != 100 || second[0] == first[0] {
		t.Errorf("page 2 starts %q (%d rows), page 1 started %q", second[0], len(second), first[0])
	}

	// A filter narrows every task, not only the page shown, and starts at page 1.
	setFilter(t, ctx, "node-00007")
	waitFor(t, ctx, "the filtered list", `document.getElementById('task-count').textContent.includes('match')`)
	want := 0
	for i := 0; i < tasks; i++ {
		if i%agents == 7 && i%7 != 0 {
			want++
		}
	}
	if got := rows("tasks-active"); len(got) != want {
		t.Errorf("filter on agent node-00007: %d active rows, want %d", len(got), want)
	}
	if got := texts(t, ctx, "#pager-active .range"); len(got) != 0 {
		t.Errorf("a one-page list has a pager: %v", got)
	}

	run(t, ctx, "opening the agents view", chromedp.Navigate(srv.URL+"/?refresh=600&rows=100#/agents"))
	waitFor(t, ctx, "agent rows", `document.querySelectorAll('#agents-table tbody tr[data-agent-id]').length > 0`)
	if got := texts(t, ctx, "#agents-table tbody tr[data-agent-id]"); len(got) != 100 {
		t.Errorf("first page has %d agents, want 100", len(got))
	}
	if got := text(t, ctx, "#pager-agents .range"); got != fmt.Sprintf("Agents 1–100 of %d", agents) {
		t.Errorf("agents pager = %q", got)
	}
	run(t, ctx, "filtering agents", chromedp.Evaluate[chromedp.Void](
		`(() => { const f = document.getElementById('agent-filter'); f.value = 'rack=r3'; f.dispatchEvent(new Event('input')); })()`))
	waitFor(t, ctx, "the filtered agents", `document.getElementById('agent-count').textContent.includes('match')`)
	hosts := texts(t, ctx, "#agents-table tbody .agent-host")
	if len(hosts) != agents/10 {
		t.Errorf("rack=r3 shows %d agents, want %d", len(hosts), agents/10)
	}
	for _, h := range hosts {
		var n int
		fmt.Sscanf(strings.TrimPrefix(h, "node-"), "%d", &n)
		if n%10 != 3 {
			t.Errorf("agent %s is not in rack r3", h)
		}
	}
}

// BenchmarkFirstScreen reports how long a browser takes, by its own clock,
// from navigation to the tasks view's first screen of a simulated cluster
// of 10,000 agents and 100,000 tasks (pages read, parsed and drawn), and
// then a refresh of it. It is a figure for benchmarks/RESULTS.md, not a
// test.
//
//	go test -run '^$' -bench FirstScreen -benchtime 3x ./cluster/webui/
func BenchmarkFirstScreen(b *testing.B) {
	srv := bigMaster(b, 10000, 100000)
	ctx := webuitest.NewBrowser(b)
	var total, fetched, refresh, read float64
	for i := 0; i < b.N; i++ {
		if _, err := chromedp.Run(ctx, chromedp.Navigate(srv.URL+fmt.Sprintf("/?refresh=600&n=%d#/tasks", i))); err != nil {
			b.Fatal(err)
		}
		expr := `performance.getEntriesByName('agora-first-render').length > 0`
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
			b.Fatal(err)
		}
		ms, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.getEntriesByName('agora-first-render')[0].startTime`))
		if err != nil {
			b.Fatal(err)
		}
		total += ms
		// When the last of the master's answers had arrived (the rest is
		// parsing and drawing), and how many bytes they were.
		got, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(() => {
			const rs = performance.getEntriesByType('resource').filter((e) => e.name.includes('/master/') || e.name.includes('/metrics/'));
			return [Math.max(...rs.map((e) => e.responseEnd)), rs.reduce((n, e) => n + e.encodedBodySize, 0)];
		})()`))
		if err != nil {
			b.Fatal(err)
		}
		fetched += got[0]
		read += got[1]
		// A refresh of the open page (as a tab shown again, or an event from
		// the operator stream, causes): the measure of the one it starts.
		want := `performance.getEntriesByName('agora-refresh').length`
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](want))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`document.dispatchEvent(new Event('visibilitychange'))`)); err != nil {
			b.Fatal(err)
		}
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](fmt.Sprintf("%s > %d", want, n), chromedp.WithPollingTimeout(60*time.Second))); err != nil {
			b.Fatal(err)
		}
		ms, err = chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.getEntriesByName('agora-refresh').at(-1).duration`))
		if err != nil {
			b.Fatal(err)
		}
		refresh += ms
	}
	b.ReportMetric(refresh/float64(b.N), "ms/refresh")
	b.ReportMetric(total/float64(b.N), "ms/first-screen")
	b.ReportMetric(fetched/float64(b.N), "ms/data-fetched")
	b.ReportMetric(read/float64(b.N)/1e3, "KB-read")
	b.ReportMetric(float64(len(bigState(10000, 100000)))/1e6, "MB-whole-state")
}
