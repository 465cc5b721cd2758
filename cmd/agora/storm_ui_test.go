package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	mesosmaster "github.com/mesos/mesos-go/api/v1/lib/master"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/cluster/webui/webuitest"
	"github.com/agora-cluster/agora/frameworks/servicepage"
	"github.com/agora-cluster/agora/frameworks/state"
	stormclient "github.com/agora-cluster/agora/storm/client"
	"github.com/agora-cluster/agora/storm/framework"
	"github.com/agora-cluster/agora/storm/stormtest"
)

// submitNative submits the example word count as native topology name on
// master with workers workers, spouting slowly so that it runs for the
// whole test, and returns its submitting command (the framework, whose
// control port serves the page) once its workers run.
func submitNative(t *testing.T, dir, master, path, name string, workers int, extra ...string) *proc {
	t.Helper()
	out := filepath.Join(dir, "out-"+name)
	os.Mkdir(out, 0o777)
	args := append([]string{"storm", "submit", path, "--runtime", "native", "--master", master, "--mem", "256", "--cpus", "0.5",
		"--name", name, "-c", "wordcount.output.dir=" + out, "-c", fmt.Sprintf("topology.workers=%d", workers),
		"-c", "wordcount.repeat=100000", "-c", "wordcount.emit.interval.secs=0.05", "-c", "topology.message.timeout.secs=300"}, extra...)
	sub := start(t, args...)
	waitShowing(t, 2*time.Minute, func() string { return name + " runs: " + sub.out.String() }, func() bool {
		return strings.Contains(sub.out.String(), "topology "+name+" runs as")
	})
	return sub
}

// topologiesAPI reads the page's API at base.
func topologiesAPI[T any](t *testing.T, base, path, user, password string) (T, int) {
	t.Helper()
	var v T
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return v, resp.StatusCode
}

type topologiesList struct {
	Master     string                      `json:"master"`
	Kill       bool                        `json:"kill"`
	Topologies []framework.TopologySummary `json:"topologies"`
}

type topologyPage struct {
	Master   string             `json:"master"`
	Topology framework.Topology `json:"topology"`
}

