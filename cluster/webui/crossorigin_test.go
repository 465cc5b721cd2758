package webui_test

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/webui"
	"github.com/agora-cluster/agora/cluster/webui/webuitest"
	"github.com/agora-cluster/agora/frameworks/oneshot"
)

const secret = "agora-sandbox-secret-7f3a"

// otherOrigin serves a blank page on its own port: another origin than the
// master's and the agents'.
func otherOrigin(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!doctype html><title>another site</title><body></body>")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// readProbe is run by a page: it tries each URL with fetch (CORS) and as
// a JSONP script, and says what it could read.
const readProbe = `(async (urls) => {
  const out = [];
  for (const u of urls) {
    let fetched = '';
    try { fetched = await (await fetch(u)).text(); } catch (e) { fetched = ''; }
    window.leak = (d) => { window.leaked = JSON.stringify(d); };
    window.leaked = '';
    await new Promise((done) => {
      const s = document.createElement('script');
      s.src = u + (u.includes('?') ? '&' : '?') + 'jsonp=leak';
      s.onload = done; s.onerror = done;
      document.head.appendChild(s);
    });
    out.push({url: u, fetched, jsonp: window.leaked});
  }
  return out;
})(%s)`

type readResult struct {
	URL     string `json:"url"`
	Fetched string `json:"fetched"`
	JSONP   string `json:"jsonp"`
}

func probeReads(t *testing.T, ctx context.Context, urls []string) []readResult {
	t.Helper()
	arg, _ := json.Marshal(urls)
	return run(t, ctx, "reading cross-origin", chromedp.Evaluate[[]readResult](
		strings.Replace(readProbe, "%s", string(arg), 1), chromedp.EvalAwaitPromise))
}

// sandboxFile returns the path of the first file named name under dir.
func sandboxFile(t *testing.T, dir, name string) string {
	t.Helper()
	var found string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && found == "" && !d.IsDir() && d.Name() == name {
			found = p
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no %s under %s", name, dir)
	}
	return found
}

// fileURLs are the endpoints that serve path's content: the agent's own
// and the master's relay of them.
func fileURLs(c *clustertest.Cluster, a *clustertest.RunningAgent, path string) []string {
	q := "?path=" + url.QueryEscape(path)
	relay := c.MasterURL + master.AgentProxyPrefix + a.ID()
	return []string{
		"http://" + a.Addr() + "/files/read" + q + "&offset=0",
		"http://" + a.Addr() + "/files/download" + q,
		relay + "/files/read" + q + "&offset=0",
		relay + "/files/download" + q,
	}
}

// mustServe checks, outside the browser, that each URL does serve the
// secret: what a page then fails to read is there to be read.
func mustServe(t *testing.T, urls []string) {
	t.Helper()
	for _, u := range urls {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), secret) {
			t.Fatalf("GET %s: %d %.200q, want the file", u, resp.StatusCode, b)
		}
	}
}

