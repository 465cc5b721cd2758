package fetcher_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/fetcher"
)

// End-to-end: a real in-process master and agent (clustertest), a
// framework speaking the v1 scheduler API in JSON, and a real HTTP server
// on loopback serving the tasks' URIs.

// rawScheduler is a minimal JSON scheduler over real HTTP.
type rawScheduler struct {
	t       *testing.T
	url     string
	id      string
	stream  string
	events  chan *scheduler.Event
	pending map[string][]mesos.TaskStatus // updates of other tasks, by task ID
}

func subscribe(t *testing.T, url, fi string) *rawScheduler {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/scheduler",
		strings.NewReader(`{"type":"SUBSCRIBE","subscribe":{"framework_info":`+fi+`}}`))
	req.Header.Set("Content-Type", api.MediaJSON)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("subscribe: %d %s", resp.StatusCode, b)
	}
	s := &rawScheduler{t: t, url: url, stream: resp.Header.Get("Mesos-Stream-Id"), events: make(chan *scheduler.Event, 1024), pending: map[string][]mesos.TaskStatus{}}
	t.Cleanup(func() { resp.Body.Close() })
	rr := api.NewRecordReader(resp.Body)
	go func() {
		defer close(s.events)
		for {
			b, err := rr.ReadRecord()
			if err != nil {
				return
			}
			var ev scheduler.Event
			if json.Unmarshal(b, &ev) == nil {
				s.events <- &ev
			}
		}
	}()
	s.id = s.next(scheduler.Event_SUBSCRIBED).Subscribed.FrameworkID.Value
	return s
}

func (s *rawScheduler) next(typ scheduler.Event_Type) *scheduler.Event {
	s.t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				s.t.Fatalf("stream closed while waiting for %v", typ)
			}
			if ev.GetType() == typ {
				return ev
			}
		case <-timeout:
			s.t.Fatalf("no %v event", typ)
		}
	}
}

func (s *rawScheduler) call(c *scheduler.Call) {
	s.t.Helper()
	c.FrameworkID = &mesos.FrameworkID{Value: s.id}
	b, err := json.Marshal(c)
	if err != nil {
		s.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v1/scheduler", bytes.NewReader(b))
	req.Header.Set("Content-Type", api.MediaJSON)
	req.Header.Set("Mesos-Stream-Id", s.stream)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 202 {
		s.t.Fatalf("%v: %d %s", c.Type, resp.StatusCode, body)
	}
}

// update waits for the next update of task id, acknowledging every update.
func (s *rawScheduler) update(id string) mesos.TaskStatus {
	s.t.Helper()
	if q := s.pending[id]; len(q) > 0 {
		s.pending[id] = q[1:]
		return q[0]
	}
	for {
		st := s.next(scheduler.Event_UPDATE).Update.Status
		if len(st.UUID) > 0 {
			s.call(&scheduler.Call{Type: scheduler.Call_ACKNOWLEDGE, Acknowledge: &scheduler.Call_Acknowledge{
				AgentID: *st.AgentID, TaskID: st.TaskID, UUID: st.UUID}})
		}
		if st.TaskID.Value == id {
			return st
		}
		s.pending[st.TaskID.Value] = append(s.pending[st.TaskID.Value], st)
	}
}

// until waits for task id to reach state, failing on any other terminal state.
func (s *rawScheduler) until(id string, want mesos.TaskState) mesos.TaskStatus {
	s.t.Helper()
	for {
		st := s.update(id)
		if st.GetState() == want {
			return st
		}
		switch st.GetState() {
		case mesos.TASK_STAGING, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_KILLING:
			continue
		}
		s.t.Fatalf("task %s: %v (%v) %q, want %v", id, st.GetState(), st.GetReason(), st.GetMessage(), want)
	}
}

func (s *rawScheduler) launch(offer mesos.Offer, tasks ...mesos.TaskInfo) {
	s.t.Helper()
	s.call(&scheduler.Call{Type: scheduler.Call_ACCEPT, Accept: &scheduler.Call_Accept{
		OfferIDs:   []mesos.OfferID{offer.ID},
		Operations: []mesos.Offer_Operation{{Type: mesos.Offer_Operation_LAUNCH, Launch: &mesos.Offer_Operation_Launch{TaskInfos: tasks}}},
		Filters:    &mesos.Filters{RefuseSeconds: ptr(0.0)},
	}})
}

func (s *rawScheduler) offer() mesos.Offer {
	s.t.Helper()
	return s.next(scheduler.Event_OFFERS).Offers.Offers[0]
}

func ptr[T any](v T) *T { return &v }

// uriServer serves fixed files and counts GETs; a path in block waits
// until release is closed.
type uriServer struct {
	*httptest.Server
	mu      sync.Mutex
	files   map[string][]byte
	gets    map[string]int
	block   map[string]bool
	release chan struct{}
}

func newURIServer(t *testing.T) *uriServer {
	s := &uriServer{files: map[string][]byte{}, gets: map[string]int{}, block: map[string]bool{}, release: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		body, ok := s.files[r.URL.Path]
		if r.Method == http.MethodGet {
			s.gets[r.URL.Path]++
		}
		blocked := s.block[r.URL.Path]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		if blocked && r.Method == http.MethodGet {
			select {
			case <-s.release:
			case <-r.Context().Done():
				return
			}
		}
		w.Write(body)
	}))
	t.Cleanup(func() {
		close(s.release)
		s.Close()
	})
	return s
}

