package master_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/clustertest"
)

type listPage struct {
	Tasks []struct {
		ID            string `json:"id"`
		FrameworkName string `json:"framework_name"`
		SlaveHostname string `json:"slave_hostname"`
	} `json:"tasks"`
	Slaves []struct {
		ID          string            `json:"id"`
		Attributes  map[string]string `json:"attributes"`
		ActiveTasks *int              `json:"active_tasks"`
	} `json:"slaves"`
	Total *int `json:"total"`
}

func getList(t *testing.T, c *clustertest.Cluster, path string) (int, listPage, string) {
	t.Helper()
	resp, err := http.Get(c.MasterURL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var p listPage
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, b)
		}
	}
	return resp.StatusCode, p, string(b)
}

// TestListPagesAndFilters reads /master/tasks and /master/slaves a page at
// a time, filtered, in both orders; without paging parameters they answer
// every row as before; bad parameters are refused with what is wrong.
func TestListPagesAndFilters(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Agents: 2, Agent: func(i int, cfg *agent.Config) {
		cfg.Attributes = fmt.Sprintf("rack:r%d", i+1)
	}})
	s := c.Subscribe(`{"user":"root","name":"pager"}`)
	offer := s.Offer()
	cmd := "sleep 600"
	for i := 0; i < 5; i++ {
		// One launch at a time: each task is launched after the last.
		s.Launch(offer, mesos.TaskInfo{Name: fmt.Sprintf("job-%d", i), TaskID: mesos.TaskID{Value: fmt.Sprintf("t%d", i)}, AgentID: offer.AgentID,
			Command: &mesos.CommandInfo{Value: &cmd}, Resources: mesos.Resources{
				{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 0.1}},
				{Name: "mem", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 16}}}})
		s.Until(fmt.Sprintf("t%d", i), mesos.TASK_RUNNING)
		// The offer's rest comes back, maybe while Until waited: then
		// it is declined and offered again.
		s.DeclineSkipped()
		offer = s.Offer()
	}
	ids := func(p listPage) []string {
		var out []string
		for _, t := range p.Tasks {
			out = append(out, t.ID)
		}
		return out
	}

	_, des, _ := getList(t, c, "/master/tasks?limit=100")
	if got := ids(des); !slices.Equal(got, []string{"t4", "t3", "t2", "t1", "t0"}) || *des.Total != 5 {
		t.Errorf("newest first: %v (total %v)", got, des.Total)
	}
	if des.Tasks[0].FrameworkName != "pager" || des.Tasks[0].SlaveHostname != "localhost" {
		t.Errorf("a task's page row lacks its framework's name or agent's hostname: %+v", des.Tasks[0])
	}
	for path, want := range map[string][]string{
		"/master/tasks?order=asc&limit=2":                  {"t0", "t1"},
		"/master/tasks?offset=4&limit=2":                   {"t0"},
		"/master/tasks?offset=9":                           nil,
		"/master/tasks?limit=9223372036854775807&offset=1": {"t3", "t2", "t1", "t0"},
		"/master/tasks?filter=JOB-3":                       {"t3"},
		"/master/tasks?filter=pager+running+t1":            {"t1"},
		"/master/tasks?filter=nothing-like-it":             nil,
		"/master/tasks?state=active&task_id=t2":            {"t2"},
		"/master/tasks?state=completed":                    nil,
		"/master/tasks?limit=5&framework_id=" + s.ID:       {"t4", "t3", "t2", "t1", "t0"},
	} {
		code, p, body := getList(t, c, path)
		if code != http.StatusOK || !slices.Equal(ids(p), want) {
			t.Errorf("GET %s: %d %v, want %v (%s)", path, code, ids(p), want, body)
		}
	}
	if _, p, _ := getList(t, c, "/master/tasks?offset=3&limit=1"); *p.Total != 5 {
		t.Errorf("total of a cut page = %d, want 5 (before the cut)", *p.Total)
	}
	if _, p, body := getList(t, c, "/master/tasks?filter=t1"); *p.Total != 1 || !strings.Contains(body, `"total_unfiltered":5`) {
		t.Errorf("filter t1: total %d, want 1 of 5 unfiltered: %s", *p.Total, body)
	}
	if _, p, _ := getList(t, c, "/master/tasks"); len(p.Tasks) != 5 || p.Total != nil {
		t.Errorf("without paging: %d tasks, total %v; want all 5 as before, no total", len(p.Tasks), p.Total)
	}

	_, all, _ := getList(t, c, "/master/slaves?limit=1")
	if len(all.Slaves) != 1 || *all.Total != 2 {
		t.Errorf("agents page of 1: %d rows, total %v", len(all.Slaves), all.Total)
	}
	_, r2, _ := getList(t, c, "/master/slaves?filter=rack%3Dr2")
	if len(r2.Slaves) != 1 || r2.Slaves[0].Attributes["rack"] != "r2" || r2.Slaves[0].ActiveTasks == nil {
		t.Errorf("rack=r2: %+v", r2.Slaves)
	}
	_, both, _ := getList(t, c, "/master/slaves?limit=10")
	active := 0
	for _, a := range both.Slaves {
		active += *a.ActiveTasks
	}
	if active != 5 {
		t.Errorf("the agents' active_tasks add up to %d, want 5", active)
	}
	if _, one, _ := getList(t, c, "/master/slaves?limit=10&slave_id="+both.Slaves[1].ID); len(one.Slaves) != 1 || one.Slaves[0].ID != both.Slaves[1].ID {
		t.Errorf("slave_id: %+v", one.Slaves)
	}

	// Sums by role: the five tasks of 0.1 cpus run in role *.
	var roles struct {
		Roles []struct {
			Name       string             `json:"name"`
			Weight     float64            `json:"weight"`
			Frameworks []string           `json:"frameworks"`
			Tasks      int                `json:"tasks"`
			Allocated  map[string]float64 `json:"allocated"`
		} `json:"roles"`
	}
	if code, _, body := getList(t, c, "/master/roles"); code != http.StatusOK || json.Unmarshal([]byte(body), &roles) != nil ||
		len(roles.Roles) != 1 || roles.Roles[0].Name != "*" || roles.Roles[0].Weight != 1 || roles.Roles[0].Tasks != 5 ||
		!slices.Equal(roles.Roles[0].Frameworks, []string{s.ID}) || roles.Roles[0].Allocated["cpus"] != 0.5 {
		t.Errorf("/master/roles: %d %s", code, body)
	}

	// Frameworks without their tasks: counts and offers instead.
	var fws struct {
		Frameworks []struct {
			Name      string           `json:"name"`
			Tasks     []any            `json:"tasks"`
			TaskCount int              `json:"task_count"`
			Running   int              `json:"TASK_RUNNING"`
			Offers    []map[string]any `json:"offers"`
		} `json:"frameworks"`
	}
	if code, _, body := getList(t, c, "/master/frameworks?tasks=false"); code != http.StatusOK || json.Unmarshal([]byte(body), &fws) != nil ||
		len(fws.Frameworks) != 1 || fws.Frameworks[0].Tasks != nil || fws.Frameworks[0].TaskCount != 5 || fws.Frameworks[0].Running != 5 ||
		len(fws.Frameworks[0].Offers) == 0 || fws.Frameworks[0].Offers[0]["slave_hostname"] != "localhost" {
		t.Errorf("/master/frameworks?tasks=false: %d %s", code, body)
	}
	if code, _, body := getList(t, c, "/master/frameworks?tasks=no"); code != http.StatusBadRequest || !strings.Contains(body, `tasks="no": want false`) {
		t.Errorf("tasks=no: %d %s", code, body)
	}

	if _, p, _ := getList(t, c, "/master/slaves?filter=scheduled"); *p.Total != 0 {
		t.Errorf("agents scheduled for maintenance before any schedule: %d", *p.Total)
	}
	start := time.Now().Add(time.Hour).UnixNano()
	resp, err := http.Post(c.MasterURL+"/maintenance/schedule", "application/json", strings.NewReader(
		fmt.Sprintf(`{"windows":[{"machine_ids":[{"hostname":"localhost"}],"unavailability":{"start":{"nanoseconds":%d}}}]}`, start)))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scheduling maintenance: %v %v", err, resp)
	}
	resp.Body.Close()
	if _, p, _ := getList(t, c, "/master/slaves?filter=scheduled"); *p.Total != 2 {
		t.Errorf("agents scheduled for maintenance: %d, want both", *p.Total)
	}

	var sum struct {
		Activated  int            `json:"activated_slaves"`
		Frameworks int            `json:"frameworks_active"`
		Offered    map[string]any `json:"offered_resources"`
		Notes      []struct {
			ID string `json:"id"`
		} `json:"agent_notes"`
		NotesTotal int `json:"agent_notes_total"`
	}
	if code, _, body := getList(t, c, "/master/summary"); code != http.StatusOK || json.Unmarshal([]byte(body), &sum) != nil ||
		sum.Activated != 2 || sum.Frameworks != 1 || sum.Offered["cpus"] == nil || len(sum.Notes) != sum.NotesTotal {
		t.Errorf("/master/summary: %d %s", code, body)
	}

	for path, want := range map[string]string{
		"/master/tasks?limit=-1":   `limit="-1": want a whole number, 0 or more`,
		"/master/tasks?offset=x":   `offset="x": want a whole number, 0 or more`,
		"/master/tasks?order=up":   `order="up": want asc or des`,
		"/master/tasks?state=gone": `state="gone": want active or completed`,
		"/master/slaves?state=x":   `/master/slaves takes limit, offset, filter and slave_id, not state`,
	} {
		code, _, body := getList(t, c, path)
		if code != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d %s, want 400 with %q", path, code, body, want)
		}
	}
}
