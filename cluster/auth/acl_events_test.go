package auth_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	sched "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
)

// operatorEvents subscribes to the operator API as cred and queues every
// event (as JSON) until the test ends.
func operatorEvents(t *testing.T, c *clustertest.Cluster, cred auth.Credential) *clustertest.Queue[string] {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.MasterURL+"/api/v1", strings.NewReader(`{"type":"SUBSCRIBE"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	cred.Apply(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("operator SUBSCRIBE as %s: %d %s", cred.Principal, resp.StatusCode, b)
	}
	q := clustertest.NewQueue[string](t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		rr := api.NewRecordReader(resp.Body)
		for {
			rec, err := rr.ReadRecord()
			if err != nil {
				return
			}
			q.Put(string(rec))
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close(); clustertest.AwaitStop(t, "the operator event reader", done) })
	return q
}

// TestClusterACLFilteredEvents: an operator subscriber sees the events of
// the frameworks and tasks it may view and none of the others'. Team-b's
// framework and task come before a change to team-a's framework, so by
// the time team-a's stream shows that change, team-b's events would have
// been in it.
func TestClusterACLFilteredEvents(t *testing.T) {
	c := aclCluster(t, viewACLs, "")
	events := operatorEvents(t, c, teamA)
	a := clustertest.SubscribeWith(t, c.MasterURL, `{"user":"alice","name":"fa","principal":"team-a"}`, teamA)
	launchAndStep(a, "ta")
	b := clustertest.SubscribeWith(t, c.MasterURL, `{"user":"bob","name":"fb","principal":"team-b"}`, teamB)
	launchAndStep(b, "tb")
	principal := "team-a"
	if code, body := a.CallBody(&sched.Call{Type: sched.Call_UPDATE_FRAMEWORK, UpdateFramework: &sched.Call_UpdateFramework{
		FrameworkInfo: mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: a.ID}, User: "alice", Name: "fa-renamed", Principal: &principal}}}); code != http.StatusOK {
		t.Fatalf("UPDATE_FRAMEWORK: %d %s", code, body)
	}
	var seen []string
	sawTask := false
	timeout := time.After(60 * time.Second)
	for {
		select {
		case ev := <-events.C():
			seen = append(seen, ev)
			if strings.Contains(ev, b.ID) || strings.Contains(ev, `"tb"`) || strings.Contains(ev, `"fb"`) {
				t.Fatalf("team-a's event stream shows team-b's framework or task: %s", ev)
			}
			sawTask = sawTask || strings.Contains(ev, "TASK_ADDED") && strings.Contains(ev, `"ta"`)
			if strings.Contains(ev, "FRAMEWORK_UPDATED") && strings.Contains(ev, "fa-renamed") {
				if !sawTask {
					t.Errorf("team-a's stream did not show its own task ta being added: %v", seen)
				}
				return
			}
		case <-timeout:
			t.Fatalf("team-a's stream did not show its framework's update in 60 s; it showed %v", seen)
		}
	}
}
