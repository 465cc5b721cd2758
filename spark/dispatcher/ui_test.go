package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/webui/webuitest"
)

// standInDriver is the stand-in spark-submit of the page's tests: a
// driver whose arguments say "hold" runs until killed, any other ends at
// once.
const standInDriver = `case "$*" in *hold*) exec sleep 300;; esac; echo "spark-submit $*"`

// submitArgs submits a stand-in driver with args as its application's
// arguments.
func submitArgs(t *testing.T, d *Dispatcher, args ...string) string {
	t.Helper()
	req := standInRequest(t)
	req.AppArgs = args
	_, r := d.submit(req)
	if !r.Success {
		t.Fatalf("submit: %s", r.Message)
	}
	return r.SubmissionID
}

// waitSubscribed waits until d takes submissions.
func waitSubscribed(t *testing.T, d *Dispatcher) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !d.Subscribed(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the dispatcher did not subscribe within 60s")
		}
	}
}

// TestUIShowsDriversAndTheirExecutors opens /ui/ in headless Chromium on a
// dispatcher whose drivers are stand-ins: an ended driver shows as the API
// says, a driver submitted while the page is open shows first without a
// reload, running on its agent with a link to its task's sandbox in the
// master's UI; once the executors' scheduler records its application, the
// row counts its executors and links its Spark UI, and the driver's page
// lists the executors the API lists.
func TestUIShowsDriversAndTheirExecutors(t *testing.T) {
	var mu sync.Mutex
	var apps []Application
	d, c := standInWith(t, clustertest.Options{}, auth.Credential{}, standInDriver, nil, func(cfg *Config) {
		cfg.Applications = func() []Application {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(apps)
		}
	})
	waitSubscribed(t, d)
	first := submitArgs(t, d, "quick")
	waitDriver(t, d, first, func(dr Driver) bool { return dr.State == StateFinished })
	base := "http://" + d.Addr()

	// The webui_url is the page (the root is Spark's protocol's).
	if got := webuiURL(t, c.MasterAddr, d.FrameworkID()); got != base+"/ui/" {
		t.Errorf("the framework's webui_url is %q, want %q", got, base+"/ui/")
	}

	b := webuitest.NewBrowser(t)
	webuitest.Run(t, b, "opening the UI", chromedp.Navigate(base+"/ui/?poll=0.2"))
	webuitest.Wait(t, b, "the ended driver listed", fmt.Sprintf(`document.querySelector('#drivers tr[data-driver=%q][data-state="FINISHED"]') !== null`, first))

	// A driver submitted now shows first, without a reload.
	webuitest.Run(t, b, "marking the page", chromedp.Evaluate[bool](`window.notReloaded = true`))
	second := submitArgs(t, d, "hold")
	running := waitDriver(t, d, second, func(dr Driver) bool { return dr.TaskState == "TASK_RUNNING" })
	row := fmt.Sprintf(`#drivers tr[data-driver=%q]`, second)
	webuitest.Wait(t, b, "the second driver listed first and running, without a reload", fmt.Sprintf(`window.notReloaded === true
		&& document.querySelector('#drivers tbody tr').dataset.driver === %q && document.querySelector('%s').dataset.state === 'RUNNING'`, second, row))
	sandbox := fmt.Sprintf("http://%s/#/task/%s/%s", c.MasterAddr, running.FrameworkID, running.TaskID)
	if href := webuitest.Run(t, b, "reading the agent's link", chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector('%s td.agent a').href`, row))); href != sandbox {
		t.Errorf("the running driver's agent links %q, want its task's page in the master's UI %q", href, sandbox)
	}

	// Its application registers and gets executors.
	mu.Lock()
	apps = []Application{{ID: "app-1", Name: "SparkPi", State: "RUNNING", DriverFrameworkID: running.FrameworkID + "-" + running.TaskID,
		UIURL: "http://127.0.0.1:4040", FrameworkID: "executors-fw", Executors: []ApplicationExecutor{
			{ID: "0", TaskID: "app-1-0", AgentID: running.AgentID, Hostname: running.Hostname, CPUs: 1, MemMB: 1408, State: "TASK_RUNNING", Launched: time.Now()},
			{ID: "1", TaskID: "app-1-1", AgentID: running.AgentID, Hostname: running.Hostname, CPUs: 1, MemMB: 1408, State: "TASK_STAGING", Launched: time.Now()}}},
		{ID: "app-other", State: "RUNNING", DriverFrameworkID: "client-mode", Executors: []ApplicationExecutor{}}}
	mu.Unlock()
	webuitest.Wait(t, b, "the executors counted and the Spark UI linked", fmt.Sprintf(`(() => { const r = document.querySelector('%s');
		return r.querySelector('td.executors').innerText === '2' && r.querySelector('a.spark-ui') !== null
			&& r.querySelector('a.spark-ui').href === 'http://127.0.0.1:4040/'; })()`, row))

	// What the page lists is what the API says.
	api := pageAPI(t, base, "", "")
	var want []string
	for _, dr := range api.Drivers {
		want = append(want, dr.ID+" "+dr.State)
	}
	listed := webuitest.Run(t, b, "reading the drivers", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#drivers tr[data-driver]')].map((r) => r.dataset.driver + ' ' + r.dataset.state)`))
	if !reflect.DeepEqual(listed, want) || len(want) != 2 {
		t.Errorf("the page lists %v, want the API's %v", listed, want)
	}
	if api.Drivers[0].Application == nil || api.Drivers[0].Application.ID != "app-1" || api.Drivers[1].Application != nil {
		t.Errorf("the API's drivers' applications: %+v", api.Drivers)
	}

	// The driver's page lists the executors with links to their sandboxes.
	webuitest.Click(t, b, "opening the driver", row+` td a`)
	webuitest.Wait(t, b, "the driver's page", fmt.Sprintf(`document.body.dataset.loaded === 'driver' && document.getElementById('driver-title').dataset.driver === %q
		&& document.querySelectorAll('#executors tr[data-executor]').length > 0`, second))
	execs := webuitest.Run(t, b, "reading the executors", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#executors tr[data-executor]')].map((r) => r.dataset.executor + ' ' + r.dataset.state + ' ' + r.querySelector('a.sandbox').href)`))
	if want := []string{"0 TASK_RUNNING http://" + c.MasterAddr + "/#/task/executors-fw/app-1-0", "1 TASK_STAGING http://" + c.MasterAddr + "/#/task/executors-fw/app-1-1"}; !reflect.DeepEqual(execs, want) {
		t.Errorf("the driver's page lists executors %v, want %v", execs, want)
	}
	if title := webuitest.Text(t, b, "#driver-title"); title != second+" SparkPi" {
		t.Errorf("the driver's page is titled %q, want %q", title, second+" SparkPi")
	}
	if text := webuitest.Text(t, b, "#driver-summary"); !contains(text, "org.apache.spark.examples.SparkPi", "app-1", running.Hostname) {
		t.Errorf("the driver's summary %q lacks its main class, application or agent", text)
	}
	webuitest.Run(t, b, "back to the drivers", chromedp.Click(chromedp.CSS(`nav.crumbs a`)))
	webuitest.Wait(t, b, "the drivers listed", `document.body.dataset.loaded === 'list' && document.querySelectorAll('#drivers tr[data-driver]').length === 2`)
	webuitest.Screenshot(t, b, "agora-spark-drivers")
}

