package framework_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/clustertest"
	wordcount "github.com/agora-cluster/agora/examples/storm-wordcount"
	"github.com/agora-cluster/agora/frameworks/offers"
	"github.com/agora-cluster/agora/storm/bench"
	"github.com/agora-cluster/agora/storm/client"
	"github.com/agora-cluster/agora/storm/flux"
	"github.com/agora-cluster/agora/storm/framework"
	"github.com/agora-cluster/agora/storm/stormtest"
	"github.com/agora-cluster/agora/storm/submit"
)

// Two topologies on the framework (the user's Nimbus; one of them the
// example word count, whose counts come out exact) and a second,
// ordinary framework on the same two agents: the Storm framework launches
// a supervisor per agent for the two topologies' workers and then, with
// nothing more wanted, suppresses its offers and holds none. The other
// framework, subscribed while the topologies run, is offered everything
// the supervisors leave on both agents and runs a task on each, while
// both topologies stay active on their workers.
func TestTwoTopologiesLeaveOffersToAnotherFramework(t *testing.T) {
	sc := newAgora(t, "127.0.0.1", "127.0.0.2")
	storm := stormtest.Start(t, 0, 0)
	nimbus, err := client.New(storm.Nimbus, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer nimbus.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	fw, _, _ := sc.run(t, framework.Config{Nimbus: storm.Nimbus})
	waitFor(t, time.Minute, sc, "offers suppressed with no topology", func() (bool, string) {
		return fw.Suppressed(), ""
	})

	jar, err := nimbus.UploadJar(ctx, bytes.NewReader(stormtest.Jar(t)))
	if err != nil {
		t.Fatal(err)
	}
	sentences := []string{"one sentence", "and another"}
	outs := map[string]string{"words1": t.TempDir(), "words2": t.TempDir()}
	conf, _ := json.Marshal(map[string]any{
		"agora.test.dir": outs["words1"], "agora.test.sentences": sentences, "topology.workers": 1,
		"topology.component.resources.onheap.memory.mb": 64,
	})
	if err := nimbus.Submit(ctx, "words1", jar, string(conf), stormtest.WordTopology()); err != nil {
		t.Fatal(err)
	}
	// words2 is the example word count (Flux file, Python scripts), whose
	// counts on these supervisors must be exact.
	path, err := wordcount.WriteTo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	example, err := flux.Load(path, "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := submit.Prepare(example, submit.Options{Name: "words2", StormHome: storm.Home,
		Conf: map[string]any{"wordcount.output.dir": outs["words2"]}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Submit(ctx, nimbus); err != nil {
		t.Fatal(err)
	}
	acked := func(name string) int { return len(lines(filepath.Join(outs[name], "acked-*.txt"))) }
	waitFor(t, 4*time.Minute, sc, "both topologies' sentences acked on two supervisors", func() (bool, string) {
		sups := fw.Supervisors()
		return len(sups) == 2 && acked("words1") >= len(sentences) && acked("words2") >= len(wordcount.Sentences()),
			fmt.Sprintf("acked %d and %d on %+v", acked("words1"), acked("words2"), sups)
	})
	waitFor(t, time.Minute, sc, "the example's exact word counts", func() (bool, string) {
		got, err := bench.ReadCounts(outs["words2"])
		return err == nil && reflect.DeepEqual(got, wordcount.Counts()), fmt.Sprintf("counts %v (%v), want %v", got, err, wordcount.Counts())
	})
	if sups := fw.Supervisors(); sups[0].AgentID == sups[1].AgentID {
		t.Fatalf("both supervisors on agent %s", sups[0].AgentID)
	}
	// Nothing more wanted: suppressed, and no offer held.
	waitFor(t, time.Minute, sc, "offers suppressed with both topologies placed", func() (bool, string) {
		return fw.Suppressed(), fmt.Sprintf("%+v", fw.Supervisors())
	})
	st := sc.agora.WaitFor("the Storm framework (the only one) holding no offer", func(s *clustertest.State) bool {
		for _, f := range s.Frameworks {
			if f.OfferedResources.CPUs != 0 {
				return false
			}
		}
		return true
	})
	used := map[string]float64{}
	supervisorTasks := map[string]bool{}
	for _, task := range sc.supervisorTasks(st) {
		used[task.SlaveID] += task.Resources.CPUs
		supervisorTasks[task.ID] = true
	}

	// Another framework gets what is left of both agents, and runs a
	// task on each.
	other := sc.agora.Subscribe(`{"user":"root","name":"another framework"}`)
	defer other.Close()
	got := map[string]mesos.Offer{}
	deadline := time.Now().Add(2 * time.Minute)
	for len(got) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the other framework was offered only %d agent(s) in 2 minutes", len(got))
		}
		for _, o := range other.Next(scheduler.Event_OFFERS).Offers.Offers {
			got[o.AgentID.Value] = o
		}
	}
	for agentID, o := range got {
		if cpus := offers.Sum(o.Resources, "")["cpus"]; cpus != 1.5-used[agentID] {
			t.Errorf("the other framework was offered %v cpus on agent %s, where supervisors use %v of 1.5", cpus, agentID, used[agentID])
		}
	}
	ids := map[string]mesos.AgentID{}
	for agentID, o := range got {
		rs, ok := offers.NewPool(&o).Take(offers.Need{CPUs: 0.25, Mem: 32})
		if !ok {
			t.Fatalf("offer %v on agent %s cannot hold 0.25 cpus and 32 MB", o.Resources, agentID)
		}
		id := "other-" + strconv.Itoa(len(ids))
		shell, cmd := true, "sleep 600"
		other.Launch(o, mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: o.AgentID, Resources: rs,
			Command: &mesos.CommandInfo{Shell: &shell, Value: &cmd}})
		ids[id] = o.AgentID
	}
	for id := range ids {
		other.Until(id, mesos.TASK_RUNNING)
	}
	// Both topologies still run on the same supervisors, which the
	// framework kept and did not add to.
	cs, err := nimbus.ClusterInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	active := 0
	for _, top := range cs.Topologies {
		if top.Status == "ACTIVE" && top.NumWorkers == 1 {
			active++
		}
	}
	if active != 2 || len(cs.Supervisors) != 2 {
		t.Errorf("Nimbus lists %+v on %d supervisors; want words1 and words2 active on one worker each, two supervisors", cs.Topologies, len(cs.Supervisors))
	}
	st, err = sc.agora.State()
	if err != nil {
		t.Fatal(err)
	}
	if now := sc.supervisorTasks(st); len(now) != 2 || !supervisorTasks[now[0].ID] || !supervisorTasks[now[1].ID] {
		t.Errorf("supervisor tasks %+v; want the two from before", now)
	}
	if !fw.Suppressed() {
		t.Error("the Storm framework revived its offers with nothing more wanted")
	}
	for id, agent := range ids {
		other.MustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: id}, AgentID: &agent}})
	}
	for id := range ids {
		other.Until(id, mesos.TASK_KILLED)
	}
	for _, name := range []string{"words1", "words2"} {
		if err := nimbus.Kill(ctx, name, 0); err != nil {
			t.Fatal(err)
		}
	}
}
