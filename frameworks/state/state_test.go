package state

import (
	"encoding/json"
	"testing"
)

// agentStateJSON is shaped like a Mesos agent's GET /state.
const agentStateJSON = `{
  "id": "a1-S0", "pid": "slave(1)@10.0.0.7:5051", "hostname": "node7",
  "frameworks": [{"id": "f1", "name": "run", "executors": [
    {"id": "t1", "name": "Command Executor", "source": "t1", "container": "c1",
     "directory": "/var/lib/agora/slaves/a1-S0/frameworks/f1/executors/t1/runs/c1"}],
    "completed_executors": [{"id": "t0", "directory": "/sandbox/t0"}]}],
  "completed_frameworks": [{"id": "f0", "executors": [], "completed_executors": [{"id": "t9", "directory": "/sandbox/t9"}]}]
}`

func TestAgentStateSandbox(t *testing.T) {
	var s AgentState
	if err := json.Unmarshal([]byte(agentStateJSON), &s); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ fw, ex, want string }{
		{"f1", "t1", "/var/lib/agora/slaves/a1-S0/frameworks/f1/executors/t1/runs/c1"},
		{"f1", "t0", "/sandbox/t0"},
		{"f0", "t9", "/sandbox/t9"},
		{"f1", "t9", ""},
		{"nope", "t1", ""},
	} {
		got, ok := s.Sandbox(c.fw, c.ex)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("Sandbox(%s, %s) = %q, %v; want %q", c.fw, c.ex, got, ok, c.want)
		}
	}
}

func TestMasterStateDecodesFlattenedResources(t *testing.T) {
	const doc = `{"slaves":[{"id":"a1","pid":"slave(1)@127.0.0.1:5052","hostname":"h","port":5052,"active":true,
	  "resources":{"cpus":4,"gpus":0,"mem":1024,"disk":2048,"ports":"[31000-32000]"},
	  "used_resources":{"cpus":0.5,"gpus":0,"mem":64,"disk":0}}],
	  "frameworks":[{"id":"f1","name":"n","roles":["a","b"],"role":"a","active":true,
	  "tasks":[{"id":"t1","name":"t","framework_id":"f1","slave_id":"a1","state":"TASK_RUNNING","resources":{"cpus":0.5,"mem":64}}]}]}`
	var m Master
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	a := m.Slaves[0]
	if a.Resources.CPUs != 4 || a.Resources.Ports != "[31000-32000]" || a.UsedResources.Mem != 64 {
		t.Errorf("agent resources = %+v used %+v", a.Resources, a.UsedResources)
	}
	if a.Endpoint() != "127.0.0.1:5052" {
		t.Errorf("Endpoint = %q", a.Endpoint())
	}
	if got := (Agent{Hostname: "h2", Port: 5060}).Endpoint(); got != "h2:5060" {
		t.Errorf("Endpoint without pid = %q, want h2:5060", got)
	}
	f := m.Frameworks[0]
	if len(f.RoleNames()) != 2 || f.Tasks[0].State != "TASK_RUNNING" {
		t.Errorf("framework = %+v", f)
	}
	if got := (Framework{Role: "x"}).RoleNames(); len(got) != 1 || got[0] != "x" {
		t.Errorf("legacy role = %v", got)
	}
}

func TestBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5050":        "http://127.0.0.1:5050",
		"http://m:5050/":        "http://m:5050",
		"https://m:5050/mesos/": "https://m:5050/mesos",
		" m:5050 ":              "http://m:5050",
	} {
		got, err := BaseURL(in)
		if err != nil || got != want {
			t.Errorf("BaseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "ftp://x:1", "http://"} {
		if got, err := BaseURL(bad); err == nil {
			t.Errorf("BaseURL(%q) = %q, want an error", bad, got)
		}
	}
}
