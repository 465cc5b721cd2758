package plan

import (
	"reflect"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func TestFromReadsMesosStormKeys(t *testing.T) {
	s, err := From(map[string]string{
		"topology.mesos.worker.cpu":     "0.5", // mesos/storm's per-topology spelling
		KeyWorkerMem:                    "1200",
		KeyExecutorCPU:                  "0.25",
		KeyExecutorMem:                  "620",
		KeySuicideTimeout:               "30",
		KeyAllowedHosts:                 `["a", "b"]`,
		KeyConstraints:                  "rack:r1;zone:z",
		KeyFrameworkName:                `"storm on agora"`,
		"topology.message.timeout.secs": "60", // Storm's own: passed on
		"worker.childopts":              `"-Xmx900m"`,
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.WorkerCPU != 0.5 || s.WorkerMem != 1200 || s.ExecutorCPU != 0.25 || s.ExecutorMem != 620 {
		t.Errorf("sizes = %+v", s)
	}
	if s.SuicideTimeout != 30*time.Second || s.Name != "storm on agora" || s.PerAgent != 1 {
		t.Errorf("timeout %v, name %q, per agent %d", s.SuicideTimeout, s.Name, s.PerAgent)
	}
	if !reflect.DeepEqual(s.Allowed, []string{"a", "b"}) || !reflect.DeepEqual(s.Constraints, []Constraint{{"rack", "r1"}, {"zone", "z"}}) {
		t.Errorf("hosts %v, constraints %v", s.Allowed, s.Constraints)
	}
	want := map[string]string{"topology.message.timeout.secs": "60", "worker.childopts": `"-Xmx900m"`}
	if !reflect.DeepEqual(s.Storm, want) {
		t.Errorf("Storm keys = %v, want %v", s.Storm, want)
	}
	d, _ := From(nil)
	if d.WorkerCPU != 1 || d.WorkerMem != 1000 || d.ExecutorCPU != 0.1 || d.ExecutorMem != 500 || d.SuicideTimeout != 120*time.Second {
		t.Errorf("defaults = %+v; want mesos/storm's", d)
	}
}

func TestFromRefusesBadKeys(t *testing.T) {
	for _, c := range []struct {
		props map[string]string
		want  string
	}{
		{map[string]string{"mesos.worker.cpus": "1"}, "unknown key mesos.worker.cpus"},
		{map[string]string{"agora.storm.nimbus.cpus": "1"}, "unknown key agora.storm.nimbus.cpus"},
		{map[string]string{KeyWorkerMem: "lots"}, `mesos.worker.mem.mb="lots": not a number`},
		{map[string]string{KeyWorkerMem: "16"}, "at least 32 MB"},
		{map[string]string{KeyWorkerCPU: "0.001"}, "at least 0.01 cpus"},
		{map[string]string{KeyExecutorCPU: "0"}, "more than 0 cpus"},
		{map[string]string{KeySuicideTimeout: "-5"}, "more than 0 seconds"},
		{map[string]string{KeyCheckpoint: "maybe"}, "want true or false"},
		{map[string]string{KeyConstraints: "rack"}, `"rack" is not of the form attribute:value`},
		{map[string]string{KeyLocalDir: "../up"}, "inside the sandbox"},
		{map[string]string{KeySupervisorsPerAgent: "0"}, "at least 1"},
		{map[string]string{"supervisor.slots.ports": "[6700]"}, "supervisor.slots.ports is set by the framework"},
		{map[string]string{"mesos.executor.uri": "http://x/storm.tgz"}, "mesos.executor.uri is mesos/storm's and not supported here: the Storm home is installed"},
		{map[string]string{"topology.mesos.worker.prefix": "x"}, "not supported here"},
	} {
		_, err := From(c.props)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("From(%v) = %v; want an error containing %q", c.props, err, c.want)
		}
	}
}

func scalar(name string, v float64) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
}

func offer(host string, cpus, mem float64, ports ...mesos.Value_Range) *mesos.Offer {
	o := &mesos.Offer{
		ID: mesos.OfferID{Value: "o-" + host}, AgentID: mesos.AgentID{Value: "a-" + host}, Hostname: host,
		Resources: []mesos.Resource{scalar("cpus", cpus), scalar("mem", mem)},
	}
	if len(ports) > 0 {
		o.Resources = append(o.Resources, mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: ports}})
	}
	return o
}

