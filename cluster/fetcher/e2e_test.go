package fetcher_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
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

func startCluster(t *testing.T) (*clustertest.Cluster, *clustertest.Scheduler) {
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
	return c, clustertest.SubscribeTo(t, c.MasterURL, `{"user":"root","name":"fetch-e2e"}`)
}

func sandboxOf(c *clustertest.Cluster, s *clustertest.Scheduler, taskID string) string {
	a := c.Agents[0]
	return filepath.Join(a.WorkDir(), "slaves", a.ID(), "frameworks", s.ID, "executors", taskID, "runs", "latest")
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
	offer := s.Offer()
	uris := []mesos.CommandInfo_URI{
		{Value: app, Cache: ptr(true)},
		{Value: conf, OutputFile: ptr("conf/app.conf")},
		{Value: tool, Executable: ptr(true), Cache: ptr(true)},
	}
	s.Launch(offer,
		shellTask(t, "first", offer, "./app/run.sh && ./tool", uris...),
		shellTask(t, "second", offer, "./app/run.sh && ./tool", uris...))
	for _, id := range []string{"first", "second"} {
		s.Until(id, mesos.TASK_FINISHED)
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
	offer := s.Offer()
	s.Launch(offer, shellTask(t, "nofile", offer, "echo must not run", mesos.CommandInfo_URI{Value: missing}))
	st := s.Until("nofile", mesos.TASK_FAILED)
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
	offer := s.Offer()
	s.Launch(offer, shellTask(t, "fetching", offer, "echo must not run", mesos.CommandInfo_URI{Value: slow}))
	deadline := time.Now().Add(time.Minute)
	for srv.count("/slow.bin") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the fetch never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.MustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: "fetching"}, AgentID: &offer.AgentID}})
	st := s.Until("fetching", mesos.TASK_KILLED)
	if st.GetReason() != mesos.REASON_TASK_KILLED_DURING_LAUNCH {
		t.Errorf("reason %v %q", st.GetReason(), st.GetMessage())
	}
}
