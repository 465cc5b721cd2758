package dispatcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/agora-cluster/agora/spark/client"

	"github.com/agora-cluster/agora/frameworks/servicepage"
	"github.com/agora-cluster/agora/frameworks/statefile"
)

// Driver and its states are the client's (what /drivers serves).
type Driver = client.Driver

const (
	StateQueued      = client.StateQueued
	StateRunning     = client.StateRunning
	StateRelaunching = client.StateRelaunching
	StateFinished    = client.StateFinished
	StateFailed      = client.StateFailed
	StateKilled      = client.StateKilled
	StateError       = client.StateError
	StateNotFound    = client.StateNotFound
)

// Terminal reports whether a driver in state s has ended for good.
func Terminal(s string) bool { return client.Terminal(s) }

// store keeps the dispatcher's state in its work directory:
// framework.json (the framework ID to re-subscribe with) and one
// drivers/<submission ID>.json per submission, each replaced atomically
// (a temporary file, fsync, rename, fsync of the directory). Each driver
// saved or removed bumps changes, the page's change feed.
type store struct {
	dir     string
	changes *servicepage.Changes
}

type frameworkState struct {
	FrameworkID string `json:"framework_id,omitempty"`
}

func openStore(dir string) (*store, error) {
	if dir == "" {
		return nil, errors.New("spark dispatcher: no work directory")
	}
	if err := os.MkdirAll(filepath.Join(dir, "drivers"), 0o755); err != nil {
		return nil, fmt.Errorf("spark dispatcher work dir: %w", err)
	}
	return &store{dir: dir, changes: servicepage.NewChanges()}, nil
}

func (s *store) loadFramework() (frameworkState, error) {
	var st frameworkState
	p := filepath.Join(s.dir, "framework.json")
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil {
		return st, fmt.Errorf("spark dispatcher state %s: %w", p, err)
	}
	return st, nil
}

func (s *store) saveFramework(st frameworkState) error {
	return s.write(filepath.Join(s.dir, "framework.json"), st)
}

func (s *store) driverPath(id string) string {
	return filepath.Join(s.dir, "drivers", id+".json")
}

func (s *store) saveDriver(d *Driver) error {
	defer s.changes.Bump()
	return s.write(s.driverPath(d.ID), d)
}

func (s *store) removeDriver(id string) error {
	defer s.changes.Bump()
	if err := os.Remove(s.driverPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spark dispatcher state: %w", err)
	}
	return nil
}

// loadDrivers reads every submission, oldest first.
func (s *store) loadDrivers() ([]*Driver, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "drivers"))
	if err != nil {
		return nil, fmt.Errorf("spark dispatcher state: %w", err)
	}
	var out []*Driver
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(s.dir, "drivers", e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("spark dispatcher state: %w", err)
		}
		var d Driver
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("spark dispatcher state %s: %w", p, err)
		}
		if d.ID+".json" != e.Name() {
			return nil, fmt.Errorf("spark dispatcher state %s: holds submission %q", p, d.ID)
		}
		out = append(out, &d)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Submitted.Before(out[j].Submitted) })
	return out, nil
}

func (s *store) write(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("spark dispatcher state %s: %w", path, err)
	}
	if err := statefile.WriteFile(path, b); err != nil {
		return fmt.Errorf("spark dispatcher state %s: %w", path, err)
	}
	return nil
}
