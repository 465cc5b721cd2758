package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agora-cluster/agora/frameworks/servicepage"
	"github.com/agora-cluster/agora/frameworks/state"
	stormclient "github.com/agora-cluster/agora/storm/client"
	"github.com/agora-cluster/agora/storm/framework"
	nativefw "github.com/agora-cluster/agora/storm/native/framework"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/master"
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
	// viewed, if set, hears of each topology's page Get reads (the
	// feed watches the counts of those a viewer has open).
	viewed func(id string)
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

// read is one read of the master's state, for the page.
func (s nativeUISource) read(ctx context.Context) (*nativeMasterState, error) {
	m, err := readNativeState(ctx, s.c, s.master)
	if err != nil {
		return nil, fmt.Errorf("list native topologies on master %s: %w", s.master, err)
	}
	return m, nil
}

// frameworks are the native topologies' frameworks in m, with what the
// page needs of their tasks, and the agents' hosts.
func (s nativeUISource) frameworks(m *nativeMasterState) ([]nativeStateFramework, map[string]string) {
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
	return out, hosts
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
	m, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	fws, hosts := s.frameworks(m)
	out := make([]framework.TopologySummary, 0, len(fws))
	for _, f := range fws {
		out = append(out, f.summary(ctx, hosts))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Get reads topology id's page, and records it as viewed (the feed
// watches its counts) once it is known to run.
func (s nativeUISource) Get(ctx context.Context, id string) (*framework.Topology, error) {
	m, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	t, err := s.page(ctx, m, id)
	if err == nil && s.viewed != nil {
		s.viewed(id)
	}
	return t, err
}

// page is topology id's page from m, one read of the master's state
// (its workers' metrics are read now); an id that names no native
// topology in m is ErrNoTopology.
func (s nativeUISource) page(ctx context.Context, m *nativeMasterState, id string) (*framework.Topology, error) {
	fws, hosts := s.frameworks(m)
	i := slices.IndexFunc(fws, func(f nativeStateFramework) bool { return f.Tasks[0].Name == id })
	if i < 0 {
		return nil, fmt.Errorf("%w: no native topology %q runs on master %s", framework.ErrNoTopology, id, s.master)
	}
	f := fws[i]
	t := &framework.Topology{TopologySummary: f.summary(ctx, hosts), Workers: []framework.TopologyWorker{}, Components: []framework.TopologyComponent{}}
	info, err := m.info(ctx, s.c, s.master, id)
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

// Bounds of the wait between attempts to subscribe again to the master's
// event stream for the native topologies' page: it doubles from the
// first to the last while the master does not answer.
const (
	nativeFeedRetryFirst = time.Second
	nativeFeedRetryLast  = 15 * time.Second
)

// A topology's page a viewer read in the last nativeViewWindow has its
// counts read every nativeViewPeriod while the feed has viewers: the
// master's events do not say when a worker's counts move. At most
// nativeMaxViewed pages are, the least recently read going first.
const (
	nativeViewWindow = time.Minute
	nativeViewPeriod = 2 * time.Second
	nativeMaxViewed  = 64
)

// After a lost stream, a SUBSCRIBED not back within the retry's wait and
// nativeResubscribeGrace takes the feed down (the page polls): a master
// that accepts the connection but never answers must not leave the page
// saying live.
const nativeResubscribeGrace = 30 * time.Second

// nativeFeed is the native topologies' page's change feed: the page's
// Changes, bumped by the master's operator events (SUBSCRIBE on /api/v1)
// that concern a native topology's framework or tasks, and by the counts
// of the topologies' pages viewers have open. The page's reads stay
// direct (fresh from the master); the feed only tells its viewers when
// to read again. While the master's stream is down the feed is too (its
// streams end, new ones are answered 503), so that the page polls until
// the stream is back.
type nativeFeed struct {
	changes *servicepage.Changes

	mu     sync.Mutex
	up     context.Context // done when the master's stream drops; nil before the first
	drop   context.CancelFunc
	why    error                // why the master's stream is not followed (nil: not tried yet)
	viewed map[string]time.Time // topology → when a viewer last read its page
	// lost is the lostStream whose wait for a new SUBSCRIBED is under
	// way (0: none); lostCount numbers them.
	lost, lostCount uint64
	// grace is how long after the retry's wait a lost stream may take to
	// be subscribed again before the feed goes down.
	grace time.Duration
}

func newNativeFeed() *nativeFeed {
	return &nativeFeed{changes: servicepage.NewChanges(), viewed: map[string]time.Time{}, grace: nativeResubscribeGrace}
}

// view records that a viewer read topology id's page (one that runs:
// the source records only those). At most nativeMaxViewed are kept, the
// least recently read going first.
func (f *nativeFeed) view(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.viewed[id] = time.Now()
	for len(f.viewed) > nativeMaxViewed {
		oldest := ""
		for v, at := range f.viewed {
			if oldest == "" || at.Before(f.viewed[oldest]) {
				oldest = v
			}
		}
		delete(f.viewed, oldest)
	}
}

// forget stops watching topology id (it no longer runs).
func (f *nativeFeed) forget(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.viewed, id)
}

// views are the topologies whose pages were read since the window began.
func (f *nativeFeed) views(since time.Time) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id, at := range f.viewed {
		if at.Before(since) {
			delete(f.viewed, id)
			continue
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// watchViews reads, every nativeViewPeriod until ctx ends, the pages of
// the topologies viewed in the last nativeViewWindow from src (whose
// reads here record no view), and bumps the changes when one differs
// from its last read, uptimes aside. It reads nothing while the feed is
// down (the page polls) or has no viewer.
func (f *nativeFeed) watchViews(ctx context.Context, src nativeUISource) {
	last := map[string]string{}
	tick := time.NewTicker(nativeViewPeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !f.live() || f.changes.Streams() == 0 {
			f.views(time.Now().Add(-nativeViewWindow))
			clear(last)
			continue
		}
		last = f.watchOnce(ctx, src, last)
	}
}

// watchOnce is one round of watchViews: one read of the master's state
// for all the viewed pages (and their workers' metrics), a bump if one
// differs from last, and the ids that no longer run forgotten. It
// returns what it read.
func (f *nativeFeed) watchOnce(ctx context.Context, src nativeUISource, last map[string]string) map[string]string {
	ids := f.views(time.Now().Add(-nativeViewWindow))
	seen := map[string]string{}
	if len(ids) == 0 {
		return seen
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	m, readErr := src.read(rctx)
	for _, id := range ids {
		var t *framework.Topology
		err := readErr
		if err == nil {
			t, err = src.page(rctx, m, id)
		}
		if errors.Is(err, framework.ErrNoTopology) {
			f.forget(id) // gone: a viewer who reads it running again records it again
		}
		seen[id] = topologyPrint(t, err)
		if old, ok := last[id]; ok && old != seen[id] {
			f.changes.Bump()
		}
	}
	return seen
}

// topologyPrint is what a topology's page shows of t (or of err), its
// uptimes aside, which move every second.
func topologyPrint(t *framework.Topology, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	c := *t
	c.UptimeSecs = 0
	c.Workers = append([]framework.TopologyWorker(nil), t.Workers...)
	for i := range c.Workers {
		c.Workers[i].UptimeSecs = 0
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// live says whether the master's stream is followed now.
func (f *nativeFeed) live() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.up != nil && f.up.Err() == nil
}

// setLive records the master's stream as followed (on) or lost.
func (f *nativeFeed) setLive(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lost = 0
	f.setLiveLocked(on)
}

// setDown records the master's stream as lost for why.
func (f *nativeFeed) setDown(why error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lost = 0
	f.setLiveLocked(false)
	f.why = why
}

// lostStream records a followed stream lost for why, the feed kept up:
// unless a new SUBSCRIBED (setLive) or a failure (setDown) comes first,
// it goes down after within.
func (f *nativeFeed) lostStream(why error, within time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lostCount++
	n := f.lostCount
	f.lost = n
	time.AfterFunc(within, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.lost != n {
			return // subscribed again, or down already
		}
		f.lost = 0
		f.setLiveLocked(false)
		f.why = fmt.Errorf("%v; not subscribed again within %s", why, within)
	})
}

func (f *nativeFeed) setLiveLocked(on bool) {
	if on && f.up != nil && f.up.Err() == nil {
		return // its streams stay open
	}
	if f.drop != nil {
		f.drop()
		f.up, f.drop = nil, nil
	}
	if on {
		f.up, f.drop = context.WithCancel(context.Background())
	}
}

// ServeHTTP serves the page's change feed while the master's stream is
// followed, ending each stream when it drops.
func (f *nativeFeed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	up, why := f.up, f.why
	f.mu.Unlock()
	if up == nil || up.Err() != nil {
		msg := "the master's event stream is not followed yet"
		if why != nil {
			msg = fmt.Sprintf("the master's event stream is lost (%v)", why)
		}
		w.Header().Set("Retry-After", "10")
		http.Error(w, msg+": the page polls the master until it is back", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(up, cancel)
	defer stop()
	f.changes.ServeHTTP(w, r.WithContext(ctx))
}

// bumpAfter serves h, then bumps the changes: h is one of the control's
// changes (activate, deactivate, rebalance), which move the status the
// page shows without a master event.
func (f *nativeFeed) bumpAfter(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		f.changes.Bump()
	})
}

// handler serves h with the feed at servicepage.ChangesPath.
func (f *nativeFeed) handler(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.Handle(servicepage.ChangesPath, f)
	return mux
}

// follow follows the master's event stream of o until ctx ends. A
// stream followed and then lost (a master gone, or one quiet past the
// stream's watchdog) is subscribed again after nativeFeedRetryFirst with
// the feed kept up, and the new SUBSCRIBED moves the feed (what changed
// in between was not told); a subscription that fails, or one not back
// within the retry's wait and the feed's grace (a master that accepts
// the connection and answers nothing), takes the feed down, and is
// tried again after nativeFeedRetryFirst, doubling to
// nativeFeedRetryLast. The reader never waits on the page: Bump does not
// block.
func (f *nativeFeed) follow(ctx context.Context, o clientOptions) {
	defer f.setDown(errors.New("the submitting command is ending"))
	view := newNativeView()
	wait := nativeFeedRetryFirst
	for ctx.Err() == nil {
		s, err := subscribeEvents(ctx, &o)
		subscribed := false
		if err == nil {
			subscribed, err = f.read(s, view)
			s.Close()
		}
		if subscribed {
			wait = nativeFeedRetryFirst // followed, then lost: kept up while subscribing again
			f.lostStream(err, wait+f.grace)
		} else {
			f.setDown(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if !subscribed {
			wait = min(2*wait, nativeFeedRetryLast)
		}
	}
}

// read bumps the changes for s's events until s fails with err;
// subscribed says whether s got as far as SUBSCRIBED.
func (f *nativeFeed) read(s *eventStream, view *nativeView) (subscribed bool, err error) {
	for {
		ev, _, err := s.next()
		if err != nil {
			return subscribed, err
		}
		if view.apply(ev) {
			f.changes.Bump()
		}
		if ev.GetType() == master.Event_SUBSCRIBED {
			subscribed = true
			f.setLive(true)
		}
	}
}

// nativeView is what the feed knows of the native topologies from the
// master's events: their frameworks.
type nativeView struct {
	frameworks map[string]bool // the native frameworks' IDs
}

func newNativeView() *nativeView {
	return &nativeView{frameworks: map[string]bool{}}
}

// apply folds ev into v and says whether it changed what the page shows
// of the native topologies. Every SUBSCRIBED moves it: after a lost
// stream, what changed in between (a framework updated, an agent gone,
// a task's state) was not told, and the page reads again.
func (v *nativeView) apply(ev *master.Event) bool {
	isNative := func(fi mesos.FrameworkInfo) bool { return fi.GetName() == nativefw.Name }
	switch ev.GetType() {
	case master.Event_SUBSCRIBED:
		clear(v.frameworks)
		for _, fw := range ev.GetSubscribed().GetGetState().GetGetFrameworks().GetFrameworks() {
			if isNative(fw.FrameworkInfo) {
				v.frameworks[fw.FrameworkInfo.GetID().GetValue()] = true
			}
		}
		return true
	case master.Event_FRAMEWORK_ADDED:
		fi := ev.GetFrameworkAdded().Framework.FrameworkInfo
		if isNative(fi) {
			v.frameworks[fi.GetID().GetValue()] = true
			return true
		}
	case master.Event_FRAMEWORK_UPDATED:
		fi := ev.GetFrameworkUpdated().Framework.FrameworkInfo
		if isNative(fi) {
			v.frameworks[fi.GetID().GetValue()] = true // its webui_url may have moved
			return true
		}
	case master.Event_FRAMEWORK_REMOVED:
		id := ev.GetFrameworkRemoved().FrameworkInfo.GetID().GetValue()
		if v.frameworks[id] {
			delete(v.frameworks, id)
			return true
		}
	case master.Event_TASK_ADDED:
		return v.frameworks[ev.GetTaskAdded().Task.FrameworkID.GetValue()]
	case master.Event_TASK_UPDATED:
		return v.frameworks[ev.GetTaskUpdated().FrameworkID.GetValue()]
	case master.Event_AGENT_REMOVED:
		return len(v.frameworks) > 0 // its workers' hosts leave the page
	}
	return false
}
