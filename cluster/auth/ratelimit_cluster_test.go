package auth_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	sched "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
)

// TestClusterRateLimits: with --rate_limits, a framework (team-b) firing
// calls beyond its limit has some refused with 429 and Retry-After, while
// another (team-a), under its own limit, is never refused; the metrics
// count both. Judged by counts: team-b's bucket (capacity 5, one call per
// 100 s) lets at most 5 of its 41 calls through in any run shorter than
// 100 s, and team-a's (capacity 1000) never runs dry.
func TestClusterRateLimits(t *testing.T) {
	limits, err := auth.ParseRateLimits([]byte(`{"limits": [
		{"principal": "team-b", "qps": 0.01, "capacity": 5},
		{"principal": "team-a", "qps": 1000, "capacity": 1000}]}`))
	if err != nil {
		t.Fatal(err)
	}
	c := teamsCluster(t, "", func(c *master.Config) { c.RateLimits = limits })
	cfgA, cfgB := `{"user":"root","name":"fa","principal":"team-a"}`, `{"user":"root","name":"fb","principal":"team-b"}`
	a := clustertest.SubscribeWith(t, c.MasterURL, cfgA, teamA)
	b := clustertest.SubscribeWith(t, c.MasterURL, cfgB, teamB)
	const calls = 40
	refused := map[string]int{}
	reconcile := &sched.Call{Type: sched.Call_RECONCILE, Reconcile: &sched.Call_Reconcile{}}
	for i := 0; i < calls; i++ {
		for name, s := range map[string]*clustertest.Scheduler{"team-a": a, "team-b": b} {
			switch code, body := s.CallBody(reconcile); code {
			case http.StatusAccepted:
			case http.StatusTooManyRequests:
				refused[name]++
			default:
				t.Fatalf("RECONCILE as %s: %d %s", name, code, body)
			}
		}
	}
	if refused["team-a"] != 0 {
		t.Errorf("team-a, under its limit, was refused %d of %d calls", refused["team-a"], calls)
	}
	// SUBSCRIBE took one of team-b's 5 calls.
	if refused["team-b"] < calls-4 {
		t.Errorf("team-b was refused %d of %d calls, want at least %d (capacity 5 at 0.01 qps)", refused["team-b"], calls, calls-4)
	}

	// A refusal says when to come back.
	body, _ := json.Marshal(&sched.Call{Type: sched.Call_RECONCILE, Reconcile: &sched.Call_Reconcile{}, FrameworkID: &mesos.FrameworkID{Value: b.ID}})
	req, _ := http.NewRequest(http.MethodPost, c.MasterURL+"/api/v1/scheduler", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	teamB.Apply(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != http.StatusTooManyRequests || err != nil || secs < 1 {
		t.Errorf("an over-limit call: %d, Retry-After %q; want 429 with a number of seconds", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	total := refused["team-b"] + 1

	_, snap := do(t, c, http.MethodGet, "/metrics/snapshot", "", "", ops)
	var m map[string]float64
	if err := json.Unmarshal([]byte(snap), &m); err != nil {
		t.Fatal(err)
	}
	if m["frameworks/team-b/messages_received"] != calls+2 || m["frameworks/team-b/messages_received"]-m["frameworks/team-b/messages_processed"] != float64(total) ||
		m["frameworks/team-a/messages_processed"] != calls+1 || m["master/rate_limited_calls"] != float64(total) {
		t.Errorf("metrics: team-b received %v processed %v, team-a processed %v, rate limited %v; want %d, %d, %d, %d",
			m["frameworks/team-b/messages_received"], m["frameworks/team-b/messages_processed"], m["frameworks/team-a/messages_processed"],
			m["master/rate_limited_calls"], calls+2, calls+2-total, calls+1, total)
	}
}