// TestStormUIShowsNativeTopologies opens the topologies page a native
// topology's submitting command serves at its webui_url, in headless
// Chromium: the topologies are the API's, a topology submitted while the
// page is open shows without a reload, a topology's page lists the
// workers the API lists with links to their tasks' sandboxes in the
// master's UI and its spouts' and bolts' counts, and a topology killed
// from the page ends (its submitting command returns).
func TestStormUIShowsNativeTopologies(t *testing.T) {
	dir, master, path := startNativeStormCluster(t)
	submitNative(t, dir, master, path, "wc", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	base, err := nativeControlURL(ctx, state.Client{}, master, "wc")
	cancel()
	if err != nil {
		t.Fatal(err)
	}

	// The webui_url leads to the page.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "/ui/" {
		t.Errorf("GET / answered %s to %q, want 302 to /ui/", resp.Status, loc)
	}

	b := webuitest.NewBrowser(t)
	webuitest.Run(t, b, "opening the UI", chromedp.Navigate(base+"/ui/?poll=0.5"))
	webuitest.Wait(t, b, "wc listed, active, with its two workers", `(() => { const r = document.querySelector('#topologies tr[data-topology="wc"][data-status="ACTIVE"]');
		return r !== null && r.querySelector('td.workers').innerText === '2'; })()`)

	// The page follows the change feed the master's event stream moves,
	// and a topology submitted now shows without a reload and without a
	// poll: the page stays live (it polls only while the feed is down)
	// the whole time.
	webuitest.Wait(t, b, "the page live", `document.body.dataset.live === 'true'`)
	webuitest.Run(t, b, "marking the page", chromedp.Evaluate[bool](`window.notReloaded = true;
		window.wentPolling = false;
		new MutationObserver(() => { if (document.body.dataset.live !== 'true') window.wentPolling = true; })
			.observe(document.body, { attributes: true, attributeFilter: ['data-live'] });
		window.apiReads = 0;
		const fetched = window.fetch;
		window.fetch = (...a) => { if (String(a[0]).includes('api/v1/topologies')) window.apiReads++; return fetched(...a); };
		true`))
	wc2 := submitNative(t, dir, master, path, "wc2", 1)
	webuitest.Wait(t, b, "wc2 listed with its worker without a reload", `(() => { const r = document.querySelector('#topologies tr[data-topology="wc2"][data-status="ACTIVE"]');
		return window.notReloaded === true && r !== null && r.querySelector('td.workers').innerText === '1'; })()`)
	if polled := webuitest.Run(t, b, "reading the pill", chromedp.Evaluate[bool](`window.wentPolling || document.body.dataset.live !== 'true'`)); polled {
		t.Errorf("the page left its change feed for polling while wc2 was submitted")
	}
	if pill := webuitest.Text(t, b, "#live"); pill != "live" {
		t.Errorf("the page's pill says %q, want live", pill)
	}
	t.Logf("the page read its API %d times while wc2 was submitted", webuitest.Run(t, b, "counting the API reads", chromedp.Evaluate[int](`window.apiReads`)))
	list, code := topologiesAPI[topologiesList](t, base, "/api/v1/topologies", "", "")
	if code != 200 || !list.Kill || list.Master != "http://"+master {
		t.Fatalf("GET /api/v1/topologies: %d, kill %v, master %q", code, list.Kill, list.Master)
	}
	var want []string
	for _, x := range list.Topologies {
		want = append(want, fmt.Sprintf("%s %s %s %d", x.ID, x.Runtime, x.Status, x.NumWorkers))
	}
	shown := webuitest.Run(t, b, "reading the topologies", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#topologies tr[data-topology]')].map((r) =>
		r.dataset.topology + ' ' + r.children[1].innerText + ' ' + r.dataset.status + ' ' + r.querySelector('td.workers').innerText)`))
	if !reflect.DeepEqual(shown, want) || !reflect.DeepEqual(want, []string{"wc native ACTIVE 2", "wc2 native ACTIVE 1"}) {
		t.Errorf("the page lists %v; the API %v; want wc with 2 workers and wc2 with 1, both native and ACTIVE", shown, want)
	}

	// wc's page: its workers as the API lists them, linked to their
	// sandboxes, and its components counting.
	webuitest.Click(t, b, "opening wc", `#topologies tr[data-topology="wc"] td a`)
	webuitest.Wait(t, b, "wc's page with its workers and counts", `document.body.dataset.loaded === 'topology' && document.getElementById('topology-title').dataset.topology === 'wc'
		&& document.querySelectorAll('#workers tr[data-worker]').length === 2
		&& [...document.querySelectorAll('#components tr[data-component]')].some((r) => Number(r.querySelector('td.emitted').innerText) > 0)`)
	// The master's events do not say when counts move: the feed moves
	// for the open topology's counts, and the live page shows them
	// growing without a reload.
	const emitted = `[...document.querySelectorAll('#components tr[data-component] td.emitted')].reduce((n, c) => n + Number(c.innerText), 0)`
	webuitest.Run(t, b, "marking wc's page", chromedp.Evaluate[bool](`window.notReloaded = true; window.emitted0 = `+emitted+`; true`))
	webuitest.Wait(t, b, "wc's counts growing on the live page without a reload", `window.notReloaded === true && document.body.dataset.live === 'true'
		&& `+emitted+` > window.emitted0`)
	page, code := topologiesAPI[topologyPage](t, base, "/api/v1/topologies/wc", "", "")
	if code != 200 {
		t.Fatalf("GET /api/v1/topologies/wc: %d", code)
	}
	if title, summary := webuitest.Text(t, b, "#topology-title"), webuitest.Text(t, b, "#topology-summary"); title != "wc" || !strings.Contains(summary, "Workers\t2") {
		t.Errorf("wc's page is titled %q with summary %q, want wc with 2 workers", title, summary)
	}
	var workers, comps []string
	for _, w := range page.Topology.Workers {
		workers = append(workers, fmt.Sprintf("%s:%d %s/#/task/%s/%s", w.Host, w.Port, page.Master, w.FrameworkID, w.TaskID))
	}
	for _, c := range page.Topology.Components {
		comps = append(comps, c.ID+" "+c.Type)
	}
	sort.Strings(workers)
	shownWorkers := webuitest.Run(t, b, "reading the workers", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#workers tr[data-worker]')].map((r) =>
		r.dataset.worker + ' ' + r.querySelector('a.sandbox').href).sort()`))
	if !reflect.DeepEqual(shownWorkers, workers) || len(workers) != 2 {
		t.Errorf("the page's workers %v, want the API's %v", shownWorkers, workers)
	}
	shownComps := webuitest.Run(t, b, "reading the components", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#components tr[data-component]')].map((r) =>
		r.dataset.component + ' ' + r.children[1].innerText)`))
	if !reflect.DeepEqual(shownComps, comps) || len(comps) == 0 {
		t.Errorf("the page's components %v, want the API's %v", shownComps, comps)
	}
	// The links name the worker tasks the master runs (the master's UI
	// shows a task's sandbox at #/task/FRAMEWORK/TASK).
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	running, err := nativeTopologies(ctx, state.Client{}, master)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range page.Topology.Workers {
		found := false
		for _, r := range running {
			found = found || (r.Name == "wc" && r.FrameworkID == w.FrameworkID && r.TaskID == w.TaskID && r.State == "TASK_RUNNING")
		}
		if !found {
			t.Errorf("worker %s:%d links task %s of framework %s, which the master does not run for wc: %+v", w.Host, w.Port, w.TaskID, w.FrameworkID, running)
		}
	}
	webuitest.Screenshot(t, b, "agora-storm-topology")

	webuitest.Run(t, b, "back to the topologies", chromedp.Click(chromedp.CSS(`nav.crumbs a`)))
	webuitest.Wait(t, b, "the list", `document.body.dataset.loaded === 'list' && document.querySelector('#topologies tr[data-topology="wc2"]') !== null
		&& document.querySelector('#topologies tr[data-topology="wc"] button.kill') !== null`)
	webuitest.Screenshot(t, b, "agora-storm-topologies")

	// wc's page lists wc2 but does not kill it: its kill would act with
	// wc's submitting command's master credentials. The API says so per
	// topology, and the page offers no kill for wc2 (on wc's own row it
	// does, as on wc's topology page).
	canKill := map[string]bool{}
	for _, x := range list.Topologies {
		canKill[x.ID] = x.CanKill
	}
	if !reflect.DeepEqual(canKill, map[string]bool{"wc": true, "wc2": false}) {
		t.Errorf("can_kill on wc's page: %v, want wc only", canKill)
	}
	if !page.Topology.CanKill {
		t.Errorf("wc's own topology page says can_kill false")
	}
	if n := webuitest.Run(t, b, "counting wc2's kill buttons", chromedp.Evaluate[int](`document.querySelectorAll('#topologies tr[data-topology="wc2"] button').length`)); n != 0 {
		t.Errorf("wc's page shows %d kill buttons on wc2's row, which it may not kill", n)
	}
	webuitest.Run(t, b, "opening wc2 from wc's page", chromedp.Navigate(base+"/ui/?poll=0.5#topology=wc2"))
	webuitest.Wait(t, b, "wc2's topology page", `document.body.dataset.loaded === 'topology' && document.getElementById('topology-title').dataset.topology === 'wc2'`)
	if n := webuitest.Run(t, b, "counting the kill buttons on wc2's topology page", chromedp.Evaluate[int](`document.querySelectorAll('#topology-summary button.kill').length`)); n != 0 {
		t.Errorf("wc's page shows a kill button on wc2's topology page, which it may not kill")
	}
	if code, body := postControl(t, base+"/api/v1/topologies/wc2/kill", "", "", nil); code != http.StatusForbidden || !strings.Contains(body, `kills only topology \"wc\"`) {
		t.Errorf("wc's page killing wc2: %d %s, want 403 naming why", code, body)
	}
	if code, body := postControl(t, base+"/api/v1/topologies/nosuch/kill", "", "", nil); code != http.StatusForbidden {
		t.Errorf("wc's page killing a topology that is not there: %d %s, want 403", code, body)
	}

	// Killed from its own page (two clicks), wc2 ends.
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	base2, err := nativeControlURL(ctx, state.Client{}, master, "wc2")
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	// A slow poll: the rows are rebuilt on every poll, and a rebuild
	// between finding the armed button and clicking it loses the click.
	webuitest.Run(t, b, "opening wc2's page", chromedp.Navigate(base2+"/ui/?poll=60"))
	webuitest.Wait(t, b, "wc2's list", `document.body.dataset.loaded === 'list' && document.querySelector('#topologies tr[data-topology="wc2"] button.kill') !== null`)
	webuitest.Click(t, b, "arming wc2's kill", `#topologies tr[data-topology="wc2"] button.kill`)
	webuitest.Wait(t, b, "the kill armed", `document.querySelector('#topologies tr[data-topology="wc2"] button.kill.confirm') !== null`)
	webuitest.Click(t, b, "killing wc2", `#topologies tr[data-topology="wc2"] button.kill.confirm`)
	select {
	case <-wc2.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("wc2's submitting command did not end within 2 minutes of its kill: %s", wc2.out.String())
	}
	webuitest.Run(t, b, "back to wc's page", chromedp.Navigate(base+"/ui/?poll=0.5"))
	webuitest.Wait(t, b, "wc2 gone from the list, wc still there", `document.body.dataset.loaded === 'list' && document.querySelector('#topologies tr[data-topology="wc2"]') === null
		&& document.querySelector('#topologies tr[data-topology="wc"]') !== null && document.getElementById('kill-banner').hidden`)
}

