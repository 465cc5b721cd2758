package stormspeed

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-cluster/agora/storm/client"
)

// fakeNimbus answers TopologyByName from a script (the last answer
// repeats), the configurations from owners, and records the kills.
type fakeNimbus struct {
	mu     sync.Mutex
	byName []client.TopologySummary // one per call; ID "" is not listed
	owners map[string]string        // topology ID to its OwnerKey
	kills  []string
	// afterKill is what TopologyByName answers once a kill was made.
	afterKill client.TopologySummary
}

func (f *fakeNimbus) Addr() string { return "nimbus.test:6627" }

func (f *fakeNimbus) TopologyByName(_ context.Context, name string) (client.TopologySummary, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.afterKill
	if len(f.kills) == 0 {
		s = f.byName[0]
		if len(f.byName) > 1 {
			f.byName = f.byName[1:]
		}
	}
	return s, s.ID != "", nil
}

func (f *fakeNimbus) TopologyConf(_ context.Context, id string) (string, error) {
	b, _ := json.Marshal(map[string]any{OwnerKey: f.owners[id]})
	return string(b), nil
}

func (f *fakeNimbus) Kill(_ context.Context, name string, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kills = append(f.kills, name)
	return nil
}

// TestKillOwnKillsOnlyTheCheckedTopology: the topology whose owner was
// checked ends and a foreign one of the same name takes its place before
// the kill: the foreign one is not killed, and the error names it.
func TestKillOwnKillsOnlyTheCheckedTopology(t *testing.T) {
	f := &fakeNimbus{
		byName: []client.TopologySummary{
			{ID: "speed-1-1", Name: "speed", Status: "ACTIVE"},
			{ID: "speed-2-9", Name: "speed", Status: "ACTIVE"},
		},
		owners: map[string]string{"speed-1-1": "/srv/pipelines/mine", "speed-2-9": "/srv/pipelines/theirs"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	killed, err := KillOwn(ctx, f, "speed", "/srv/pipelines/mine")
	if killed || err == nil || !strings.Contains(err.Error(), "speed-2-9") {
		t.Fatalf("KillOwn = %v, %v; want not killed and an error naming speed-2-9", killed, err)
	}
	if len(f.kills) != 0 {
		t.Fatalf("KillOwn killed %q: the topology of that name now is not the one whose owner was checked", f.kills)
	}
}

// TestKillOwnKillsItsOwnAndWaits: this pipeline's topology is killed and
// KillOwn returns once Nimbus no longer lists its ID, though another
// topology of the same name is listed by then.
func TestKillOwnKillsItsOwnAndWaits(t *testing.T) {
	f := &fakeNimbus{
		byName:    []client.TopologySummary{{ID: "speed-1-1", Name: "speed", Status: "ACTIVE"}},
		owners:    map[string]string{"speed-1-1": "/srv/pipelines/mine"},
		afterKill: client.TopologySummary{ID: "speed-3-3", Name: "speed", Status: "ACTIVE"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	killed, err := KillOwn(ctx, f, "speed", "/srv/pipelines/mine")
	if !killed || err != nil {
		t.Fatalf("KillOwn = %v, %v; want killed", killed, err)
	}
	if len(f.kills) != 1 || f.kills[0] != "speed" {
		t.Fatalf("kills %q, want one of speed", f.kills)
	}
}

// TestKillOwnLeavesForeignTopologies: a topology another pipeline owns is
// not killed, and the error names its owner.
func TestKillOwnLeavesForeignTopologies(t *testing.T) {
	f := &fakeNimbus{
		byName: []client.TopologySummary{{ID: "speed-2-9", Name: "speed", Status: "ACTIVE"}},
		owners: map[string]string{"speed-2-9": "/srv/pipelines/theirs"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	killed, err := KillOwn(ctx, f, "speed", "/srv/pipelines/mine")
	if killed || err == nil || !strings.Contains(err.Error(), "/srv/pipelines/theirs") || len(f.kills) != 0 {
		t.Fatalf("KillOwn = %v, %v, kills %q; want none and an error naming /srv/pipelines/theirs", killed, err, f.kills)
	}
}
