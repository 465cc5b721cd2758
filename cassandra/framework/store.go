package framework

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/agora-cluster/agora/cassandra/plan"
	"github.com/agora-cluster/agora/frameworks/statefile"
)

// saved is the state file: the framework ID and each node's placement,
// reservation, volume and host ID.
type saved struct {
	Cluster     string `json:"cluster"`
	FrameworkID string `json:"framework_id"`
	Nodes       []Node `json:"nodes"`
	// YAML are cassandra.yaml keys changed through the API (a rolling
	// configuration change), over the spec's.
	YAML map[string]json.RawMessage `json:"yaml,omitempty"`
	// Retired are placements left behind whose reservations and volumes
	// are still to be released.
	Retired []Retired `json:"retired,omitempty"`
	// Destroying: the ring is being destroyed.
	Destroying bool `json:"destroying,omitempty"`
	// Job is the last repair or cleanup (one under way goes on after a
	// restart); RepairedAt, the last full repair of the ring.
	Job        *Job      `json:"job,omitempty"`
	RepairedAt time.Time `json:"repaired_at,omitzero"`
	// Rolling is the last rolling restart (one under way goes on after a
	// restart).
	Rolling *Rolling `json:"rolling,omitempty"`
	// GoneSince is when each node that is down was first seen with its
	// agent away, so that replace_timeout runs on across a restart.
	GoneSince map[string]time.Time `json:"gone_since,omitempty"`
}

// store keeps saved in DIR/cassandra.json, written atomically.
type store struct{ dir string }

// StateFile is the state file's name in the state directory.
const StateFile = "cassandra.json"

func openStore(dir string) (*store, saved, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, saved{}, fmt.Errorf("state directory: %w", err)
	}
	var s saved
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	switch {
	case os.IsNotExist(err):
	case err != nil:
		return nil, saved{}, fmt.Errorf("state: %w", err)
	default:
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, saved{}, fmt.Errorf("state file %s is damaged: %w", filepath.Join(dir, StateFile), err)
		}
	}
	return &store{dir: dir}, s, nil
}

// saveLocked writes the state, if kept, and tells the page it changed.
// Call with f.mu held.
func (f *Framework) saveLocked() {
	f.changes.Bump()
	if f.store == nil || f.destroyedAt() {
		return
	}
	s := saved{Cluster: f.spec.Name, FrameworkID: f.frameworkID, YAML: f.overrides, Retired: f.retired, Destroying: f.destroying,
		Job: f.job, RepairedAt: f.repairedAt, GoneSince: f.goneSince, Rolling: f.rolling}
	for _, n := range f.nodes {
		s.Nodes = append(s.Nodes, *n)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err == nil {
		err = statefile.WriteFile(filepath.Join(f.store.dir, StateFile), b)
	}
	if err != nil {
		f.log.Warn("save state", "dir", f.store.dir, "err", err)
	}
}

// planNode is n's place as the plan writes it into cassandra.yaml.
func planNode(n *Node) plan.Node {
	return plan.Node{Host: n.Host, StoragePort: n.StoragePort, NativePort: n.NativePort, JMXPort: n.JMXPort}
}
