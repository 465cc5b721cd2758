package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/agora-cluster/agora/frameworks/state"
	stormclient "github.com/agora-cluster/agora/storm/client"
	"github.com/agora-cluster/agora/storm/framework"
	nativefw "github.com/agora-cluster/agora/storm/native/framework"
)

// The topologies page (storm/framework's UIHandler) reads one of two
// sources: the cluster's native topologies, served on each native
// topology's control port (its framework's webui_url), and Nimbus's
// topologies, served by `agora storm scheduler --http_port`.

// masterUI is the web UI of master for the page's sandbox links ("" for
// a zk:// address, whose leader the page does not look up).
func masterUI(master string) func() string {
	return func() string {
		if strings.HasPrefix(master, "zk://") {
			return ""
		}
		u, err := state.BaseURL(master)
		if err != nil {
			return ""
		}
		return u
	}
}

// nativeUISource is the native topologies running on master's cluster,
// each one framework whose tasks are its workers. It lists them all but
// kills only topology, the submitting command's own: the kill is a
// TEARDOWN with the command's master credentials, which the page's users
// must not turn on other submitters' topologies.
type nativeUISource struct {
	master string
	c      state.Client // the master's endpoints, with the command's credentials
	// topology and frameworkID are the submitting command's own topology
	// and its framework's ID ("" until subscribed).
	topology    string
	frameworkID func() string
	// statusHTTP asks the topologies' submitting commands for their
	// status (nil: a plain client, which trusts the system's roots).
	statusHTTP *http.Client
}

// mayKill says why the page may not kill topology id (nil: it may).
func (s nativeUISource) mayKill(id string) error {
	if id != s.topology {
		return fmt.Errorf("this page kills only topology %q, the one its submitting command runs: kill %q from its own page (its framework's webui_url) or with `agora storm kill %s --runtime native`", s.topology, id, id)
	}
	if s.frameworkID == nil || s.frameworkID() == "" {
		return fmt.Errorf("topology %q: its framework has not subscribed to the master yet", id)
	}
	return nil
}

// ownKillOnly refuses, with 403 naming why, the page's kill of a
// topology mayKill refuses, before h's own checks.
func (s nativeUISource) ownKillOnly(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("POST /api/v1/topologies/{id}/kill", func(w http.ResponseWriter, r *http.Request) {
		if err := s.mayKill(r.PathValue("id")); err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		h.ServeHTTP(w, r)
	})
	return mux
}

// nativeFrameworks are the native topologies' frameworks in the master's
// state, with what the page needs of their tasks.
func (s nativeUISource) frameworks(ctx context.Context) ([]nativeStateFramework, map[string]string, error) {
	var m struct {
		Slaves     []state.Agent          `json:"slaves"`
		Frameworks []nativeStateFramework `json:"frameworks"`
	}
	if err := s.c.Get(ctx, s.master, "/master/state", &m); err != nil {
		return nil, nil, fmt.Errorf("list native topologies on master %s: %w", s.master, err)
	}
	hosts := map[string]string{}
	for _, a := range m.Slaves {
		hosts[a.ID] = a.Hostname
	}
	var out []nativeStateFramework
	for _, f := range m.Frameworks {
		if f.Name == nativefw.Name && len(f.Tasks) > 0 {
			f.statusHTTP = s.statusHTTP
			out = append(out, f)
		}
	}
	return out, hosts, nil
}

type nativeStateFramework struct {
	ID    string            `json:"id"`
	Name  string            `json:"name"`
	WebUI string            `json:"webui_url"`
	Tasks []nativeStateTask `json:"tasks"`
	// statusHTTP calls WebUI's /status.
	statusHTTP *http.Client
}

// status is the topology's status as its submitting command keeps it.
func (f nativeStateFramework) status(ctx context.Context) string {
	if f.WebUI != "" {
		if st, err := nativeStatusOf(ctx, f.statusHTTP, f.WebUI); err == nil {
			return st
		}
	}
	return "UNKNOWN"
}

// summary is the topology of f: its running workers' executors and the
// uptime of its oldest.
func (f nativeStateFramework) summary(ctx context.Context, hosts map[string]string) framework.TopologySummary {
	t := framework.TopologySummary{ID: f.Tasks[0].Name, Name: f.Tasks[0].Name, Runtime: "native", Status: f.status(ctx)}
	now := float64(time.Now().UnixNano()) / 1e9
	for _, task := range f.Tasks {
		if task.State != "TASK_RUNNING" {
			continue
		}
		r := nativeWorkerRow(task, hosts[task.SlaveID], now)
		t.NumWorkers++
		for _, n := range r.Executors {
			t.NumExecutors += n
		}
		t.UptimeSecs = max(t.UptimeSecs, r.UptimeSecs)
	}
	t.NumTasks = t.NumExecutors // a native executor runs one task
	return t
}

