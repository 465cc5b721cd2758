package framework_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cassandra/framework"
	"github.com/agora-cluster/agora/cassandra/plan"
	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/clustertest"
)

// TestWebUIURL: the framework subscribes with its page as its webui_url,
// which the master's state shows (and its framework page links), and the
// address leads to the page; /v1/status names the subscribed master for
// the page's links to the nodes' sandboxes. No Cassandra runs: the home
// does not exist, so the node's task fails and is launched again, which
// the test does not wait for.
func TestWebUIURL(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Agents: 1, Agent: func(i int, cfg *agent.Config) {
		first, last := clustertest.PortRange(20)
		cfg.Resources = fmt.Sprintf("cpus:1;mem:1024;disk:1000;ports:[%d-%d]", first, last)
	}})
	t.Cleanup(c.Stop)
	spec, err := plan.Parse([]byte(`{"name":"web","nodes":1,"seeds":1,"cpus":0.2,"mem":512,"disk":100}`))
	if err != nil {
		t.Fatal(err)
	}
	// The API's address is known before the framework is made, as in
	// `agora cassandra scheduler`.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fw, err := framework.New(framework.Config{Masters: []string{c.MasterAddr}, Spec: spec, Home: "/nonexistent/cassandra", WebUIURL: "http://" + ln.Addr().String()})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(fw.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() { ended <- fw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ended:
		case <-time.After(time.Minute):
			t.Error("the framework did not stop within a minute")
		}
	})

	var url string
	for deadline := time.Now().Add(time.Minute); url == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var st struct {
			Frameworks []struct {
				ID     string `json:"id"`
				WebUI  string `json:"webui_url"`
				Active bool   `json:"active"`
			} `json:"frameworks"`
		}
		if err := getJSON(c.MasterURL+"/master/state", &st); err != nil {
			t.Fatal(err)
		}
		for _, f := range st.Frameworks {
			if f.ID == fw.FrameworkID() && f.ID != "" {
				url = f.WebUI
			}
		}
	}
	if url != srv.URL {
		t.Fatalf("the master has webui_url %q for the framework, want the page's %q", url, srv.URL)
	}
	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "/ui/" {
		t.Errorf("GET / answered %s to %q, want 302 to /ui/", resp.Status, loc)
	}
	var st framework.Status
	if err := getJSON(srv.URL+"/v1/status", &st); err != nil {
		t.Fatal(err)
	}
	if st.MasterURL != c.MasterURL {
		t.Errorf("/v1/status names master %q, want %q", st.MasterURL, c.MasterURL)
	}
}
