package master

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

// Pages of the big lists. /master/tasks and /master/slaves take Mesos's
// paging parameters (limit, offset, order) and agora's filter, so that a
// client (the web UI) reads one page of a cluster of 100,000 tasks rather
// than the whole state:
//
//	/master/tasks?limit=100&offset=0&order=des&filter=WORDS&state=active|completed
//	             &framework_id=ID&task_id=ID
//	/master/slaves?limit=100&offset=0&filter=WORDS&slave_id=ID
//
// filter keeps the rows whose text has every word (any case): for a task
// its ID, name, state, framework ID and name, agent ID and hostname, role
// and executor ID; for an agent its ID, hostname, address, attributes
// (name=value), reservations' roles, drain state and status (active,
// inactive, disconnected). Tasks are in order of launch, newest first
// (order=des, Mesos's default) or oldest first (asc); agents by hostname.
// The answer's "total" counts the matching rows before the page is cut,
// "total_unfiltered" the rows before the filter.
// Without any of these parameters the endpoints answer as before: every
// row (Mesos's default of 100 would cut short clients that read them all).

// pageParams are a list request's paging parameters.
type pageParams struct {
	limit, offset int // limit < 0: no limit
	asc           bool
	words         []string
}

var pagingKeys = []string{"limit", "offset", "order", "filter", "state"}

// paged reports whether q asks for a page rather than the whole list.
func paged(q url.Values) bool {
	for _, k := range pagingKeys {
		if q.Has(k) {
			return true
		}
	}
	return false
}

func parsePage(q url.Values) (pageParams, error) {
	p := pageParams{limit: -1}
	for _, k := range []string{"limit", "offset"} {
		if !q.Has(k) {
			continue
		}
		n, err := strconv.Atoi(q.Get(k))
		if err != nil || n < 0 {
			return p, errorf(http.StatusBadRequest, "%s=%q: want a whole number, 0 or more", k, q.Get(k))
		}
		if k == "limit" {
			p.limit = n
		} else {
			p.offset = n
		}
	}
	switch q.Get("order") {
	case "", "des":
	case "asc":
		p.asc = true
	default:
		return p, errorf(http.StatusBadRequest, "order=%q: want asc or des", q.Get("order"))
	}
	p.words = strings.Fields(strings.ToLower(q.Get("filter")))
	return p, nil
}

// cut returns the [lo, hi) bounds of the page in n rows.
func (p pageParams) cut(n int) (lo, hi int) {
	lo = min(p.offset, n)
	hi = n
	if p.limit >= 0 && p.limit < n-lo { // not lo+limit < n: limit may be near MaxInt
		hi = lo + p.limit
	}
	return lo, hi
}

// serveTasks is /master/tasks: a page of tasks, or every task (tasksDoc).
func (m *Master) serveTasks(r *http.Request) (doc, error) {
	q := r.URL.Query()
	if !paged(q) {
		return m.tasksDoc(r), nil
	}
	p, err := parsePage(q)
	if err != nil {
		return nil, err
	}
	want := q.Get("state")
	if want != "" && want != "active" && want != "completed" {
		return nil, errorf(http.StatusBadRequest, "state=%q: want active or completed", want)
	}
	fid, tid := q.Get("framework_id"), q.Get("task_id")
	v := m.viewerOf(r)
	type row struct {
		t *task
		f *framework
	}
	var rows []row
	unfiltered := 0
	add := func(f *framework, t *task, done bool) {
		if (want == "active" && done) || (want == "completed" && !done) || (tid != "" && t.info.TaskID.Value != tid) {
			return
		}
		if !v.task(f.id, t.info.GetUser()) {
			return
		}
		unfiltered++
		if len(p.words) > 0 && !p.matchesAll(m.taskFields(v, f, t)) {
			return
		}
		rows = append(rows, row{t, f})
	}
	frameworks := append(m.sortedFrameworks(), m.completedFrameworks...)
	for _, f := range frameworks {
		if fid != "" && f.id != fid {
			continue
		}
		for _, t := range f.tasks {
			add(f, t, isTerminal(t.state()))
		}
		for _, t := range f.completed {
			add(f, t, true)
		}
	}
	before := func(x, y row) bool {
		a, b := x.t, y.t
		if !a.launched.Equal(b.launched) {
			return a.launched.Before(b.launched) == p.asc
		}
		if a.info.FrameworkID.Value != b.info.FrameworkID.Value {
			return a.info.FrameworkID.Value < b.info.FrameworkID.Value
		}
		return a.info.TaskID.Value < b.info.TaskID.Value
	}
	lo, hi := p.cut(len(rows))
	page := make([]any, 0, hi-lo)
	for _, r := range firstN(rows, hi, before)[lo:] {
		d := taskDoc(r.t)
		if v.framework(r.f.id) {
			d["framework_name"] = r.f.info.Name
		}
		if a := m.agents[r.t.info.AgentID.Value]; a != nil && v.agents() {
			d["slave_hostname"] = a.info.Hostname
		}
		page = append(page, d)
	}
	return doc{"tasks": page, "total": len(rows), "total_unfiltered": unfiltered, "offset": p.offset, "limit": p.limit}, nil
}

