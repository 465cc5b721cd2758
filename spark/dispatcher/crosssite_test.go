package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/webui/webuitest"
	sparkclient "github.com/agora-cluster/agora/spark/client"
)

// guardedStandIn is a stand-in dispatcher wired as `agora spark
// dispatcher --http_credentials ops:pw` wires it: the service guard
// (realm "spark") over the whole port, /v1/applications let through to
// the executors' API, which here counts the requests that reach it.
func guardedStandIn(t *testing.T) (*Dispatcher, *atomic.Int32) {
	t.Helper()
	creds, err := auth.ParseUserPassword("ops:pw")
	if err != nil {
		t.Fatal(err)
	}
	guard, err := auth.NewServiceGuard(auth.ServiceOptions{Credentials: creds, Realm: "spark", Open: []string{"/ping", "/v1/applications", "/v1/applications/"}})
	if err != nil {
		t.Fatal(err)
	}
	var reached atomic.Int32
	extra := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"appId": "app-1"}`))
	})
	d, _ := standInWith(t, clustertest.Options{}, auth.Credential{}, standInDriver, nil, func(cfg *Config) {
		cfg.WrapHTTP = guard.Wrap
		cfg.Extra = extra
	})
	waitSubscribed(t, d)
	return d, &reached
}

// Behind credentials over the whole port (WrapHTTP, as cmd/agora wires
// it), a change through Spark's protocol that a browser marks as sent by a
// page of another origin is refused with 403 and Spark's ErrorResponse
// naming why, though it carries the operator's credentials: a kill (form
// or not), a create; a create as a form (text/plain, whose body parses as
// JSON) is refused for its Content-Type without an Origin. None of them
// kills or queues anything. A read of another origin is answered (its
// page cannot read the answer). The executors' API refuses a cross-site
// change the same way, before it runs. Then the clients that are not
// browsers, which send no Origin, work: `agora spark`'s client creates and
// kills with the credentials, and the executors' API takes its calls.
func TestProtocolRefusesCrossSiteChanges(t *testing.T) {
	d, reached := guardedStandIn(t)
	held := submitArgs(t, d, "hold")
	waitDriver(t, d, held, func(dr Driver) bool { return dr.TaskState == "TASK_RUNNING" })
	base := "http://" + d.Addr()
	before := len(d.Drivers())

	form := "application/x-www-form-urlencoded"
	evil := "http://evil.example"
	for _, tc := range []struct {
		name, path string
		headers    map[string]string
		code       int
		want       string
	}{
		{"a kill without credentials", "/v1/submissions/kill/" + held, map[string]string{"Content-Type": form}, http.StatusUnauthorized, "authentication required"},
		{"a cross-site form's kill", "/v1/submissions/kill/" + held, map[string]string{"Content-Type": form, "Origin": evil, "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden, "another origin"},
		{"a kill a browser marks cross-site", "/v1/submissions/kill/" + held, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden, `Sec-Fetch-Site "cross-site"`},
		{"a kill from a same-site page", "/v1/submissions/kill/" + held, map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden, `Sec-Fetch-Site "same-site"`},
		{"a kill with a foreign Origin", "/v1/submissions/kill/" + held, map[string]string{"Content-Type": "application/json", "Origin": evil}, http.StatusForbidden, `Origin "http://evil.example"`},
		{"a cross-site JSON create", "/v1/submissions/create", map[string]string{"Content-Type": "application/json", "Origin": evil}, http.StatusForbidden, "another origin"},
		{"a create as a text/plain form", "/v1/submissions/create", map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType, `Content-Type "text/plain"`},
		{"a create as a form", "/v1/submissions/create", map[string]string{"Content-Type": form}, http.StatusUnsupportedMediaType, "application/json"},
	} {
		user := "ops"
		if tc.code == http.StatusUnauthorized {
			user = ""
		}
		body := createJSON
		if strings.Contains(tc.path, "/kill/") {
			body = "a=b"
		}
		code, got := webuitest.Post(t, base+tc.path, user, "pw", tc.headers, body)
		if code != tc.code {
			t.Errorf("%s: %d %s, want %d naming %q", tc.name, code, got, tc.code, tc.want)
			continue
		}
		if code == http.StatusUnauthorized { // the guard's answer
			if !strings.Contains(got, tc.want) {
				t.Errorf("%s: %d %s, want it to name %q", tc.name, code, got, tc.want)
			}
			continue
		}
		var r Response
		if err := json.Unmarshal([]byte(got), &r); err != nil || r.Action != ActionError || r.Success || !strings.Contains(r.Message, tc.want) {
			t.Errorf("%s: %d %s, want Spark's ErrorResponse naming %q", tc.name, code, got, tc.want)
		}
	}
	if dr, _ := d.Get(held); dr.State != StateRunning || dr.KillRequested {
		t.Fatalf("the held driver after the refused kills: %s (kill requested %v), want RUNNING", dr.State, dr.KillRequested)
	}
	if n := len(d.Drivers()); n != before {
		t.Fatalf("the refused creates left %d drivers, want %d", n, before)
	}

	// A status read from another origin is answered.
	if code, got := webuitest.Request(t, http.MethodGet, base+"/v1/submissions/status/"+held, "ops", "pw", map[string]string{"Origin": evil, "Sec-Fetch-Site": "cross-site"}, ""); code != http.StatusOK || !strings.Contains(got, StateRunning) {
		t.Errorf("a cross-site status read: %d %s, want 200 RUNNING", code, got)
	}
	// The executors' API: a cross-site change is refused before it runs,
	// with the API's {"message": ...}; reads and calls without an Origin
	// reach it.
	if code, got := webuitest.Post(t, base+"/v1/applications/app-1/kill", "ops", "pw", map[string]string{"Content-Type": "text/plain", "Origin": evil, "Sec-Fetch-Site": "cross-site"}, `{"executorIds": ["1"]}`); code != http.StatusForbidden || !strings.Contains(got, `"message"`) || !strings.Contains(got, "another origin") {
		t.Errorf("a cross-site executors' kill: %d %s, want 403 with a message naming another origin", code, got)
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("the executors' API was reached %d times by refused changes", n)
	}
	if code, _ := webuitest.Request(t, http.MethodGet, base+"/v1/applications", "", "", map[string]string{"Origin": evil}, ""); code != http.StatusOK {
		t.Errorf("a read of the executors' API: %d, want it let through", code)
	}
	if code, _ := webuitest.Post(t, base+"/v1/applications", "", "", map[string]string{"Content-Type": "application/json"}, `{"appId": "app-1"}`); code != http.StatusOK {
		t.Errorf("a registration without an Origin: %d, want it let through", code)
	}
	if n := reached.Load(); n != 2 {
		t.Errorf("the executors' API was reached %d times, want 2", n)
	}

	// `agora spark`'s client: create and kill with the credentials.
	cl, err := sparkclient.NewWithHTTP(base, &http.Client{Timeout: 60 * time.Second, Transport: &auth.Transport{Credential: auth.Credential{Principal: "ops", Secret: "pw"}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req := sparkclient.CreateSubmissionRequest{AppResource: "local:/opt/app.jar", MainClass: "Main", AppArgs: []string{"quick"},
		SparkProperties: map[string]string{"spark.app.name": "by-client", "spark.driver.memory": "64m"}, EnvironmentVariables: map[string]string{}}
	id, err := cl.Create(ctx, req)
	if err != nil {
		t.Fatalf("agora spark's create with credentials: %v", err)
	}
	waitDriver(t, d, id, func(dr Driver) bool { return dr.State == StateFinished })
	r, err := cl.Kill(ctx, held)
	if err != nil || r.Message != "Killing running driver" {
		var re *sparkclient.ResponseError
		errors.As(err, &re)
		t.Fatalf("agora spark's kill with credentials: %+v %v (%+v)", r, err, re)
	}
	waitDriver(t, d, held, func(dr Driver) bool { return dr.State == StateKilled })
}

// A page of another site open in a browser that holds the operator's
// credentials for the dispatcher (headless Chromium, which answers the
// dispatcher's challenge with them, as a browser that has them cached
// does) posts forms to Spark's protocol: a kill of a running driver, and
// a create as text/plain whose body parses as JSON. The browser sends
// them with the credentials and says where they come from, and both are
// refused (403 naming another origin): the driver keeps running and
// nothing is queued.
func TestBrowserFormOfAnotherSiteIsRefused(t *testing.T) {
	d, _ := guardedStandIn(t)
	held := submitArgs(t, d, "hold")
	waitDriver(t, d, held, func(dr Driver) bool { return dr.TaskState == "TASK_RUNNING" })
	base := "http://" + d.Addr()
	before := len(d.Drivers())

	// The other site: a form that posts itself on load. A text/plain
	// form sends NAME=VALUE, so a name ending in `"x":"` and a value
	// `"}` make a JSON body.
	create := strings.TrimSuffix(strings.TrimSpace(createJSON), "}") + `, "x": "`
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		action, name, value := base+"/v1/submissions/kill/"+held, "a", "b"
		if r.URL.Query().Get("form") == "create" {
			action, name, value = base+"/v1/submissions/create", create, `"}`
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><form method="POST" enctype="text/plain" action="%s"><input type="hidden" name="%s" value="%s"></form>
<script>document.forms[0].submit()</script>`, html.EscapeString(action), html.EscapeString(name), html.EscapeString(value))
	}))
	t.Cleanup(evil.Close)
	// Named localhost, the page is of another site than 127.0.0.1.
	evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)

	b := webuitest.NewBrowser(t)
	webuitest.NavigateWithCredentials(t, b, base+"/ui/?poll=60", "ops", "pw", `document.body.dataset.loaded === 'list'`)
	for _, form := range []string{"kill", "create"} {
		webuitest.Run(t, b, "opening the other site's "+form+" form", chromedp.Navigate(evilURL+"/?form="+form))
		webuitest.Wait(t, b, "the dispatcher's answer to the "+form+" form", `location.pathname.startsWith('/v1/submissions/')
			&& document.body !== null && document.body.innerText.includes('refusing a change sent by a page on another origin')`)
		if got := webuitest.Run(t, b, "reading the answer's page", chromedp.Evaluate[string](`document.body.innerText`)); !strings.Contains(got, `Sec-Fetch-Site \"cross-site\"`) {
			t.Errorf("the %s form's answer: %s; want the browser's Sec-Fetch-Site cross-site named", form, got)
		}
	}
	if dr, _ := d.Get(held); dr.State != StateRunning || dr.KillRequested {
		t.Fatalf("the held driver after the other site's forms: %s (kill requested %v), want RUNNING", dr.State, dr.KillRequested)
	}
	if n := len(d.Drivers()); n != before {
		t.Fatalf("the other site's create form left %d drivers, want %d", n, before)
	}
}