// TestStormUIBehindCredentials: a native topology submitted with
// --http_credentials serves its page and the page's API only to those
// credentials (kill included), and the page works in a browser that
// answers the prompt once; the control the CLI uses (/status) stays as it
// was.
func TestStormUIBehindCredentials(t *testing.T) {
	dir, master, path := startNativeStormCluster(t)
	sub := submitNative(t, dir, master, path, "wc", 1, "--http_credentials", "ops:pw")
	if out := sub.out.String(); strings.Contains(out, "to anyone who reaches it") || !strings.Contains(out, "WARNING: the topology's control port speaks plain HTTP") {
		t.Errorf("a page behind credentials over plain HTTP: %s; want the warning of credentials in clear only", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	base, err := nativeControlURL(ctx, state.Client{}, master, "wc")
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/ui/", "/api/v1/topologies", "/api/v1/topologies/wc", "/", servicepage.ChangesPath} {
		if _, code := topologiesAPI[json.RawMessage](t, base, p, "", ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials: %d, want 401", p, code)
		}
	}
	if _, code := topologiesAPI[json.RawMessage](t, base, "/api/v1/topologies", "ops", "nope"); code != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/topologies with a wrong password: %d, want 401", code)
	}
	resp, err := http.Post(base+"/api/v1/topologies/wc/kill", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST kill without credentials: %s, want 401", resp.Status)
	}
	if _, code := topologiesAPI[json.RawMessage](t, base, "/status", "", ""); code != http.StatusOK {
		t.Errorf("GET /status without credentials: %d, want 200 (the CLI's control is unchanged)", code)
	}
	list, code := topologiesAPI[topologiesList](t, base, "/api/v1/topologies", "ops", "pw")
	if code != 200 || len(list.Topologies) != 1 || list.Topologies[0].ID != "wc" || list.Topologies[0].Status != "ACTIVE" {
		t.Fatalf("the API with credentials: %d %+v, want wc ACTIVE (still running after the refused kill)", code, list.Topologies)
	}
	b := webuitest.NewBrowser(t)
	prompts := webuitest.NavigateWithCredentials(t, b, base+"/ui/?poll=0.5", "ops", "pw", `document.body.dataset.loaded === 'list'
		&& document.querySelector('#topologies tr[data-topology="wc"]') !== null && document.getElementById('error-banner').hidden`)
	if prompts != 1 {
		t.Errorf("the browser asked for credentials %d times, want once", prompts)
	}
	// The change feed is behind the same credentials, which the browser
	// sends with it: the page goes live.
	webuitest.Wait(t, b, "the page live behind credentials", `document.body.dataset.live === 'true'`)
	webuitest.Run(t, b, "marking the page", chromedp.Evaluate[bool](`window.notReloaded = true`))

	// The control's changes are behind the same credentials and refuse
	// a cross-site form even with them; nothing changes.
	for _, p := range []string{"/deactivate", "/activate", "/rebalance"} {
		if code, body := postControl(t, base+p, "", "", nil); code != http.StatusUnauthorized {
			t.Errorf("POST %s without credentials: %d %s, want 401", p, code, body)
		}
		form := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"}
		if code, body := postControl(t, base+p, "ops", "pw", form); code != http.StatusForbidden || !strings.Contains(body, "another origin") {
			t.Errorf("POST %s as a cross-site form with credentials: %d %s, want 403 naming the origin", p, code, body)
		}
	}
	if st, code := topologiesAPI[nativeStatusReply](t, base, "/status", "", ""); code != 200 || st.Status != "ACTIVE" {
		t.Fatalf("/status after the refused changes: %d %+v, want ACTIVE", code, st)
	}
	// The CLI presents --control_principal and --control_secret_file to
	// the control (--principal and --secret_file go to the master only).
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runClient(t, master, "storm", "deactivate", "wc", "--runtime", "native", "--master", master); code != 1 || !strings.Contains(errOut, "authentication required") {
		t.Errorf("agora storm deactivate without credentials: exit %d, %q; want 1 and the 401", code, errOut)
	}
	if out, errOut, code := runClient(t, master, "storm", "deactivate", "wc", "--runtime", "native", "--master", master,
		"--control_principal", "ops", "--control_secret_file", secret); code != 0 || !strings.Contains(out, "deactivated wc") {
		t.Fatalf("agora storm deactivate with the page's credentials: exit %d, %q %q", code, out, errOut)
	}
	if st, code := topologiesAPI[nativeStatusReply](t, base, "/status", "", ""); code != 200 || st.Status != "INACTIVE" {
		t.Errorf("/status after the CLI's deactivate: %d %+v, want INACTIVE", code, st)
	}
	// The live page shows the deactivation (no master event: the
	// control's change moves the feed) without a reload.
	webuitest.Wait(t, b, "wc INACTIVE on the live page without a reload", `window.notReloaded === true && document.body.dataset.live === 'true'
		&& document.querySelector('#topologies tr[data-topology="wc"][data-status="INACTIVE"]') !== null`)
}

