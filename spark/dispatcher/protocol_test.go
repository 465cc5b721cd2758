package dispatcher

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// The create request of the reference (Spark's CreateSubmissionRequest as
// spark-submit sends it), with a field Spark does not know.
const createJSON = `{
  "action": "CreateSubmissionRequest",
  "clientSparkVersion": "3.5.1",
  "appResource": "http://host/app.jar",
  "mainClass": "org.apache.spark.examples.SparkPi",
  "appArgs": ["100"],
  "sparkProperties": {"spark.app.name": "SparkPi", "spark.master": "mesos://dispatcher:7077",
                      "spark.driver.memory": "1g", "spark.driver.cores": "1",
                      "spark.executor.memory": "1g", "spark.cores.max": "2",
                      "spark.driver.supervise": "false", "spark.executor.uri": "http://host/spark.tgz"},
  "environmentVariables": {"SPARK_ENV_LOADED": "1"},
  "color": "blue"
}`

func TestParseCreate(t *testing.T) {
	req, unknown, err := ParseCreate([]byte(createJSON))
	if err != nil {
		t.Fatal(err)
	}
	if req.AppResource != "http://host/app.jar" || req.MainClass != "org.apache.spark.examples.SparkPi" ||
		!slices.Equal(req.AppArgs, []string{"100"}) || req.SparkProperties["spark.cores.max"] != "2" ||
		req.EnvironmentVariables["SPARK_ENV_LOADED"] != "1" || req.ClientSparkVersion != "3.5.1" {
		t.Errorf("parsed %+v", req)
	}
	if !slices.Equal(unknown, []string{"color"}) {
		t.Errorf("unknown fields %v; want [color]", unknown)
	}
}

