package master_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
)

// postAs sends body with the given Content-Type ("" for none) and headers.
func postAs(t *testing.T, method, url, contentType, body string, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const formType = "application/x-www-form-urlencoded"

// TestStateChangesRefuseCrossSiteContentTypes: the bodies a page on any
// origin can post without a preflight (text/plain, a form, none) change
// nothing on the JSON endpoints; Mesos's form endpoints take forms from
// curl and from the master's own pages, and refuse other origins.
func TestStateChangesRefuseCrossSiteContentTypes(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	_, before := httpDo(t, http.MethodGet, c.MasterURL+"/maintenance/schedule", "")
	_, statusBefore := httpDo(t, http.MethodGet, c.MasterURL+"/maintenance/status", "")
	sched := `{"windows":[{"machine_ids":[{"hostname":"localhost"}],"unavailability":{"start":{"nanoseconds":1}}}]}`
	for _, ep := range []struct{ path, body string }{
		{"/maintenance/schedule", sched},
		{"/master/maintenance/schedule", sched},
		{"/machine/down", `[{"hostname":"localhost"}]`},
		{"/machine/up", `[{"hostname":"localhost"}]`},
		{"/quota", `{"role":"eng","guarantee":[{"name":"cpus","type":"SCALAR","scalar":{"value":1}}]}`},
		{api.AgentPath, `{"type":"STATUS_UPDATE"}`},
	} {
		for _, ct := range []string{"text/plain", formType, "multipart/form-data; boundary=x", ""} {
			code, body := postAs(t, http.MethodPost, c.MasterURL+ep.path, ct, ep.body)
			if code != http.StatusUnsupportedMediaType || !strings.Contains(body, api.MediaJSON) {
				t.Errorf("POST %s as %q: %d %q, want 415 naming %s", ep.path, ct, code, body, api.MediaJSON)
			}
		}
	}
	if _, after := httpDo(t, http.MethodGet, c.MasterURL+"/maintenance/schedule", ""); after != before {
		t.Errorf("the schedule changed: %s, was %s", after, before)
	}
	if _, after := httpDo(t, http.MethodGet, c.MasterURL+"/maintenance/status", ""); after != statusBefore {
		t.Errorf("the maintenance status changed: %s, was %s", after, statusBefore)
	}
	if _, body := httpDo(t, http.MethodGet, c.MasterURL+"/quota", ""); strings.Contains(body, "eng") {
		t.Errorf("a quota was set: %s", body)
	}

	// Forms: refused from another origin (even another port of this host),
	// accepted from curl (no Origin) and from the master's own pages.
	agentID := c.Agents[0].ID()
	form := url.Values{"slaveId": {agentID}, "resources": {
		`[{"name":"cpus","type":"SCALAR","scalar":{"value":1},"reservations":[{"type":"DYNAMIC","role":"eng"}]}]`}}.Encode()
	other := "http://" + strings.Replace(c.MasterAddr, "127.0.0.1", "localhost", 1)
	for _, h := range [][]string{
		{"Origin", "http://evil.example.com"},
		{"Origin", other},
		{"Origin", "null"},
		{"Origin", c.MasterURL, "Sec-Fetch-Site", "cross-site"},
	} {
		code, body := postAs(t, http.MethodPost, c.MasterURL+"/reserve", formType, form, h...)
		if code != http.StatusForbidden || !strings.Contains(body, h[1]) {
			t.Errorf("POST /reserve with %q: %d %q, want 403 naming the origin", h, code, body)
		}
	}
	if code, body := postAs(t, http.MethodPost, c.MasterURL+"/reserve", "text/plain", form); code != http.StatusUnsupportedMediaType || !strings.Contains(body, formType) {
		t.Errorf("POST /reserve as text/plain: %d %q, want 415 naming %s", code, body, formType)
	}
	code, body := httpDo(t, http.MethodGet, c.MasterURL+"/master/state", "")
	if code != 200 || strings.Contains(body, `"eng"`) {
		t.Fatalf("a refused /reserve reserved: %d %.300s", code, body)
	}
	if code, body := postAs(t, http.MethodPost, c.MasterURL+"/reserve", formType, form); code != http.StatusAccepted {
		t.Fatalf("POST /reserve from curl: %d %q", code, body)
	}
	if code, body := postAs(t, http.MethodPost, c.MasterURL+"/unreserve", formType, form, "Origin", c.MasterURL, "Sec-Fetch-Site", "same-origin"); code != http.StatusAccepted {
		t.Fatalf("POST /unreserve from the master's own page: %d %q", code, body)
	}
	// /weights as Mesos documents it: curl -d, a form's content type.
	if code, body := postAs(t, http.MethodPut, c.MasterURL+"/weights", formType, `[{"role":"eng","weight":2}]`); code != 200 {
		t.Fatalf("PUT /weights as curl -d sends it: %d %q", code, body)
	}
	if code, body := postAs(t, http.MethodPost, c.MasterURL+"/weights", formType, `[{"role":"eng","weight":3}]`, "Origin", "http://evil.example.com"); code != http.StatusForbidden {
		t.Fatalf("POST /weights from another origin: %d %q", code, body)
	}
	if _, body := httpDo(t, http.MethodGet, c.MasterURL+"/weights", ""); !strings.Contains(body, `"weight":2`) {
		t.Fatalf("weights = %s, want eng at 2", body)
	}
}

// TestPprofOnlyWhenEnabled: /debug/pprof is off on the master and the agent
// unless their HTTP options enable it.
func TestPprofOnlyWhenEnabled(t *testing.T) {
	for _, on := range []bool{false, true} {
		c := clustertest.Start(t, clustertest.Options{
			Master: func(cfg *master.Config) { cfg.HTTP.EnablePprof = on },
			Agent:  func(_ int, cfg *agent.Config) { cfg.HTTP.EnablePprof = on },
		})
		want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[on]
		for _, base := range []string{c.MasterURL, "http://" + c.Agents[0].Addr()} {
			for _, p := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1"} {
				if code, _ := httpDo(t, http.MethodGet, base+p, ""); code != want {
					t.Errorf("EnablePprof=%v: GET %s%s = %d, want %d", on, base, p, code, want)
				}
			}
		}
		c.Stop()
	}
}