// taskFields are what the filter searches in a task (its state names
// TASK_RUNNING, so RUNNING matches too): only what v may view, so that a
// filter cannot probe a hidden framework's name or an agent's hostname.
func (m *Master) taskFields(v *viewer, f *framework, t *task) []string {
	fields := []string{t.info.TaskID.Value, t.info.Name, t.state().String(), f.id, "",
		t.info.AgentID.Value, t.role, t.info.GetExecutorID().GetValue(), ""}
	if v.framework(f.id) {
		fields[4] = f.info.Name
	}
	if a := m.agents[t.info.AgentID.Value]; a != nil && v.agents() {
		fields[len(fields)-1] = a.info.Hostname
	}
	return fields
}

// matchesAll reports whether every word is in one of fields, in any case.
// It allocates nothing for ASCII text, so a filter over 100,000 tasks
// costs the loop little.
func (p pageParams) matchesAll(fields []string) bool {
	for _, w := range p.words {
		found := false
		for _, f := range fields {
			if containsFold(f, w) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// containsFold reports whether s contains word (lower case), ignoring case.
func containsFold(s, word string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return strings.Contains(strings.ToLower(s), word)
		}
	}
	n := len(word)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != word[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}

// firstN orders the first n of xs by less and returns them; the rest of
// xs is left in no order. A page near the start of a long list (the common
// case) costs a pass and a small heap rather than a sort of every row.
func firstN[T any](xs []T, n int, less func(a, b T) bool) []T {
	if n >= len(xs)/4 {
		sort.SliceStable(xs, func(i, j int) bool { return less(xs[i], xs[j]) })
		return xs[:n]
	}
	// xs[:n] is a max-heap (by less) of the n smallest seen so far.
	h := xs[:0:0]
	h = append(h, xs[:n]...)
	down := func(i int) {
		for {
			l, big := 2*i+1, i
			if l < len(h) && less(h[big], h[l]) {
				big = l
			}
			if r := l + 1; r < len(h) && less(h[big], h[r]) {
				big = r
			}
			if big == i {
				return
			}
			h[i], h[big] = h[big], h[i]
			i = big
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	for _, x := range xs[n:] {
		if len(h) > 0 && less(x, h[0]) {
			h[0] = x
			down(0)
		}
	}
	sort.Slice(h, func(i, j int) bool { return less(h[i], h[j]) })
	return h
}

// serveSlaves is /master/slaves: a page of agents, or every agent
// (slavesDoc).
func (m *Master) serveSlaves(r *http.Request) (doc, error) {
	q := r.URL.Query()
	if !paged(q) {
		return m.slavesDoc(r), nil
	}
	p, err := parsePage(q)
	if err != nil {
		return nil, err
	}
	if q.Has("state") {
		return nil, errorf(http.StatusBadRequest, "state: /master/slaves takes limit, offset, filter and slave_id, not state")
	}
	want := q.Get("slave_id")
	var rows []*agent
	unfiltered := 0
	if m.viewerOf(r).agents() {
		for _, a := range m.agents {
			if a.unreachable || (want != "" && a.id != want) {
				continue
			}
			unfiltered++
			if len(p.words) > 0 && !p.matchesAll(m.agentFields(a)) {
				continue
			}
			rows = append(rows, a)
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].info.Hostname != rows[j].info.Hostname {
			return rows[i].info.Hostname < rows[j].info.Hostname
		}
		return rows[i].id < rows[j].id
	})
	lo, hi := p.cut(len(rows))
	page := make([]any, 0, hi-lo)
	for _, a := range rows[lo:hi] {
		d := m.agentDoc(a, false)
		active := 0
		for _, t := range a.tasks {
			if !isTerminal(t.state()) {
				active++
			}
		}
		d["active_tasks"] = active
		page = append(page, d)
	}
	return doc{"slaves": page, "recovered_slaves": []any{}, "total": len(rows), "total_unfiltered": unfiltered,
		"offset": p.offset, "limit": p.limit}, nil
}

// agentFields are what the filter searches in an agent; its maintenance
// state reads as the web UI shows it ("scheduled", "down").
func (m *Master) agentFields(a *agent) []string {
	parts := []string{a.id, a.info.Hostname, a.pid}
	if at := strings.LastIndex(a.pid, "@"); at >= 0 {
		parts = append(parts, a.pid[at+1:])
	}
	for name, v := range api.FlattenAttributes(a.info.Attributes) {
		parts = append(parts, fmt.Sprintf("%s=%v", name, v))
	}
	for _, r := range a.info.Resources {
		if len(r.Reservations) > 0 || (r.GetRole() != "" && r.GetRole() != "*") {
			parts = append(parts, r.ReservationRole())
		}
	}
	switch {
	case a.unreachable:
		parts = append(parts, "unreachable")
	case a.out == nil:
		parts = append(parts, "active", "disconnected")
	default:
		parts = append(parts, "active")
	}
	if a.deactivated {
		parts = append(parts, "inactive")
	}
	for _, id := range m.maint.down {
		if m.agentMatches(a, id) {
			parts = append(parts, "down")
			break
		}
	}
	for _, w := range m.maint.schedule.Windows {
		if slices.ContainsFunc(w.MachineIDs, func(id mesos.MachineID) bool { return m.agentMatches(a, id) }) {
			parts = append(parts, "scheduled")
			break
		}
	}
	if a.draining {
		parts = append(parts, "draining")
		if a.drained {
			parts = append(parts, "drained")
		}
	}
	return parts
}

// serveList serves a list endpoint whose parameters may be wrong: build
// runs on the loop and answers a document or an error (400).
func (m *Master) serveList(build func(r *http.Request) (doc, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, errorf(http.StatusMethodNotAllowed, "expecting a 'GET' request, received '%s'", r.Method))
			return
		}
		var d doc
		var err error
		if derr := m.do(r.Context(), func() {
			if d, err = build(r); err == nil {
				m.filterView(r, d) // authz_view.go
			}
		}); derr != nil {
			answerLoopFailure(w, derr)
			return
		}
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, r, d)
	}
}