// Each refusal names what is wrong, as Spark's server words it.
func TestParseCreateRefusals(t *testing.T) {
	edit := func(f func(m map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(createJSON), &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	props := func(k string, v any) string {
		return edit(func(m map[string]any) {
			p := m["sparkProperties"].(map[string]any)
			if v == nil {
				delete(p, k)
			} else {
				p[k] = v
			}
		})
	}
	drop := func(k string) string { return edit(func(m map[string]any) { delete(m, k) }) }
	for _, tc := range []struct{ name, body, want string }{
		{"not JSON", `{"action": "CreateSubmissionRequest",`, "SubmitRestProtocolException: Malformed JSON"},
		{"no action", drop("action"), "SubmitRestMissingFieldException: Action field not found in JSON"},
		{"another message", edit(func(m map[string]any) { m["action"] = "KillSubmissionRequest" }), "Received message of unexpected type KillSubmissionRequest."},
		{"no client version", drop("clientSparkVersion"), "'clientSparkVersion' is missing in message CreateSubmissionRequest."},
		{"no app resource", drop("appResource"), "'appResource' is missing in message CreateSubmissionRequest."},
		{"no properties", drop("sparkProperties"), "'sparkProperties' is missing in message CreateSubmissionRequest."},
		{"no app name", props("spark.app.name", nil), "'spark.app.name' is missing in message CreateSubmissionRequest."},
		{"supervise", props("spark.driver.supervise", "maybe"), "Property 'spark.driver.supervise' expected boolean value: actual was 'maybe'."},
		{"cores", props("spark.driver.cores", "two"), "Property 'spark.driver.cores' expected numeric value: actual was 'two'."},
		{"zero cores", props("spark.driver.cores", "0"), "Property 'spark.driver.cores' must be positive"},
		{"memory", props("spark.driver.memory", "lots"), "Property 'spark.driver.memory' expected memory value: actual was 'lots'."},
		{"executor memory", props("spark.executor.memory", "1q"), "Property 'spark.executor.memory' expected memory value"},
		{"no main class", drop("mainClass"), "Main class is missing."},
		{"no arguments", drop("appArgs"), "Application arguments are missing."},
		{"no environment", drop("environmentVariables"), "Environment variables are missing."},
		{"unsupported jar", edit(func(m map[string]any) { m["appResource"] = "s3://b/app.jar" }), "appResource \"s3://b/app.jar\": the s3: scheme is not supported"},
	} {
		_, _, err := ParseCreate([]byte(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.name, err, tc.want)
		}
	}
}

// Responses carry Spark's field names; success is there when false, and
// fields a response type does not have are left out.
func TestResponseShapes(t *testing.T) {
	keys := func(v any) []string {
		b, _ := json.Marshal(v)
		var m map[string]any
		json.Unmarshal(b, &m)
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	}
	for _, tc := range []struct {
		r    Response
		want []string
	}{
		{Response{Action: ActionCreateResponse, ServerSparkVersion: SparkVersion, Success: true, Message: "m", SubmissionID: "driver-1"},
			[]string{"action", "message", "serverSparkVersion", "submissionId", "success"}},
		{Response{Action: ActionStatusResponse, ServerSparkVersion: SparkVersion, SubmissionID: "driver-1", DriverState: StateNotFound},
			[]string{"action", "driverState", "serverSparkVersion", "submissionId", "success"}},
		{Response{Action: ActionError, ServerSparkVersion: SparkVersion, Message: "m", HighestProtocolVersion: "v1"},
			[]string{"action", "highestProtocolVersion", "message", "serverSparkVersion", "success"}},
	} {
		if got := keys(tc.r); !slices.Equal(got, tc.want) {
			t.Errorf("%s has fields %v; want %v", tc.r.Action, got, tc.want)
		}
	}
}

func testDispatcher(t *testing.T, dir string) *Dispatcher {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	d, err := New(Config{Masters: []string{"127.0.0.1:1"}, Listener: ln, WorkDir: dir, SparkHome: "/opt/spark",
		MaxRetryWait: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type exchange struct {
	code int
	resp Response
	raw  string
}

func call(t *testing.T, h http.Handler, method, path, body string) exchange {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json") // as spark-submit sends
	}
	h.ServeHTTP(rec, req)
	var r Response
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatalf("%s %s: the body is not JSON: %v\n%s", method, path, err, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	if r.ServerSparkVersion != SparkVersion {
		t.Errorf("%s %s: serverSparkVersion %q", method, path, r.ServerSparkVersion)
	}
	return exchange{rec.Code, r, rec.Body.String()}
}

// Paths outside the protocol get Spark's ErrorResponse: 400 saying what
// is missing, 468 with the version spoken for another version.
func TestErrorPaths(t *testing.T) {
	h := testDispatcher(t, t.TempDir()).Handler()
	for _, tc := range []struct {
		method, path string
		code         int
		want         string
	}{
		{"GET", "/", 400, "Missing protocol version."},
		{"GET", "/v1", 400, "Missing the /submissions prefix."},
		{"POST", "/v1/submissions", 400, "Missing an action: please specify one of /create, /kill, or /status."},
		{"POST", "/v1/submissions/launch", 400, "Missing an action"},
		{"POST", "/v2/submissions/create", 468, "Unknown protocol version 'v2'."},
		{"GET", "/v1/submissions/status/", 400, "Submission ID is missing in status request."},
		{"POST", "/v1/submissions/kill", 400, "Submission ID is missing in kill request."},
		{"POST", "/v1/submissions/kill/", 400, "Submission ID is missing in kill request."},
		{"GET", "/v1/submissions/create", 405, "HTTP method GET is not supported by this URL"},
		{"POST", "/v1/submissions/create", 400, "Malformed request: "},
	} {
		x := call(t, h, tc.method, tc.path, "")
		if x.code != tc.code || x.resp.Action != ActionError || x.resp.Success || !strings.Contains(x.resp.Message, tc.want) {
			t.Errorf("%s %s = %d %s; want %d ErrorResponse %q", tc.method, tc.path, x.code, x.raw, tc.code, tc.want)
		}
		if tc.code == 468 && x.resp.HighestProtocolVersion != "v1" {
			t.Errorf("%s %s: highestProtocolVersion %q; want v1", tc.method, tc.path, x.resp.HighestProtocolVersion)
		}
	}
}

// A submission is recorded in the work directory before it is
// acknowledged; status and kill answer with the Mesos dispatcher's words;
// a dispatcher on the same directory has the submissions and numbers on.
func TestSubmitStatusKill(t *testing.T) {
	dir := t.TempDir()
	d := testDispatcher(t, dir)
	h := d.Handler()
	if x := call(t, h, "POST", "/v1/submissions/create", createJSON); x.code != 503 || x.resp.Success ||
		x.resp.Action != ActionError || x.resp.Message != "Scheduler is not ready to take requests" {
		t.Errorf("a create before subscribing = %d %s; want not ready", x.code, x.raw)
	}
	d.subscribed = true // as after SUBSCRIBED; nothing is sent without a scheduler
	x := call(t, h, "POST", "/v1/submissions/create", createJSON)
	id := x.resp.SubmissionID
	if x.code != 200 || !x.resp.Success || x.resp.Action != ActionCreateResponse ||
		!regexp.MustCompile(`^driver-\d{14}-0001$`).MatchString(id) || !slices.Equal(x.resp.UnknownFields, []string{"color"}) {
		t.Fatalf("create = %d %s", x.code, x.raw)
	}
	if _, err := os.Stat(filepath.Join(dir, "drivers", id+".json")); err != nil {
		t.Errorf("the submission is not recorded: %v", err)
	}
	if x := call(t, h, "GET", "/v1/submissions/status/"+id, ""); !x.resp.Success || x.resp.DriverState != StateQueued || x.resp.Action != ActionStatusResponse {
		t.Errorf("status = %s; want QUEUED", x.raw)
	}
	if x := call(t, h, "GET", "/v1/submissions/status/driver-x", ""); x.resp.Success || x.resp.DriverState != StateNotFound {
		t.Errorf("status of an unknown submission = %s; want NOT_FOUND", x.raw)
	}

	d2 := testDispatcher(t, dir)
	if dr, ok := d2.Get(id); !ok || dr.State != StateQueued || dr.Request.MainClass != "org.apache.spark.examples.SparkPi" {
		t.Errorf("a dispatcher on the same directory has %+v, %v", dr, ok)
	}
	d2.subscribed = true
	if x := call(t, d2.Handler(), "POST", "/v1/submissions/create", createJSON); !strings.HasSuffix(x.resp.SubmissionID, "-0002") {
		t.Errorf("the next submission after a restart is %q; want number 0002", x.resp.SubmissionID)
	}
	h = d2.Handler()
	for _, tc := range []struct {
		id, want string
		ok       bool
	}{
		{id, "Removed driver while it's still pending", true},
		{id, "Driver already terminated", false},
		{"driver-x", "Cannot find driver", false},
	} {
		x := call(t, h, "POST", "/v1/submissions/kill/"+tc.id, "")
		if x.code != 200 || x.resp.Action != ActionKillResponse || x.resp.Success != tc.ok || x.resp.Message != tc.want || x.resp.SubmissionID != tc.id {
			t.Errorf("kill %s = %s; want success %v, %q", tc.id, x.raw, tc.ok, tc.want)
		}
	}
	if x := call(t, h, "GET", "/v1/submissions/status/"+id, ""); x.resp.DriverState != StateKilled {
		t.Errorf("status after the kill = %s; want KILLED", x.raw)
	}
}

// A create needs Content-Type: application/json (spark-submit's; charset
// and other parameters allowed): a form, which a page of another site can
// post with the browser's credentials, is refused with 415 and Spark's
// ErrorResponse naming what it sent, even when its body parses as JSON
// (enctype="text/plain"), and queues nothing.
func TestCreateNeedsJSON(t *testing.T) {
	d := testDispatcher(t, t.TempDir())
	d.subscribed = true // as after SUBSCRIBED; nothing is sent without a scheduler
	h := d.Handler()
	for _, tc := range []struct{ contentType, want string }{
		{"text/plain", `Content-Type "text/plain"`},
		{"text/plain;charset=UTF-8", `Content-Type "text/plain;charset=UTF-8"`},
		{"application/x-www-form-urlencoded", `Content-Type "application/x-www-form-urlencoded"`},
		{"multipart/form-data; boundary=x", `Content-Type "multipart/form-data; boundary=x"`},
		{"application/jsonp", `Content-Type "application/jsonp"`},
		{"", "no Content-Type"},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/v1/submissions/create", strings.NewReader(createJSON))
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		h.ServeHTTP(rec, req)
		var r Response
		if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || rec.Code != http.StatusUnsupportedMediaType ||
			r.Action != ActionError || r.Success || !strings.Contains(r.Message, tc.want) || !strings.Contains(r.Message, "application/json") {
			t.Errorf("a create with %q = %d %s; want 415, an ErrorResponse naming %s and application/json", tc.contentType, rec.Code, rec.Body, tc.want)
		}
	}
	if n := len(d.Drivers()); n != 0 {
		t.Fatalf("the refused creates queued %d drivers", n)
	}
	for _, ct := range []string{"application/json", "application/json; charset=UTF-8", "Application/JSON;charset=utf-8"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/v1/submissions/create", strings.NewReader(createJSON))
		req.Header.Set("Content-Type", ct)
		h.ServeHTTP(rec, req)
		var r Response
		if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || rec.Code != http.StatusOK || !r.Success || r.Action != ActionCreateResponse {
			t.Errorf("a create with %q = %d %s; want it queued", ct, rec.Code, rec.Body)
		}
	}
	if n := len(d.Drivers()); n != 3 {
		t.Errorf("the dispatcher has %d drivers after three JSON creates, want 3", n)
	}
}

// The driver's resources: spark.driver.cores and spark.driver.memory plus
// max(384 MB, 10%), or the overhead given.
func TestDriverResources(t *testing.T) {
	d := testDispatcher(t, t.TempDir())
	for _, tc := range []struct {
		props     map[string]string
		cpus, mem float64
	}{
		{map[string]string{}, 1, 1024 + 384},
		{map[string]string{"spark.driver.cores": "0.5", "spark.driver.memory": "512m"}, 0.5, 512 + 384},
		{map[string]string{"spark.driver.memory": "8g"}, 1, 8192 + 820},
		{map[string]string{"spark.driver.memory": "2g", "spark.driver.memoryOverhead": "1g"}, 1, 2048 + 1024},
		{map[string]string{"spark.driver.memory": "2048", "spark.mesos.driver.memoryOverhead": "100m"}, 1, 2048 + 100},
	} {
		tc.props["spark.app.name"] = "x"
		dr, err := d.newDriver(&CreateSubmissionRequest{SparkProperties: tc.props})
		if err != nil || dr.CPUs != tc.cpus || dr.MemMB != tc.mem {
			t.Errorf("%v: %g cpus, %g MB, %v; want %g, %g", tc.props, dr.CPUs, dr.MemMB, err, tc.cpus, tc.mem)
		}
	}
}

// The driver's command: the home's spark-submit in client mode, local[N],
// the heap, the properties, the jar as fetched, then the arguments.
func TestDriverTask(t *testing.T) {
	d := testDispatcher(t, t.TempDir())
	req, _, err := ParseCreate([]byte(createJSON))
	if err != nil {
		t.Fatal(err)
	}
	req.SparkProperties["spark.driver.cores"] = "1.5"
	req.SparkProperties["spark.mesos.driverEnv.COLOR"] = "blue"
	dr, _ := d.newDriver(req)
	dr.TaskID = dr.ID
	task, err := d.buildTask(dr, mesos.AgentID{Value: "a1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Join(task.Command.Arguments, " ")
	want := "/opt/spark/bin/spark-submit --name SparkPi --master local[2] --deploy-mode client --driver-memory 1024m " +
		"--class org.apache.spark.examples.SparkPi --conf spark.cores.max=2 --conf spark.driver.cores=1.5 " +
		"--conf spark.executor.memory=1g --conf spark.executor.uri=http://host/spark.tgz app.jar 100"
	if args != want {
		t.Errorf("command\n %s\nwant\n %s", args, want)
	}
	if len(task.Command.URIs) != 1 || task.Command.URIs[0].Value != "http://host/app.jar" {
		t.Errorf("URIs %+v; want the app jar", task.Command.URIs)
	}
	// With agora's Spark scheduler, the application's master is that
	// scheduler, reached through the cluster manager's jar.
	d.cfg.ExecutorMaster, d.cfg.ClusterManagerJar = "mesos://10.0.0.1:7077", "/cache/agora-spark.jar"
	withExec, err := d.buildTask(dr, mesos.AgentID{Value: "a1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantExec := strings.Replace(want, "--master local[2]", "--master mesos://10.0.0.1:7077 --jars /cache/agora-spark.jar", 1)
	if got := strings.Join(withExec.Command.Arguments, " "); got != wantExec {
		t.Errorf("command with executors\n %s\nwant\n %s", got, wantExec)
	}
	env := map[string]string{}
	for _, v := range task.Command.Environment.Variables {
		env[v.Name] = v.GetValue()
	}
	if env["COLOR"] != "blue" || env["SPARK_ENV_LOADED"] != "1" || !strings.Contains(env["SPARK_SUBMIT_OPTS"], "-Dspark.mesos.driver.frameworkId=") {
		t.Errorf("environment %v", env)
	}
	for _, tc := range []struct{ res, jar, uri, err string }{
		{res: "/data/app.jar", jar: "/data/app.jar"},
		{res: "local:/data/app.jar", jar: "/data/app.jar"},
		{res: "file:/tmp/app.jar", jar: "app.jar", uri: "file:/tmp/app.jar"},
		{res: "hdfs://nn:8020/jobs/app.jar", jar: "app.jar", uri: "hdfs://nn:8020/jobs/app.jar"},
		{res: "app.jar", err: "neither a URL nor an absolute path"},
		{res: "s3://bucket/app.jar", err: "the s3: scheme is not supported"},
	} {
		jar, uris, err := appResource(tc.res)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("appResource(%q) = %v; want %q", tc.res, err, tc.err)
			}
		case err != nil || jar != tc.jar || (tc.uri == "") != (len(uris) == 0) || (tc.uri != "" && uris[0].Value != tc.uri):
			t.Errorf("appResource(%q) = %q, %v, %v", tc.res, jar, uris, err)
		}
	}
}

// A PySpark application: spark-submit sends it with an empty main class,
// which is taken, and the driver's spark-submit runs the script without
// --class; a jar without a main class is still refused.
func TestPythonDriverTask(t *testing.T) {
	d := testDispatcher(t, t.TempDir())
	var m map[string]any
	if err := json.Unmarshal([]byte(createJSON), &m); err != nil {
		t.Fatal(err)
	}
	m["mainClass"], m["appResource"] = "", "file:/srv/jobs/wordcount.py"
	b, _ := json.Marshal(m)
	req, _, err := ParseCreate(b)
	if err != nil {
		t.Fatalf("a .py application with an empty main class: %v", err)
	}
	dr, _ := d.newDriver(req)
	dr.TaskID = dr.ID
	task, err := d.buildTask(dr, mesos.AgentID{Value: "a1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Join(task.Command.Arguments, " ")
	if strings.Contains(args, "--class") || !strings.Contains(args, " wordcount.py 100") {
		t.Errorf("command %s; want the script without --class", args)
	}
	if len(task.Command.URIs) != 1 || task.Command.URIs[0].Value != "file:/srv/jobs/wordcount.py" {
		t.Errorf("URIs %+v; want the script", task.Command.URIs)
	}
	m["appResource"] = "http://host/app.jar"
	b, _ = json.Marshal(m)
	if _, _, err := ParseCreate(b); err == nil || !strings.Contains(err.Error(), "Main class is missing.") {
		t.Errorf("a jar with an empty main class: %v; want Main class is missing.", err)
	}
}

// A supervised driver whose task fails waits 1 s, then twice as long each
// time up to the maximum, and launches again as ID-retry-N; one not
// supervised ends FAILED.
func TestSuperviseBackoff(t *testing.T) {
	d := testDispatcher(t, t.TempDir())
	d.subscribed = true
	req, _, _ := ParseCreate([]byte(createJSON))
	req.SparkProperties["spark.driver.supervise"] = "true"
	dr, _ := d.newDriver(req)
	d.drivers[dr.ID], d.order = dr, append(d.order, dr.ID)
	offer := &mesos.Offer{AgentID: mesos.AgentID{Value: "a1"}, Hostname: "h1"}
	var waits []time.Duration
	var tasks []string
	for i := 0; i < 4; i++ {
		d.mu.Lock()
		if dr.State == StateRelaunching {
			dr.RetryAt = time.Time{} // due now
		}
		if _, err := d.taskLocked(dr, offer, nil); err != nil {
			t.Fatal(err)
		}
		d.mu.Unlock()
		tasks = append(tasks, dr.TaskID)
		d.update(context.Background(), mesos.TaskStatus{TaskID: mesos.TaskID{Value: dr.TaskID}, State: mesos.TASK_FAILED.Enum()})
		if dr.State != StateRelaunching {
			t.Fatalf("after a failure the supervised driver is %s", dr.State)
		}
		waits = append(waits, dr.RetryWait)
	}
	d.stopTimers()
	if !slices.Equal(waits, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}) {
		t.Errorf("waits %v; want 1s 2s 4s 4s", waits)
	}
	if !slices.Equal(tasks, []string{dr.ID, dr.ID + "-retry-1", dr.ID + "-retry-2", dr.ID + "-retry-3"}) {
		t.Errorf("tasks %v", tasks)
	}
	// An update for an earlier attempt changes nothing.
	d.update(context.Background(), mesos.TaskStatus{TaskID: mesos.TaskID{Value: dr.ID}, State: mesos.TASK_FINISHED.Enum()})
	if dr.State != StateRelaunching {
		t.Errorf("an old attempt's update moved the driver to %s", dr.State)
	}

	dr.Supervise = false
	d.mu.Lock()
	dr.RetryAt = time.Time{}
	d.taskLocked(dr, offer, nil)
	d.mu.Unlock()
	// spark-submit's exit status 101: the main class was not found.
	d.update(context.Background(), mesos.TaskStatus{TaskID: mesos.TaskID{Value: dr.TaskID}, State: mesos.TASK_FAILED.Enum(), Message: new("Command exited with status 101")})
	if dr.State != StateFailed || !strings.Contains(dr.Message, "TASK_FAILED: Command exited with status 101: main class "+dr.Request.MainClass+" not found") {
		t.Errorf("unsupervised failure: %s %q; want FAILED with the status naming the main class", dr.State, dr.Message)
	}
}

// A driver recorded as launched that the master never had (the dispatcher
// stopped between recording and launching) is queued again when
// reconciliation says so, not failed.
func TestUnlaunchedDriverRequeued(t *testing.T) {
	d := testDispatcher(t, t.TempDir())
	req, _, _ := ParseCreate([]byte(createJSON))
	dr, _ := d.newDriver(req)
	d.drivers[dr.ID], d.order = dr, append(d.order, dr.ID)
	d.mu.Lock()
	d.taskLocked(dr, &mesos.Offer{AgentID: mesos.AgentID{Value: "a1"}, Hostname: "h1"}, nil)
	d.mu.Unlock()
	d.update(context.Background(), mesos.TaskStatus{TaskID: mesos.TaskID{Value: dr.TaskID}, State: mesos.TASK_LOST.Enum(),
		Reason: mesos.REASON_RECONCILIATION.Enum()})
	if dr.State != StateQueued || dr.TaskID != "" {
		t.Errorf("a driver the master never had is %s (task %q); want QUEUED", dr.State, dr.TaskID)
	}
	// Once its task has run, a lost task is a failure.
	d.mu.Lock()
	d.taskLocked(dr, &mesos.Offer{AgentID: mesos.AgentID{Value: "a1"}, Hostname: "h1"}, nil)
	d.mu.Unlock()
	d.update(context.Background(), mesos.TaskStatus{TaskID: mesos.TaskID{Value: dr.TaskID}, State: mesos.TASK_RUNNING.Enum()})
	d.update(context.Background(), mesos.TaskStatus{TaskID: mesos.TaskID{Value: dr.TaskID}, State: mesos.TASK_LOST.Enum(),
		Reason: mesos.REASON_RECONCILIATION.Enum()})
	if dr.State != StateFailed {
		t.Errorf("a driver whose task ran and was lost is %s; want FAILED", dr.State)
	}
}

// --max_drivers bounds the drivers not ended (503 beyond it);
// --retained_drivers the ended ones kept, the oldest dropped with their
// files.
func TestDriverLimits(t *testing.T) {
	dir := t.TempDir()
	d := testDispatcher(t, dir)
	d.cfg.MaxDrivers, d.cfg.RetainedDrivers = 2, 2
	d.subscribed = true
	h := d.Handler()
	var ids []string
	for i := 0; i < 2; i++ {
		ids = append(ids, call(t, h, "POST", "/v1/submissions/create", createJSON).resp.SubmissionID)
	}
	if x := call(t, h, "POST", "/v1/submissions/create", createJSON); x.code != 503 || x.resp.Message != "Already reached maximum submission size" {
		t.Errorf("a third driver = %d %s; want 503, maximum reached", x.code, x.raw)
	}
	for i := 0; i < 3; i++ {
		if i == 2 {
			ids = append(ids, call(t, h, "POST", "/v1/submissions/create", createJSON).resp.SubmissionID)
		}
		if x := call(t, h, "POST", "/v1/submissions/kill/"+ids[i], ""); !x.resp.Success {
			t.Fatalf("kill %s: %s", ids[i], x.raw)
		}
	}
	if _, ok := d.Get(ids[0]); ok {
		t.Errorf("the oldest of 3 ended drivers is kept; want 2 kept")
	}
	if _, err := os.Stat(filepath.Join(dir, "drivers", ids[0]+".json")); !os.IsNotExist(err) {
		t.Errorf("the dropped driver's file: %v", err)
	}
	if n := len(d.Drivers()); n != 2 {
		t.Errorf("%d drivers kept; want 2", n)
	}
}
