package master_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	agentpb "github.com/mesos/mesos-go/api/v1/lib/agent"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/registry"
	"github.com/agora-cluster/agora/cluster/zk/zktest"
)

// frameworkRecords reads the registry's framework records by ID.
func frameworkRecords(t *testing.T, reg registry.Registry) map[string]registry.FrameworkRecord {
	t.Helper()
	recs, err := reg.Frameworks()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]registry.FrameworkRecord{}
	for _, r := range recs {
		out[r.ID] = r
	}
	return out
}

// subscribeRaw sends SUBSCRIBE and returns the status and body of an
// answer other than 200 (a 200 stream is closed at once).
func subscribeRaw(t *testing.T, url, fi string) (int, string) {
	t.Helper()
	resp, body := post(t, url, api.MediaJSON, []byte(`{"type":"SUBSCRIBE","subscribe":{"framework_info":`+fi+`}}`), nil)
	if resp.StatusCode == http.StatusOK {
		resp.Body.Close()
	}
	return resp.StatusCode, body
}

// A framework's ID is in the registry before SUBSCRIBED hands it out: a
// registry that refuses the write refuses the subscription, and no ID is
// given. Re-subscribing with the same FrameworkInfo writes nothing; a
// changed FrameworkInfo (re-subscription, UPDATE_FRAMEWORK) is recorded;
// a TEARDOWN is recorded before it is acknowledged, and one the registry
// refuses leaves the framework as it was.
func TestFrameworksAreRecordedBeforeTheyAreAnswered(t *testing.T) {
	reg := registry.NewFaulty(nil)
	c := clustertest.Start(t, clustertest.Options{Registry: reg})

	reg.FailWrites(true)
	code, body := subscribeRaw(t, c.MasterURL, `{"user":"root","name":"unrecorded"}`)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "registry") {
		t.Fatalf("SUBSCRIBE with the registry refusing: %d %q; want 503 naming the registry", code, body)
	}
	if st, err := c.State(); err != nil || len(st.Frameworks) != 0 {
		t.Fatalf("after a refused SUBSCRIBE the master lists %+v (%v); want no framework", st, err)
	}
	if recs := frameworkRecords(t, reg); len(recs) != 0 {
		t.Fatalf("registry holds %v after a refused write", recs)
	}
	reg.FailWrites(false)

	const fi = `{"user":"root","name":"recorded","failover_timeout":60,"roles":["eng"],"capabilities":[{"type":"MULTI_ROLE"}]`
	s := c.Subscribe(fi + `}`)
	rec, ok := frameworkRecords(t, reg)[s.ID]
	if !ok || rec.State != registry.FrameworkActive || rec.Info.GetName() != "recorded" || rec.Info.GetFailoverTimeout() != 60 ||
		len(rec.Info.Roles) != 1 || rec.Info.Roles[0] != "eng" || rec.Info.GetID().GetValue() != s.ID {
		t.Fatalf("record once SUBSCRIBED: %+v (found %v)", rec, ok)
	}

	// The same FrameworkInfo again (a scheduler failing over): no write.
	changes := metric(t, c.MasterURL, "master/registry_changes")
	again := c.Subscribe(fi + `,"id":{"value":"` + s.ID + `"}}`)
	if again.ID != s.ID {
		t.Fatalf("re-subscribed as %s, want %s", again.ID, s.ID)
	}
	if n := metric(t, c.MasterURL, "master/registry_changes"); n != changes {
		t.Fatalf("a re-subscription that repeats the record made %v registry writes, want none", n-changes)
	}

	// A new name: recorded before SUBSCRIBED.
	renamed := c.Subscribe(strings.Replace(fi, `"recorded"`, `"renamed"`, 1) + `,"id":{"value":"` + s.ID + `"}}`)
	if rec := frameworkRecords(t, reg)[s.ID]; rec.Info.GetName() != "renamed" || rec.State != registry.FrameworkActive {
		t.Fatalf("record after re-subscribing renamed: %+v", rec)
	}
	// UPDATE_FRAMEWORK with new roles: recorded before it is answered.
	ft := 60.0
	upd := mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: s.ID}, User: "root", Name: "renamed", Roles: []string{"eng", "ops"}, FailoverTimeout: &ft,
		Capabilities: []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE}}}
	if code := renamed.Call(&scheduler.Call{Type: scheduler.Call_UPDATE_FRAMEWORK, UpdateFramework: &scheduler.Call_UpdateFramework{FrameworkInfo: upd}}); code != http.StatusOK {
		t.Fatalf("UPDATE_FRAMEWORK: %d", code)
	}
	if rec := frameworkRecords(t, reg)[s.ID]; len(rec.Info.Roles) != 2 || rec.Info.Roles[1] != "ops" {
		t.Fatalf("record after UPDATE_FRAMEWORK: %+v", rec.Info)
	}

	// An ID the master never issued nor recorded (from before frameworks
	// were recorded) is accepted, as Mesos accepts it, and recorded.
	old := c.Subscribe(`{"user":"root","name":"from-before","id":{"value":"issued-by-an-older-master"}}`)
	if rec, ok := frameworkRecords(t, reg)[old.ID]; old.ID != "issued-by-an-older-master" || !ok || rec.State != registry.FrameworkActive {
		t.Fatalf("unrecorded ID: subscribed as %s, record %+v (%v)", old.ID, rec, ok)
	}

	// TEARDOWN: refused while the registry refuses, the framework stays.
	teardown := &scheduler.Call{Type: scheduler.Call_TEARDOWN}
	reg.FailWrites(true)
	if code := renamed.Call(teardown); code != http.StatusServiceUnavailable {
		t.Fatalf("TEARDOWN with the registry refusing: %d, want 503", code)
	}
	if st, err := c.State(); err != nil || len(st.CompletedFrameworks) != 0 {
		t.Fatalf("a refused TEARDOWN removed the framework: %+v %v", st.CompletedFrameworks, err)
	}
	reg.FailWrites(false)
	if code := renamed.Call(teardown); code != http.StatusAccepted {
		t.Fatalf("TEARDOWN: %d", code)
	}
	if rec := frameworkRecords(t, reg)[s.ID]; rec.State != registry.FrameworkCompleted {
		t.Fatalf("record once TEARDOWN was answered: %+v", rec)
	}
	code, body = subscribeRaw(t, c.MasterURL, fi+`,"id":{"value":"`+s.ID+`"}}`)
	if code != http.StatusForbidden || !strings.Contains(body, s.ID) {
		t.Fatalf("SUBSCRIBE of the torn-down framework: %d %q; want 403 naming it", code, body)
	}
}