// TestUIBehindCredentials: wrapped by a guard, the page and its API ask for
// them, the page works in a browser that answers the prompt once, and
// Spark's REST protocol and /drivers stay open for Spark's clients.
func TestUIBehindCredentials(t *testing.T) {
	creds, err := auth.ParseUserPassword("ops:pw")
	if err != nil {
		t.Fatal(err)
	}
	guard, err := auth.NewServiceGuard(auth.ServiceOptions{Credentials: creds, Realm: "spark"})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := standInWith(t, clustertest.Options{}, auth.Credential{}, standInDriver, nil, func(cfg *Config) { cfg.WrapPage = guard.Wrap })
	waitSubscribed(t, d)
	id := submitArgs(t, d, "quick")
	waitDriver(t, d, id, func(dr Driver) bool { return dr.State == StateFinished })
	base := "http://" + d.Addr()
	for _, p := range []string{"/ui/", "/api/v1/drivers"} {
		if code, _ := webuitest.Request(t, http.MethodGet, base+p, "", "", nil, ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials: %d, want 401", p, code)
		}
	}
	if code, _ := webuitest.Request(t, http.MethodGet, base+"/api/v1/drivers", "ops", "wrong", nil, ""); code != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/drivers with a wrong password: %d, want 401", code)
	}
	for _, p := range []string{"/drivers", "/v1/submissions/status/" + id} {
		if code, _ := webuitest.Request(t, http.MethodGet, base+p, "", "", nil, ""); code != http.StatusOK {
			t.Errorf("GET %s without credentials: %d, want 200 (Spark's clients send none)", p, code)
		}
	}
	if api := pageAPI(t, base, "ops", "pw"); len(api.Drivers) != 1 || api.Drivers[0].ID != id {
		t.Errorf("the API with credentials: %+v, want driver %s", api.Drivers, id)
	}
	b := webuitest.NewBrowser(t)
	prompts := webuitest.NavigateWithCredentials(t, b, base+"/ui/?poll=0.2", "ops", "pw", fmt.Sprintf(`document.body.dataset.loaded === 'list'
		&& document.querySelector('#drivers tr[data-driver=%q]') !== null && document.getElementById('error-banner').hidden`, id))
	if prompts != 1 {
		t.Errorf("the browser asked for credentials %d times, want once", prompts)
	}
}

