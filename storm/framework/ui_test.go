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

func serve(h http.Handler, method, path string) (int, string, http.Header) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
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