// openRegistry opens a registry of the kind named, closed at cleanup.
func openRegistry(t *testing.T, kind string) registry.Registry {
	t.Helper()
	switch kind {
	case "bolt":
		reg, err := registry.OpenBolt(filepath.Join(t.TempDir(), "registry.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { reg.Close() })
		return reg
	case "zookeeper":
		e := zktest.Start(t, 1)
		conn, _, err := gozk.Connect(e.Addrs(), 4*time.Second, gozk.WithLogInfo(false))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(conn.Close)
		reg, err := registry.OpenZK(conn, "/agora/registry", nil)
		if err != nil {
			t.Fatal(err)
		}
		return reg
	}
	t.Fatalf("no registry kind %q", kind)
	return nil
}

// A framework torn down while its agent was away stays torn down across a
// master restart (bbolt) or a new master on the same registry
// (ZooKeeper): the agent that comes back with its task is told at once to
// shut it down, rather than the task being kept until the framework's
// failover timeout, and a SUBSCRIBE with its ID is refused.
func TestTornDownFrameworkStaysTornDownAfterRestart(t *testing.T) {
	for _, kind := range []string{"bolt", "zookeeper"} {
		t.Run(kind, func(t *testing.T) { tornDownAfterRestart(t, openRegistry(t, kind)) })
	}
}

func tornDownAfterRestart(t *testing.T, reg registry.Registry) {
	c := clustertest.Start(t, clustertest.Options{
		Registry: reg,
		Agent:    func(_ int, cfg *agent.Config) { cfg.KeepTasksOnStop = true },
	})
	const fi = `{"user":"root","name":"doomed","checkpoint":true,"failover_timeout":3600`
	s := c.Subscribe(fi + `}`)
	offer := s.Offer()
	task := cmdTask("outlives", offer.AgentID, "cpus:0.1;mem:16")
	task.Command = &mesos.CommandInfo{Value: strPtr("sleep 600")}
	s.Launch(offer, task)
	s.Until("outlives", mesos.TASK_RUNNING)

	// The agent is away (its task keeps running) when the operator tears
	// the framework down: the shutdown cannot reach it.
	c.Agents[0].Stop()
	if code, body := operator(t, c.MasterURL, `{"type":"TEARDOWN","teardown":{"framework_id":{"value":"`+s.ID+`"}}}`); code != http.StatusOK {
		t.Fatalf("operator TEARDOWN: %d %s", code, body)
	}
	if rec := frameworkRecords(t, reg)[s.ID]; rec.State != registry.FrameworkCompleted || rec.Info.GetName() != "doomed" {
		t.Fatalf("record once the operator's TEARDOWN was answered: %+v", rec)
	}

	c.StopMaster()
	c.StartMaster()
	ra := c.StartAgent(0, "")
	got := waitAgentTask(t, ra, "the torn-down framework's task is killed once its agent re-registers", "outlives",
		func(r *agentpb.Response_GetTasks) []mesos.Task { return append(r.TerminatedTasks, r.CompletedTasks...) })
	if got.GetState() != mesos.TASK_KILLED {
		t.Fatalf("the torn-down framework's task ended %v, want TASK_KILLED", got.GetState())
	}
	st, err := c.State()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range st.Frameworks {
		if f.ID == s.ID {
			t.Fatalf("the restarted master took the torn-down framework back: %+v", f)
		}
	}
	code, body := subscribeRaw(t, c.MasterURL, fi+`,"id":{"value":"`+s.ID+`"}}`)
	if code != http.StatusForbidden || !strings.Contains(body, s.ID) || !strings.Contains(body, "removed") {
		t.Fatalf("SUBSCRIBE of the torn-down framework after the restart: %d %q; want 403 naming it as removed", code, body)
	}
}

// recoveredFramework is a framework of /master/frameworks, with the
// fields that say it was recovered.
type recoveredFramework struct {
	ID        string `json:"id"`
	Active    bool   `json:"active"`
	Connected bool   `json:"connected"`
	Recovered bool   `json:"recovered"`
}

func masterFrameworks(t *testing.T, url string) (active, completed []recoveredFramework) {
	t.Helper()
	code, body := httpDo(t, http.MethodGet, url+"/master/frameworks", "")
	var doc struct {
		Frameworks          []recoveredFramework `json:"frameworks"`
		CompletedFrameworks []recoveredFramework `json:"completed_frameworks"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &doc) != nil {
		t.Fatalf("/master/frameworks: %d %s", code, body)
	}
	return doc.Frameworks, doc.CompletedFrameworks
}

// A framework the registry has active that does not re-subscribe to a
// recovered master is listed inactive and recovered, and is torn down
// once its failover timeout has run out counted from the recovery (not
// from when it was recorded). Completed records are collected beyond
// --registry_max_framework_count and past --registry_max_framework_age.
// The master's clock is the test's.
func TestRecordedFrameworkThatNeverReturnsIsRemoved(t *testing.T) {
	base := time.Now()
	var offset atomic.Int64
	clock := func() time.Time { return base.Add(time.Duration(offset.Load())) }
	reg := registry.NewMemory()
	put := func(id string, st registry.FrameworkState, age time.Duration, ft float64) {
		rec := registry.FrameworkRecord{ID: id, State: st, Since: base.Add(-age),
			Info: &mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: id}, User: "root", Name: id, FailoverTimeout: &ft}}
		if err := reg.Apply([]registry.Change{{Framework: &rec}}); err != nil {
			t.Fatal(err)
		}
	}
	// Recorded an hour ago, longer than its failover timeout.
	put("away", registry.FrameworkActive, time.Hour, 60)
	// No failover timeout: it still has the grace to find the new leader.
	put("quick", registry.FrameworkActive, time.Hour, 0)
	put("ancient", registry.FrameworkCompleted, 30*24*time.Hour, 60)
	put("old1", registry.FrameworkCompleted, 3*time.Hour, 60)
	put("old2", registry.FrameworkCompleted, 2*time.Hour, 60)
	put("old3", registry.FrameworkCompleted, time.Hour, 60)
	c := clustertest.Start(t, clustertest.Options{Registry: reg, Master: func(mc *master.Config) {
		mc.Now = clock
		mc.RegistryMaxFrameworkAge = 14 * 24 * time.Hour
		mc.RegistryMaxFrameworkCount = 2
		mc.RegistryGCInterval = time.Second
	}})

	active, _ := masterFrameworks(t, c.MasterURL)
	if len(active) != 2 {
		t.Fatalf("recovered frameworks listed as %+v; want away and quick", active)
	}
	for _, f := range active {
		if (f.ID != "away" && f.ID != "quick") || f.Active || f.Connected || !f.Recovered {
			t.Fatalf("recovered framework listed as %+v; want away or quick, inactive, disconnected, recovered", f)
		}
	}
	// The housekeeping pass that collects the registry also checks the
	// failover timeouts: once it has collected, "away" has been checked
	// at the recovery's own time and must still be there.
	deadline := time.Now().Add(time.Minute)
	for metric(t, c.MasterURL, "master/registry_frameworks_collected") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the registry kept completed frameworks past its bounds")
		}
		time.Sleep(20 * time.Millisecond)
	}
	recs := frameworkRecords(t, reg)
	for _, id := range []string{"ancient", "old1"} {
		if _, ok := recs[id]; ok {
			t.Errorf("%s is still in the registry (past the age or the count)", id)
		}
	}
	for _, id := range []string{"old2", "old3"} {
		if _, ok := recs[id]; !ok {
			t.Errorf("%s was collected; the bound is 2 completed frameworks", id)
		}
	}
	if recs["away"].State != registry.FrameworkActive {
		t.Fatalf("the recovered framework was torn down before its failover timeout from the recovery: %+v", recs["away"])
	}
	if recs["quick"].State != registry.FrameworkActive {
		t.Fatalf("the recovered framework without a failover timeout was torn down before the grace ran out: %+v", recs["quick"])
	}

	// Past its failover timeout from the recovery (and the grace): torn
	// down, recorded.
	offset.Store(int64(61 * time.Second))
	for deadline := time.Now().Add(time.Minute); frameworkRecords(t, reg)["away"].State != registry.FrameworkCompleted ||
		frameworkRecords(t, reg)["quick"].State != registry.FrameworkCompleted; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the recovered frameworks were not torn down after their failover timeout and the grace")
		}
	}
	if since := frameworkRecords(t, reg)["away"].Since; since.Before(base.Add(60 * time.Second)) {
		t.Fatalf("teardown recorded at %v, before the failover timeout from the recovery ran out", since)
	}
	c.WaitFor("the recovered framework completed", func(st *clustertest.State) bool {
		return len(st.Frameworks) == 0 && len(st.CompletedFrameworks) > 0
	})
	if code, body := subscribeRaw(t, c.MasterURL, `{"user":"root","name":"away","id":{"value":"away"}}`); code != http.StatusForbidden {
		t.Fatalf("SUBSCRIBE of the timed-out framework: %d %q, want 403", code, body)
	}
}

// A subscriber that leaves while its framework is being recorded does not
// leave a framework behind holding a stream nobody reads: once recorded it
// is disconnected, and (with no failover timeout) torn down and recorded
// so. (Whether the master sees the subscriber leave before or after the
// write completes varies from run to run; the outcome must not.)
func TestSubscriberLeavingWhileRecordedIsDisconnected(t *testing.T) {
	reg := registry.NewFaulty(nil)
	c := clustertest.Start(t, clustertest.Options{Registry: reg})
	release := reg.HoldWrites()
	t.Cleanup(release)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.MasterURL+"/api/v1/scheduler",
		strings.NewReader(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"leaves"}}}`))
	req.Header.Set("Content-Type", api.MediaJSON)
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	for deadline := time.Now().Add(time.Minute); metric(t, c.MasterURL, "master/registry_changes_pending") < 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the master did not start recording the framework")
		}
	}
	cancel()
	select {
	case <-answered:
	case <-time.After(time.Minute):
		t.Fatal("the cancelled SUBSCRIBE did not return")
	}
	release()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		recs := frameworkRecords(t, reg)
		if len(recs) == 1 {
			for _, r := range recs {
				if r.State == registry.FrameworkCompleted && r.Info.GetName() == "leaves" {
					c.WaitFor("no framework left active", func(st *clustertest.State) bool { return len(st.Frameworks) == 0 })
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry holds %+v; want the framework recorded and then torn down", recs)
		}
	}
}
