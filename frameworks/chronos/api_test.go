package chronos

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// apiEnv is a framework that is not run: its API and store only.
func apiEnv(t *testing.T) (*Framework, *fakeClock, string, *httptest.Server) {
	t.Helper()
	dir := t.TempDir()
	clock := &fakeClock{now: time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC)}
	fw, err := New(Config{Masters: []string{"127.0.0.1:1"}, WorkDir: dir, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fw.Handler())
	t.Cleanup(srv.Close)
	return fw, clock, dir, srv
}

func do(t *testing.T, srv *httptest.Server, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// snapshot is what a change must leave alone: the API's job list and the
// files in the work directory.
func snapshot(t *testing.T, srv *httptest.Server, dir string) string {
	t.Helper()
	_, jobs := do(t, srv, "GET", "/v1/scheduler/jobs", "")
	var b strings.Builder
	b.WriteString(jobs)
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			c, _ := os.ReadFile(p)
			b.WriteString(p + "\n" + string(c))
		}
		return nil
	})
	return b.String()
}

// TestBadInput: each bad job is refused with 400 naming what is wrong,
// and nothing changes.
func TestBadInput(t *testing.T) {
	_, _, dir, srv := apiEnv(t)
	for _, j := range []struct{ path, body string }{
		{"/v1/scheduler/iso8601", `{"name":"a","command":"true","schedule":"R/2026-03-28T00:00:00Z/PT1H"}`},
		{"/v1/scheduler/dependency", `{"name":"b","command":"true","parents":["a"]}`},
		{"/v1/scheduler/dependency", `{"name":"c","command":"true","parents":["b"]}`},
	} {
		if code, body := do(t, srv, "POST", j.path, j.body); code != http.StatusNoContent {
			t.Fatalf("POST %s: %d %s", j.path, code, body)
		}
	}
	before := snapshot(t, srv, dir)
	for _, c := range []struct{ name, method, path, body, want string }{
		{"schedule that does not parse", "POST", "/v1/scheduler/iso8601",
			`{"name":"x","command":"true","schedule":"every day at noon"}`, `schedule "every day at noon" is not an ISO 8601 repeating interval`},
		{"bad period", "POST", "/v1/scheduler/iso8601",
			`{"name":"x","command":"true","schedule":"R/2026-03-28T00:00:00Z/PT"}`, `period "PT"`},
		{"bad cron", "POST", "/v1/scheduler/iso8601",
			`{"name":"x","command":"true","cron":"61 * * * *"}`, `minute field "61"`},
		{"bad time zone", "POST", "/v1/scheduler/iso8601",
			`{"name":"x","command":"true","cron":"0 9 * * *","scheduleTimeZone":"Europe/Atlantis"}`, `scheduleTimeZone "Europe/Atlantis"`},
		{"unknown parent", "POST", "/v1/scheduler/dependency",
			`{"name":"x","command":"true","parents":["a","nope"]}`, `parent "nope" is not a job`},
		{"cycle", "POST", "/v1/scheduler/dependency",
			`{"name":"b","command":"true","parents":["c"]}`, `dependency cycle: b -> c -> b`},
		{"self parent", "POST", "/v1/scheduler/dependency",
			`{"name":"x","command":"true","parents":["x"]}`, `dependency cycle: x -> x`},
		{"parents on the schedule endpoint", "POST", "/v1/scheduler/iso8601",
			`{"name":"x","command":"true","parents":["a"]}`, `post it to /v1/scheduler/dependency`},
		{"both schedule and cron", "POST", "/v1/scheduler/iso8601",
			`{"name":"x","command":"true","schedule":"R//PT1H","cron":"* * * * *"}`, `not both`},
		{"no command", "POST", "/v1/scheduler/iso8601", `{"name":"x","schedule":"R//PT1H"}`, `command is required`},
		{"bad name", "POST", "/v1/scheduler/iso8601", `{"name":"a b","command":"true","schedule":"R//PT1H"}`, `name "a b"`},
		{"unknown constraint operator", "POST", "/v1/scheduler/iso8601",
			`{"name":"x","command":"true","schedule":"R//PT1H","constraints":[["rack","GROUP_BY","2"]]}`, `unknown operator "GROUP_BY" (EQUALS, LIKE or UNLIKE)`},
		{"constraint without a value", "POST", "/v1/scheduler/iso8601",
			`{"name":"x","command":"true","schedule":"R//PT1H","constraints":[["hostname","EQUALS"]]}`, `[attribute, operator, value]`},
		{"constraint regexp", "POST", "/v1/scheduler/iso8601",
			`{"name":"x","command":"true","schedule":"R//PT1H","constraints":[["rack","LIKE","r[1"]]}`, `not a regular expression`},
		{"report without a status code", "PUT", "/v1/scheduler/task/ct:1:0:a:1", `{"status":0}`, `{"statusCode": N}`},
		{"bad epsilon", "POST", "/v1/scheduler/iso8601", `{"name":"x","command":"true","schedule":"R//PT1H","epsilon":"1 minute"}`, `epsilon`},
		{"MESOS container", "POST", "/v1/scheduler/iso8601",
			`{"name":"x","command":"true","schedule":"R//PT1H","container":{"type":"MESOS","image":"busybox"}}`, `type "MESOS" is not supported: the agents provision no images`},
		{"container without an image", "POST", "/v1/scheduler/iso8601",
			`{"name":"x","command":"true","schedule":"R//PT1H","container":{"type":"DOCKER"}}`, `container: image is required`},
		{"container network", "POST", "/v1/scheduler/iso8601",
			`{"name":"x","command":"true","schedule":"R//PT1H","container":{"image":"busybox","network":"OVERLAY"}}`, `network "OVERLAY": expected HOST, BRIDGE or NONE`},
		{"container volume mode", "POST", "/v1/scheduler/iso8601",
			`{"name":"x","command":"true","schedule":"R//PT1H","container":{"image":"busybox","volumes":[{"containerPath":"/d","hostPath":"/d","mode":"RX"}]}}`, `volume /d: mode "RX"`},
		{"docker parameter", "POST", "/v1/scheduler/iso8601",
			`{"name":"x","command":"true","schedule":"R//PT1H","container":{"image":"busybox","parameters":[{"key":"pid","value":"host"}]}}`, `docker parameter "pid" is not supported`},
		{"not JSON", "POST", "/v1/scheduler/iso8601", `{"name":`, `not valid JSON`},
		{"delete a parent", "DELETE", "/v1/scheduler/job/a", ``, `job "a" is a parent of b`},
	} {
		code, body := do(t, srv, c.method, c.path, c.body)
		if code != http.StatusBadRequest || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %q, want 400 with %q", c.name, code, body, c.want)
		}
		if after := snapshot(t, srv, dir); after != before {
			t.Fatalf("%s changed the jobs:\n%s\nwas:\n%s", c.name, after, before)
		}
	}
	for _, path := range []string{"/v1/scheduler/job/stat/nope", "/v1/scheduler/job/next/nope"} {
		if code, _ := do(t, srv, "GET", path, ""); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
	if code, body := do(t, srv, "PUT", "/v1/scheduler/task/ct:1:0:a:1", `{"statusCode":0}`); code != http.StatusNotFound || !strings.Contains(body, `no run in flight has task "ct:1:0:a:1"`) {
		t.Errorf("a report for a task of no run: %d %q, want 404 naming the task", code, body)
	}
	if code, _ := do(t, srv, "DELETE", "/v1/scheduler/job/nope", ""); code != http.StatusNotFound {
		t.Errorf("DELETE an unknown job: %d, want 404", code)
	}
}

