package framework

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cassandra/plan"
)

func testFramework(t *testing.T, nodes int) *Framework {
	t.Helper()
	spec, err := plan.Parse([]byte(`{"name":"ring","nodes":` + strconv.Itoa(nodes) + `,"seeds":1,"cpus":0.5,"mem":1000,"disk":300}`))
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(Config{Masters: []string{"127.0.0.1:5050"}, Spec: spec, Home: "/opt/cassandra", StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func scalar(name string, v float64) mesos.Resource {
	star := "*"
	return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}, Role: &star}
}

func ports(first, last uint64) mesos.Resource {
	star := "*"
	return mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: first, End: last}}}, Role: &star}
}

func offer(agent, host string, rs ...mesos.Resource) *mesos.Offer {
	return &mesos.Offer{ID: mesos.OfferID{Value: "o-" + agent}, AgentID: mesos.AgentID{Value: agent}, Hostname: host, Resources: rs}
}

// reservedAs turns the operations' reserved resources into what a later
// offer of the agent holds: the volume in place of the reserved disk.
func reservedAs(ops []mesos.Offer_Operation) []mesos.Resource {
	var out []mesos.Resource
	for _, op := range ops {
		if op.Reserve != nil {
			for _, r := range op.Reserve.Resources {
				if r.Name != "disk" {
					out = append(out, r)
				}
			}
		}
		if op.Create != nil {
			out = append(out, op.Create.Volumes...)
		}
	}
	return out
}

// A node is placed with RESERVE, CREATE and LAUNCH in one ACCEPT: its
// cpus, mem, three ports and disk reserved for the role and labelled with
// the node, a volume on the whole disk, the task on the volume. The next
// node waits until the first is up; a second node never goes to an agent
// that has one.
func TestPlaceReservesCreatesLaunches(t *testing.T) {
	f := testFramework(t, 2)
	now := time.Now()
	ops, _ := f.useOffer(now, offer("a1", "127.0.0.1", scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(7000, 7010)))
	if len(ops) != 3 || ops[0].Reserve == nil || ops[1].Create == nil || ops[2].Launch == nil {
		t.Fatalf("operations %v; want RESERVE, CREATE, LAUNCH", ops)
	}
	var mem, disk float64
	for _, r := range ops[0].Reserve.Resources {
		if r.GetRole() != "cassandra" {
			t.Errorf("reserved for role %q", r.GetRole())
		}
		if !f.ownedBy(&r, f.nodes[0]) {
			t.Errorf("reserved resource %v is not labelled for node-0", r)
		}
		switch r.Name {
		case "mem":
			mem += r.GetScalar().GetValue()
		case "disk":
			disk += r.GetScalar().GetValue()
		}
	}
	if mem != 1000 || disk != 300 {
		t.Errorf("reserved mem %v disk %v; want the spec's 1000 and 300", mem, disk)
	}
	v := ops[1].Create.Volumes[0]
	if v.GetDisk().GetPersistence().GetID() != f.nodes[0].VolumeID || v.GetDisk().GetVolume().GetContainerPath() != VolumePath {
		t.Errorf("volume %v; want ID %s at %s", v.GetDisk(), f.nodes[0].VolumeID, VolumePath)
	}
	task := ops[2].Launch.TaskInfos[0]
	script := task.GetCommand().GetValue()
	for _, want := range []string{`storage_port: 7000`, `native_transport_port: 7001`, `"seeds": "127.0.0.1:7000"`, `"@AGORA_VOLUME@/commitlog"`, "exec '/opt/cassandra/bin/cassandra' -f"} {
		if !strings.Contains(script, want) {
			t.Errorf("the task's script lacks %q:\n%s", want, script)
		}
	}
	n0 := f.nodes[0]
	if n0.AgentID != "a1" || n0.JMXPort != 7002 || n0.TaskID != task.TaskID.Value {
		t.Errorf("node-0 after placement: %+v", *n0)
	}

	// node-1 waits for node-0 to be up, and never joins it on a1.
	if ops, _ := f.useOffer(now, offer("a2", "127.0.0.2", scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(8000, 8010))); ops != nil {
		t.Fatalf("node-1 placed before node-0 is up: %v", ops)
	}
	n0.State, n0.Joined, n0.Up = "TASK_RUNNING", true, true
	if ops, _ := f.useOffer(now, offer("a1", "127.0.0.1", scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(7011, 7020))); ops != nil {
		t.Fatalf("node-1 placed on node-0's agent: %v", ops)
	}
	ops, _ = f.useOffer(now, offer("a2", "127.0.0.2", scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(8000, 8010)))
	if len(ops) != 3 || f.nodes[1].AgentID != "a2" {
		t.Fatalf("node-1 once node-0 is up: %v", ops)
	}
	if !strings.Contains(ops[2].Launch.TaskInfos[0].GetCommand().GetValue(), `"seeds": "127.0.0.1:7000"`) {
		t.Errorf("node-1 (not a seed) does not list node-0 as its seed")
	}
}