// maxSummaryNotes bounds the agents /master/summary lists by name.
const maxSummaryNotes = 100

// serveSummary is /master/summary: what the web UI's header and banners
// show, without the lists (agora's; Mesos has no such endpoint): the
// master's identity and leader, counts of agents and frameworks, the
// resources on offer, and the agents that need attention (warnings,
// disconnected), at most maxSummaryNotes of them.
func (m *Master) serveSummary(r *http.Request) (doc, error) {
	v := m.viewerOf(r)
	leader := m.info.GetPID()
	d := doc{
		"version": api.MesosVersion, "agora_version": api.Version, "start_time": timeSecs(m.start),
		"id": m.id, "pid": leader, "hostname": m.cfg.Hostname, "leader": leader,
		"leader_info": doc{"id": m.id, "pid": leader, "port": m.cfg.Port, "hostname": m.cfg.Hostname, "ip": m.info.IP},
	}
	var activated, unreachable, disconnected, notesTotal int
	var offered mesos.Resources
	notes := []any{}
	for _, a := range m.sortedAgents() {
		if a.unreachable {
			unreachable++
			continue
		}
		activated++
		for _, o := range a.offers {
			if v.framework(o.fw.id) {
				offered.Add(o.resources...)
			}
		}
		if a.out == nil {
			disconnected++
		}
		if len(a.warnings) == 0 && a.out != nil {
			continue
		}
		notesTotal++
		if len(notes) < maxSummaryNotes {
			notes = append(notes, doc{"id": a.id, "hostname": a.info.Hostname, "connected": a.out != nil, "warnings": append([]string{}, a.warnings...)})
		}
	}
	// agents_visible says whether the principal may view agents (ACLs):
	// without, its lists of agents are empty however many there are.
	d["agents_visible"] = v.agents()
	if !v.agents() {
		notes, notesTotal = []any{}, 0
	}
	var active, inactive int
	for _, f := range m.frameworks {
		if !v.framework(f.id) {
			continue // as /master/state leaves it out
		}
		if f.conn != nil && !f.removed {
			active++
		} else {
			inactive++
		}
	}
	d["activated_slaves"], d["unreachable_slaves"], d["disconnected_slaves"] = activated, unreachable, disconnected
	d["frameworks_active"], d["frameworks_inactive"] = active, inactive
	d["offered_resources"] = api.FlattenResources(offered)
	d["agent_notes"], d["agent_notes_total"] = notes, notesTotal
	return d, nil
}