// feedStatus is the status of the change feed of the page at base (its
// stream closed once the status is in).
func feedStatus(t *testing.T, base string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+servicepage.ChangesPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// postControl posts an empty JSON object to url, as the CLI does, with
// Basic credentials when user is given and headers over the CLI's JSON
// content type.
func postControl(t *testing.T, url, user, password string, headers map[string]string) (int, string) {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	maps.Copy(h, headers)
	return webuitest.Post(t, url, user, password, h, "{}")
}

// TestStormUIOnAnAuthenticatedMaster: on a master that asks every HTTP
// caller for credentials (--authenticate_http_readonly and _readwrite),
// the page of a topology submitted with --principal and --secret_file
// lists it and kills it: its calls to the master present them.
func TestStormUIOnAnAuthenticatedMaster(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "credentials.json")
	if err := os.WriteFile(creds, []byte(`{"credentials": [{"principal": "ops", "secret": "pw"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cred := auth.Credential{Principal: "ops", Secret: "pw"}
	mc := stateClient(cred, nil, auth.LeaderRedirect)
	dir, master, path := startNativeStormClusterWith(t, mc, "--credentials="+creds, "--authenticate_http_readonly", "--authenticate_http_readwrite")
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sub := submitNative(t, dir, master, path, "wc", 1, "--principal", "ops", "--secret_file", secret)
	if !strings.Contains(sub.out.String(), "WARNING: the topology's control port serves the topologies page") {
		t.Errorf("an open page is not warned of: %s", sub.out.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	base, err := nativeControlURL(ctx, mc, master, "wc")
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	list, code := topologiesAPI[topologiesList](t, base, "/api/v1/topologies", "", "")
	if code != 200 || len(list.Topologies) != 1 || list.Topologies[0].ID != "wc" {
		t.Fatalf("GET /api/v1/topologies on an authenticated master: %d %+v, want wc", code, list.Topologies)
	}
	if _, code := topologiesAPI[json.RawMessage](t, base, "/api/v1/topologies/wc", "", ""); code != 200 {
		t.Errorf("GET /api/v1/topologies/wc on an authenticated master: %d, want 200", code)
	}
	// The page's change feed follows the master's event stream, which
	// the master serves only to the command's credentials.
	var feed int
	waitShowing(t, time.Minute, func() string { return fmt.Sprintf("the page's change feed: %d, want 200", feed) }, func() bool {
		feed = feedStatus(t, base)
		return feed == http.StatusOK
	})
	if code, body := postControl(t, base+"/api/v1/topologies/wc/kill", "", "", nil); code != http.StatusAccepted {
		t.Fatalf("kill on an authenticated master: %d %s, want 202", code, body)
	}
	select {
	case <-sub.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the submitting command did not end after the kill: %s", sub.out.String())
	}
	if !strings.Contains(sub.out.String(), "topology wc killed") {
		t.Errorf("the submitting command's output %q, want the kill", sub.out.String())
	}
}

// Nimbus's topology as the page shows it: workers are its executors by
// host and port, each linked to the framework's supervisor task on that
// host (none where the framework runs no supervisor); components sum
// their executors' all-time counts, a bolt told by its executed counts,
// and Storm's system components (__acker) are left out.
func TestNimbusTopologyForThePage(t *testing.T) {
	all := func(n int64) map[string]map[string]int64 {
		return map[string]map[string]int64{stormclient.AllTime: {"default": n}, "600": {"default": 1}}
	}
	info := stormclient.TopologyInfo{ID: "words-1-2", Name: "words", Executors: []stormclient.ExecutorSummary{
		{ComponentID: "sentences", Host: "a", Port: 6700, UptimeSecs: 30, Stats: &stormclient.ExecutorStats{Emitted: all(10), Acked: all(8), Failed: all(1)}},
		{ComponentID: "split", Host: "a", Port: 6700, UptimeSecs: 40, Stats: &stormclient.ExecutorStats{Emitted: all(50), Executed: all(10), Acked: all(10)}},
		{ComponentID: "split", Host: "b", Port: 6701, UptimeSecs: 20, Stats: &stormclient.ExecutorStats{Emitted: all(5), Executed: all(1), Acked: all(1)}},
		{ComponentID: "__acker", Host: "b", Port: 6701, Stats: &stormclient.ExecutorStats{Emitted: all(99)}},
		{ComponentID: "split", Host: "", Port: 0},      // not assigned yet
		{ComponentID: "record", Host: "b", Port: 6701}, // not reported yet
	}}
	sum := stormclient.TopologySummary{ID: "words-1-2", Name: "words", Status: "ACTIVE", NumWorkers: 2, NumExecutors: 5, NumTasks: 5, UptimeSecs: 41}
	sups := []framework.Task{{TaskID: "sup-a"}}
	sups[0].Host, sups[0].AgentID = "a", "agent-a"
	got := nimbusTopology(sum, &info, sups, "fw-1")
	wantWorkers := []framework.TopologyWorker{
		{Host: "a", Port: 6700, UptimeSecs: 40, Executors: map[string]int{"sentences": 1, "split": 1}, FrameworkID: "fw-1", TaskID: "sup-a", AgentID: "agent-a"},
		{Host: "b", Port: 6701, UptimeSecs: 20, Executors: map[string]int{"split": 1, "__acker": 1, "record": 1}},
	}
	wantComps := []framework.TopologyComponent{
		{ID: "record", Executors: 1},
		{ID: "sentences", Type: "spout", Executors: 1, Emitted: 10, Acked: 8, Failed: 1},
		{ID: "split", Type: "bolt", Executors: 3, Emitted: 55, Acked: 11},
	}
	if got.ID != "words-1-2" || got.Runtime != "storm" || got.NumWorkers != 2 || got.UptimeSecs != 41 {
		t.Errorf("summary %+v", got.TopologySummary)
	}
	if !reflect.DeepEqual(got.Workers, wantWorkers) {
		t.Errorf("workers\n%+v\nwant\n%+v", got.Workers, wantWorkers)
	}
	if !reflect.DeepEqual(got.Components, wantComps) {
		t.Errorf("components\n%+v\nwant\n%+v", got.Components, wantComps)
	}
}

// TestStormSchedulerPageAgainstRealStorm: `agora storm scheduler` serving
// a real Nimbus (with a supervisor it does not run) gives the master its
// page's address as webui_url; behind --http_credentials the page's API
// lists Nimbus's topology, its worker and its spouts and bolts (Storm's
// __acker left out), refuses callers without the credentials, and kills
// the topology through Nimbus; the page shows it in a browser that
// answers the prompt.
func TestStormSchedulerPageAgainstRealStorm(t *testing.T) {
	tier.Need(t, tier.Python, tier.PythonErr())
	storm := stormtest.Start(t, 1, 1)
	c, err := stormclient.New(storm.Nimbus, stormclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	jar, err := c.UploadJar(ctx, bytes.NewReader(stormtest.Jar(t)))
	if err != nil {
		t.Fatal(err)
	}
	conf, _ := json.Marshal(map[string]any{"agora.test.dir": t.TempDir(), "agora.test.sentences": []string{"a b"},
		"topology.workers": 1, "topology.component.resources.onheap.memory.mb": 64})
	if err := c.Submit(ctx, "words", jar, string(conf), stormtest.WordTopology()); err != nil {
		t.Fatal(err)
	}
	cl := clustertest.Start(t, clustertest.Options{})
	var out, errOut syncBuffer
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- stormScheduler(sctx, []string{"--master", cl.MasterAddr, "--nimbus", storm.Nimbus, "--storm_home", t.TempDir(),
			"--ip", "127.0.0.1", "--http_port", "0", "--http_credentials", "ops:pw"}, &out, &errOut)
	}()
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("the scheduler did not stop within a minute")
		}
	})
	var base string
	waitShowing(t, time.Minute, func() string { return "the page's address: " + errOut.String() }, func() bool {
		_, rest, ok := strings.Cut(errOut.String(), "topologies page at ")
		base, _, _ = strings.Cut(rest, "/ui/")
		return ok && strings.HasPrefix(base, "http://127.0.0.1:")
	})
	waitShowing(t, time.Minute, func() string { return "the webui_url " + base + ": " + errOut.String() }, func() bool {
		var fws struct {
			Frameworks []struct {
				WebUI string `json:"webui_url"`
			} `json:"frameworks"`
		}
		resp, err := http.Get("http://" + cl.MasterAddr + "/master/frameworks")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&fws) == nil && len(fws.Frameworks) == 1 && fws.Frameworks[0].WebUI == base
	})

	if _, code := topologiesAPI[json.RawMessage](t, base, "/api/v1/topologies", "", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/topologies without credentials: %d, want 401", code)
	}
	// 502 until the framework has heard from Nimbus.
	var list topologiesList
	var code int
	waitShowing(t, time.Minute, func() string { return fmt.Sprintf("GET /api/v1/topologies: %d %+v", code, list) }, func() bool {
		list, code = topologiesAPI[topologiesList](t, base, "/api/v1/topologies", "ops", "pw")
		return code == 200
	})
	if !list.Kill || len(list.Topologies) != 1 || list.Topologies[0].Name != "words" || list.Topologies[0].Runtime != "storm" {
		t.Fatalf("GET /api/v1/topologies: %+v, want words on Storm, with kill", list)
	}
	id := list.Topologies[0].ID
	var page topologyPage
	waitShowing(t, 2*time.Minute, func() string { return fmt.Sprintf("words' worker and components: %+v", page.Topology) }, func() bool {
		page, code = topologiesAPI[topologyPage](t, base, "/api/v1/topologies/"+id, "ops", "pw")
		if code != 200 || len(page.Topology.Workers) != 1 || len(page.Topology.Components) != 3 {
			return false
		}
		for _, x := range page.Topology.Components {
			if x.Type == "" { // its executors have not reported yet
				return false
			}
		}
		return true
	})
	var comps []string
	for _, x := range page.Topology.Components {
		comps = append(comps, fmt.Sprintf("%s %s %d", x.ID, x.Type, x.Executors))
	}
	if want := []string{"record bolt 1", "sentences spout 1", "split bolt 2"}; !reflect.DeepEqual(comps, want) {
		t.Errorf("words' components %v, want %v", comps, want)
	}
	if w := page.Topology.Workers[0]; w.Port == 0 || w.Executors["split"] != 2 || w.TaskID != "" {
		t.Errorf("words' worker %+v: want its port, split×2, and no sandbox (its supervisor is not the framework's)", w)
	}

	b := webuitest.NewBrowser(t)
	if n := webuitest.NavigateWithCredentials(t, b, base+"/ui/?poll=0.5", "ops", "pw", fmt.Sprintf(`document.body.dataset.loaded === 'list'
		&& document.querySelector('#topologies tr[data-topology=%q]') !== null && document.getElementById('error-banner').hidden`, id)); n != 1 {
		t.Errorf("the browser asked for credentials %d times, want once", n)
	}
	// The page follows the shared reader's change feed (behind the same
	// credentials), and shows the kill below without a reload.
	webuitest.Wait(t, b, "the change feed", `document.body.dataset.live === 'true'`)
	webuitest.Run(t, b, "marking the page", chromedp.Evaluate[bool](`window.notReloaded = true`))

	asPage := map[string]string{framework.RequestedBy: "agora"}
	if code, body := webuitest.Post(t, base+"/api/v1/topologies/"+id+"/kill", "ops", "pw", asPage, ""); code != http.StatusAccepted {
		t.Fatalf("POST kill: %d %s, want 202", code, body)
	}
	waitShowing(t, 2*time.Minute, func() string { return "words killed" }, func() bool {
		_, ok, err := c.TopologyByName(ctx, "words")
		return err == nil && !ok
	})
	webuitest.Wait(t, b, "words killed on the page, without a reload", fmt.Sprintf(`window.notReloaded === true
		&& document.querySelector('#topologies tr[data-topology=%q]') === null`, id))

	// words submitted again runs under another ID: the page's kill of the
	// old ID, which a kill by name would turn on the new words, is
	// refused with 409 naming both, and the new words runs on.
	if jar, err = c.UploadJar(ctx, bytes.NewReader(stormtest.Jar(t))); err != nil {
		t.Fatal(err)
	}
	if err := c.Submit(ctx, "words", jar, string(conf), stormtest.WordTopology()); err != nil {
		t.Fatal(err)
	}
	again, ok, err := c.TopologyByName(ctx, "words")
	if err != nil || !ok || again.ID == id {
		t.Fatalf("words submitted again: %+v %v %v, want a new ID (the old %s)", again, ok, err, id)
	}
	if code, body := postControl(t, base+"/api/v1/topologies/"+id+"/kill", "ops", "pw", nil); code != http.StatusConflict ||
		!strings.Contains(body, id) || !strings.Contains(body, again.ID) {
		t.Errorf("the page's kill of the old words %s: %d %s, want 409 naming it and the new %s", id, code, body, again.ID)
	}
	if now, ok, err := c.TopologyByName(ctx, "words"); err != nil || !ok || now.ID != again.ID || now.Status != "ACTIVE" {
		t.Errorf("the new words after the refused kill: %+v %v %v, want %s ACTIVE", now, ok, err, again.ID)
	}
}

// The page's kill of a Nimbus topology goes by the ID the row showed:
// Nimbus kills by name, so the name is the one id has right before the
// kill; an id gone whose name runs again as another topology is
// ErrChanged naming both IDs (a kill by that name would reach the other
// one), and an id gone for good, or not of Storm's form, ErrNoTopology.
func TestNimbusKillGoesByID(t *testing.T) {
	ts := []stormclient.TopologySummary{{ID: "words-7-1700000300", Name: "words"}, {ID: "my-words-2-1700000100", Name: "my-words"}}
	for _, tc := range []struct {
		id, name string
		is       error
		err      string
	}{
		{"words-7-1700000300", "words", nil, ""},
		{"my-words-2-1700000100", "my-words", nil, ""},
		{"words-3-1700000000", "", framework.ErrChanged, `topology "words-3-1700000000" is gone and its name "words" now runs as topology "words-7-1700000300": not killed`},
		{"my-words-1-1700000000", "", framework.ErrChanged, `its name "my-words" now runs as topology "my-words-2-1700000100"`},
		{"other-1-1700000000", "", framework.ErrNoTopology, `nimbus runs no topology "other-1-1700000000"`},
		{"words", "", framework.ErrNoTopology, `no topology "words"`},
		{"words-x-1700000000", "", framework.ErrNoTopology, `no topology "words-x-1700000000"`},
	} {
		name, err := nimbusKillName(ts, tc.id)
		if tc.is == nil {
			if err != nil || name != tc.name {
				t.Errorf("kill %s: name %q, %v; want %q", tc.id, name, err, tc.name)
			}
			continue
		}
		if name != "" || !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("kill %s: name %q, %v; want %v naming %q", tc.id, name, err, tc.is, tc.err)
		}
	}
}

// The native topologies' page's feed follows a real master's event
// stream: it is served once the stream is followed, moves when a native
// topology's framework subscribes, ends its streams and refuses new ones
// (503, so that the page polls) while the master is down, and is served
// again once the master is back.
func TestNativePageFeedFollowsTheMaster(t *testing.T) {
	cl := clustertest.Start(t, clustertest.Options{})
	feed := newNativeFeed()
	ctx, cancel := context.WithCancel(context.Background())
	followed := make(chan struct{})
	go func() { feed.follow(ctx, clientOptions{master: cl.MasterAddr}); close(followed) }()
	srv := httptest.NewServer(feed.handler(http.NotFoundHandler()))
	t.Cleanup(func() {
		cancel()
		select {
		case <-followed:
		case <-time.After(time.Minute):
			t.Error("the feed still followed the master a minute after its context ended")
		}
		srv.Close()
	})

	// openFeed opens the page's feed: its status, and its stream's first
	// lines when it is 200 (the stream stays open until ended).
	openFeed := func(sctx context.Context) (int, *bufio.Reader, func()) {
		req, err := http.NewRequestWithContext(sctx, "GET", srv.URL+servicepage.ChangesPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, bufio.NewReader(resp.Body), func() { resp.Body.Close() }
	}
	// nextEvent is the data of the stream's next change event.
	nextEvent := func(r *bufio.Reader) (string, error) {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return "", err
			}
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				return strings.TrimSpace(d), nil
			}
		}
	}

	waitShowing(t, time.Minute, func() string { return "the master's event stream followed" }, feed.live)
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer scancel()
	code, stream, closeStream := openFeed(sctx)
	defer closeStream()
	if code != http.StatusOK {
		t.Fatalf("GET %s while the master's stream is followed: %d, want 200", servicepage.ChangesPath, code)
	}
	first, err := nextEvent(stream)
	if err != nil {
		t.Fatalf("the feed's first event: %v", err)
	}

	// A native topology's framework subscribing moves the feed.
	fctx, fcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer fcancel()
	req, err := http.NewRequestWithContext(fctx, "POST", cl.MasterURL+"/api/v1/scheduler",
		strings.NewReader(fmt.Sprintf(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"nobody","name":%q}}}`, nativeFramework)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() // the framework stays subscribed until then
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		t.Fatalf("subscribing a framework named %s: %s %s", nativeFramework, resp.Status, b)
	}
	next, err := nextEvent(stream)
	if err != nil || next == first {
		t.Fatalf("the feed after %s subscribed: %q, %v; want an event past %q", nativeFramework, next, err, first)
	}

	// The master down: the open stream ends and the feed refuses.
	cl.StopMaster()
	for err == nil {
		_, err = nextEvent(stream)
	}
	if sctx.Err() != nil {
		t.Fatalf("the feed's stream did not end within 2 minutes of the master's stop")
	}
	code, down, closeDown := openFeed(context.Background())
	body, _ := io.ReadAll(io.LimitReader(down, 4096))
	closeDown()
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "the master's event stream is lost (") {
		t.Fatalf("GET %s while the master is down: %d %s, want 503 saying why", servicepage.ChangesPath, code, body)
	}

	// The master back: the feed is served again.
	cl.StartMaster()
	waitShowing(t, 2*time.Minute, func() string { return "the master's event stream followed again" }, feed.live)
	actx, acancel := context.WithTimeout(context.Background(), time.Minute)
	defer acancel()
	code, again, closeAgain := openFeed(actx)
	defer closeAgain()
	if code != http.StatusOK {
		t.Fatalf("GET %s once the master is back: %d, want 200", servicepage.ChangesPath, code)
	}
	if _, err := nextEvent(again); err != nil {
		t.Fatalf("the feed's first event once the master is back: %v", err)
	}
}