func (s nativeUISource) List(ctx context.Context) ([]framework.TopologySummary, error) {
	fws, hosts, err := s.frameworks(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]framework.TopologySummary, 0, len(fws))
	for _, f := range fws {
		out = append(out, f.summary(ctx, hosts))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// find is the framework running topology id.
func (s nativeUISource) find(ctx context.Context, id string) (nativeStateFramework, map[string]string, error) {
	fws, hosts, err := s.frameworks(ctx)
	if err != nil {
		return nativeStateFramework{}, nil, err
	}
	for _, f := range fws {
		if f.Tasks[0].Name == id {
			return f, hosts, nil
		}
	}
	return nativeStateFramework{}, nil, fmt.Errorf("%w: no native topology %q runs on master %s", framework.ErrNoTopology, id, s.master)
}

func (s nativeUISource) Get(ctx context.Context, id string) (*framework.Topology, error) {
	f, hosts, err := s.find(ctx, id)
	if err != nil {
		return nil, err
	}
	t := &framework.Topology{TopologySummary: f.summary(ctx, hosts), Workers: []framework.TopologyWorker{}, Components: []framework.TopologyComponent{}}
	info, err := nativeInfoOf(ctx, s.c, s.master, id)
	if err != nil {
		return nil, err
	}
	agents := map[string]string{}
	for _, task := range f.Tasks {
		agents[task.ID] = task.SlaveID
	}
	for _, w := range info.Workers {
		t.Workers = append(t.Workers, framework.TopologyWorker{Host: w.Host, Port: w.Port, UptimeSecs: w.UptimeSecs, Executors: w.Executors,
			FrameworkID: f.ID, TaskID: w.TaskID, AgentID: agents[w.TaskID], Error: w.Error})
	}
	for _, c := range info.Components {
		t.Components = append(t.Components, framework.TopologyComponent{ID: c.Component, Type: c.Type, Executors: c.Tasks,
			Emitted: c.Emitted, Acked: c.Acked, Failed: c.Failed})
	}
	return t, nil
}

// Kill tears down the submitting command's own framework, as `agora
// storm kill --runtime native` does; any other topology is refused.
func (s nativeUISource) Kill(ctx context.Context, id string) error {
	if err := s.mayKill(id); err != nil {
		return err
	}
	return teardownFramework(ctx, s.c, s.master, s.frameworkID())
}

func (nativeUISource) CanKill() bool { return true }

// MayKill offers the kill of the submitting command's own topology only,
// whoever views the page (its credentials are the page's, one set for
// all its viewers).
func (s nativeUISource) MayKill(_ context.Context, id string) error { return s.mayKill(id) }

// nimbusUISource is Nimbus's topologies, for `agora storm scheduler`:
// a Storm worker runs in its supervisor's task, whose sandbox the page
// links.
type nimbusUISource struct {
	fw *framework.Framework
}

func (s nimbusUISource) client() (*stormclient.Client, error) {
	addr, ok := s.fw.Nimbus()
	if !ok {
		return nil, errors.New("nimbus is not up yet")
	}
	return stormclient.New(addr, stormclient.Options{CallTimeout: stormRequestTimeout, ConnectTimeout: 5 * time.Second})
}

func (s nimbusUISource) List(ctx context.Context) ([]framework.TopologySummary, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	cs, err := c.ClusterInfo(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]framework.TopologySummary, 0, len(cs.Topologies))
	for _, t := range cs.Topologies {
		out = append(out, nimbusSummary(t))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func nimbusSummary(t stormclient.TopologySummary) framework.TopologySummary {
	return framework.TopologySummary{ID: t.ID, Name: t.Name, Runtime: "storm", Status: t.Status, UptimeSecs: int(t.UptimeSecs),
		NumWorkers: int(t.NumWorkers), NumExecutors: int(t.NumExecutors), NumTasks: int(t.NumTasks)}
}

func (s nimbusUISource) Get(ctx context.Context, id string) (*framework.Topology, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	cs, err := c.ClusterInfo(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range cs.Topologies {
		if t.ID != id {
			continue
		}
		info, err := c.TopologyInfo(ctx, id)
		if err != nil {
			return nil, err
		}
		return nimbusTopology(t, &info, s.fw.Supervisors(), s.fw.FrameworkID()), nil
	}
	return nil, fmt.Errorf("%w: nimbus runs no topology %q", framework.ErrNoTopology, id)
}

// nimbusTopology is a topology's page from Nimbus's getTopologyInfo: its
// workers (executors by host and port) with the supervisor task on their
// host, and its spouts' and bolts' all-time counts (Storm's own system
// components, __acker and the like, left out; a component's type is ""
// until one of its executors has reported).
func nimbusTopology(sum stormclient.TopologySummary, info *stormclient.TopologyInfo, sups []framework.Task, frameworkID string) *framework.Topology {
	t := &framework.Topology{TopologySummary: nimbusSummary(sum), Workers: []framework.TopologyWorker{}, Components: []framework.TopologyComponent{}}
	byHost := map[string]framework.Task{}
	for _, s := range sups {
		byHost[s.Host] = s
	}
	for _, r := range workersOf(info) {
		w := framework.TopologyWorker{Host: r.Host, Port: r.Port, UptimeSecs: r.UptimeSecs, Executors: r.Executors}
		if s, ok := byHost[r.Host]; ok {
			w.FrameworkID, w.TaskID, w.AgentID = frameworkID, s.TaskID, s.AgentID
		}
		t.Workers = append(t.Workers, w)
	}
	comps := map[string]*framework.TopologyComponent{}
	for _, e := range info.Executors {
		if strings.HasPrefix(e.ComponentID, "__") {
			continue
		}
		c := comps[e.ComponentID]
		if c == nil {
			c = &framework.TopologyComponent{ID: e.ComponentID} // its type is known once its stats are in
			comps[e.ComponentID] = c
		}
		c.Executors++
		if st := e.Stats; st != nil {
			if st.Executed != nil { // a bolt's stats, not a spout's
				c.Type = "bolt"
			} else if c.Type == "" {
				c.Type = "spout"
			}
			c.Emitted += stormclient.Total(st.Emitted, stormclient.AllTime)
			c.Acked += stormclient.Total(st.Acked, stormclient.AllTime)
			c.Failed += stormclient.Total(st.Failed, stormclient.AllTime)
		}
	}
	for _, c := range comps {
		t.Components = append(t.Components, *c)
	}
	sort.Slice(t.Components, func(i, j int) bool { return t.Components[i].ID < t.Components[j].ID })
	return t
}

// Kill kills the topology the page showed as id. Nimbus kills by name
// (killTopologyWithOpts takes a name, not an ID), so the name is looked
// up by id in Nimbus's cluster summary right before the kill (Nimbus
// kills by name; a resubmission of the name between the two calls is not
// excluded). A topology gone since the page listed it is ErrNoTopology,
// or, when its name runs again as another topology, ErrChanged naming
// both IDs: a kill by name would reach that other one. The wait is the
// topology's own message timeout.
func (s nimbusUISource) Kill(ctx context.Context, id string) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	defer c.Close()
	cs, err := c.ClusterInfo(ctx)
	if err != nil {
		return err
	}
	name, err := nimbusKillName(cs.Topologies, id)
	if err != nil {
		return err
	}
	return c.Kill(ctx, name, -1)
}

// nimbusKillName is the name to kill topology id by among ts, Nimbus's
// topologies: id's own name, or ErrChanged when id is gone and a topology
// of the name Storm gave id (NAME-COUNTER-SECONDS) runs under another ID,
// or ErrNoTopology.
func nimbusKillName(ts []stormclient.TopologySummary, id string) (string, error) {
	for _, t := range ts {
		if t.ID == id {
			return t.Name, nil
		}
	}
	if name, ok := stormIDName(id); ok {
		for _, t := range ts {
			if t.Name == name {
				return "", fmt.Errorf("%w: topology %q is gone and its name %q now runs as topology %q: not killed (reload the page to see it)", framework.ErrChanged, id, name, t.ID)
			}
		}
	}
	return "", fmt.Errorf("%w: nimbus runs no topology %q", framework.ErrNoTopology, id)
}

// stormIDName is the topology name in a Storm topology ID, which Nimbus
// makes as NAME-COUNTER-SECONDS; ok is false for an ID not of that form.
func stormIDName(id string) (string, bool) {
	rest, secs, ok := cutLast(id, "-")
	if !ok || !allDigits(secs) {
		return "", false
	}
	name, counter, ok := cutLast(rest, "-")
	if !ok || name == "" || !allDigits(counter) {
		return "", false
	}
	return name, true
}

// cutLast is strings.Cut at the last sep.
func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func (nimbusUISource) CanKill() bool { return true }

// MayKill offers the kill of every topology of Nimbus: the scheduler
// kills with its own connection to Nimbus, and the page's viewers are
// those its credentials let in (--http_credentials, --credentials), with
// no finer rule between them.
func (nimbusUISource) MayKill(context.Context, string) error { return nil }

// serveStormUI serves h on ln until ctx ends.
func serveStormUI(ctx context.Context, ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	srv.Serve(ln)
}
