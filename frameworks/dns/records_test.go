package dns

import (
	"fmt"
	"net"
	"reflect"
	"sort"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/master"
)

// dump is every record and name of rs, sorted, to compare two record sets.
func dump(rs *records) []string {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	var out []string
	for n, ips := range rs.a {
		for _, ip := range ips {
			out = append(out, n+" A "+ip.String())
		}
	}
	for n, ts := range rs.srv {
		for _, s := range ts {
			out = append(out, fmt.Sprintf("%s SRV %s:%d", n, s.target, s.port))
		}
	}
	for n, c := range rs.names {
		if c > 0 {
			out = append(out, n+" exists")
		}
	}
	for k, tr := range rs.tasks {
		out = append(out, fmt.Sprintf("task %s: %d records", k, len(tr.rrs)))
	}
	// Every record's index points at it.
	for n, ips := range rs.a {
		for i, ip := range ips {
			if k := (rr{name: n, ip: ip}).key(); rs.pos[k] != i || rs.refs[k] < 1 {
				out = append(out, fmt.Sprintf("BAD INDEX %s: at %d, indexed %d, held %d", k, i, rs.pos[k], rs.refs[k]))
			}
		}
	}
	for n, ts := range rs.srv {
		for i, x := range ts {
			if k := (rr{name: n, target: x.target, port: x.port}).key(); rs.pos[k] != i || rs.refs[k] < 1 {
				out = append(out, fmt.Sprintf("BAD INDEX %s: at %d, indexed %d, held %d", k, i, rs.pos[k], rs.refs[k]))
			}
		}
	}
	if len(rs.pos) != len(rs.refs) {
		out = append(out, fmt.Sprintf("BAD INDEX: %d indexed, %d held", len(rs.pos), len(rs.refs)))
	}
	sort.Strings(out)
	return out
}

func taskState(s mesos.TaskState) *mesos.TaskState { return &s }

// TestEventsChangeRecordsInPlace: a sequence of operator events applied
// to the records in place leaves them as a whole rebuild from the same
// view would, record for record; records two tasks share (the agent's
// address under task.framework.slave) stay until the last one goes.
func TestEventsChangeRecordsInPlace(t *testing.T) {
	cfg := testConfig(deadMaster)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	v := fakeView("web", 3)
	v.agents["a-S1"] = agentRec{id: "a-S1", ip: net.IPv4(127, 0, 0, 2), port: 5051}
	v.frameworks["f2"] = frameworkRec{name: "chronos"}
	v.tasks[taskKey("f2", "job.1")] = &taskRec{id: "job.1", name: "job", frameworkID: "f2", agentID: "a-S1", state: mesos.TASK_RUNNING,
		ports: []uint32{32000}}
	checked := &taskRec{id: "api.1", name: "api", frameworkID: "f1", agentID: "a-S1", state: mesos.TASK_RUNNING, checked: true, ports: []uint32{31500}}
	v.tasks[taskKey("f1", "api.1")] = checked
	rs := build(&cfg, v, nil, net.IPv4(127, 0, 0, 1))

	update := func(fw, id string, st mesos.TaskState, healthy *bool) *master.Event {
		return &master.Event{Type: master.Event_TASK_UPDATED, TaskUpdated: &master.Event_TaskUpdated{
			FrameworkID: mesos.FrameworkID{Value: fw}, State: taskState(st),
			Status: mesos.TaskStatus{TaskID: mesos.TaskID{Value: id}, State: taskState(st), Healthy: healthy}}}
	}
	yes, no := true, false
	steps := []struct {
		what string
		ev   *master.Event
		has  string // a record there after the step ("" none to check)
		gone string // a record gone after the step
	}{
		{"api turns healthy", update("f1", "api.1", mesos.TASK_RUNNING, &yes), "_api._tcp.marathon.agora. SRV", ""},
		{"api turns unhealthy", update("f1", "api.1", mesos.TASK_RUNNING, &no), "", "_api._tcp.marathon.agora. SRV"},
		{"a web instance ends", update("f1", "web.0", mesos.TASK_KILLED, nil), "web.marathon.slave.agora. A 127.0.0.1", "10.0.0.1"},
		{"a task is added", &master.Event{Type: master.Event_TASK_ADDED, TaskAdded: &master.Event_TaskAdded{Task: mesos.Task{
			Name: "web", TaskID: mesos.TaskID{Value: "web.9"}, FrameworkID: mesos.FrameworkID{Value: "f1"}, AgentID: mesos.AgentID{Value: "a-S1"},
			State: taskState(mesos.TASK_RUNNING)}}}, "web.marathon.slave.agora. A 127.0.0.2", ""},
		{"an agent goes", &master.Event{Type: master.Event_AGENT_REMOVED, AgentRemoved: &master.Event_AgentRemoved{
			AgentID: mesos.AgentID{Value: "a-S1"}}}, "", "agent.agora. A 127.0.0.2"},
		{"a framework goes", &master.Event{Type: master.Event_FRAMEWORK_REMOVED, FrameworkRemoved: &master.Event_FrameworkRemoved{
			FrameworkInfo: mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: "f2"}, Name: "chronos"}}}, "", "job.chronos.agora. exists"},
		{"the other web instances end", nil, "", "web.marathon.agora. exists"},
	}
	for _, s := range steps {
		evs := []*master.Event{s.ev}
		if s.ev == nil {
			evs = []*master.Event{update("f1", "web.1", mesos.TASK_FINISHED, nil), update("f1", "web.2", mesos.TASK_FAILED, nil),
				update("f1", "web.9", mesos.TASK_KILLED, nil)}
		}
		for _, ev := range evs {
			ch := v.applyEvent(ev)
			if ch.full || ch.empty() {
				t.Fatalf("%s: change %+v, want one to apply in place", s.what, ch)
			}
			rs.apply(&cfg, v, ch, nil, net.IPv4(127, 0, 0, 1))
		}
		got, want := dump(rs), dump(build(&cfg, v, nil, net.IPv4(127, 0, 0, 1)))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("after %s, in place:\n%s\nrebuilt:\n%s", s.what, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		all := strings.Join(got, "\n")
		if s.has != "" && !strings.Contains(all, s.has) {
			t.Errorf("after %s: no %q in\n%s", s.what, s.has, all)
		}
		if s.gone != "" && strings.Contains(all, s.gone) {
			t.Errorf("after %s: %q is still there:\n%s", s.what, s.gone, all)
		}
	}
	if rs.exists("_tcp.marathon.agora.") || rs.exists("marathon.slave.agora.") || !rs.exists("agora.") {
		t.Errorf("names of tasks all gone should not exist, the apex should:\n%s", strings.Join(dump(rs), "\n"))
	}
}