func settings(t *testing.T, props map[string]string) Settings {
	t.Helper()
	s, err := From(props)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSizeFitsSlotsToTheOffer(t *testing.T) {
	s := settings(t, map[string]string{KeyWorkerCPU: "1", KeyWorkerMem: "1000", KeyExecutorCPU: "0.5", KeyExecutorMem: "500"})
	for _, c := range []struct {
		name      string
		o         *mesos.Offer
		want      int
		slots     int
		cpus, mem float64
	}{
		{"cpus bound", offer("h", 2.5, 10000, mesos.Value_Range{Begin: 100, End: 199}), 5, 2, 2.5, 2500},
		{"mem bound", offer("h", 8, 3600, mesos.Value_Range{Begin: 100, End: 199}), 5, 3, 3.5, 3500},
		{"ports bound", offer("h", 8, 10000, mesos.Value_Range{Begin: 100, End: 101}), 5, 1, 1.5, 1500},
		{"demand bound", offer("h", 8, 10000, mesos.Value_Range{Begin: 100, End: 199}), 2, 2, 2.5, 2500},
	} {
		sup, res, why := s.Size(c.o, c.want)
		if why != "" {
			t.Errorf("%s: %s", c.name, why)
			continue
		}
		if sup.Slots() != c.slots || sup.CPUs != c.cpus || sup.Mem != c.mem {
			t.Errorf("%s: %+v; want %d slots, %g cpus, %g MB", c.name, sup, c.slots, c.cpus, c.mem)
		}
		if len(portsOf(res)) != c.slots+1 || sup.Port != 100 || sup.SlotPorts[0] != 101 {
			t.Errorf("%s: ports %v (thrift %d, slots %v); want %d from the offer", c.name, portsOf(res), sup.Port, sup.SlotPorts, c.slots+1)
		}
	}
	if _, _, why := s.Size(offer("h", 1.4, 10000, mesos.Value_Range{Begin: 1, End: 9}), 1); !strings.Contains(why, "cpus") {
		t.Errorf("an offer too small: %q; want the missing cpus named", why)
	}
	if _, _, why := s.Size(offer("h", 8, 10000), 1); !strings.Contains(why, "ports") {
		t.Errorf("an offer without ports: %q; want the ports named", why)
	}
}

func TestConstraintsAndHosts(t *testing.T) {
	s := settings(t, map[string]string{KeyConstraints: "rack:r1", KeyDisallowedHosts: "bad"})
	o := offer("h", 8, 8000, mesos.Value_Range{Begin: 1, End: 9})
	if ok, why := s.Allows(o); ok || !strings.Contains(why, "rack:r1") {
		t.Errorf("an agent without the attribute: %v %q", ok, why)
	}
	text := "r1"
	o.Attributes = []mesos.Attribute{{Name: "rack", Type: mesos.TEXT, Text: &mesos.Value_Text{Value: text}}}
	if ok, why := s.Allows(o); !ok {
		t.Errorf("an agent with rack:r1 refused: %s", why)
	}
	o.Hostname = "bad"
	if ok, why := s.Allows(o); ok || !strings.Contains(why, KeyDisallowedHosts) {
		t.Errorf("a disallowed host: %v %q", ok, why)
	}
	if _, _, why := s.Size(o, 1); why == "" {
		t.Error("Size sized a supervisor on a disallowed host")
	}
}

func TestDemandSupplyAndIdle(t *testing.T) {
	now := time.Now()
	own := func(id, host string, ports []uint64, busy time.Duration) Own {
		return Own{TaskID: id, Supervisor: Supervisor{Host: host, SlotPorts: ports}, Busy: now.Add(-busy)}
	}
	c := Cluster{
		// The user's own supervisor on u (2 slots); ours on a, listed too.
		Supervisors: []NimbusSupervisor{{Host: "u", Slots: 2}, {Host: "a", Slots: 1}},
		Topologies: []Topology{
			{ID: "t1", Workers: 3, Slots: []HostPort{{"u", 6700}, {"a", 10}}},
			{ID: "t2", Workers: 2},
		},
	}
	ours := []Own{own("s-a", "a", []uint64{10}, 0)}
	if got := Supply(c, ours, nil); got != 3 {
		t.Errorf("supply = %d, want 3 (2 of the user's, 1 of ours)", got)
	}
	if got := Short(c, ours, nil); got != 2 {
		t.Errorf("short = %d, want 5 asked - 3", got)
	}
	// A supervisor of ours just launched on b counts before Nimbus lists it.
	ours = append(ours, own("s-b", "b", []uint64{20, 21}, 0))
	if got := Short(c, ours, nil); got != 0 {
		t.Errorf("short with a launched supervisor = %d, want 0", got)
	}
	// Ours on a died: Nimbus still lists it, but not trusted while recent.
	if got := Short(c, ours[1:], map[string]bool{"a": true}); got != 1 {
		t.Errorf("short after a supervisor died = %d, want 1", got)
	}

	// Idle: only supervisors idle for the timeout, and only as far as the
	// demand stays covered.
	c.Topologies = []Topology{{ID: "t1", Workers: 1, Slots: []HostPort{{"u", 6700}}}}
	ours = []Own{own("s-a", "a", []uint64{10}, time.Minute), own("s-b", "b", []uint64{20}, 3*time.Minute), own("s-c", "c", []uint64{30}, time.Second)}
	used := Used(c)
	for _, o := range ours {
		if o.Runs(used) {
			t.Errorf("%s runs a worker: %v", o.TaskID, used)
		}
	}
	got := Idle(c, ours, nil, now, 30*time.Second)
	if !reflect.DeepEqual(got, []string{"s-b", "s-a"}) {
		t.Errorf("idle = %v, want s-b then s-a (s-c is not idle long enough)", got)
	}
	c.Topologies[0].Workers = 4 // 2 slots on u and 2 of ours wanted: one may go
	if got := Idle(c, ours, nil, now, 30*time.Second); !reflect.DeepEqual(got, []string{"s-b"}) {
		t.Errorf("idle with 4 workers asked = %v, want only s-b", got)
	}
	c.Topologies[0].Workers = 5
	if got := Idle(c, ours, nil, now, 30*time.Second); len(got) != 0 {
		t.Errorf("idle with demand for every slot = %v, want none", got)
	}
}

func TestParseYAML(t *testing.T) {
	got, err := ParseYAML([]byte(`# mesos/storm's storm.yaml
mesos.master.url: "zk://localhost:2181/mesos"
storm.zookeeper.servers:
  - "zk1"
  - zk2   # a comment
mesos.worker.cpu: 0.5
worker.childopts: "-Xmx1g # not a comment"
nimbus.seeds: ["n1", "n2"]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"mesos.master.url":        `"zk://localhost:2181/mesos"`,
		"storm.zookeeper.servers": `["zk1","zk2"]`,
		"mesos.worker.cpu":        "0.5",
		"worker.childopts":        `"-Xmx1g # not a comment"`,
		"nimbus.seeds":            `["n1", "n2"]`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseYAML = %v\nwant %v", got, want)
	}
	for _, bad := range []string{"a: 1\n  b: 2\n", "just words\n", "a: 1\na: 2\n"} {
		if _, err := ParseYAML([]byte(bad)); err == nil || !strings.Contains(err.Error(), "line") {
			t.Errorf("ParseYAML(%q) = %v; want an error naming the line", bad, err)
		}
	}
}