// A node whose task ended is launched again on the reservation and volume
// its agent's offer holds, with no new RESERVE; while its reservation is
// not offered (still in use) nothing is reserved again; a reservation
// whose volume was never created gets its CREATE.
func TestRelaunchOnItsReservation(t *testing.T) {
	f := testFramework(t, 1)
	now := time.Now()
	placed, _ := f.useOffer(now, offer("a1", "127.0.0.1", scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(7000, 7010)))
	n := f.nodes[0]
	first := n.TaskID
	n.State, n.Reserved = "TASK_FAILED", true

	if ops, _ := f.useOffer(now.Add(time.Hour), offer("a1", "127.0.0.1", scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(7011, 7020))); ops != nil {
		t.Fatalf("reserved again while the node's reservation is not in the offer: %v", ops)
	}
	held := append(reservedAs(placed), scalar("cpus", 1), scalar("mem", 1000))
	ops, _ := f.useOffer(now.Add(time.Hour), offer("a1", "127.0.0.1", held...))
	if len(ops) != 1 || ops[0].Launch == nil {
		t.Fatalf("relaunch: %v; want one LAUNCH", ops)
	}
	task := ops[0].Launch.TaskInfos[0]
	if task.TaskID.Value == first || n.Launches != 2 {
		t.Errorf("relaunch task %s (launches %d); want a new task", task.TaskID.Value, n.Launches)
	}
	var vol bool
	for _, r := range task.Resources {
		if r.GetRole() == "*" {
			t.Errorf("the relaunch takes unreserved %v", r)
		}
		vol = vol || r.GetDisk().GetPersistence().GetID() == n.VolumeID
	}
	if !vol {
		t.Errorf("the relaunched task is not on volume %s: %v", n.VolumeID, task.Resources)
	}

	// Reserved, but CREATE was lost: the relaunch creates the volume.
	n.State = "TASK_ERROR"
	var noVolume []mesos.Resource
	for _, op := range placed {
		if op.Reserve != nil {
			noVolume = append(noVolume, op.Reserve.Resources...)
		}
	}
	ops, _ = f.useOffer(now.Add(time.Hour), offer("a1", "127.0.0.1", noVolume...))
	if len(ops) != 2 || ops[0].Create == nil || ops[1].Launch == nil {
		t.Fatalf("relaunch without the volume: %v; want CREATE and LAUNCH", ops)
	}
}

// A state directory makes a new framework adopt the nodes: the same
// placement and volume, the task's state unknown until reconciled, and no
// offer reserves anything meanwhile.
func TestStateAdoptedOnRestart(t *testing.T) {
	f := testFramework(t, 1)
	f.useOffer(time.Now(), offer("a1", "127.0.0.1", scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(7000, 7010)))
	before := *f.nodes[0]
	g, err := New(Config{Masters: f.cfg.Masters, Spec: f.spec, Home: f.cfg.Home, StateDir: f.store.dir})
	if err != nil {
		t.Fatal(err)
	}
	after := g.nodes[0]
	if after.AgentID != before.AgentID || after.VolumeID != before.VolumeID || after.TaskID != before.TaskID || after.State != "TASK_UNKNOWN" {
		t.Fatalf("adopted node %+v; before %+v", *after, before)
	}
	if ops, _ := g.useOffer(time.Now(), offer("a1", "127.0.0.1", scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(7011, 7020))); ops != nil {
		t.Fatalf("an offer before the reconciliation answered: %v", ops)
	}
	other := plan.Spec{Name: "other"}.WithDefaults()
	if _, err := New(Config{Masters: f.cfg.Masters, Spec: other, Home: f.cfg.Home, StateDir: f.store.dir}); err == nil ||
		!strings.Contains(err.Error(), `holds cluster "ring", not "other"`) {
		t.Fatalf("another cluster's state directory: %v", err)
	}
}