// TestEnumerate: /v1/enumerate lists each framework with its published
// tasks and their records, in Mesos-DNS's shape.
func TestEnumerate(t *testing.T) {
	r := serve(t, testConfig(deadMaster))
	if code := getJSON(t, r.http+"/v1/enumerate", nil); code != 503 {
		t.Errorf("/v1/enumerate before the first load: %d, want 503", code)
	}
	v := fakeView("web", 2)
	v.frameworks["f2"] = frameworkRec{name: "idle"}
	r.load(t, v)
	var e struct {
		Frameworks []struct {
			Name  string `json:"name"`
			Tasks []struct {
				Name    string `json:"name"`
				ID      string `json:"id"`
				Records []struct {
					Name  string `json:"name"`
					Host  string `json:"host"`
					Rtype string `json:"rtype"`
				} `json:"records"`
			} `json:"tasks"`
		} `json:"frameworks"`
	}
	if code := getJSON(t, r.http+"/v1/enumerate", &e); code != 200 {
		t.Fatalf("/v1/enumerate: %d", code)
	}
	if len(e.Frameworks) != 2 || e.Frameworks[0].Name != "marathon" || e.Frameworks[1].Name != "idle" || len(e.Frameworks[1].Tasks) != 0 {
		t.Fatalf("/v1/enumerate frameworks: %+v", e.Frameworks)
	}
	ts := e.Frameworks[0].Tasks
	if len(ts) != 2 || ts[0].ID != "web.0" || ts[0].Name != "web" {
		t.Fatalf("marathon's tasks: %+v", ts)
	}
	var a, srv bool
	canonical := "web-" + taskIDHash("web.0") + "-s0.marathon.slave.agora."
	for _, rec := range ts[0].Records {
		a = a || rec.Name == "web.marathon.agora." && rec.Host == "10.0.0.1" && rec.Rtype == "A"
		srv = srv || rec.Name == "_web._tcp.marathon.agora." && rec.Host == canonical+":31000" && rec.Rtype == "SRV"
	}
	if !a || !srv {
		t.Errorf("web.0's records %+v: want web.marathon.agora. A 10.0.0.1 and _web._tcp.marathon.agora. SRV %s:31000", ts[0].Records, canonical)
	}
}