// serveFrameworks is /master/frameworks. With tasks=false (agora's) each
// framework comes without its tasks: their counts by state, the count of
// its completed tasks, and its outstanding offers (with their agents'
// hostnames), so that the web UI's frameworks and offers pages stay small
// on a cluster of 100,000 tasks. Otherwise it is Mesos's document.
func (m *Master) serveFrameworks(r *http.Request) (doc, error) {
	q := r.URL.Query()
	switch q.Get("tasks") {
	case "":
		return m.frameworksDoc(r), nil
	case "false":
	default:
		return nil, errorf(http.StatusBadRequest, "tasks=%q: want false (leave it out for the tasks)", q.Get("tasks"))
	}
	want := q.Get("framework_id")
	v := m.viewerOf(r)
	agents := v.agents()
	// visible counts the tasks the principal may view (all without ACLs).
	visible := func(f *framework, ts []*task) int {
		n := 0
		for _, t := range ts {
			if v.task(f.id, t.info.GetUser()) {
				n++
			}
		}
		return n
	}
	light := func(f *framework) doc {
		d := m.frameworkDoc(f, false)
		delete(d, "slave_ids") // one per agent: as big as the cluster
		d["task_count"], d["completed_task_count"] = len(f.tasks), len(f.completed)
		if v != nil {
			d["task_count"] = visible(f, slices.Collect(maps.Values(f.tasks)))
			d["completed_task_count"] = visible(f, f.completed)
		}
		offers := []any{}
		for _, id := range sortedKeys(f.offers) {
			o := f.offers[id]
			od := doc{"id": o.id, "framework_id": f.id, "slave_id": o.agent.id,
				"resources": api.FlattenResources(o.resources), "allocation_info": doc{"role": o.role}}
			if agents {
				od["slave_hostname"] = o.agent.info.Hostname
			}
			offers = append(offers, od)
		}
		d["offers"] = offers
		return d
	}
	fs, done := []any{}, []any{}
	for _, f := range m.sortedFrameworks() {
		if want == "" || want == f.id {
			fs = append(fs, light(f))
		}
	}
	for _, f := range m.completedFrameworks {
		if want == "" || want == f.id {
			done = append(done, light(f))
		}
	}
	return doc{"frameworks": fs, "completed_frameworks": done, "unregistered_frameworks": []any{}}, nil
}

// serveRoles is /master/roles, as Mesos has it: every role that has a
// weight, a quota, a framework, a task or a reservation, with its weight,
// its frameworks and the resources allocated to it ("resources"). Agora
// adds "tasks" (its active tasks), "allocated" (the same as resources) and
// "reserved" (reserved for it on the agents), so that the web UI's roles
// page need not read every task. What the principal may not view (ACLs)
// is not counted.
func (m *Master) serveRoles(r *http.Request) (doc, error) {
	type role struct {
		frameworks          []string
		tasks               int
		allocated, reserved mesos.Resources
	}
	roles := map[string]*role{}
	get := func(name string) *role {
		if name == "" {
			name = "*"
		}
		if roles[name] == nil {
			roles[name] = &role{frameworks: []string{}}
		}
		return roles[name]
	}
	for name := range m.policy.Weights {
		get(name)
	}
	for name := range m.policy.Quotas {
		get(name)
	}
	v := m.viewerOf(r)
	for _, f := range m.sortedFrameworks() {
		if !v.framework(f.id) {
			continue
		}
		for _, name := range f.roles() {
			get(name).frameworks = append(get(name).frameworks, f.id)
		}
		for _, t := range f.tasks {
			if isTerminal(t.state()) || !v.task(f.id, t.info.GetUser()) {
				continue
			}
			ro := get(t.role)
			ro.tasks++
			ro.allocated.Add(t.info.Resources...)
		}
	}
	if v.agents() {
		for _, a := range m.agents {
			if a.unreachable {
				continue
			}
			for _, res := range a.info.Resources {
				if len(res.Reservations) > 0 || (res.GetRole() != "" && res.GetRole() != "*") {
					get(res.ReservationRole()).reserved.Add(res)
				}
			}
		}
	}
	out := []any{}
	for _, name := range sortedKeys(roles) {
		ro := roles[name]
		weight := 1.0
		if w, ok := m.policy.Weights[name]; ok {
			weight = w
		}
		allocated := api.FlattenResources(ro.allocated)
		out = append(out, doc{"name": name, "weight": weight, "frameworks": ro.frameworks, "tasks": ro.tasks,
			"resources": allocated, "allocated": allocated, "reserved": api.FlattenResources(ro.reserved)})
	}
	return doc{"roles": out}, nil
}