// TestCronJobInZone: a cron job posted with a time zone reports the
// right local times as its next runs, across the spring DST change.
func TestCronJobInZone(t *testing.T) {
	_, _, _, srv := apiEnv(t)
	if code, body := do(t, srv, "POST", "/v1/scheduler/iso8601",
		`{"name":"report","command":"true","cron":"30 2 * * *","scheduleTimeZone":"Europe/Berlin"}`); code != http.StatusNoContent {
		t.Fatalf("%d %s", code, body)
	}
	code, body := do(t, srv, "GET", "/v1/scheduler/job/next/report?n=3", "")
	var got struct{ NextRuns []string }
	if code != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil {
		t.Fatalf("%d %s", code, body)
	}
	// Shown in the job's zone. 02:30 on 2026-03-29 does not exist in
	// Berlin: 03:00 CEST instead.
	want := []string{"2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}
	if strings.Join(got.NextRuns, " ") != strings.Join(want, " ") {
		t.Fatalf("next runs %v, want %v", got.NextRuns, want)
	}
}

// TestEmptyStartIsSpelledOut: "R//PT2S" starts now, and a restart keeps
// that start.
func TestEmptyStartIsSpelledOut(t *testing.T) {
	fw, clock, dir, srv := apiEnv(t)
	if code, body := do(t, srv, "POST", "/v1/scheduler/iso8601", `{"name":"tick","command":"true","schedule":"R3//PT2S"}`); code != http.StatusNoContent {
		t.Fatalf("%d %s", code, body)
	}
	j, _ := fw.JobByName("tick")
	if want := "R3/2026-03-27T12:00:00Z/PT2S"; j.Schedule != want || j.NextRun != "2026-03-27T12:00:00.000Z" {
		t.Fatalf("schedule %q next %q, want %q starting now", j.Schedule, j.NextRun, want)
	}
	if j.Epsilon != "PT1M" || *j.Retries != 2 || j.CPUs != 0.1 || j.Mem != 128 || j.Disk != 256 || !*j.Shell {
		t.Fatalf("defaults not filled in: %+v", j.Job)
	}
	clock.Set(clock.Now().Add(time.Hour))
	fw2, err := New(Config{Masters: []string{"127.0.0.1:1"}, WorkDir: dir, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if j2, _ := fw2.JobByName("tick"); j2.Schedule != j.Schedule || j2.NextRun != j.NextRun {
		t.Fatalf("after a restart: %q %q, want %q %q", j2.Schedule, j2.NextRun, j.Schedule, j.NextRun)
	}
}

// TestSearchAndGraph: /v1/scheduler/jobs/search finds jobs by name,
// command or either, case-insensitively; graph/dot and graph/csv give
// the dependencies.
func TestSearchAndGraph(t *testing.T) {
	_, _, _, srv := apiEnv(t)
	for _, j := range []struct{ path, body string }{
		{"/v1/scheduler/iso8601", `{"name":"nightly-etl","command":"run-etl --full","schedule":"R/2026-03-28T00:00:00Z/P1D"}`},
		{"/v1/scheduler/dependency", `{"name":"report","command":"make-report","parents":["nightly-etl"]}`},
		{"/v1/scheduler/iso8601", `{"name":"cleanup","command":"rm -rf /var/tmp/etl-scratch","schedule":"R/2026-03-28T00:00:00Z/PT6H"}`},
	} {
		if code, body := do(t, srv, "POST", j.path, j.body); code != http.StatusNoContent {
			t.Fatalf("POST %s: %d %s", j.path, code, body)
		}
	}
	names := func(query string) []string {
		t.Helper()
		code, body := do(t, srv, "GET", "/v1/scheduler/jobs/search?"+query, "")
		var js []JobView
		if code != http.StatusOK || json.Unmarshal([]byte(body), &js) != nil {
			t.Fatalf("search %s: %d %s", query, code, body)
		}
		var out []string
		for _, j := range js {
			out = append(out, j.Name)
		}
		return out
	}
	for _, c := range []struct{ query, want string }{
		{"name=ETL", "nightly-etl"},
		{"command=etl", "cleanup nightly-etl"},
		{"any=report", "report"},
		{"name=etl&command=full", "nightly-etl"},
		{"name=nothing", ""},
	} {
		if got := strings.Join(names(c.query), " "); got != c.want {
			t.Errorf("search %s: %q, want %q", c.query, got, c.want)
		}
	}
	if code, dot := do(t, srv, "GET", "/v1/scheduler/graph/dot", ""); code != http.StatusOK ||
		!strings.HasPrefix(dot, "digraph G {") || !strings.Contains(dot, `"nightly-etl" -> "report";`) || strings.Count(dot, "->") != 1 {
		t.Errorf("graph/dot: %d\n%s", code, dot)
	}
	if code, csv := do(t, srv, "GET", "/v1/scheduler/graph/csv", ""); code != http.StatusOK ||
		!strings.Contains(csv, "link,nightly-etl,report\n") || !strings.Contains(csv, "node,cleanup,fresh,idle\n") {
		t.Errorf("graph/csv: %d\n%s", code, csv)
	}
}
