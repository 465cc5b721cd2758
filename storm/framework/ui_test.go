package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/auth"
)

// fakeTopologies is a Topologies of one topology, "words", and of
// "other" when withOther is set.
type fakeTopologies struct {
	canKill   bool
	withOther bool
	err       error // every call's, if set
	killErr   error // Kill's, if set
	// mayKill, if set, is MayKill (nil: every topology may be killed).
	mayKill func(ctx context.Context, id string) error
	killed  []string
}

func (f *fakeTopologies) List(context.Context) ([]TopologySummary, error) {
	if f.err != nil {
		return nil, f.err
	}
	ts := []TopologySummary{{ID: "words-1-2", Name: "words", Runtime: "storm", Status: "ACTIVE", NumWorkers: 2}}
	if f.withOther {
		ts = append(ts, TopologySummary{ID: "other-3-4", Name: "other", Runtime: "storm", Status: "ACTIVE", NumWorkers: 1})
	}
	return ts, nil
}

func (f *fakeTopologies) Get(_ context.Context, id string) (*Topology, error) {
	if f.err != nil {
		return nil, f.err
	}
	if id != "words-1-2" && (id != "other-3-4" || !f.withOther) {
		return nil, fmt.Errorf("%w: nimbus runs no topology %q", ErrNoTopology, id)
	}
	name, _, _ := strings.Cut(id, "-")
	return &Topology{TopologySummary: TopologySummary{ID: id, Name: name}, Workers: []TopologyWorker{{Host: "h", Port: 6700}}}, nil
}

func (f *fakeTopologies) Kill(_ context.Context, id string) error {
	if _, err := f.Get(context.Background(), id); err != nil {
		return err
	}
	if f.killErr != nil {
		return f.killErr
	}
	f.killed = append(f.killed, id)
	return nil
}

func (f *fakeTopologies) CanKill() bool { return f.canKill }

func (f *fakeTopologies) MayKill(ctx context.Context, id string) error {
	if f.mayKill == nil {
		return nil
	}
	return f.mayKill(ctx, id)
}

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
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || list.Master != "http://m:5050" || list.Kill || len(list.Topologies) != 1 || list.Topologies[0].NumWorkers != 2 || list.Topologies[0].CanKill {
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

// Each topology says whether the request's viewer may kill it: can_kill
// is false everywhere when kill is not offered, and otherwise what
// MayKill answers for the request's principal; a kill MayKill refuses is
// 403 naming why and kills nothing, and a kill whose topology changed
// since the page listed it is 409 with the source's message.
func TestUIHandlerSaysWhoMayKill(t *testing.T) {
	src := &fakeTopologies{withOther: true, mayKill: func(ctx context.Context, id string) error {
		if id == "other-3-4" {
			return errors.New("other is another command's topology")
		}
		if p, _ := auth.Principal(ctx); p != "ops" {
			return fmt.Errorf("principal %q may not kill %s", p, id)
		}
		return nil
	}}
	h := UIHandler(UIConfig{Topologies: src})
	as := func(principal, method, path string) (int, string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set(RequestedBy, "agora")
		if principal != "" {
			req = req.WithContext(auth.WithPrincipal(req.Context(), principal))
		}
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	listed := func(principal string) map[string]bool {
		t.Helper()
		code, body := as(principal, "GET", "/api/v1/topologies")
		var list topologyList
		if code != 200 || json.Unmarshal([]byte(body), &list) != nil {
			t.Fatalf("GET /api/v1/topologies as %q: %d %s", principal, code, body)
		}
		out := map[string]bool{}
		for _, x := range list.Topologies {
			out[x.ID] = x.CanKill
		}
		return out
	}
	pageCanKill := func(principal, id string) bool {
		t.Helper()
		code, body := as(principal, "GET", "/api/v1/topologies/"+id)
		var page topologyPage
		if code != 200 || json.Unmarshal([]byte(body), &page) != nil || page.Topology == nil {
			t.Fatalf("GET /api/v1/topologies/%s as %q: %d %s", id, principal, code, body)
		}
		return page.Topology.CanKill
	}

	// Kill not offered: no topology may be killed, whoever asks.
	if got := listed("ops"); !reflect.DeepEqual(got, map[string]bool{"words-1-2": false, "other-3-4": false}) {
		t.Errorf("can_kill without kill offered: %v, want all false", got)
	}
	src.canKill = true
	if got := listed("ops"); !reflect.DeepEqual(got, map[string]bool{"words-1-2": true, "other-3-4": false}) {
		t.Errorf("can_kill for ops: %v, want words only", got)
	}
	if got := listed("dev"); !reflect.DeepEqual(got, map[string]bool{"words-1-2": false, "other-3-4": false}) {
		t.Errorf("can_kill for dev: %v, want none", got)
	}
	if !pageCanKill("ops", "words-1-2") || pageCanKill("dev", "words-1-2") || pageCanKill("ops", "other-3-4") {
		t.Errorf("a topology's page's can_kill: ops/words %v, dev/words %v, ops/other %v; want true, false, false",
			pageCanKill("ops", "words-1-2"), pageCanKill("dev", "words-1-2"), pageCanKill("ops", "other-3-4"))
	}

	for _, tc := range []struct{ principal, id, err string }{
		{"ops", "other-3-4", "another command's topology"},
		{"dev", "words-1-2", `principal \"dev\" may not kill words-1-2`},
	} {
		if code, body := as(tc.principal, "POST", "/api/v1/topologies/"+tc.id+"/kill"); code != http.StatusForbidden || !strings.Contains(body, tc.err) {
			t.Errorf("%s killing %s: %d %s, want 403 naming %q", tc.principal, tc.id, code, body, tc.err)
		}
	}
	if len(src.killed) != 0 {
		t.Fatalf("killed %v against MayKill", src.killed)
	}

	src.killErr = fmt.Errorf("%w: topology words-1-2 is gone; words is now topology words-5-6: not killed", ErrChanged)
	if code, body := as("ops", "POST", "/api/v1/topologies/words-1-2/kill"); code != http.StatusConflict || !strings.Contains(body, "words-1-2") || !strings.Contains(body, "words-5-6") {
		t.Errorf("a kill whose topology changed: %d %s, want 409 naming both IDs", code, body)
	}
	src.killErr = nil
	if code, body := as("ops", "POST", "/api/v1/topologies/words-1-2/kill"); code != http.StatusAccepted || !reflect.DeepEqual(src.killed, []string{"words-1-2"}) {
		t.Errorf("ops killing words: %d %s, killed %v", code, body, src.killed)
	}
}