// The feed's view of the native topologies moves the page's feed for
// the events of their frameworks and tasks only, knowing them from
// SUBSCRIBED and FRAMEWORK_ADDED; every SUBSCRIBED moves it: after a lost
// stream the page reads again, whatever changed in between (a framework
// updated, an agent removed) that the new state does not tell apart.
func TestNativeViewConcernsNativeTopologies(t *testing.T) {
	fw := func(id, name string) mesosmaster.Response_GetFrameworks_Framework {
		return mesosmaster.Response_GetFrameworks_Framework{FrameworkInfo: mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: id}, Name: name, User: "u"}}
	}
	tk := func(fwID, id string, st mesos.TaskState) mesos.Task {
		return mesos.Task{FrameworkID: mesos.FrameworkID{Value: fwID}, TaskID: mesos.TaskID{Value: id}, State: &st}
	}
	added := func(fwID, id string) *mesosmaster.Event {
		return &mesosmaster.Event{Type: mesosmaster.Event_TASK_ADDED, TaskAdded: &mesosmaster.Event_TaskAdded{Task: tk(fwID, id, mesos.TASK_STAGING)}}
	}
	update := func(fwID, id string, st mesos.TaskState) *mesosmaster.Event {
		return &mesosmaster.Event{Type: mesosmaster.Event_TASK_UPDATED, TaskUpdated: &mesosmaster.Event_TaskUpdated{
			FrameworkID: mesos.FrameworkID{Value: fwID}, Status: mesos.TaskStatus{TaskID: mesos.TaskID{Value: id}, State: &st}, State: &st}}
	}
	subscribed := func(fws []mesosmaster.Response_GetFrameworks_Framework, tasks ...mesos.Task) *mesosmaster.Event {
		return &mesosmaster.Event{Type: mesosmaster.Event_SUBSCRIBED, Subscribed: &mesosmaster.Event_Subscribed{GetState: &mesosmaster.Response_GetState{
			GetFrameworks: &mesosmaster.Response_GetFrameworks{Frameworks: fws}, GetTasks: &mesosmaster.Response_GetTasks{Tasks: tasks}}}}
	}
	both := []mesosmaster.Response_GetFrameworks_Framework{fw("n1", nativeFramework), fw("o1", "other")}
	v := newNativeView()
	for i, tc := range []struct {
		ev   *mesosmaster.Event
		want bool
	}{
		{subscribed(both, tk("n1", "a", mesos.TASK_RUNNING), tk("o1", "b", mesos.TASK_RUNNING)), true},
		{added("n1", "c"), true},
		{added("o1", "d"), false},
		{update("n1", "c", mesos.TASK_RUNNING), true},
		{update("o1", "d", mesos.TASK_RUNNING), false},
		// Subscribed again with the tasks the events said: a framework
		// updated or an agent removed in the gap is not in what it
		// compares, so it moves the feed all the same.
		{subscribed(both, tk("n1", "a", mesos.TASK_RUNNING), tk("n1", "c", mesos.TASK_RUNNING)), true},
		{subscribed(both, tk("n1", "a", mesos.TASK_RUNNING)), true},
		{&mesosmaster.Event{Type: mesosmaster.Event_FRAMEWORK_ADDED, FrameworkAdded: &mesosmaster.Event_FrameworkAdded{Framework: fw("o2", "other")}}, false},
		{&mesosmaster.Event{Type: mesosmaster.Event_FRAMEWORK_ADDED, FrameworkAdded: &mesosmaster.Event_FrameworkAdded{Framework: fw("n2", nativeFramework)}}, true},
		{added("n2", "e"), true},
		{&mesosmaster.Event{Type: mesosmaster.Event_FRAMEWORK_REMOVED, FrameworkRemoved: &mesosmaster.Event_FrameworkRemoved{FrameworkInfo: fw("o1", "other").FrameworkInfo}}, false},
		{&mesosmaster.Event{Type: mesosmaster.Event_FRAMEWORK_REMOVED, FrameworkRemoved: &mesosmaster.Event_FrameworkRemoved{FrameworkInfo: fw("n1", nativeFramework).FrameworkInfo}}, true},
		{update("n1", "a", mesos.TASK_KILLED), false}, // its framework is gone
		{&mesosmaster.Event{Type: mesosmaster.Event_HEARTBEAT}, false},
		{subscribed([]mesosmaster.Response_GetFrameworks_Framework{fw("n2", nativeFramework)}, tk("n2", "e", mesos.TASK_STAGING)), true},
		{update("n2", "e", mesos.TASK_RUNNING), true}, // n2 known from the SUBSCRIBED
		{update("n1", "a", mesos.TASK_RUNNING), false},
	} {
		if got := v.apply(tc.ev); got != tc.want {
			t.Errorf("event %d (%s): moves the feed %v, want %v", i, tc.ev.GetType(), got, tc.want)
		}
	}
}