// Scaling out adds non-seed nodes after the others, placed in turn, and
// the count survives a restart that reads the original spec.
func TestAddNodes(t *testing.T) {
	f := testFramework(t, 1)
	if err := f.AddNodes(t.Context(), 0); err == nil {
		t.Fatal("adding 0 nodes was accepted")
	}
	if err := f.AddNodes(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	ns := f.Nodes()
	if len(ns) != 3 || ns[2].Name != "node-2" || ns[1].Seed || f.Spec().Nodes != 3 {
		t.Fatalf("after adding 2: %+v (spec nodes %d)", ns, f.Spec().Nodes)
	}
	g, err := New(Config{Masters: f.cfg.Masters, Spec: f.cfg.Spec, Home: f.cfg.Home, StateDir: f.store.dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes()) != 3 || g.Spec().Nodes != 3 {
		t.Fatalf("after a restart with the 1-node spec: %d nodes", len(g.Nodes()))
	}
}

// A node that is down while its agent is away from the master is
// replaced once replace_timeout has passed, not before: it is placed on
// another agent (a new reservation and volume) with
// replace_address_first_boot naming its old storage address, and, being a
// seed, lists only the other nodes as its seeds. When the old agent comes
// back, its reservation and volume are destroyed and unreserved.
func TestReplaceNodeOfAgentAway(t *testing.T) {
	active := `{"slaves":[{"id":"a1","active":true},{"id":"a2","active":true},{"id":"a3","active":true}]}`
	var mu sync.Mutex
	master := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		io.WriteString(w, active)
	}))
	defer master.Close()
	spec, err := plan.Parse([]byte(`{"name":"ring","nodes":2,"seeds":1,"cpus":0.5,"mem":1000,"disk":300,"replace_timeout":"1s"}`))
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(Config{Masters: []string{strings.TrimPrefix(master.URL, "http://")}, Spec: spec, Home: "/opt/cassandra", StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	free := func(agent, host string, port uint64) *mesos.Offer {
		return offer(agent, host, scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(port, port+10))
	}
	placed0, _ := f.useOffer(now, free("a1", "127.0.0.1", 7000))
	n0, n1 := f.nodes[0], f.nodes[1]
	n0.State, n0.Joined, n0.Up, n0.Reserved = "TASK_RUNNING", true, true, true
	f.useOffer(now, free("a2", "127.0.0.2", 8000))
	n1.State, n1.Joined, n1.Up, n1.Reserved = "TASK_RUNNING", true, true, true
	oldVolume := n0.VolumeID

	// Down, but its agent is active: relaunched there, never replaced.
	n0.State, n0.Up = "TASK_FAILED", false
	f.checkGone(t.Context())
	f.checkGone(t.Context())
	if len(f.goneSince) != 0 || n0.AgentID != "a1" {
		t.Fatalf("a node down on an active agent counted as away: %v, %+v", f.goneSince, *n0)
	}

	// Lost with its agent: seen away, then replaced after the timeout.
	n0.State = "TASK_LOST"
	mu.Lock()
	active = `{"slaves":[{"id":"a2","active":true},{"id":"a3","active":true}]}`
	mu.Unlock()
	f.checkGone(t.Context())
	if n0.AgentID != "a1" || f.goneSince["node-0"].IsZero() {
		t.Fatalf("replaced at once, or not seen away: %+v, %v", *n0, f.goneSince)
	}
	f.goneSince["node-0"] = time.Now().Add(-2 * time.Second)
	f.checkGone(t.Context())
	if n0.AgentID != "" || n0.ReplaceAddress != "127.0.0.1:7000" || n0.Replacements != 1 || n0.Joined || len(f.retired) != 1 || f.retired[0].AgentID != "a1" {
		t.Fatalf("after the timeout: node %+v, retired %+v", *n0, f.retired)
	}
	if err := f.RollingRestart(nil); err == nil {
		f.stepRolling(t.Context())
		if r, _ := f.RollingStatus(); r.Current != "" {
			t.Errorf("a rolling restart took node %s down while node-0 is being replaced", r.Current)
		}
		f.rolling = nil
	}

	// Placed again on a3, on the old node's storage port: a new volume,
	// replace_address_first_boot, and node-1 (not a seed, but joined) as
	// its seed. An agent without that port free is passed over.
	if ops, _ := f.useOffer(now, free("a3", "127.0.0.3", 9000)); ops != nil || n0.AgentID != "" {
		t.Fatalf("placed without the old node's storage port 7000: %v", ops)
	}
	withPort := free("a3", "127.0.0.3", 9000)
	withPort.Resources = append(withPort.Resources, ports(6990, 7005))
	ops, _ := f.useOffer(now, withPort)
	if len(ops) != 3 || ops[0].Reserve == nil || n0.AgentID != "a3" || n0.VolumeID == oldVolume {
		t.Fatalf("the replacement's placement: %v; node %+v", ops, *n0)
	}
	if n0.StoragePort != 7000 || n0.NativePort == 7000 || n0.JMXPort == 7000 || n0.NativePort == n0.JMXPort {
		t.Errorf("the replacement's ports: storage %d, native %d, JMX %d; want storage 7000 and two others", n0.StoragePort, n0.NativePort, n0.JMXPort)
	}
	var reservedPorts []uint64
	for _, r := range ops[0].Reserve.Resources {
		for _, rg := range r.GetRanges().GetRange() {
			for p := rg.Begin; p <= rg.End; p++ {
				reservedPorts = append(reservedPorts, p)
			}
		}
	}
	if len(reservedPorts) != 3 || reservedPorts[0] != 7000 {
		t.Errorf("reserved ports %v; want 7000 and two more", reservedPorts)
	}
	cmd := ops[2].Launch.TaskInfos[0].GetCommand()
	var jvm string
	for _, v := range cmd.GetEnvironment().GetVariables() {
		if v.Name == "JVM_EXTRA_OPTS" {
			jvm = v.GetValue()
		}
	}
	if !strings.Contains(jvm, "-Dcassandra.replace_address_first_boot=127.0.0.1:7000") {
		t.Errorf("JVM_EXTRA_OPTS %q lacks replace_address_first_boot", jvm)
	}
	if !strings.Contains(cmd.GetValue(), `"seeds": "127.0.0.2:8000"`) {
		t.Errorf("the replacing seed does not list (only) node-1 as its seed:\n%s", cmd.GetValue())
	}

	// The old agent returns with the old reservation and volume.
	back := offer("a1", "127.0.0.1", append(reservedAs(placed0), scalar("cpus", 1))...)
	ops, _ = f.useOffer(now, back)
	if len(ops) != 2 || ops[0].Destroy == nil || ops[1].Unreserve == nil {
		t.Fatalf("the old agent's offer: %v; want DESTROY and UNRESERVE", ops)
	}
	if v := ops[0].Destroy.Volumes; len(v) != 1 || v[0].GetDisk().GetPersistence().GetID() != oldVolume {
		t.Errorf("DESTROY %v; want volume %s", v, oldVolume)
	}
	for _, r := range ops[1].Unreserve.Resources {
		if r.Disk != nil || !f.labelledFor(&r, "node-0") {
			t.Errorf("UNRESERVE %v: want node-0's reservation, without the volume", r)
		}
	}
	f.released("a1", ops)
	if len(f.retired) != 0 {
		t.Errorf("retired after the release: %+v", f.retired)
	}
	g, err := New(Config{Masters: f.cfg.Masters, Spec: f.spec, Home: f.cfg.Home, StateDir: f.store.dir})
	if err != nil || g.nodes[0].AgentID != "a3" || g.nodes[0].ReplaceAddress != "127.0.0.1:7000" || len(g.retired) != 0 {
		t.Fatalf("state after the replacement: %+v, retired %v, %v", *g.nodes[0], g.retired, err)
	}
}

// Destroy retires each node once its task has ended; its agent's next
// offer destroys the volume and unreserves the resources, and nothing is
// placed or relaunched meanwhile. With nothing left, the destruction ends
// and a second Destroy changes nothing; scaling out and rolling restarts
// are refused while it runs.
func TestDestroyReleasesEverything(t *testing.T) {
	master := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"slaves":[{"id":"a1","active":true}]}`)
	}))
	defer master.Close()
	f := testFramework(t, 2)
	f.cfg.Masters = []string{strings.TrimPrefix(master.URL, "http://")}
	now := time.Now()
	placed, _ := f.useOffer(now, offer("a1", "127.0.0.1", scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(7000, 7010)))
	n := f.nodes[0]
	n.State, n.Reserved = "TASK_RUNNING", true
	volume := n.VolumeID

	f.Destroy(t.Context())
	if n.AgentID != "a1" || len(f.retired) != 0 {
		t.Fatalf("a running node retired before its task ended: %+v, %v", *n, f.retired)
	}
	if err := f.AddNodes(t.Context(), 1); !errors.Is(err, ErrDestroying) {
		t.Errorf("scaling out while destroying: %v", err)
	}
	if err := f.RollingRestart(nil); !errors.Is(err, ErrDestroying) {
		t.Errorf("a rolling restart while destroying: %v", err)
	}
	n.State = "TASK_KILLED"
	f.stepDestroy(t.Context())
	if n.AgentID != "" || len(f.retired) != 1 || f.retired[0].VolumeID != volume {
		t.Fatalf("after its task ended: node %+v, retired %+v", *n, f.retired)
	}
	if ops, _ := f.useOffer(now.Add(time.Hour), offer("a2", "127.0.0.2", scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(8000, 8010))); ops != nil {
		t.Fatalf("placed a node while destroying: %v", ops)
	}
	ops, _ := f.useOffer(now.Add(time.Hour), offer("a1", "127.0.0.1", reservedAs(placed)...))
	if len(ops) != 2 || ops[0].Destroy == nil || ops[1].Unreserve == nil || len(ops[1].Unreserve.Resources) != 4 {
		t.Fatalf("the agent's offer while destroying: %v; want DESTROY and UNRESERVE of cpus, mem, ports, disk", ops)
	}
	f.stepDestroy(t.Context())
	select {
	case <-f.Destroyed():
		t.Fatal("destroyed before the release was taken")
	default:
	}
	f.released("a1", ops)
	f.stepDestroy(t.Context())
	select {
	case <-f.Destroyed():
	default:
		t.Fatalf("not destroyed with nothing left: %+v", f.Status())
	}
	if st := f.Status(); !st.Destroyed || st.Placed != 0 || st.Retired != 0 {
		t.Errorf("status after the destruction: %+v", st)
	}
	f.Destroy(t.Context())
}

// A repair runs nodetool against one node at a time, as a small task on
// unreserved resources of the node's agent; the next node's task only
// once the previous one finished; a failure stops the job. Bad kinds and
// keyspaces, and a second job while one runs, are refused.
func TestJobOneNodeAtATime(t *testing.T) {
	f := testFramework(t, 2)
	now := time.Now()
	f.useOffer(now, offer("a1", "127.0.0.1", scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(7000, 7010)))
	f.nodes[0].State, f.nodes[0].Joined, f.nodes[0].Up = "TASK_RUNNING", true, true
	f.useOffer(now, offer("a2", "127.0.0.2", scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(8000, 8010)))
	f.nodes[1].State, f.nodes[1].Joined, f.nodes[1].Up = "TASK_RUNNING", true, true

	for _, c := range [][2]string{{"compact", ""}, {"repair", "kv; rm -rf /"}} {
		if _, err := f.StartJob(c[0], c[1]); err == nil {
			t.Errorf("StartJob(%q, %q) accepted", c[0], c[1])
		}
	}
	if _, err := f.StartJob(JobRepair, "kv"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.StartJob(JobCleanup, ""); err == nil {
		t.Error("a cleanup started while a repair runs")
	}
	spare := func(agent, host string) *mesos.Offer {
		return offer(agent, host, scalar("cpus", 1), scalar("mem", 1000))
	}
	if ops, _ := f.useOffer(now, spare("a2", "127.0.0.2")); ops != nil {
		t.Fatalf("node-1's repair before node-0's: %v", ops)
	}
	ops, _ := f.useOffer(now, spare("a1", "127.0.0.1"))
	if len(ops) != 1 || ops[0].Launch == nil {
		t.Fatalf("node-0's repair: %v", ops)
	}
	task := ops[0].Launch.TaskInfos[0]
	if cmd := task.GetCommand().GetValue(); cmd != "exec '/opt/cassandra/bin/nodetool' -h 127.0.0.1 -p 7002 'repair' '-pr' 'kv'" {
		t.Errorf("node-0's repair command: %s", cmd)
	}
	for _, r := range task.Resources {
		if r.GetRole() != "*" || (r.Name == "mem" && r.GetScalar().GetValue() != 256) {
			t.Errorf("the repair task takes %v; want 256 MB of unreserved memory and a little cpu", r)
		}
	}
	if ops, _ := f.useOffer(now, spare("a2", "127.0.0.2")); ops != nil {
		t.Fatalf("node-1's repair while node-0's runs: %v", ops)
	}
	finished, failed := mesos.TASK_FINISHED, mesos.TASK_FAILED
	f.jobUpdateLocked(mesos.TaskStatus{TaskID: task.TaskID, State: &finished})
	ops, _ = f.useOffer(now, spare("a2", "127.0.0.2"))
	if len(ops) != 1 || !strings.Contains(ops[0].Launch.TaskInfos[0].GetCommand().GetValue(), "-p 8002 'repair'") {
		t.Fatalf("node-1's repair after node-0's: %v", ops)
	}
	f.jobUpdateLocked(mesos.TaskStatus{TaskID: ops[0].Launch.TaskInfos[0].TaskID, State: &failed})
	j, _ := f.JobStatus()
	if !j.Ended() || !strings.HasPrefix(j.Failed, "node-1: TASK_FAILED") || len(j.Done) != 1 {
		t.Fatalf("after node-1's repair failed: %+v", j)
	}
	if _, err := f.StartJob(JobCleanup, ""); err != nil {
		t.Errorf("a cleanup after the repair ended: %v", err)
	}
	ops, _ = f.useOffer(now, spare("a1", "127.0.0.1"))
	if len(ops) != 1 || !strings.HasSuffix(ops[0].Launch.TaskInfos[0].GetCommand().GetValue(), "-p 7002 'cleanup'") {
		t.Fatalf("node-0's cleanup: %v", ops)
	}
}

// A replacement that has joined is not done until the framework has run
// a full repair on it (`nodetool repair -full`, every range it
// replicates): the repair starts on its own, meanwhile the node counts as
// being replaced and no rolling restart takes a node down; a failed
// repair is tried again after a while; a done one ends the replacement.
func TestReplacementRepairedBeforeDone(t *testing.T) {
	f := testFramework(t, 2)
	now := time.Now()
	f.useOffer(now, offer("a1", "127.0.0.1", scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(7000, 7010)))
	f.nodes[0].State, f.nodes[0].Joined, f.nodes[0].Up = "TASK_RUNNING", true, true
	f.useOffer(now, offer("a2", "127.0.0.2", scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(8000, 8010)))
	n1 := f.nodes[1]
	n1.State, n1.Joined, n1.Up, n1.Replacements, n1.RepairPending = "TASK_RUNNING", true, true, 1, true
	if st := f.Status(); st.Replacing != 1 {
		t.Errorf("status while the replacement is repaired: %+v; want 1 replacing", st)
	}
	if err := f.RollingRestart(nil); err != nil {
		t.Fatal(err)
	}
	f.stepRolling(t.Context())
	if r, _ := f.RollingStatus(); r.Current != "" {
		t.Errorf("a rolling restart took node %s down while node-1's repair is pending", r.Current)
	}
	f.rolling = nil

	spare := func(agent, host string) *mesos.Offer {
		return offer(agent, host, scalar("cpus", 1), scalar("mem", 1000))
	}
	failed, finished := mesos.TASK_FAILED, mesos.TASK_FINISHED
	for attempt := range 2 {
		f.stepJobs(now)
		j, ok := f.JobStatus()
		if !ok || j.Ended() || !j.Replacement || !j.Full || !slices.Equal(j.Pending, []string{"node-1"}) {
			t.Fatalf("attempt %d: job %+v; want node-1's full repair", attempt, j)
		}
		if ops, _ := f.useOffer(now, spare("a1", "127.0.0.1")); ops != nil {
			t.Fatalf("the replacement's repair ran on node-0: %v", ops)
		}
		ops, _ := f.useOffer(now, spare("a2", "127.0.0.2"))
		if len(ops) != 1 || ops[0].Launch == nil {
			t.Fatalf("the replacement's repair: %v", ops)
		}
		task := ops[0].Launch.TaskInfos[0]
		if cmd := task.GetCommand().GetValue(); cmd != "exec '/opt/cassandra/bin/nodetool' -h 127.0.0.1 -p 8002 'repair' '-full'" {
			t.Errorf("the replacement's repair command: %s", cmd)
		}
		if attempt == 0 {
			f.jobUpdateLocked(mesos.TaskStatus{TaskID: task.TaskID, State: &failed})
			if !n1.RepairPending {
				t.Fatal("a failed repair ended the replacement")
			}
			f.stepJobs(now.Add(time.Second))
			if j, _ := f.JobStatus(); !j.Ended() {
				t.Fatalf("the failed repair tried again at once: %+v", j)
			}
			now = now.Add(jobRetry + time.Second)
			continue
		}
		f.jobUpdateLocked(mesos.TaskStatus{TaskID: task.TaskID, State: &finished})
	}
	if n1.RepairPending || f.Status().Replacing != 0 {
		t.Errorf("after the repair: node %+v, status %+v; want the replacement done", *n1, f.Status())
	}
	f.stepJobs(now.Add(time.Hour))
	if j, _ := f.JobStatus(); !j.Ended() {
		t.Errorf("a repair started with nothing to repair and no schedule: %+v", j)
	}
}

// A job under way and a node's time away from the master survive a
// restart of the scheduler: the new one reconciles the job's task and
// goes on with it (a task the master answers lost runs again on the
// node), and replaces the node when replace_timeout has passed since it
// was first seen away, not since the restart.
func TestJobAndAwayClockSurviveRestart(t *testing.T) {
	master := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"slaves":[{"id":"a1","active":true}]}`)
	}))
	defer master.Close()
	spec, err := plan.Parse([]byte(`{"name":"ring","nodes":3,"seeds":1,"cpus":0.5,"mem":1000,"disk":300,"replace_timeout":"1m"}`))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Masters: []string{strings.TrimPrefix(master.URL, "http://")}, Spec: spec, Home: "/opt/cassandra", StateDir: t.TempDir()}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, a := range []string{"a1", "a2", "a3"} {
		f.useOffer(now, offer(a, "127.0.0."+strconv.Itoa(i+1), scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(7000, 7010)))
		f.nodes[i].State, f.nodes[i].Joined, f.nodes[i].Up = "TASK_RUNNING", true, true
	}
	if _, err := f.StartJob(JobCleanup, "kv"); err != nil {
		t.Fatal(err)
	}
	ops, _ := f.useOffer(now, offer("a1", "127.0.0.1", scalar("cpus", 1), scalar("mem", 1000)))
	if len(ops) != 1 {
		t.Fatalf("node-0's cleanup: %v", ops)
	}
	finished := mesos.TASK_FINISHED
	f.jobUpdateLocked(mesos.TaskStatus{TaskID: ops[0].Launch.TaskInfos[0].TaskID, State: &finished})
	ops, _ = f.useOffer(now, offer("a2", "127.0.0.2", scalar("cpus", 1), scalar("mem", 1000)))
	if len(ops) != 1 {
		t.Fatalf("node-1's cleanup: %v", ops)
	}
	running := ops[0].Launch.TaskInfos[0].TaskID
	// node-2's agent (a3) is away: first seen so 50 s ago.
	f.nodes[2].State, f.nodes[2].Up = "TASK_LOST", false
	f.checkGone(t.Context())
	f.mu.Lock()
	f.goneSince["node-2"] = now.Add(-50 * time.Second)
	f.saveLocked()
	f.mu.Unlock()

	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	j, ok := g.JobStatus()
	if !ok || j.Ended() || j.Current != "node-1" || j.TaskID != running.Value || !slices.Equal(j.Done, []string{"node-0"}) || !slices.Equal(j.Pending, []string{"node-2"}) {
		t.Fatalf("the job after the restart: %+v; want node-1's cleanup under way", j)
	}
	// The master forgot the task: it runs again on node-1.
	lost, reason := mesos.TASK_LOST, mesos.REASON_RECONCILIATION
	g.jobUpdateLocked(mesos.TaskStatus{TaskID: running, State: &lost, Reason: &reason})
	g.nodes[1].State, g.nodes[1].Up = "TASK_RUNNING", true
	ops, _ = g.useOffer(now, offer("a2", "127.0.0.2", scalar("cpus", 1), scalar("mem", 1000)))
	if len(ops) != 1 || !strings.HasSuffix(ops[0].Launch.TaskInfos[0].GetCommand().GetValue(), "-p 7002 'cleanup' 'kv'") {
		t.Fatalf("node-1's cleanup again after its task was lost: %v", ops)
	}
	if j, _ := g.JobStatus(); j.Reruns != 1 || j.Ended() {
		t.Errorf("the job after its task was lost: %+v", j)
	}
	// 50 s away before the restart: not yet; 10 s more: replaced.
	g.checkGone(t.Context())
	if g.nodes[2].AgentID != "a3" {
		t.Fatalf("node-2 replaced before replace_timeout: %+v", *g.nodes[2])
	}
	g.mu.Lock()
	since := g.goneSince["node-2"]
	g.goneSince["node-2"] = since.Add(-11 * time.Second)
	g.mu.Unlock()
	if !since.Equal(now.Add(-50 * time.Second)) {
		t.Errorf("node-2 away since %v after the restart; want %v", since, now.Add(-50*time.Second))
	}
	g.checkGone(t.Context())
	if g.nodes[2].AgentID != "" || g.nodes[2].Replacements != 1 {
		t.Errorf("node-2 not replaced after replace_timeout counted across the restart: %+v", *g.nodes[2])
	}
}

