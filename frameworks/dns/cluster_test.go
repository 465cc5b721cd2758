package dns

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/miekg/dns"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
)

func f64(v float64) *float64 { return &v }
func u32(v uint32) *uint32   { return &v }
func strp(s string) *string  { return &s }

func task(t *testing.T, id, name string, agent mesos.AgentID, script, res string) mesos.TaskInfo {
	t.Helper()
	rs, err := api.ParseResources(res)
	if err != nil {
		t.Fatal(err)
	}
	return mesos.TaskInfo{Name: name, TaskID: mesos.TaskID{Value: id}, AgentID: agent,
		Command: &mesos.CommandInfo{Value: strp(script)}, Resources: rs}
}

// startCluster runs a one-agent cluster with a framework named marathon
// that outlives its connection by an hour (so its tasks outlive a master
// restart).
func startCluster(t *testing.T) (*clustertest.Cluster, *clustertest.Scheduler) {
	c := clustertest.Start(t, clustertest.Options{})
	return c, c.Subscribe(`{"user":"root","name":"marathon","hostname":"localhost","failover_timeout":3600}`)
}

// TestRunningTasksAnsweredFromEvents: two instances of "web" running with
// two ports each are answered as A and SRV records over UDP and TCP, and
// through the HTTP API; the special names are there; when one instance is
// killed its ports leave the SRV answer, and when both are gone the name
// is NXDOMAIN. Nothing polls the master: the changes came from the event
// stream, applied to the records in place (no whole rebuild).
func TestRunningTasksAnsweredFromEvents(t *testing.T) {
	c, s := startCluster(t)
	r := serve(t, testConfig(c.MasterAddr))
	offer := s.Offer()
	s.Launch(offer,
		task(t, "web.1", "web", offer.AgentID, "exec sleep 600", "cpus:0.1;mem:16;ports:[31001-31002]"),
		task(t, "web.2", "web", offer.AgentID, "exec sleep 600", "cpus:0.1;mem:16;ports:[31011-31012]"))
	s.Until("web.1", mesos.TASK_RUNNING)
	s.Until("web.2", mesos.TASK_RUNNING)

	all := []int{31001, 31002, 31011, 31012}
	in := r.waitFor(t, "both instances' ports", "_web._tcp.marathon.agora", dns.TypeSRV, func(m *dns.Msg) bool {
		return reflect.DeepEqual(srvPorts(m), all)
	})
	if !in.Authoritative || len(in.Extra) == 0 {
		t.Errorf("SRV answer not authoritative or without the targets' addresses:\n%v", in)
	}
	before := r.Stats()
	for _, network := range []string{"udp", "tcp"} {
		if got := srvPorts(r.query(t, network, "_web._udp.marathon.agora", dns.TypeSRV)); !reflect.DeepEqual(got, all) {
			t.Errorf("%s: _web._udp SRV ports %v, want %v", network, got, all)
		}
		if got := aIPs(r.query(t, network, "web.marathon.agora", dns.TypeA)); !reflect.DeepEqual(got, []string{"127.0.0.1"}) {
			t.Errorf("%s: web.marathon.agora A %v, want the agent's 127.0.0.1", network, got)
		}
	}
	for _, name := range []string{"leader.agora", "master.agora", "master0.agora", "agent.agora", "slave.agora", "marathon.agora",
		"web.marathon.slave.agora", "web-" + taskIDHash("web.1") + "-" + agentIDTail(offer.AgentID.Value) + ".marathon.agora"} {
		if got := aIPs(r.query(t, "udp", name, dns.TypeA)); len(got) == 0 || got[0] != "127.0.0.1" {
			t.Errorf("%s A %v, want 127.0.0.1", name, got)
		}
	}
	if got := srvPorts(r.query(t, "udp", "_leader._tcp.agora", dns.TypeSRV)); len(got) != 1 || !strings.HasSuffix(c.MasterAddr, ":"+strconv.Itoa(got[0])) {
		t.Errorf("_leader._tcp SRV ports %v, want the master's port (%s)", got, c.MasterAddr)
	}

	var hosts []hostJSON
	if code := getJSON(t, r.http+"/v1/hosts/web.marathon.agora", &hosts); code != 200 || len(hosts) != 1 || hosts[0].IP != "127.0.0.1" || hosts[0].Host != "web.marathon.agora." {
		t.Errorf("/v1/hosts: %d %+v", code, hosts)
	}
	var svcs []serviceJSON
	if code := getJSON(t, r.http+"/v1/services/_web._tcp.marathon.agora.", &svcs); code != 200 || len(svcs) != 4 ||
		svcs[0].Service != "_web._tcp.marathon.agora." || svcs[0].IP != "127.0.0.1" || !strings.Contains(svcs[0].Host, ".marathon.slave.agora.") {
		t.Errorf("/v1/services: %d %+v", code, svcs)
	}

	s.MustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: "web.1"}}})
	s.Until("web.1", mesos.TASK_KILLED)
	r.waitFor(t, "web.1's ports to leave", "_web._tcp.marathon.agora", dns.TypeSRV, func(m *dns.Msg) bool {
		return reflect.DeepEqual(srvPorts(m), []int{31011, 31012})
	})
	s.MustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: "web.2"}}})
	s.Until("web.2", mesos.TASK_KILLED)
	r.waitFor(t, "web to be NXDOMAIN", "web.marathon.agora", dns.TypeA, func(m *dns.Msg) bool {
		return m.Rcode == dns.RcodeNameError
	})
	if st := r.Stats(); st.Resyncs != 1 {
		t.Errorf("resynced %d times, want once (at start): the changes should have come from events", st.Resyncs)
	}
	checkInPlace(t, r, before)
}

