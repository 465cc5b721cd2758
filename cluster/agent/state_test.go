package agent

import (
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

func TestStateAndMetricsDescribeTheAgentAndItsTasks(t *testing.T) {
	fm := newFakeMaster(t)
	ta, s := startRegistered(t, fm, testConfig(t, fm, ""))
	run(fm, shellTask("busy", "sleep 100"))
	ups := fm.expectStates(t, "busy", mesos.TASK_STARTING, mesos.TASK_RUNNING)
	sandbox := sandboxOf(ta.Agent, "busy", ups[1])

	var st struct {
		ID         string         `json:"id"`
		Hostname   string         `json:"hostname"`
		Version    string         `json:"version"`
		Resources  map[string]any `json:"resources"`
		Attributes map[string]any `json:"attributes"`
		Frameworks []struct {
			ID        string `json:"id"`
			Role      string `json:"role"`
			Executors []struct {
				ID        string `json:"id"`
				Directory string `json:"directory"`
				Container string `json:"container"`
				Tasks     []struct {
					ID        string         `json:"id"`
					Name      string         `json:"name"`
					State     string         `json:"state"`
					SlaveID   string         `json:"slave_id"`
					Resources map[string]any `json:"resources"`
					Statuses  []struct {
						State string `json:"state"`
					} `json:"statuses"`
				} `json:"tasks"`
			} `json:"executors"`
		} `json:"frameworks"`
	}
	for _, path := range []string{"/state", "/slave(1)/state"} {
		getJSON(t, ta.Agent, path, &st)
		if st.ID != s.agentID || st.Hostname != "agent.test" || st.Version != api.MesosVersion {
			t.Errorf("%s: id %q hostname %q version %q", path, st.ID, st.Hostname, st.Version)
		}
		if st.Resources["cpus"] != 4.0 || st.Resources["mem"] != 4096.0 || st.Resources["ports"] != "[31000-31099]" || st.Attributes["rack"] != "r1" {
			t.Errorf("%s: resources %v attributes %v", path, st.Resources, st.Attributes)
		}
		if len(st.Frameworks) != 1 || len(st.Frameworks[0].Executors) != 1 || len(st.Frameworks[0].Executors[0].Tasks) != 1 {
			t.Fatalf("%s: frameworks = %+v", path, st.Frameworks)
		}
		ex := st.Frameworks[0].Executors[0]
		task := ex.Tasks[0]
		if ex.ID != "busy" || ex.Directory != sandbox || task.ID != "busy" || task.Name != "task busy" ||
			task.State != "TASK_RUNNING" || task.SlaveID != s.agentID || task.Resources["cpus"] != 0.5 || len(task.Statuses) != 2 {
			t.Errorf("%s: executor %+v", path, ex)
		}
	}

	var m map[string]float64
	getJSON(t, ta.Agent, "/metrics/snapshot", &m)
	for name, want := range map[string]float64{
		"slave/registered": 1, "slave/tasks_running": 1, "slave/tasks_staging": 0, "slave/tasks_finished": 0,
		"slave/cpus_total": 4, "slave/cpus_used": 0.5, "slave/mem_total": 4096, "slave/executors_running": 1,
		"slave/frameworks_active": 1,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("metric %s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if m["slave/uptime_secs"] <= 0 {
		t.Errorf("slave/uptime_secs = %v", m["slave/uptime_secs"])
	}

	var v map[string]string
	getJSON(t, ta.Agent, "/version", &v)
	if v["version"] != api.MesosVersion || v["agora_version"] != api.Version {
		t.Errorf("/version = %v", v)
	}
	if code, _ := get(t, ta.Agent, "/health"); code != http.StatusOK {
		t.Errorf("/health: %d", code)
	}
	// JSONP lets any page read the answer: off unless origins are listed.
	code, body := get(t, ta.Agent, "/state?jsonp=cb")
	if code != http.StatusForbidden || strings.Contains(string(body), "cb(") {
		t.Errorf("/state?jsonp=cb: %d %.40s, want 403", code, body)
	}
	resp, err := http.Post("http://"+ta.Addr()+"/state", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /state: %d, want 405", resp.StatusCode)
	}
}

func TestResourcesAreDetectedUnlessGiven(t *testing.T) {
	dir := t.TempDir()
	rs, err := DetectResources("", dir)
	if err != nil {
		t.Fatal(err)
	}
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		t.Fatal(err)
	}
	total := uint64(si.Totalram) * uint64(si.Unit)
	wantMem := float64((total - min(uint64(1<<30), total/2)) >> 20)
	flat := api.FlattenResources(rs)
	if flat["cpus"] != float64(runtime.NumCPU()) || flat["mem"] != wantMem || flat["disk"].(float64) <= 0 || flat["ports"] != "[31000-32000]" {
		t.Fatalf("detected %v; want cpus %d mem %v", flat, runtime.NumCPU(), wantMem)
	}

	rs, err = DetectResources("cpus:2;mem(analytics):512;gpus:1", dir)
	if err != nil {
		t.Fatal(err)
	}
	flat = api.FlattenResources(rs)
	if flat["cpus"] != 2.0 || flat["mem"] != 512.0 || flat["gpus"] != 1.0 || flat["disk"].(float64) <= 0 || flat["ports"] != "[31000-32000]" {
		t.Fatalf("with --resources: %v", flat)
	}
	for _, r := range rs {
		if r.Name == "mem" && (len(r.Reservations) != 1 || r.Reservations[0].GetRole() != "analytics") {
			t.Errorf("mem lost its role: %+v", r)
		}
	}
	if _, err := DetectResources("cpus:lots", dir); err == nil {
		t.Error("bad --resources accepted")
	}
}