// TestCrossOriginPageCannotReadOrChange: a page on another origin can read
// no sandbox file, from the agent or through the master, with fetch or
// JSONP, and its simple POSTs (text/plain, forms) change no maintenance
// state; the master's own UI still shows the file.
func TestCrossOriginPageCannotReadOrChange(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{UI: webui.Handler(), AgentResources: "cpus:2;mem:1024;disk:100"})
	job, err := oneshot.New(oneshot.Config{Masters: []string{c.MasterAddr}, Codec: api.JSON, FrameworkName: "secrets",
		Task: oneshot.Spec{Name: "writes-a-secret", Command: []string{"sh", "-c", "echo " + secret}, CPUs: 0.1, Mem: 32}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := job.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a := c.Agents[0]
	stdout := sandboxFile(t, filepath.Join(a.WorkDir(), "slaves"), "stdout")
	reads := fileURLs(c, a, stdout)
	mustServe(t, reads)
	reads = append(reads, c.MasterURL+"/master/state", "http://"+a.Addr()+"/state", c.MasterURL+"/agent/"+a.ID()+"/state")

	get := func(path string) string {
		resp, err := http.Get(c.MasterURL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	before := map[string]string{}
	for _, p := range []string{"/maintenance/schedule", "/maintenance/status", "/weights", "/master/state"} {
		before[p] = get(p)
	}

	evil := otherOrigin(t)
	bctx := webuitest.NewBrowser(t)
	run(t, bctx, "opening the other site", chromedp.Navigate(evil.URL))

	t.Run("reads", func(t *testing.T) {
		for _, r := range probeReads(t, bctx, reads) {
			if r.Fetched != "" || r.JSONP != "" {
				t.Errorf("a page on %s read %s: fetch %.100q, JSONP %.100q", evil.URL, r.URL, r.Fetched, r.JSONP)
			}
		}
	})

	t.Run("changes", func(t *testing.T) {
		start := time.Now().Add(time.Hour).UnixNano()
		schedule := `{"windows":[{"machine_ids":[{"hostname":"localhost"}],"unavailability":{"start":{"nanoseconds":` + itoa(start) + `}}}]}`
		machines := `[{"hostname":"localhost"}]`
		type post struct{ Path, Type, Body string }
		posts := []post{
			{"/maintenance/schedule", "text/plain", schedule},
			{"/maintenance/schedule", "application/x-www-form-urlencoded", schedule},
			{"/machine/down", "text/plain", machines},
			{"/machine/down", "application/x-www-form-urlencoded", machines},
			{"/master/machine/down", "text/plain", machines},
			{"/weights", "application/x-www-form-urlencoded", `[{"role":"evil","weight":100}]`},
			{"/reserve", "application/x-www-form-urlencoded", url.Values{"slaveId": {a.ID()}, "resources": {
				`[{"name":"cpus","type":"SCALAR","scalar":{"value":1},"reservations":[{"type":"DYNAMIC","role":"evil"}]}]`}}.Encode()},
		}
		for i := range posts {
			posts[i].Path = c.MasterURL + posts[i].Path
		}
		arg, _ := json.Marshal(posts)
		// fetch in no-cors mode sends exactly what a form can: it resolves
		// once the server has answered, with an answer the page cannot read.
		answered := run(t, bctx, "posting cross-origin", chromedp.Evaluate[[]bool](`(async (posts) => {
		  const out = [];
		  for (const p of posts) {
		    try { await fetch(p.Path, {method: 'POST', mode: 'no-cors', headers: {'Content-Type': p.Type}, body: p.Body}); out.push(true); }
		    catch (e) { out.push(false); }
		  }
		  return out;
		})(`+string(arg)+`)`, chromedp.EvalAwaitPromise))
		for i, ok := range answered {
			if !ok {
				t.Errorf("POST %s (%s) did not reach the master: the test proves nothing", posts[i].Path, posts[i].Type)
			}
		}
		// And a real form, the classic JSON forgery: text/plain whose
		// name=value reads as the schedule.
		run(t, bctx, "submitting a form", chromedp.Evaluate[bool](`new Promise((done) => {
		  const sink = document.createElement('iframe');
		  sink.name = 'sink';
		  sink.onload = () => done(true);
		  document.body.appendChild(sink);
		  const f = document.createElement('form');
		  f.method = 'POST'; f.enctype = 'text/plain'; f.target = 'sink';
		  f.action = `+jsString(c.MasterURL+"/maintenance/schedule")+`;
		  const i = document.createElement('input');
		  i.name = `+jsString(strings.TrimSuffix(schedule, "}")+`,"x":"`)+`; i.value = '"}';
		  f.appendChild(i);
		  document.body.appendChild(f);
		  f.submit();
		})`, chromedp.EvalAwaitPromise))
		for p, was := range before {
			if now := get(p); p != "/master/state" && now != was {
				t.Errorf("%s changed: %s, was %s", p, now, was)
			}
		}
		if st := get("/master/state"); strings.Contains(st, `"evil"`) {
			t.Errorf("a cross-origin /reserve reserved: %.300s", st)
		}
	})

	t.Run("same-origin UI", func(t *testing.T) {
		run(t, bctx, "opening the task", chromedp.Navigate(c.MasterURL+"/?refresh=0.5#/task/"+res.FrameworkID+"/"+res.TaskID))
		waitFor(t, bctx, "the sandbox listing", `!document.getElementById('sandbox-files').hidden`)
		webuitest.Click(t, bctx, "opening stdout", `#sandbox-files tr[data-path$="/stdout"] button`)
		waitFor(t, bctx, "stdout, through the master", `document.getElementById('file-body').textContent.includes(`+jsString(secret)+`)`)
	})
}

// TestCrossOriginReadsWithOptIn: the same probe reads everything once the
// operator lists the page's origin — so the probe does detect a read.
func TestCrossOriginReadsWithOptIn(t *testing.T) {
	evil := otherOrigin(t)
	opts := api.HTTPOptions{CORSAllowedOrigins: []string{evil.URL}}
	c := clustertest.Start(t, clustertest.Options{
		Master: func(cfg *master.Config) { cfg.HTTP = opts },
		Agent:  func(_ int, cfg *agent.Config) { cfg.HTTP = opts },
	})
	a := c.Agents[0]
	dir := filepath.Join(a.WorkDir(), "slaves", "S0", "frameworks", "F", "executors", "E", "runs", "R")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stdout := filepath.Join(dir, "stdout")
	if err := os.WriteFile(stdout, []byte(secret+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reads := fileURLs(c, a, stdout)
	bctx := webuitest.NewBrowser(t)
	run(t, bctx, "opening the listed site", chromedp.Navigate(evil.URL))
	for _, r := range probeReads(t, bctx, reads) {
		if !strings.Contains(r.Fetched, secret) {
			t.Errorf("a listed origin could not fetch %s: %.100q", r.URL, r.Fetched)
		}
		// JSONP: the agent's own JSON endpoints; the relay does none.
		if jsonp := strings.HasPrefix(r.URL, "http://"+a.Addr()+"/files/read"); jsonp != strings.Contains(r.JSONP, secret) {
			t.Errorf("JSONP of %s by a listed origin: %.100q, want a read: %v", r.URL, r.JSONP, jsonp)
		}
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