func (s *uriServer) put(p string, body []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[p] = body
	return s.URL + p
}

func (s *uriServer) count(p string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets[p]
}

func tgz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func shellTask(t *testing.T, id string, offer mesos.Offer, script string, uris ...mesos.CommandInfo_URI) mesos.TaskInfo {
	t.Helper()
	rs, err := api.ParseResources("cpus:0.1;mem:32")
	if err != nil {
		t.Fatal(err)
	}
	return mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: offer.AgentID, Resources: rs,
		Command: &mesos.CommandInfo{Value: ptr(script), URIs: uris}}
}

func startCluster(t *testing.T) (*clustertest.Cluster, *rawScheduler) {
	t.Helper()
	c := clustertest.Start(t, clustertest.Options{
		AgentResources: "cpus:2;mem:1024;disk:1000;ports:[31000-31010]",
		Agent: func(_ int, cfg *agent.Config) {
			f, err := fetcher.New(fetcher.Config{CacheDir: filepath.Join(cfg.WorkDir, "fetcher-cache"), CacheSize: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			cfg.Fetcher = f
		},
	})
	return c, subscribe(t, c.MasterURL, `{"user":"root","name":"fetch-e2e"}`)
}

func sandboxOf(c *clustertest.Cluster, s *rawScheduler, taskID string) string {
	a := c.Agents[0]
	return filepath.Join(a.WorkDir(), "slaves", a.ID(), "frameworks", s.id, "executors", taskID, "runs", "latest")
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTasksGetTheirURIsBeforeTheyStart(t *testing.T) {
	srv := newURIServer(t)
	app := srv.put("/dist/app.tar.gz", tgz(t, map[string]string{"app/run.sh": "#!/bin/sh\necho app ran with $(cat conf/app.conf)\n"}))
	conf := srv.put("/conf", []byte("settings"))
	tool := srv.put("/bin/tool", []byte("#!/bin/sh\necho tool ran\n"))
	c, s := startCluster(t)
	offer := s.offer()
	uris := []mesos.CommandInfo_URI{
		{Value: app, Cache: ptr(true)},
		{Value: conf, OutputFile: ptr("conf/app.conf")},
		{Value: tool, Executable: ptr(true), Cache: ptr(true)},
	}
	s.launch(offer,
		shellTask(t, "first", offer, "./app/run.sh && ./tool", uris...),
		shellTask(t, "second", offer, "./app/run.sh && ./tool", uris...))
	for _, id := range []string{"first", "second"} {
		s.until(id, mesos.TASK_FINISHED)
		sb := sandboxOf(c, s, id)
		if got := read(t, filepath.Join(sb, "stdout")); got != "app ran with settings\ntool ran\n" {
			t.Errorf("%s: stdout = %q", id, got)
		}
		if log := read(t, filepath.Join(sb, "stderr")); !strings.Contains(log, "Fetching URI '"+app+"'") {
			t.Errorf("%s: the fetch is not reported in the sandbox's stderr:\n%s", id, log)
		}
	}
	// cache=true: one download for both tasks; without it, one each.
	if n := srv.count("/dist/app.tar.gz"); n != 1 {
		t.Errorf("app.tar.gz downloaded %d times, want 1", n)
	}
	if n := srv.count("/bin/tool"); n != 1 {
		t.Errorf("tool downloaded %d times, want 1", n)
	}
	if n := srv.count("/conf"); n != 2 {
		t.Errorf("conf (not cached) downloaded %d times, want 2", n)
	}
}

func TestAFailedFetchFailsTheTask(t *testing.T) {
	srv := newURIServer(t)
	missing := srv.URL + "/releases/app-9.9.tar.gz"
	_, s := startCluster(t)
	offer := s.offer()
	s.launch(offer, shellTask(t, "nofile", offer, "echo must not run", mesos.CommandInfo_URI{Value: missing}))
	st := s.until("nofile", mesos.TASK_FAILED)
	if st.GetReason() != mesos.REASON_CONTAINER_LAUNCH_FAILED || st.GetSource() != mesos.SOURCE_AGENT ||
		!strings.Contains(st.GetMessage(), "'"+missing+"'") || !strings.Contains(st.GetMessage(), "404 Not Found") {
		t.Errorf("%v %v %q", st.GetReason(), st.GetSource(), st.GetMessage())
	}
}

func TestKillDuringTheFetch(t *testing.T) {
	srv := newURIServer(t)
	slow := srv.put("/slow.bin", []byte("x"))
	srv.mu.Lock()
	srv.block["/slow.bin"] = true
	srv.mu.Unlock()
	_, s := startCluster(t)
	offer := s.offer()
	s.launch(offer, shellTask(t, "fetching", offer, "echo must not run", mesos.CommandInfo_URI{Value: slow}))
	deadline := time.Now().Add(time.Minute)
	for srv.count("/slow.bin") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the fetch never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.call(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: "fetching"}, AgentID: &offer.AgentID}})
	st := s.until("fetching", mesos.TASK_KILLED)
	if st.GetReason() != mesos.REASON_TASK_KILLED_DURING_LAUNCH {
		t.Errorf("reason %v %q", st.GetReason(), st.GetMessage())
	}
}