// webuiURL is the webui_url the master at addr has for framework id.
func webuiURL(t *testing.T, addr, id string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/master/frameworks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Frameworks []struct {
			ID    string `json:"id"`
			WebUI string `json:"webui_url"`
		} `json:"frameworks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("/master/frameworks: %v", err)
	}
	for _, f := range v.Frameworks {
		if f.ID == id {
			return f.WebUI
		}
	}
	t.Fatalf("the master does not list framework %s", id)
	return ""
}

// pageAPI reads GET /api/v1/drivers.
func pageAPI(t *testing.T, base, user, password string) pageDrivers {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/drivers", nil)
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
	var v pageDrivers
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&v) != nil {
		t.Fatalf("GET /api/v1/drivers: %s", resp.Status)
	}
	return v
}

func contains(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// TestUIKillsADriver: behind credentials, the page offers a kill on a
// running driver and none on an ended one; the first click only arms it,
// the second kills the driver through the dispatcher (its task ends, the
// driver is KILLED) and the row keeps the dispatcher's answer. The page's
// kill asks for the page's credentials and refuses what a page of another
// site could send; an ended driver is 409, an unknown one 404, and none
// of those changes anything.
func TestUIKillsADriver(t *testing.T) {
	creds, err := auth.ParseUserPassword("ops:pw")
	if err != nil {
		t.Fatal(err)
	}
	guard, err := auth.NewServiceGuard(auth.ServiceOptions{Credentials: creds, Realm: "spark"})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := standInWith(t, clustertest.Options{}, auth.Credential{}, standInDriver, nil, func(cfg *Config) { cfg.WrapPage = guard.Wrap })
	waitSubscribed(t, d)
	ended := submitArgs(t, d, "quick")
	waitDriver(t, d, ended, func(dr Driver) bool { return dr.State == StateFinished })
	held := submitArgs(t, d, "hold")
	waitDriver(t, d, held, func(dr Driver) bool { return dr.TaskState == "TASK_RUNNING" })
	base := "http://" + d.Addr()

	asPage := map[string]string{"X-Requested-By": "agora"}
	for _, tc := range []struct {
		name, id, user string
		headers        map[string]string
		code           int
		err            string
	}{
		{"without credentials", held, "", asPage, http.StatusUnauthorized, "authentication required"},
		{"a cross-site form", held, "ops", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"}, http.StatusForbidden, "another origin"},
		{"a form without the header", held, "ops", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusForbidden, "X-Requested-By"},
		{"an ended driver", ended, "ops", asPage, http.StatusConflict, "driver " + ended + " has already ended (FINISHED)"},
		{"an unknown driver", "driver-nosuch", "ops", asPage, http.StatusNotFound, "the dispatcher has no driver driver-nosuch"},
	} {
		if code, body := webuitest.Post(t, base+"/api/v1/drivers/"+tc.id+"/kill", tc.user, "pw", tc.headers, "a=b"); code != tc.code || !strings.Contains(body, tc.err) {
			t.Errorf("kill %s: %d %s, want %d naming %q", tc.name, code, body, tc.code, tc.err)
		}
	}
	if dr, _ := d.Get(held); dr.State != StateRunning || dr.KillRequested {
		t.Fatalf("the held driver after the refused kills: %s (kill requested %v), want RUNNING", dr.State, dr.KillRequested)
	}

	b := webuitest.NewBrowser(t)
	row := fmt.Sprintf(`#drivers tr[data-driver=%q]`, held)
	if n := webuitest.NavigateWithCredentials(t, b, base+"/ui/?poll=0.5", "ops", "pw", fmt.Sprintf(`document.body.dataset.loaded === 'list'
		&& document.querySelector('%s button.kill') !== null`, row)); n != 1 {
		t.Errorf("the browser asked for credentials %d times, want once", n)
	}
	if n := webuitest.Run(t, b, "counting the ended driver's kill buttons", chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll('#drivers tr[data-driver=%q] button').length`, ended))); n != 0 {
		t.Errorf("the ended driver's row has %d buttons, want none", n)
	}
	// Clicked from the page's script, so that a poll's rebuild of the
	// rows cannot come between finding the button and clicking it.
	click := func(what, sel string) {
		t.Helper()
		if !webuitest.Run(t, b, what, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const b = document.querySelector('%s'); if (!b) return false; b.click(); return true; })()`, sel))) {
			t.Fatalf("%s: no %s", what, sel)
		}
	}
	click("arming the kill", row+" button.kill")
	webuitest.Wait(t, b, "the kill armed", fmt.Sprintf(`document.querySelector('%s button.kill.confirm') !== null`, row))
	if dr, _ := d.Get(held); dr.State != StateRunning || dr.KillRequested {
		t.Fatalf("the first click changed the driver: %s (kill requested %v)", dr.State, dr.KillRequested)
	}
	click("confirming the kill", row+" button.kill.confirm")
	webuitest.Wait(t, b, "the kill's answer on the row", fmt.Sprintf(`(() => { const r = document.querySelector('%s .kill-result');
		return r !== null && r.dataset.ok === 'true' && r.innerText === 'Killing running driver'; })()`, row))
	waitDriver(t, d, held, func(dr Driver) bool { return dr.State == StateKilled })
	webuitest.Wait(t, b, "the driver killed, its row keeping the answer and no button", fmt.Sprintf(`(() => { const r = document.querySelector('%s');
		return r.dataset.state === 'KILLED' && r.querySelector('.kill-result') !== null && r.querySelector('button') === null; })()`, row))
	if dr, _ := d.Get(ended); dr.State != StateFinished {
		t.Errorf("the ended driver is %s after the page's kill of another, want FINISHED", dr.State)
	}
	webuitest.Screenshot(t, b, "agora-spark-drivers-kill")

	// A driver killed elsewhere (Spark's REST kill) after the page showed
	// it: the page's kill is refused and the row says why. The button the
	// page showed before that kill is the one clicked: the change feed may
	// redraw the row meanwhile, and the old button still asks (a user's
	// click just before the redraw).
	other := submitArgs(t, d, "hold")
	waitDriver(t, d, other, func(dr Driver) bool { return dr.TaskState == "TASK_RUNNING" })
	otherRow := fmt.Sprintf(`#drivers tr[data-driver=%q]`, other)
	webuitest.NavigateWithCredentials(t, b, base+"/ui/?poll=60", "ops", "pw", fmt.Sprintf(`document.body.dataset.loaded === 'list'
		&& document.querySelector('%s button.kill') !== null`, otherRow))
	if !webuitest.Run(t, b, "keeping the row's kill button", chromedp.Evaluate[bool](fmt.Sprintf(`(() => { window.staleKill = document.querySelector('%s button.kill');
		return window.staleKill !== null; })()`, otherRow))) {
		t.Fatal("the row has no kill button")
	}
	if code, body := webuitest.Post(t, base+"/v1/submissions/kill/"+other, "", "", nil, "a=b"); code != http.StatusOK || !strings.Contains(body, "Killing running driver") {
		t.Fatalf("Spark's REST kill of %s: %d %s", other, code, body)
	}
	waitDriver(t, d, other, func(dr Driver) bool { return dr.State == StateKilled })
	webuitest.Run(t, b, "clicking the stale kill twice", chromedp.Evaluate[bool](`(() => { window.staleKill.click(); window.staleKill.click(); return true; })()`))
	webuitest.Wait(t, b, "the refusal on the row", fmt.Sprintf(`(() => { const r = document.querySelector('%s .kill-result');
		return r !== null && r.dataset.ok === 'false' && r.innerText.includes('driver %s has already ended (KILLED)'); })()`, otherRow, other))
	// The driver's own page shows the same, and no button.
	// Found and clicked in one step: the page redraws the list when the
	// change feed says the driver changed, replacing the link's node.
	click("opening the driver's page", otherRow+` td a`)
	webuitest.Wait(t, b, "the refusal on the driver's page", fmt.Sprintf(`document.body.dataset.loaded === 'driver' && document.getElementById('driver-title').dataset.driver === %q
		&& (() => { const r = document.querySelector('#driver-summary .kill-result'); return r !== null && r.dataset.ok === 'false'; })()
		&& document.querySelector('#driver-summary button') === null`, other))
}