// With repair_interval, the ring is repaired (`repair -pr`, every node in
// turn) one interval after the schedule was first seen and then one
// interval after each full repair, only while every node is up; the time
// of the last one survives a restart. An interval under a minute is
// refused.
func TestScheduledRepair(t *testing.T) {
	if _, err := plan.Parse([]byte(`{"repair_interval":"30s"}`)); err == nil || !strings.Contains(err.Error(), "repair_interval 30s: at least 1m0s") {
		t.Errorf("a repair_interval of 30s: %v", err)
	}
	spec, err := plan.Parse([]byte(`{"name":"ring","nodes":2,"seeds":1,"cpus":0.5,"mem":1000,"disk":300,"repair_interval":"24h"}`))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Masters: []string{"127.0.0.1:5050"}, Spec: spec, Home: "/opt/cassandra", StateDir: t.TempDir()}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, a := range []string{"a1", "a2"} {
		f.useOffer(now, offer(a, "127.0.0."+strconv.Itoa(i+1), scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(7000, 7010)))
		f.nodes[i].State, f.nodes[i].Joined, f.nodes[i].Up = "TASK_RUNNING", true, true
	}
	f.stepJobs(now)
	if _, ok := f.JobStatus(); ok {
		t.Fatal("a scheduled repair ran at once on a new ring")
	}
	f.stepJobs(now.Add(23 * time.Hour))
	if _, ok := f.JobStatus(); ok {
		t.Fatal("a scheduled repair before its interval")
	}
	f.nodes[1].Up = false
	f.stepJobs(now.Add(25 * time.Hour))
	if _, ok := f.JobStatus(); ok {
		t.Fatal("a scheduled repair started with a node down")
	}
	f.nodes[1].Up = true
	f.stepJobs(now.Add(25 * time.Hour))
	j, ok := f.JobStatus()
	if !ok || !j.Scheduled || j.Full || j.Kind != JobRepair || !slices.Equal(j.Pending, []string{"node-0", "node-1"}) {
		t.Fatalf("the scheduled repair: %+v", j)
	}
	finished := mesos.TASK_FINISHED
	for i, a := range []string{"a1", "a2"} {
		ops, _ := f.useOffer(now, offer(a, "127.0.0."+strconv.Itoa(i+1), scalar("cpus", 1), scalar("mem", 1000)))
		if len(ops) != 1 || !strings.HasSuffix(ops[0].Launch.TaskInfos[0].GetCommand().GetValue(), "'repair' '-pr'") {
			t.Fatalf("node-%d's scheduled repair: %v", i, ops)
		}
		f.jobUpdateLocked(mesos.TaskStatus{TaskID: ops[0].Launch.TaskInfos[0].TaskID, State: &finished})
	}
	j, _ = f.JobStatus()
	if !j.Ended() || j.Failed != "" {
		t.Fatalf("the scheduled repair: %+v; want done", j)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.nodes[0].Up, g.nodes[1].Up = true, true
	g.stepJobs(j.Finished.Add(23 * time.Hour))
	if j, _ := g.JobStatus(); !j.Ended() {
		t.Fatalf("a second scheduled repair within the interval of the last, after a restart: %+v", j)
	}
	g.stepJobs(j.Finished.Add(25 * time.Hour))
	if j, _ := g.JobStatus(); j.Ended() || !j.Scheduled {
		t.Errorf("the next scheduled repair: %+v", j)
	}
}

