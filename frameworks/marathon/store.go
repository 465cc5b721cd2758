package marathon

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/agora-cluster/agora/frameworks/marathon/plan"
	"github.com/agora-cluster/agora/frameworks/statefile"
)

// store keeps the framework's state one object per file, so that no
// document grows with the number of apps (Marathon's ZooKeeper root group
// outgrew its znode): DIR/framework.json holds the framework ID,
// DIR/apps/<id>.json each app, DIR/instances/<task id>.json each instance,
// DIR/versions/<id>/<version>.json each kept version of an app,
// DIR/deployments/<id>.json each running deployment. Every write is atomic and durable, and done before the change it records
// is acknowledged or acted on.
type store struct {
	dir string
}

// saved is what a framework finds in its work directory.
type saved struct {
	FrameworkID string
	Apps        []plan.App
	Tasks       []*Task
	Deployments []deploymentFile
}

// deploymentFile is a running deployment as kept in
// DIR/deployments/<id>.json, so that a restarted framework carries it on
// (its deadline, its rollback) rather than forgetting it.
type deploymentFile struct {
	ID           string        `json:"id"`
	Version      string        `json:"version"`
	Targets      []targetFile  `json:"targets"`
	Started      time.Time     `json:"started"`
	Timeout      time.Duration `json:"timeout"`
	AutoRollback bool          `json:"autoRollback"`
	RollbackOf   string        `json:"rollbackOf,omitempty"`
}

type targetFile struct {
	App    string    `json:"app"`
	Action string    `json:"action"`
	Prev   *plan.App `json:"prev,omitempty"`
}

type frameworkFile struct {
	FrameworkID string `json:"framework_id"`
}

func openStore(dir string) (*store, saved, error) {
	var s saved
	for _, sub := range []string{"apps", "instances", "deployments"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, s, fmt.Errorf("work directory: %w", err)
		}
	}
	st := &store{dir: dir}
	var ff frameworkFile
	if err := readJSON(filepath.Join(dir, "framework.json"), &ff); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, s, err
	}
	s.FrameworkID = ff.FrameworkID
	if err := eachJSON(filepath.Join(dir, "apps"), func(path string) error {
		var a plan.App
		if err := readJSON(path, &a); err != nil {
			return err
		}
		s.Apps = append(s.Apps, a)
		return nil
	}); err != nil {
		return nil, s, err
	}
	if err := eachJSON(filepath.Join(dir, "instances"), func(path string) error {
		t := &Task{}
		if err := readJSON(path, t); err != nil {
			return err
		}
		s.Tasks = append(s.Tasks, t)
		return nil
	}); err != nil {
		return nil, s, err
	}
	if err := eachJSON(filepath.Join(dir, "deployments"), func(path string) error {
		var d deploymentFile
		if err := readJSON(path, &d); err != nil {
			return err
		}
		s.Deployments = append(s.Deployments, d)
		return nil
	}); err != nil {
		return nil, s, err
	}
	return st, s, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("state file %s is damaged: %w", path, err)
	}
	return nil
}

func eachJSON(dir string, f func(path string) error) error {
	es, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	for _, e := range es {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if err := f(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func (st *store) write(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := statefile.WriteFile(path, b); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

func (st *store) remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return statefile.SyncDir(filepath.Dir(path))
}

func (st *store) saveFrameworkID(id string) error {
	return st.write(filepath.Join(st.dir, "framework.json"), frameworkFile{FrameworkID: id})
}

// appFile names an app's file: its path with "/" as "_", which app IDs
// cannot contain.
func (st *store) appFile(id string) string {
	return filepath.Join(st.dir, "apps", strings.ReplaceAll(strings.TrimPrefix(id, "/"), "/", "_")+".json")
}

func (st *store) saveApp(a *plan.App) error  { return st.write(st.appFile(a.ID), a) }
func (st *store) removeApp(id string) error  { return st.remove(st.appFile(id)) }
func (st *store) saveTask(t *Task) error     { return st.write(st.taskFile(t.ID), t) }
func (st *store) removeTask(id string) error { return st.remove(st.taskFile(id)) }

func (st *store) saveDeployment(d deploymentFile) error {
	return st.write(st.deploymentFile(d.ID), d)
}
func (st *store) removeDeployment(id string) error { return st.remove(st.deploymentFile(id)) }

func (st *store) deploymentFile(id string) string {
	return filepath.Join(st.dir, "deployments", id+".json")
}

func (st *store) taskFile(id string) string {
	return filepath.Join(st.dir, "instances", id+".json")
}

// newUUID is a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// taskIDFor is a new task ID for app id, as Marathon makes them:
// the path with "/" as "_", a dot, a UUID.
func taskIDFor(appID string) string {
	return strings.ReplaceAll(strings.TrimPrefix(appID, "/"), "/", "_") + "." + newUUID()
}

// versionDir is where an app's versions are kept.
func (st *store) versionDir(id string) string {
	return filepath.Join(st.dir, "versions", strings.ReplaceAll(strings.TrimPrefix(id, "/"), "/", "_"))
}

// saveVersion keeps a as a version of its app and prunes all but the
// newest keep versions.
func (st *store) saveVersion(a *plan.App, keep int) error {
	dir := st.versionDir(a.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("versions: %w", err)
	}
	if err := st.write(filepath.Join(dir, a.Version+".json"), a); err != nil {
		return err
	}
	vs, err := st.versions(a.ID)
	if err != nil {
		return err
	}
	for _, v := range vs[min(keep, len(vs)):] {
		if err := os.Remove(filepath.Join(dir, v+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("prune version %s: %w", v, err)
		}
	}
	return nil
}

// versions lists app id's kept versions, newest first (versions are
// timestamps of one format, so their order is their text's).
func (st *store) versions(id string) ([]string, error) {
	es, err := os.ReadDir(st.versionDir(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("versions: %w", err)
	}
	var out []string
	for _, e := range es {
		if v, ok := strings.CutSuffix(e.Name(), ".json"); ok && !strings.HasPrefix(v, ".") {
			out = append(out, v)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out, nil
}

// version reads one kept version of app id.
func (st *store) version(id, v string) (plan.App, error) {
	var a plan.App
	if strings.ContainsAny(v, "/\\") || v == "" || strings.HasPrefix(v, ".") {
		return a, os.ErrNotExist
	}
	err := readJSON(filepath.Join(st.versionDir(id), v+".json"), &a)
	return a, err
}

func (st *store) removeVersions(id string) error {
	return os.RemoveAll(st.versionDir(id))
}