// The page's kill of a driver the dispatcher dropped (an ended one past
// spark.mesos.retainedDrivers) is 404, as for one it never had, and of
// one that ended and is kept 409; the kill is asked of the dispatcher
// first, so a driver that ends or is dropped meanwhile is answered the
// same.
func TestUIKillOfADroppedDriver(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	d, err := New(Config{Masters: []string{"127.0.0.1:1"}, Listener: ln, WorkDir: t.TempDir(), SparkHome: "/opt/spark", RetainedDrivers: 1})
	if err != nil {
		t.Fatal(err)
	}
	d.subscribed = true // as after SUBSCRIBED; nothing is sent without a scheduler
	dropped, kept := submitArgs(t, d, "a"), submitArgs(t, d, "b")
	for _, id := range []string{dropped, kept} { // queued: killed at once
		if r := d.kill(context.Background(), id); !r.Success {
			t.Fatalf("kill %s: %s", id, r.Message)
		}
	}
	if _, ok := d.Get(dropped); ok {
		t.Fatalf("%s is kept past retainedDrivers=1", dropped)
	}
	h := d.Handler()
	for _, tc := range []struct {
		id   string
		code int
		want string
	}{
		{dropped, http.StatusNotFound, "the dispatcher has no driver " + dropped},
		{kept, http.StatusConflict, "driver " + kept + " has already ended (KILLED)"},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/api/v1/drivers/"+tc.id+"/kill", nil)
		req.Header.Set("X-Requested-By", "agora")
		h.ServeHTTP(rec, req)
		var body struct{ Error string }
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != tc.code || body.Error != tc.want {
			t.Errorf("the page's kill of %s: %d %s, want %d %q", tc.id, rec.Code, rec.Body, tc.code, tc.want)
		}
	}
}