// TestAgentProxy: the master relays an agent's /state and sandbox files,
// streamed and with ranges, and names the agent it cannot reach.
func TestAgentProxy(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	a := c.Agents[0]
	dir := filepath.Join(a.WorkDir(), "slaves", "S", "frameworks", "F", "executors", "E", "runs", "R")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 8<<20)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(dir, "stdout"), []byte("hello from the sandbox\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	relay := c.MasterURL + "/agent/" + a.ID()
	q := func(p string) string { return url.QueryEscape(filepath.Join(dir, p)) }

	if code, body := httpDo(t, http.MethodGet, relay+"/files/read?path="+q("stdout")+"&offset=0", ""); code != 200 || !strings.Contains(body, "hello from the sandbox") {
		t.Errorf("relayed /files/read: %d %q", code, body)
	}
	if code, body := httpDo(t, http.MethodGet, relay+"/files/browse?path="+url.QueryEscape(dir), ""); code != 200 || !strings.Contains(body, `/big"`) {
		t.Errorf("relayed /files/browse: %d %q", code, body)
	}
	if code, body := httpDo(t, http.MethodGet, relay+"/state", ""); code != 200 || !strings.Contains(body, a.ID()) {
		t.Errorf("relayed /state: %d %.200q", code, body)
	}
	resp, err := http.Get(relay + "/files/download?path=" + q("big"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, big) || resp.Header.Get("Content-Disposition") == "" {
		t.Errorf("relayed download: %d, %d bytes (want %d), Content-Disposition %q", resp.StatusCode, len(got), len(big), resp.Header.Get("Content-Disposition"))
	}
	req, _ := http.NewRequest(http.MethodGet, relay+"/files/download?path="+q("big"), nil)
	req.Header.Set("Range", "bytes=100-199")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, big[100:200]) {
		t.Errorf("relayed range: %d, %d bytes", resp.StatusCode, len(got))
	}

	// What is not relayed, and agents the master cannot serve from.
	for _, tc := range []struct {
		method, path string
		code         int
		says         string
	}{
		{http.MethodGet, "/agent/no-such-agent/state", 404, "no-such-agent"},
		{http.MethodGet, "/agent/" + a.ID() + "/api/v1", 404, "files/read"},
		{http.MethodGet, "/agent/" + a.ID() + "/files/debug", 404, "files/read"},
		{http.MethodPost, "/agent/" + a.ID() + "/files/read", 405, "GET"},
		{http.MethodGet, "/agent/" + a.ID() + "/files/read?path=/etc/passwd", 403, "outside"},
		{http.MethodGet, "/agent/" + a.ID() + "/files/read?path=" + q("stdout") + "&jsonp=cb", 403, "JSONP"},
	} {
		if code, body := httpDo(t, tc.method, c.MasterURL+tc.path, ""); code != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("%s %s: %d %q, want %d saying %q", tc.method, tc.path, code, body, tc.code, tc.says)
		}
	}
	a.Stop()
	if code, body := httpDo(t, http.MethodGet, relay+"/state", ""); code != http.StatusBadGateway || !strings.Contains(body, a.ID()) {
		t.Errorf("relay to a stopped agent: %d %q, want 502 naming it", code, body)
	}
}