// TestUnhealthyTaskLeavesAnswer: a task with a health check is answered
// once it is healthy, leaves the answer when its check fails (the task
// keeps running), and comes back when it passes again.
func TestUnhealthyTaskLeavesAnswer(t *testing.T) {
	c, s := startCluster(t)
	r := serve(t, testConfig(c.MasterAddr))
	offer := s.Offer()
	marker := filepath.Join(t.TempDir(), "healthy")
	tk := task(t, "api.1", "api", offer.AgentID, "exec sleep 600", "cpus:0.1;mem:16;ports:[31021-31021]")
	tk.HealthCheck = &mesos.HealthCheck{Type: mesos.HealthCheck_COMMAND,
		Command:      &mesos.CommandInfo{Value: strp(`test -f "$MARKER"`), Environment: &mesos.Environment{Variables: []mesos.Environment_Variable{{Name: "MARKER", Value: &marker}}}},
		DelaySeconds: f64(0), IntervalSeconds: f64(0.1), TimeoutSeconds: f64(5), ConsecutiveFailures: u32(100000), GracePeriodSeconds: f64(0)}
	s.Launch(offer, tk)
	s.Until("api.1", mesos.TASK_RUNNING)
	// Running but not yet healthy: not answered.
	if got := r.query(t, "udp", "_api._tcp.marathon.agora", dns.TypeSRV); len(got.Answer) != 0 {
		t.Errorf("a task with a health check that has not passed is answered:\n%v", got)
	}
	// The scheduler acknowledges the updates up to the healthy one: the
	// agent sends a task's next update only once the last is acknowledged.
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, s, "api.1", true)
	r.waitFor(t, "the healthy task", "_api._tcp.marathon.agora", dns.TypeSRV, func(m *dns.Msg) bool {
		return reflect.DeepEqual(srvPorts(m), []int{31021})
	})
	before := r.Stats()
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, s, "api.1", false)
	seen := time.Now()
	r.waitFor(t, "the unhealthy task to leave", "_api._tcp.marathon.agora", dns.TypeSRV, func(m *dns.Msg) bool {
		return len(m.Answer) == 0
	})
	t.Logf("the unhealthy task left the answer %v after the scheduler saw the update", time.Since(seen))
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, s, "api.1", true)
	r.waitFor(t, "the task healthy again", "_api._tcp.marathon.agora", dns.TypeSRV, func(m *dns.Msg) bool {
		return reflect.DeepEqual(srvPorts(m), []int{31021})
	})
	checkInPlace(t, r, before)
}

// checkInPlace checks that the changes since before were applied to the
// records in place, with no whole rebuild, unless the resolver had to
// subscribe again meanwhile (a starved machine can cut the stream).
func checkInPlace(t *testing.T, r *served, before Stats) {
	t.Helper()
	st := r.Stats()
	switch {
	case st.Subscriptions != before.Subscriptions:
		t.Logf("the resolver subscribed again (%d times): not checking for rebuilds", st.Subscriptions-before.Subscriptions)
	case st.Builds != before.Builds:
		t.Errorf("the records were rebuilt whole %d times for events that touched a task each", st.Builds-before.Builds)
	case st.Updates == before.Updates:
		t.Errorf("no change applied in place, yet the answers changed")
	}
}

// waitHealth waits for an update of task id saying healthy=want.
func waitHealth(t *testing.T, s *clustertest.Scheduler, id string, want bool) {
	t.Helper()
	for {
		st := s.Update(id)
		if st.Healthy != nil && *st.Healthy == want {
			return
		}
		if isTerminal(st.GetState()) {
			t.Fatalf("task %s ended: %v", id, st.GetState())
		}
	}
}

// TestServesLastRecordsWhileMasterAway: with the master stopped the
// records stay; when a new master is up on its address the resolver
// subscribes to it again and answers from what it says.
func TestServesLastRecordsWhileMasterAway(t *testing.T) {
	c, s := startCluster(t)
	r := serve(t, testConfig(c.MasterAddr))
	offer := s.Offer()
	s.Launch(offer, task(t, "db.1", "db", offer.AgentID, "exec sleep 600", "cpus:0.1;mem:16;ports:[31031-31031]"))
	s.Until("db.1", mesos.TASK_RUNNING)
	r.waitFor(t, "db", "_db._tcp.marathon.agora", dns.TypeSRV, func(m *dns.Msg) bool { return len(srvPorts(m)) == 1 })
	c.StopMaster()
	for i := 0; i < 5; i++ {
		if got := srvPorts(r.query(t, "udp", "_db._tcp.marathon.agora", dns.TypeSRV)); !reflect.DeepEqual(got, []int{31031}) {
			t.Fatalf("with the master away: %v, want the last known [31031]; answer:\n%v", got, r.query(t, "udp", "_db._tcp.marathon.agora", dns.TypeSRV))
		}
	}
	c.StartMaster()
	deadline := time.Now().Add(60 * time.Second)
	for r.Stats().Subscriptions < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the resolver did not subscribe again to the restarted master")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.waitFor(t, "db after the master's return", "_db._tcp.marathon.agora", dns.TypeSRV, func(m *dns.Msg) bool {
		return reflect.DeepEqual(srvPorts(m), []int{31031})
	})
}
