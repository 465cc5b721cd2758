package marathon

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/agora-cluster/agora/cluster/agent"
)

// TestEveryConstraintOperator places apps with each of the other six
// operators over the three agents (racks r1, r2, r2 as attributes; their
// hostnames differ) and checks where every instance went. UNIQUE has its
// own test (TestUniqueHostnameAndQueue).
func TestEveryConstraintOperator(t *testing.T) {
	racks := map[string]string{"127.0.0.1": "r1", "127.0.0.2": "r2", "127.0.0.3": "r2"}
	e := startEnv(t, func(cfg *agent.Config) { cfg.Attributes = "rack:" + racks[cfg.Hostname] })
	cases := []struct {
		id, constraints string
		instances       int
		want            map[string]int // host → instances
	}{
		{"/cluster", `[["rack","CLUSTER","r1"]]`, 2, map[string]int{"127.0.0.1": 2}},
		{"/is", `[["hostname","IS","127.0.0.3"]]`, 2, map[string]int{"127.0.0.3": 2}},
		{"/group-by", `[["hostname","GROUP_BY","3"]]`, 6, map[string]int{"127.0.0.1": 2, "127.0.0.2": 2, "127.0.0.3": 2}},
		{"/max-per", `[["rack","MAX_PER","1"]]`, 2, nil}, // one on r1, one on r2
		{"/like", `[["rack","LIKE","r[2-9]"],["hostname","MAX_PER","1"]]`, 2, map[string]int{"127.0.0.2": 1, "127.0.0.3": 1}},
		{"/unlike", `[["hostname","UNLIKE","127\\.0\\.0\\.[23]"]]`, 2, map[string]int{"127.0.0.1": 2}},
	}
	for _, c := range cases {
		e.must("POST", "/v2/apps", fmt.Sprintf(`{"id":%q,"cmd":"sleep 300","cpus":0.05,"mem":8,"instances":%d,"constraints":%s}`,
			c.id, c.instances, c.constraints), http.StatusCreated, nil)
	}
	for _, c := range cases {
		got := map[string]int{}
		perRack := map[string]int{}
		for _, tk := range e.waitRunning(c.id, c.instances) {
			got[tk.Host]++
			perRack[racks[tk.Host]]++
		}
		if c.want == nil { // MAX_PER rack 1
			if !maps.Equal(perRack, map[string]int{"r1": 1, "r2": 1}) {
				t.Errorf("%s: instances per rack %v, want one on each", c.id, perRack)
			}
			continue
		}
		if !maps.Equal(got, c.want) {
			t.Errorf("%s %s: instances per host %v, want %v", c.id, c.constraints, got, c.want)
		}
	}

	// One more than MAX_PER allows waits, declined for its constraint.
	e.must("PUT", "/v2/apps/max-per", `{"instances": 3}`, http.StatusOK, nil)
	e.waitFor("the third /max-per instance to be declined for its constraint", func() bool {
		var q struct{ Queue []QueueEntry }
		e.must("GET", "/v2/queue", "", http.StatusOK, &q)
		for _, entry := range q.Queue {
			if entry.App.ID != "/max-per" {
				continue
			}
			for _, r := range entry.ProcessedOffersSummary.RejectSummaryLaunchAttempt {
				if r.Reason == "UnfulfilledConstraint" && r.Declined > 0 {
					return true
				}
			}
		}
		return false
	})
	if ts := e.tasks("/max-per"); len(ts) != 2 || slices.ContainsFunc(ts, func(tk Task) bool { return tk.State != "TASK_RUNNING" }) {
		t.Fatalf("/max-per has %d instances, want its two running: the third must wait", len(ts))
	}
}
