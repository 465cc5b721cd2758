package registry

import (
	"path/filepath"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func exercise(t *testing.T, r Registry) {
	t.Helper()
	host := "h1"
	rec := AgentRecord{ID: "a1", State: AgentAdmitted, Info: &mesos.AgentInfo{Hostname: host}, Since: time.Unix(100, 0).UTC()}
	if err := r.PutAgent(rec); err != nil {
		t.Fatal(err)
	}
	rec.State = AgentUnreachable
	if err := r.PutAgent(rec); err != nil {
		t.Fatal(err)
	}
	if err := r.PutAgent(AgentRecord{ID: "a2", State: AgentAdmitted}); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteAgent("a2"); err != nil {
		t.Fatal(err)
	}
	got, err := r.Agents()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "a1" || got[0].State != AgentUnreachable || got[0].Info.GetHostname() != host {
		t.Fatalf("unexpected records: %+v", got)
	}
	if p, err := r.Policy(); err != nil || len(p.Weights) != 0 {
		t.Fatalf("empty policy: %+v, %v", p, err)
	}
	want := Policy{Weights: map[string]float64{"eng": 2}, Quotas: map[string]Quota{"eng": {Guarantee: map[string]float64{"cpus": 4}}}}
	if err := r.PutPolicy(want); err != nil {
		t.Fatal(err)
	}
	p, err := r.Policy()
	if err != nil || p.Weights["eng"] != 2 || p.Quotas["eng"].Guarantee["cpus"] != 4 {
		t.Fatalf("policy round trip: %+v, %v", p, err)
	}
	exerciseFrameworks(t, r)
}

// exerciseFrameworks stores two frameworks, tears one down and deletes
// another in one batch, and reads back f1 completed with its info.
func exerciseFrameworks(t *testing.T, r Registry) {
	t.Helper()
	ft, roles := 3600.0, []string{"eng"}
	info := &mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: "f1"}, Name: "web", User: "root", Roles: roles, FailoverTimeout: &ft,
		Capabilities: []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE}}}
	since := time.Unix(200, 0).UTC()
	if err := r.Apply([]Change{
		{Framework: &FrameworkRecord{ID: "f1", State: FrameworkActive, Info: info, Since: since}},
		{Framework: &FrameworkRecord{ID: "f2", State: FrameworkActive, Since: since}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.Apply([]Change{
		{Framework: &FrameworkRecord{ID: "f1", State: FrameworkCompleted, Info: info, Since: since.Add(time.Minute)}},
		{DeleteFramework: "f2"},
		{DeleteFramework: "never-stored"},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := r.Frameworks()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "f1" || got[0].State != FrameworkCompleted || !got[0].Since.Equal(since.Add(time.Minute)) ||
		got[0].Info.GetFailoverTimeout() != ft || got[0].Info.Roles[0] != "eng" || len(got[0].Info.Capabilities) != 1 {
		t.Fatalf("framework records: %+v", got)
	}
	if err := r.Apply([]Change{{Framework: &FrameworkRecord{State: FrameworkActive}}}); err == nil {
		t.Fatal("a framework record without an ID was stored")
	}
}

func TestMemory(t *testing.T) { exercise(t, NewMemory()) }

func TestBoltSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	got, err := b2.Agents()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "a1" || got[0].State != AgentUnreachable {
		t.Fatalf("after reopen: %+v", got)
	}
	if p, err := b2.Policy(); err != nil || p.Weights["eng"] != 2 {
		t.Fatalf("policy after reopen: %+v, %v", p, err)
	}
	if fs, err := b2.Frameworks(); err != nil || len(fs) != 1 || fs[0].State != FrameworkCompleted {
		t.Fatalf("frameworks after reopen: %+v, %v", fs, err)
	}
}