// countingTransport counts the master's state reads it carries.
type countingTransport struct {
	base  http.RoundTripper
	reads atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/master/state" {
		c.reads.Add(1)
	}
	return c.base.RoundTrip(r)
}

// The native page's feed watches only the topologies a viewer read
// running, at most nativeMaxViewed of them (the least recently read
// going first): an id that names no native topology on a real master is
// not recorded, one that no longer runs is forgotten by the watch, and a
// round of the watch reads the master's state once for all its ids.
func TestNativePageFeedWatchesBoundedViews(t *testing.T) {
	feed := newNativeFeed()
	for i := range nativeMaxViewed + 36 {
		feed.view(fmt.Sprintf("t-%d", i))
	}
	ids := feed.views(time.Time{})
	last := fmt.Sprintf("t-%d", nativeMaxViewed+35)
	if len(ids) != nativeMaxViewed || !slices.Contains(ids, last) || slices.Contains(ids, "t-0") {
		t.Fatalf("after %d topologies viewed the feed watches %d (%v); want the last %d, %s among them and not t-0",
			nativeMaxViewed+36, len(ids), ids, nativeMaxViewed, last)
	}

	cl := clustertest.Start(t, clustertest.Options{})
	ct := &countingTransport{base: http.DefaultTransport}
	feed = newNativeFeed()
	src := nativeUISource{master: cl.MasterAddr, c: state.Client{HTTP: &http.Client{Transport: ct, Timeout: time.Minute}}, viewed: feed.view}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range 20 {
		if _, err := src.Get(ctx, fmt.Sprintf("junk-%d", i)); !errors.Is(err, framework.ErrNoTopology) {
			t.Fatalf("the page of junk-%d on a master with no native topology: %v, want ErrNoTopology", i, err)
		}
	}
	if ids := feed.views(time.Time{}); len(ids) != 0 {
		t.Fatalf("the feed watches %v after viewers asked only for ids that name no topology; want none", ids)
	}

	// Topologies read running that have gone since: one state read for
	// all, and then none is watched.
	for i := range 5 {
		feed.view(fmt.Sprintf("gone-%d", i))
	}
	before := ct.reads.Load()
	seen := feed.watchOnce(ctx, src, map[string]string{})
	if n := ct.reads.Load() - before; n != 1 {
		t.Errorf("a round of the watch over 5 topologies read the master's state %d times, want once", n)
	}
	if len(seen) != 5 || !strings.Contains(seen["gone-0"], "no native topology") {
		t.Errorf("a round of the watch read %v; want the 5 gone topologies, each not running", seen)
	}
	if ids := feed.views(time.Time{}); len(ids) != 0 {
		t.Errorf("the feed still watches %v, topologies that no longer run", ids)
	}
}

