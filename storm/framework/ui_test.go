package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeTopologies is a Topologies of one topology, "words".
type fakeTopologies struct {
	canKill bool
	err     error // every call's, if set
	killed  []string
}

func (f *fakeTopologies) List(context.Context) ([]TopologySummary, error) {
	if f.err != nil {
		return nil, f.err
	}
	return []TopologySummary{{ID: "words-1-2", Name: "words", Runtime: "storm", Status: "ACTIVE", NumWorkers: 2}}, nil
}

func (f *fakeTopologies) Get(_ context.Context, id string) (*Topology, error) {
	if f.err != nil {
		return nil, f.err
	}
	if id != "words-1-2" {
		return nil, fmt.Errorf("%w: nimbus runs no topology %q", ErrNoTopology, id)
	}
	return &Topology{TopologySummary: TopologySummary{ID: id, Name: "words"}, Workers: []TopologyWorker{{Host: "h", Port: 6700}}}, nil
}

func (f *fakeTopologies) Kill(_ context.Context, id string) error {
	if _, err := f.Get(context.Background(), id); err != nil {
		return err
	}
	f.killed = append(f.killed, id)
	return nil
}

func (f *fakeTopologies) CanKill() bool { return f.canKill }

// serve sends a request as the page does: a POST with RequestedBy.
func serve(h http.Handler, method, path string) (int, string, http.Header) {
	return serveWith(h, method, path, map[string]string{RequestedBy: "agora"})
}

// serveWith sends a request with headers (a POST's body "a=b").
func serveWith(h http.Handler, method, path string, headers map[string]string) (int, string, http.Header) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, path, nil)
	if method == http.MethodPost {
		req = httptest.NewRequest(method, path, strings.NewReader("a=b"))
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String(), rec.Header()
}

// The page's API answers with the source's topologies and the master's UI;
// an unknown topology is 404, a kill the source does not offer 405 (and
// nothing is killed), a source that fails 502, each with its error.
func TestUIHandlerAnswers(t *testing.T) {
	src := &fakeTopologies{}
	h := UIHandler(UIConfig{Topologies: src, Master: func() string { return "http://m:5050" }})
	code, body, _ := serve(h, "GET", "/api/v1/topologies")
	var list topologyList
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || list.Master != "http://m:5050" || list.Kill || len(list.Topologies) != 1 || list.Topologies[0].NumWorkers != 2 {
		t.Errorf("GET /api/v1/topologies: %d %s", code, body)
	}
	code, body, _ = serve(h, "GET", "/api/v1/topologies/words-1-2")
	var page topologyPage
	if code != 200 || json.Unmarshal([]byte(body), &page) != nil || page.Topology == nil || len(page.Topology.Workers) != 1 {
		t.Errorf("GET /api/v1/topologies/words-1-2: %d %s", code, body)
	}
	for _, tc := range []struct {
		method, path string
		code         int
		err          string
	}{
		{"GET", "/api/v1/topologies/nosuch", 404, `no topology \"nosuch\"`},
		{"POST", "/api/v1/topologies/words-1-2/kill", 405, "does not kill topologies"},
		{"GET", "/ui/nosuch.js", 404, ""},
	} {
		if code, body, _ := serve(h, tc.method, tc.path); code != tc.code || !strings.Contains(body, tc.err) {
			t.Errorf("%s %s: %d %s, want %d %q", tc.method, tc.path, code, body, tc.code, tc.err)
		}
	}
	if len(src.killed) != 0 {
		t.Errorf("killed %v though kill is not offered", src.killed)
	}
	if code, _, hdr := serve(h, "GET", "/"); code != http.StatusFound || hdr.Get("Location") != "/ui/" {
		t.Errorf("GET /: %d to %q, want 302 to /ui/", code, hdr.Get("Location"))
	}
	if code, body, _ := serve(h, "GET", "/ui/"); code != 200 || !strings.Contains(body, "agora Storm topologies") || !strings.Contains(body, `src="page.js"`) {
		t.Errorf("GET /ui/: %d %.200s", code, body)
	}

	src.canKill = true
	if code, body, _ := serve(h, "POST", "/api/v1/topologies/nosuch/kill"); code != 404 {
		t.Errorf("kill nosuch: %d %s, want 404", code, body)
	}
	if code, body, _ := serve(h, "POST", "/api/v1/topologies/words-1-2/kill"); code != http.StatusAccepted || len(src.killed) != 1 {
		t.Errorf("kill words-1-2: %d %s, killed %v", code, body, src.killed)
	}

	src.err = errors.New("nimbus at n:6627 is not reachable")
	for _, p := range []string{"/api/v1/topologies", "/api/v1/topologies/words-1-2"} {
		if code, body, _ := serve(h, "GET", p); code != http.StatusBadGateway || !strings.Contains(body, "nimbus at n:6627 is not reachable") {
			t.Errorf("GET %s with Nimbus away: %d %s, want 502 naming it", p, code, body)
		}
	}
}

// A kill a page of another site could send — a form post, or any post a
// browser says came from another origin — is refused with 403 naming
// why, and nothing is killed; the page's own (RequestedBy, same origin)
// and the CLI's (a JSON body, no Origin) are served.
func TestUIHandlerRefusesCrossSiteKill(t *testing.T) {
	src := &fakeTopologies{canKill: true}
	h := UIHandler(UIConfig{Topologies: src})
	const kill = "/api/v1/topologies/words-1-2/kill"
	for _, tc := range []struct {
		name    string
		headers map[string]string
		err     string
	}{
		{"a cross-site form", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"}, "another origin"},
		{"a form with no Origin", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, RequestedBy},
		{"a text/plain post", map[string]string{"Content-Type": "text/plain"}, RequestedBy},
		{"the header from another origin", map[string]string{RequestedBy: "agora", "Origin": "http://evil.example"}, "http://evil.example"},
		{"JSON from another site", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, "cross-site"},
	} {
		if code, body, _ := serveWith(h, "POST", kill, tc.headers); code != http.StatusForbidden || !strings.Contains(body, tc.err) {
			t.Errorf("%s: %d %s, want 403 naming %q", tc.name, code, body, tc.err)
		}
	}
	if len(src.killed) != 0 {
		t.Fatalf("killed %v by requests a page of another site could send", src.killed)
	}
	for _, tc := range []struct {
		name    string
		headers map[string]string
	}{
		{"the page", map[string]string{RequestedBy: "agora", "Origin": "http://example.com", "Sec-Fetch-Site": "same-origin"}},
		{"the CLI", map[string]string{"Content-Type": "application/json; charset=utf-8"}},
	} {
		n := len(src.killed)
		if code, body, _ := serveWith(h, "POST", kill, tc.headers); code != http.StatusAccepted || len(src.killed) != n+1 {
			t.Errorf("kill from %s: %d %s, killed %v", tc.name, code, body, src.killed)
		}
	}
}
