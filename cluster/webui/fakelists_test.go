package webui_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// fakeLists serves, from a /master/state document, what a real master
// serves the UI besides it: /master/summary, /master/frameworks?tasks=false
// and pages of /master/tasks and /master/slaves (limit, offset, filter;
// tasks by state). It stands in for
// the master in the tests that draw a fixture or a simulated cluster; the
// master's own lists are tested in cluster/master.
type fakeLists struct {
	summary    []byte
	frameworks []byte // /master/frameworks?tasks=false
	tasks      []fakeTask
	agents     []fakeAgent
}

type fakeTask struct {
	doc  map[string]any
	done bool
	text string
}

type fakeAgent struct {
	doc  map[string]any
	text string
}

func newFakeLists(t testing.TB, stateJSON []byte) *fakeLists {
	t.Helper()
	var st map[string]any
	if err := json.Unmarshal(stateJSON, &st); err != nil {
		t.Fatalf("state: %v", err)
	}
	list := func(x any) []any { l, _ := x.([]any); return l }
	str := func(x any) string { s, _ := x.(string); return s }
	fl := &fakeLists{}
	hosts := map[string]string{}
	active := map[string]int{}
	offered := map[string]float64{}
	var notes []any
	disconnected := 0
	for _, a := range list(st["slaves"]) {
		a := a.(map[string]any)
		hosts[str(a["id"])] = str(a["hostname"])
		for k, v := range a["offered_resources"].(map[string]any) {
			if f, ok := v.(float64); ok {
				offered[k] += f
			}
		}
		if a["connected"] == false {
			disconnected++
		}
		if len(list(a["warnings"])) > 0 || a["connected"] == false {
			notes = append(notes, map[string]any{"id": a["id"], "hostname": a["hostname"], "connected": a["connected"] != false, "warnings": a["warnings"]})
		}
	}
	fwActive, fwInactive := 0, 0
	for _, f := range list(st["frameworks"]) {
		if f.(map[string]any)["active"] == false {
			fwInactive++
		} else {
			fwActive++
		}
	}
	for _, f := range append(list(st["frameworks"]), list(st["completed_frameworks"])...) {
		f := f.(map[string]any)
		add := func(x any, done bool) {
			d := map[string]any{}
			for k, v := range x.(map[string]any) {
				d[k] = v
			}
			d["framework_name"] = f["name"]
			if h, ok := hosts[str(d["slave_id"])]; ok {
				d["slave_hostname"] = h
			}
			if !done {
				active[str(d["slave_id"])]++
			}
			state := str(d["state"])
			text := strings.ToLower(strings.Join([]string{str(d["id"]), str(d["name"]), state, strings.TrimPrefix(state, "TASK_"),
				str(d["framework_id"]), str(f["name"]), str(d["slave_id"]), hosts[str(d["slave_id"])], str(d["role"]), str(d["executor_id"])}, " "))
			fl.tasks = append(fl.tasks, fakeTask{d, done, text})
		}
		for _, x := range append(list(f["tasks"]), list(f["unreachable_tasks"])...) {
			add(x, false)
		}
		for _, x := range list(f["completed_tasks"]) {
			add(x, true)
		}
	}
	sort.SliceStable(fl.tasks, func(i, j int) bool { return str(fl.tasks[i].doc["id"]) < str(fl.tasks[j].doc["id"]) })
	for _, a := range list(st["slaves"]) {
		a := a.(map[string]any)
		d := map[string]any{"active_tasks": active[str(a["id"])]}
		for k, v := range a {
			d[k] = v
		}
		parts := []string{str(a["id"]), str(a["hostname"]), str(a["pid"])}
		if at := strings.LastIndex(str(a["pid"]), "@"); at >= 0 {
			parts = append(parts, str(a["pid"])[at+1:])
		}
		for k, v := range a["attributes"].(map[string]any) {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
		for role := range a["reserved_resources"].(map[string]any) {
			parts = append(parts, role)
		}
		if di, ok := a["drain_info"].(map[string]any); ok {
			parts = append(parts, strings.ToLower(str(di["state"])))
		}
		parts = append(parts, "active")
		if a["connected"] == false {
			parts = append(parts, "disconnected")
		}
		fl.agents = append(fl.agents, fakeAgent{d, strings.ToLower(strings.Join(parts, " "))})
	}
	summary := map[string]any{
		"activated_slaves": st["activated_slaves"], "unreachable_slaves": st["unreachable_slaves"], "disconnected_slaves": disconnected,
		"frameworks_active": fwActive, "frameworks_inactive": fwInactive, "offered_resources": offered,
		"agent_notes": notes, "agent_notes_total": len(notes), "agents_visible": true,
	}
	for _, k := range []string{"version", "agora_version", "start_time", "id", "pid", "hostname", "leader", "leader_info"} {
		if v, ok := st[k]; ok {
			summary[k] = v
		}
	}
	fl.summary, _ = json.Marshal(summary)
	light := func(key string) []any {
		out := []any{}
		for _, f := range list(st[key]) {
			d := map[string]any{}
			for k, v := range f.(map[string]any) {
				d[k] = v
			}
			d["task_count"] = len(list(d["tasks"])) + len(list(d["unreachable_tasks"]))
			d["completed_task_count"] = len(list(d["completed_tasks"]))
			delete(d, "tasks")
			delete(d, "unreachable_tasks")
			delete(d, "completed_tasks")
			var offers []any
			for _, o := range list(d["offers"]) {
				o := o.(map[string]any)
				o["slave_hostname"] = hosts[str(o["slave_id"])]
				offers = append(offers, o)
			}
			d["offers"] = offers
			out = append(out, d)
		}
		return out
	}
	fl.frameworks, _ = json.Marshal(map[string]any{"frameworks": light("frameworks"), "completed_frameworks": light("completed_frameworks")})
	return fl
}

// page cuts n rows by the request's limit and offset.
func page(r *http.Request, n int) (lo, hi int) {
	q := r.URL.Query()
	lo, _ = strconv.Atoi(q.Get("offset"))
	lo = min(lo, n)
	hi = n
	if l, err := strconv.Atoi(q.Get("limit")); err == nil && lo+l < n {
		hi = lo + l
	}
	return lo, hi
}

func matches(text, filter string) bool {
	for _, w := range strings.Fields(strings.ToLower(filter)) {
		if !strings.Contains(text, w) {
			return false
		}
	}
	return true
}

func writeJSONDoc(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (fl *fakeLists) serveSummary(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(fl.summary)
}

func (fl *fakeLists) serveTasks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var rows []any
	unfiltered := 0
	for _, t := range fl.tasks {
		if (q.Get("state") == "active" && t.done) || (q.Get("state") == "completed" && !t.done) ||
			(q.Has("framework_id") && t.doc["framework_id"] != q.Get("framework_id")) || (q.Has("task_id") && t.doc["id"] != q.Get("task_id")) {
			continue
		}
		unfiltered++
		if matches(t.text, q.Get("filter")) {
			rows = append(rows, t.doc)
		}
	}
	lo, hi := page(r, len(rows))
	offset, _ := strconv.Atoi(q.Get("offset"))
	writeJSONDoc(w, map[string]any{"tasks": append([]any{}, rows[lo:hi]...), "total": len(rows), "total_unfiltered": unfiltered, "offset": offset})
}

func (fl *fakeLists) serveSlaves(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var rows []any
	unfiltered := 0
	for _, a := range fl.agents {
		if q.Has("slave_id") && a.doc["id"] != q.Get("slave_id") {
			continue
		}
		unfiltered++
		if matches(a.text, q.Get("filter")) {
			rows = append(rows, a.doc)
		}
	}
	lo, hi := page(r, len(rows))
	offset, _ := strconv.Atoi(q.Get("offset"))
	writeJSONDoc(w, map[string]any{"slaves": append([]any{}, rows[lo:hi]...), "total": len(rows), "total_unfiltered": unfiltered, "offset": offset})
}

// handle mounts the fake's endpoints on mux, each through wrap.
func (fl *fakeLists) handle(mux *http.ServeMux, wrap func(http.HandlerFunc) http.HandlerFunc) {
	mux.Handle("/master/summary", wrap(fl.serveSummary))
	mux.Handle("/master/frameworks", wrap(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(fl.frameworks)
	}))
	mux.Handle("/master/tasks", wrap(fl.serveTasks))
	mux.Handle("/master/slaves", wrap(fl.serveSlaves))
}
