package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"
)

// Rolling is a rolling restart (with a configuration change or not): the
// nodes restart one at a time, in order, each only while every node is
// up, and the next only once the restarted one is up again, so that the
// ring never has more than one node down for it.
type Rolling struct {
	// Pending are the nodes still to restart; Current is the one
	// restarting.
	Pending []string `json:"pending"`
	Current string   `json:"current,omitempty"`
	// Restarted are the nodes done.
	Restarted []string  `json:"restarted"`
	Started   time.Time `json:"started"`
	Finished  time.Time `json:"finished,omitzero"`
	// YAML are the cassandra.yaml keys the restart changes.
	YAML map[string]json.RawMessage `json:"yaml,omitempty"`
	// Killed is Current's task that was killed: Current is back once a
	// later task of it is up.
	Killed string `json:"killed_task,omitempty"`
}

// Done says whether every node has restarted.
func (r Rolling) Done() bool { return !r.Finished.IsZero() }

// RollingRestart restarts the nodes one at a time, with yaml's
// cassandra.yaml keys over the spec's (none: a plain rolling restart). A
// key the spec could not take is refused and nothing changes; so is a
// second restart while one is under way. The changed keys are saved with
// the nodes, so a restarted scheduler launches nodes with them.
func (f *Framework) RollingRestart(yaml map[string]json.RawMessage) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.destroying {
		return ErrDestroying
	}
	if f.rolling != nil && !f.rolling.Done() {
		return errors.New("a rolling restart is already under way")
	}
	next := f.spec
	next.YAML = maps.Clone(f.spec.YAML)
	if next.YAML == nil {
		next.YAML = map[string]json.RawMessage{}
	}
	maps.Copy(next.YAML, yaml)
	if err := next.Validate(); err != nil {
		return err
	}
	r := &Rolling{Started: time.Now(), YAML: yaml, Restarted: []string{}}
	for _, n := range f.nodes {
		if n.AgentID != "" {
			r.Pending = append(r.Pending, n.Name)
		}
	}
	if len(r.Pending) == 0 {
		return errors.New("no node is placed yet")
	}
	f.spec = next
	f.overrides = next.YAML
	f.rolling = r
	f.saveLocked()
	f.log.Info("rolling restart", "nodes", r.Pending, "yaml", string(mustJSON(yaml)))
	return nil
}

// RollingStatus is the last rolling restart, if any.
func (f *Framework) RollingStatus() (Rolling, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rolling == nil {
		return Rolling{}, false
	}
	r := *f.rolling
	r.Pending = append([]string(nil), r.Pending...)
	r.Restarted = append([]string(nil), r.Restarted...)
	return r, true
}

// stepRolling moves a rolling restart on: it is called after each probe.
func (f *Framework) stepRolling(ctx context.Context) {
	f.mu.Lock()
	r := f.rolling
	if r == nil || r.Done() {
		f.mu.Unlock()
		return
	}
	if r.Current != "" {
		n := f.node(r.Current)
		if n == nil || n.TaskID == r.Killed || !n.Up {
			f.mu.Unlock()
			return // still restarting
		}
		f.log.Info("rolling restart: node back up", "node", n.Name, "task", n.TaskID)
		r.Restarted = append(r.Restarted, r.Current)
		r.Current, r.Killed = "", ""
		f.saveLocked()
	}
	for _, n := range f.nodes {
		if !n.Up || n.RepairPending {
			f.mu.Unlock()
			return // never take a second node down (one joining or being replaced counts)
		}
	}
	if len(r.Pending) == 0 {
		r.Finished = time.Now()
		f.saveLocked()
		f.mu.Unlock()
		f.log.Info("rolling restart done", "nodes", r.Restarted)
		return
	}
	n := f.node(r.Pending[0])
	r.Pending = r.Pending[1:]
	if n == nil {
		f.mu.Unlock()
		return
	}
	r.Current, r.Killed = n.Name, n.TaskID
	f.restarting[n.Name] = true
	task, agent := n.TaskID, n.AgentID
	f.saveLocked()
	f.mu.Unlock()
	f.log.Info("rolling restart: restarting node", "node", n.Name, "task", task)
	if err := f.driver.Kill(ctx, task, agent); err != nil {
		f.log.Warn("rolling restart: kill", "node", n.Name, "err", err)
		f.mu.Lock()
		// Try it again on the next step.
		r.Pending = append([]string{r.Current}, r.Pending...)
		r.Current, r.Killed = "", ""
		delete(f.restarting, n.Name)
		f.saveLocked()
		f.mu.Unlock()
	}
}

// node is the node named name. Call with f.mu held.
func (f *Framework) node(name string) *Node {
	for _, n := range f.nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(fmt.Sprintf("%q", err.Error()))
	}
	return b
}