// freezingProxy forwards TCP connections to a target until frozen; then
// it cuts those it carries and accepts new ones without ever reading or
// answering them (a master that hangs: its TLS handshake never ends).
type freezingProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	frozen bool
	closed bool
	conns  []net.Conn
}

func startFreezingProxy(t *testing.T, target string) *freezingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezingProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.freeze()
	})
	return p
}

func (p *freezingProxy) addr() string { return p.ln.Addr().String() }

// track keeps c to cut it when frozen; false if the proxy is closed (c is
// closed then).
func (p *freezingProxy) track(c net.Conn) (frozen, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return true, false
	}
	p.conns = append(p.conns, c)
	return p.frozen, true
}

func (p *freezingProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		frozen, ok := p.track(c)
		if !ok || frozen {
			continue // held, unread, until the proxy closes
		}
		go func() {
			u, err := net.DialTimeout("tcp", p.target, 10*time.Second)
			if err != nil {
				c.Close()
				return
			}
			if _, ok := p.track(u); !ok {
				c.Close()
				return
			}
			go func() { io.Copy(u, c); u.Close() }()
			io.Copy(c, u)
			c.Close()
		}()
	}
}

// freeze cuts the connections carried and holds every new one.
func (p *freezingProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// A master that accepts connections and then answers nothing: an HTTPS
// subscription fails at the TLS handshake's bound rather than waiting
// forever, and the native page's feed, its stream lost, goes down (the
// page polls) when no new SUBSCRIBED comes within the retry's wait and
// its grace.
func TestNativePageFeedDownWhenTheMasterHangs(t *testing.T) {
	cl := clustertest.Start(t, clustertest.Options{})
	px := startFreezingProxy(t, cl.MasterAddr)

	feed := newNativeFeed()
	feed.grace = time.Second // short, so that the subscription under way has not failed yet
	ctx, cancel := context.WithCancel(context.Background())
	followed := make(chan struct{})
	go func() { feed.follow(ctx, clientOptions{master: px.addr()}); close(followed) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-followed:
		case <-time.After(time.Minute):
			t.Error("the feed still followed the master a minute after its context ended")
		}
	})
	waitShowing(t, time.Minute, func() string { return "the master's event stream followed" }, feed.live)

	px.freeze()
	waitShowing(t, 2*time.Minute, func() string { return "the feed down once the master hangs" }, func() bool { return !feed.live() })
	feed.mu.Lock()
	why := feed.why
	feed.mu.Unlock()
	if why == nil || !strings.Contains(why.Error(), "not subscribed again within") {
		t.Errorf("the feed is down for %v; want the subscription not back within its grace", why)
	}

	// The same hanging master over HTTPS: the handshake is bounded.
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer scancel()
	s, err := subscribeEvents(sctx, &clientOptions{master: px.addr(), tls: &tls.Config{}})
	if err == nil {
		s.Close()
		t.Fatal("subscribed over HTTPS to a master that never completes the TLS handshake")
	}
	if sctx.Err() != nil || !strings.Contains(err.Error(), "TLS handshake timeout") {
		t.Errorf("subscribing over HTTPS to a master that never completes the handshake: %v (waited past 2 minutes: %v); want a TLS handshake timeout", err, sctx.Err())
	}
}
