package framework

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/agora-cluster/agora/frameworks/statefile"
)

// saved is the state file: the framework ID and the daemons' tasks, so a
// restarted scheduler re-subscribes as the same framework and adopts them.
type saved struct {
	FrameworkID string `json:"framework_id"`
	Supervisors []Task `json:"supervisors"`
	Nimbus      *Task  `json:"nimbus,omitempty"`
}

// store keeps saved in DIR/framework.json, written atomically.
type store struct {
	dir string
}

const stateFile = "framework.json"

func openStore(dir string) (*store, saved, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, saved{}, fmt.Errorf("state directory: %w", err)
	}
	var s saved
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	switch {
	case os.IsNotExist(err):
	case err != nil:
		return nil, saved{}, fmt.Errorf("state: %w", err)
	default:
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, saved{}, fmt.Errorf("state file %s is damaged: %w", filepath.Join(dir, stateFile), err)
		}
	}
	return &store{dir: dir}, s, nil
}

// save writes s atomically and durably.
func (st *store) save(s saved) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return statefile.WriteFile(filepath.Join(st.dir, stateFile), b)
}

// saveLocked writes the state, if kept. Call with f.mu held.
func (f *Framework) saveLocked() {
	if f.store == nil {
		return
	}
	s := saved{FrameworkID: f.frameworkID, Nimbus: f.nimbus}
	for _, t := range f.sups {
		s.Supervisors = append(s.Supervisors, t.Task)
	}
	slices.SortFunc(s.Supervisors, func(a, b Task) int { return compare(a.TaskID, b.TaskID) })
	if err := f.store.save(s); err != nil {
		f.log.Warn("save state", "dir", f.store.dir, "err", err)
	}
}
