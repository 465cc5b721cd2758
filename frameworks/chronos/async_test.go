package chronos

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/clustertest"
)

// twoRacks is a cluster of two agents, 127.0.0.1 in rack r1 and
// 127.0.0.2 in rack r2, whose offers the framework gets alike.
var twoRacks = clustertest.Options{
	Agents: 2,
	Agent: func(i int, cfg *agent.Config) {
		cfg.Hostname = fmt.Sprintf("127.0.0.%d", i+1)
		cfg.Attributes = fmt.Sprintf("rack:r%d", i+1)
	},
}

// TestConstraintsPlaceRuns: every run of a job with EQUALS, LIKE or
// UNLIKE constraints goes to the agent they allow, over several periods,
// while both agents offer.
func TestConstraintsPlaceRuns(t *testing.T) {
	e := startEnvWith(t, twoRacks)
	jobs := map[string]string{ // job → the host its runs must be on
		"on-r2":     `[["rack","EQUALS","r2"]]`,
		"like-r1":   `[["rack","LIKE","r[1]"]]`,
		"unlike-r1": `[["rack","UNLIKE","r1"],["hostname","LIKE","127\\.0\\.0\\.[0-9]"]]`,
	}
	want := map[string]string{"on-r2": "127.0.0.2", "like-r1": "127.0.0.1", "unlike-r1": "127.0.0.2"}
	for name, cons := range jobs {
		e.must("POST", "/v1/scheduler/iso8601", e.jobJSON(name, `"schedule":"R/2030-01-01T00:00:00Z/PT1H","constraints":`+cons), http.StatusNoContent)
	}
	const periods = 4
	for p := range periods {
		e.clock.Set(t0.Add(time.Duration(p) * time.Hour))
		for name := range jobs {
			e.waitSuccesses(name, p+1)
		}
	}
	for name := range jobs {
		h, err := e.fw.History(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != periods {
			t.Fatalf("%s ran %d times, want %d: %+v", name, len(h), periods, h)
		}
		for _, r := range h {
			if r.Host != want[name] {
				t.Errorf("%s ran on %s (instant %s), want %s", name, r.Host, r.Instant, want[name])
			}
		}
	}
}

// TestAsyncJob: an async job's run does not end when its task finishes
// but when the job reports (PUT /v1/scheduler/task/ID): statusCode 0 is
// a success and starts its dependent job, another code a failure. A
// report for a job that is not async is refused.
func TestAsyncJob(t *testing.T) {
	e := startEnv(t)
	e.must("POST", "/v1/scheduler/iso8601", `{"name":"bg","command":"true","async":true,"retries":0,"mem":16,"schedule":"R/2031-01-01T00:00:00Z/P1Y"}`, http.StatusNoContent)
	e.must("POST", "/v1/scheduler/dependency", e.jobJSON("after-bg", `"parents":["bg"]`), http.StatusNoContent)
	e.must("POST", "/v1/scheduler/iso8601", `{"name":"plain","command":"sleep 600","mem":16,"schedule":"R/2031-01-01T00:00:00Z/P1Y"}`, http.StatusNoContent)

	// taskDone waits until bg's task has finished and returns its ID.
	taskDone := func() string {
		var id string
		e.waitFor("bg's task to finish", func() bool {
			j := e.job("bg")
			if j.Run != nil && j.Run.TaskDone {
				id = j.Run.TaskID
			}
			return id != ""
		})
		return id
	}
	e.must("PUT", "/v1/scheduler/job/bg", "", http.StatusNoContent)
	id := taskDone()
	if j, c := e.job("bg"), e.job("after-bg"); j.SuccessCount != 0 || j.State != "running" || c.Run != nil || c.SuccessCount != 0 {
		t.Fatalf("before the report: bg %+v, after-bg %+v; want bg still running, after-bg not started", j, c)
	}
	e.must("PUT", "/v1/scheduler/task/"+id, `{"statusCode":0}`, http.StatusNoContent)
	e.waitSuccesses("bg", 1)
	e.waitSuccesses("after-bg", 1)
	if got := e.lines(); len(got) != 1 {
		t.Fatalf("runs %v, want after-bg's one", got)
	}

	// A failure reported: no retries left, the run fails, nothing follows.
	e.must("PUT", "/v1/scheduler/job/bg", "", http.StatusNoContent)
	id = taskDone()
	e.must("PUT", "/v1/scheduler/task/"+id, `{"statusCode":3}`, http.StatusNoContent)
	e.waitFor("bg to fail", func() bool { return e.job("bg").ErrorCount == 1 })
	if c := e.job("after-bg"); c.Run != nil || c.SuccessCount != 1 {
		t.Fatalf("after-bg after bg failed: %+v, want no new run", c)
	}
	h, _ := e.fw.History("bg")
	if last := h[len(h)-1]; last.State != "TASK_FAILED" || last.Message != "reported statusCode 3" {
		t.Fatalf("bg's last run %+v, want the reported failure", last)
	}

	// A job that is not async ends with its task: a report is refused.
	e.must("PUT", "/v1/scheduler/job/plain", "", http.StatusNoContent)
	var plain string
	e.waitFor("plain to run", func() bool {
		j := e.job("plain")
		if j.Run != nil && j.Run.State == "TASK_RUNNING" {
			plain = j.Run.TaskID
		}
		return plain != ""
	})
	if code, body := e.call("PUT", "/v1/scheduler/task/"+plain, `{"statusCode":0}`); code != http.StatusBadRequest {
		t.Fatalf("a report for plain: %d %s, want 400", code, body)
	}
	if j := e.job("plain"); j.SuccessCount != 0 || j.Run == nil {
		t.Fatalf("the refused report changed plain: %+v", j)
	}
	e.must("DELETE", "/v1/scheduler/task/kill/plain", "", http.StatusNoContent)
	e.waitFor("plain's run killed", func() bool { return e.job("plain").Run == nil })
}