// A rolling restart under way survives a restart of the scheduler: the
// next scheduler goes on from where it was. A node whose kill may not
// have been sent (its task is still the one to kill) restarts again; one
// already relaunched is waited for.
func TestRollingRestartSurvivesRestart(t *testing.T) {
	f := testFramework(t, 3)
	now := time.Now()
	for i, a := range []string{"a1", "a2", "a3"} {
		f.useOffer(now, offer(a, "127.0.0."+strconv.Itoa(i+1), scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(7000, 7010)))
		f.nodes[i].State, f.nodes[i].Joined, f.nodes[i].Up = "TASK_RUNNING", true, true
	}
	if err := f.RollingRestart(map[string]json.RawMessage{"concurrent_reads": json.RawMessage("16")}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.rolling.Restarted, f.rolling.Pending = []string{"node-0"}, []string{"node-2"}
	f.rolling.Current, f.rolling.Killed = "node-1", f.nodes[1].TaskID
	f.saveLocked()
	f.mu.Unlock()
	cfg := Config{Masters: f.cfg.Masters, Spec: f.cfg.Spec, Home: f.cfg.Home, StateDir: f.store.dir}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := g.RollingStatus()
	if !ok || r.Done() || r.Current != "" || !slices.Equal(r.Pending, []string{"node-1", "node-2"}) || !slices.Equal(r.Restarted, []string{"node-0"}) {
		t.Fatalf("the rolling restart after a restart, node-1's kill unknown: %+v", r)
	}
	if string(g.Spec().YAML["concurrent_reads"]) != "16" {
		t.Errorf("the changed key after the restart: %s", g.Spec().YAML["concurrent_reads"])
	}

	f.mu.Lock()
	f.nodes[1].TaskID = "ring.node-1.later.3" // relaunched since the kill
	f.saveLocked()
	f.mu.Unlock()
	g, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := g.RollingStatus(); r.Current != "node-1" || !slices.Equal(r.Pending, []string{"node-2"}) {
		t.Fatalf("the rolling restart after a restart, node-1 relaunched: %+v; want node-1 waited for", r)
	}
	for _, n := range g.nodes {
		n.State, n.Up = "TASK_RUNNING", true
	}
	g.nodes[1].Up = false
	g.stepRolling(t.Context())
	if r, _ := g.RollingStatus(); r.Current != "node-1" {
		t.Errorf("moved on before node-1 was up: %+v", r)
	}
}

// A node's data centre and rack come from its agent's attributes dc and
// rack (dc1 and rack1 without them), written to the node's
// cassandra-rackdc.properties for GossipingPropertyFileSnitch.
func TestDCAndRackFromAgentAttributes(t *testing.T) {
	f := testFramework(t, 2)
	now := time.Now()
	o := offer("a1", "127.0.0.1", scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(7000, 7010))
	o.Attributes = []mesos.Attribute{
		{Name: "dc", Type: mesos.TEXT, Text: &mesos.Value_Text{Value: "east"}},
		{Name: "rack", Type: mesos.TEXT, Text: &mesos.Value_Text{Value: "r7"}},
	}
	ops, _ := f.useOffer(now, o)
	if len(ops) != 3 || f.nodes[0].DC != "east" || f.nodes[0].Rack != "r7" {
		t.Fatalf("placed %v as %+v; want dc east, rack r7", ops, *f.nodes[0])
	}
	cmd := ops[2].Launch.TaskInfos[0].GetCommand().GetValue()
	if !strings.Contains(cmd, `printf 'dc=%s\nrack=%s\n' 'east' 'r7' > "$sandbox/conf/cassandra-rackdc.properties"`) ||
		!strings.Contains(cmd, "GossipingPropertyFileSnitch") {
		t.Errorf("the launch does not write dc east, rack r7 for GossipingPropertyFileSnitch:\n%s", cmd)
	}
	f.nodes[0].State, f.nodes[0].Joined, f.nodes[0].Up = "TASK_RUNNING", true, true
	ops, _ = f.useOffer(now, offer("a2", "127.0.0.2", scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(8000, 8010)))
	if len(ops) != 3 || !strings.Contains(ops[2].Launch.TaskInfos[0].GetCommand().GetValue(), `'dc1' 'rack1'`) {
		t.Errorf("a node on an agent without attributes: %+v; want dc1, rack1", *f.nodes[1])
	}
}

// With an agora binary, a node's task carries a COMMAND health check that
// runs `agora cassandra probe` on the node's own address and native port,
// with a grace period for the JVM's start; without one, none. The
// agent's healthy flag is kept on the node until its next launch.
func TestNodeTaskHealthCheck(t *testing.T) {
	f := testFramework(t, 1)
	ops, _ := f.useOffer(time.Now(), offer("a1", "127.0.0.7", scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(7000, 7010)))
	if len(ops) != 3 || ops[2].Launch.TaskInfos[0].HealthCheck != nil {
		t.Fatalf("without an agora binary: operations %v; want a launch with no health check", ops)
	}

	f = testFramework(t, 1)
	f.cfg.Agora = "/usr/local/bin/agora"
	ops, _ = f.useOffer(time.Now(), offer("a1", "127.0.0.7", scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(7000, 7010)))
	if len(ops) != 3 {
		t.Fatalf("operations %v; want RESERVE, CREATE, LAUNCH", ops)
	}
	task := ops[2].Launch.TaskInfos[0]
	hc := task.GetHealthCheck()
	cmd := hc.GetCommand()
	// A shell wraps the probe so that a binary missing on an agent counts
	// as unchecked rather than unhealthy (health.go).
	if hc.GetType() != mesos.HealthCheck_COMMAND || !cmd.GetShell() || !strings.Contains(cmd.GetValue(), "A='/usr/local/bin/agora'") {
		t.Fatalf("health check %v; want a COMMAND check running /usr/local/bin/agora", hc)
	}
	if want := `"$A" cassandra probe --host '127.0.0.7' --port 7001`; !strings.Contains(cmd.GetValue(), want) {
		t.Errorf("health check command %q; want it to run %q", cmd.GetValue(), want)
	}
	if hc.GetGracePeriodSeconds() < 300 || hc.GetConsecutiveFailures() < 2 || hc.GetTimeoutSeconds() <= 0 || hc.GetIntervalSeconds() <= 0 {
		t.Errorf("health check %v: want a grace period of minutes, a timeout, an interval and more than one failure before a kill", hc)
	}

	healthy := true
	f.update(context.Background(), mesos.TaskStatus{TaskID: task.TaskID, State: mesos.TASK_RUNNING.Enum(), Healthy: &healthy,
		Reason: mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED.Enum()})
	if n := f.Nodes()[0]; n.Healthy == nil || !*n.Healthy || n.State != "TASK_RUNNING" {
		t.Errorf("node after a healthy update: state %s healthy %v; want TASK_RUNNING, healthy", n.State, n.Healthy)
	}
}

// A node that bootstraps into a ring that may have data (a replacement,
// or a node added to scale out) waits at least joinRingDelay to learn the
// ring and the schema, whatever shorter ring delay the spec gives for a
// quick start; the first nodes, and any node once it has joined, keep
// the spec's.
func TestJoiningNodesWaitForTheRing(t *testing.T) {
	for _, c := range []struct {
		in, want []string
		from     string
	}{
		{nil, nil, ""},
		{[]string{"-Dx=1"}, []string{"-Dx=1"}, ""},
		{[]string{"-Dcassandra.ring_delay_ms=30000"}, []string{"-Dcassandra.ring_delay_ms=30000"}, ""},
		{[]string{"-Dcassandra.ring_delay_ms=+10000"}, []string{"-Dcassandra.ring_delay_ms=+10000"}, ""},
		{[]string{"-Dx=1", "-Dcassandra.ring_delay_ms=1000", "-Dy=2"}, []string{"-Dx=1", "-Dy=2", "-Dcassandra.ring_delay_ms=10000"}, "1000"},
		// The JVM takes the last of two: that is the one compared.
		{[]string{"-Dcassandra.ring_delay_ms=30000", "-Dcassandra.ring_delay_ms=5"}, []string{"-Dcassandra.ring_delay_ms=10000"}, "5"},
		{[]string{"-Dcassandra.ring_delay_ms=5", "-Dcassandra.ring_delay_ms=20000"}, []string{"-Dcassandra.ring_delay_ms=5", "-Dcassandra.ring_delay_ms=20000"}, ""},
		{[]string{"-Dcassandra.ring_delay_ms=soon"}, []string{"-Dcassandra.ring_delay_ms=10000"}, "soon"},
		// The bare option sets "", on which Cassandra fails to start.
		{[]string{"-Dcassandra.ring_delay_ms", "-Dcassandra.ring_delay_msx=1"}, []string{"-Dcassandra.ring_delay_msx=1", "-Dcassandra.ring_delay_ms=10000"}, ""},
	} {
		in := slices.Clone(c.in)
		got, from, raised := ringDelayAtLeast(in, joinRingDelay)
		if !slices.Equal(got, c.want) || from != c.from || raised != !slices.Equal(c.in, c.want) {
			t.Errorf("ringDelayAtLeast(%q) = %q, %q, %v; want %q, %q", c.in, got, from, raised, c.want, c.from)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("ringDelayAtLeast changed its argument: %q, was %q", in, c.in)
		}
	}

	spec, err := plan.Parse([]byte(`{"name":"ring","nodes":2,"seeds":1,"cpus":0.5,"mem":1000,"disk":300,"jvm_options":["-Dcassandra.ring_delay_ms=1000"]}`))
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(Config{Masters: []string{"127.0.0.1:1"}, Spec: spec, Home: "/opt/cassandra", StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.AddNodes(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	ringDelay := func(n *Node) []string {
		t.Helper()
		f.mu.Lock()
		cmd := f.commandLocked(n)
		f.mu.Unlock()
		for _, v := range cmd.GetEnvironment().GetVariables() {
			if v.Name == "JVM_EXTRA_OPTS" {
				var out []string
				for _, o := range strings.Fields(v.GetValue()) {
					if strings.HasPrefix(o, plan.RingDelayOption+"=") {
						out = append(out, strings.TrimPrefix(o, plan.RingDelayOption+"="))
					}
				}
				return out
			}
		}
		t.Fatalf("%s's command has no JVM_EXTRA_OPTS", n.Name)
		return nil
	}
	n0, n1, added := f.nodes[0], f.nodes[1], f.nodes[2]
	if !added.Added || n0.Added || n1.Added {
		t.Fatalf("Added: %v %v %v; want only the added node-2", n0.Added, n1.Added, added.Added)
	}
	for _, c := range []struct {
		n    *Node
		want string
	}{{n0, "1000"}, {n1, "1000"}, {added, "10000"}} {
		if got := ringDelay(c.n); !slices.Equal(got, []string{c.want}) {
			t.Errorf("%s launches with ring delays %q; want only %s", c.n.Name, got, c.want)
		}
	}
	added.Joined = true
	if got := ringDelay(added); !slices.Equal(got, []string{"1000"}) {
		t.Errorf("the added node, joined, launches with ring delays %q; want the spec's 1000", got)
	}
	n1.ReplaceAddress = "127.0.0.2:7000"
	if got := ringDelay(n1); !slices.Equal(got, []string{"10000"}) {
		t.Errorf("a replacement launches with ring delays %q; want 10000", got)
	}
	// Added survives the node's replacement, and is saved.
	f.mu.Lock()
	added.Host, added.StoragePort = "127.0.0.3", 7000
	f.replaceLocked(added, time.Minute)
	f.saveLocked()
	f.mu.Unlock()
	if !added.Added || added.ReplaceAddress != "127.0.0.3:7000" {
		t.Errorf("after its replacement: %+v", *added)
	}
	g, err := New(Config{Masters: []string{"127.0.0.1:1"}, Spec: spec, Home: "/opt/cassandra", StateDir: f.cfg.StateDir})
	if err != nil {
		t.Fatal(err)
	}
	if ns := g.Nodes(); len(ns) != 3 || !ns[2].Added || ns[1].Added {
		t.Errorf("nodes read back from the state: %+v", ns)
	}

	// A spec asking for more nodes than the state holds scales the ring
	// out; and a node past the spec's count in a state saved before nodes
	// were marked was added all the same.
	more := spec
	more.Nodes = 4
	h, err := New(Config{Masters: []string{"127.0.0.1:1"}, Spec: more, Home: "/opt/cassandra", StateDir: f.cfg.StateDir})
	if err != nil {
		t.Fatal(err)
	}
	if ns := h.Nodes(); len(ns) != 4 || !ns[3].Added || ns[0].Added || ns[1].Added {
		t.Errorf("nodes of a spec of 4 over a state of 3: %+v", ns)
	}
	h.mu.Lock()
	h.nodes[2].Added = false
	h.saveLocked()
	h.mu.Unlock()
	old, err := New(Config{Masters: []string{"127.0.0.1:1"}, Spec: spec, Home: "/opt/cassandra", StateDir: f.cfg.StateDir})
	if err != nil {
		t.Fatal(err)
	}
	if ns := old.Nodes(); len(ns) != 4 || !ns[2].Added || ns[1].Added {
		t.Errorf("nodes of a spec of 2 over an unmarked state of 4: %+v", ns)
	}
}
