package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	sched "github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/frameworks/oneshot"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

var (
	operator  = auth.Credential{Principal: "operator", Secret: "op-secret"}
	agentCred = auth.Credential{Principal: "agent", Secret: "agent-secret"}
	framework = auth.Credential{Principal: "analytics", Secret: "fw-secret"}
)

// secureCluster runs a master with all four --authenticate_* flags on and
// one agent that presents agentCred; agents started later present none.
func secureCluster(t *testing.T) *clustertest.Cluster {
	t.Helper()
	creds, err := auth.ParseCredentials([]byte(`{"credentials": [
		{"principal": "operator", "secret": "op-secret"},
		{"principal": "agent", "secret": "`+auth.HashSecret("agent-secret")+`"},
		{"principal": "analytics", "secret": "fw-secret"}]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Options{Credentials: creds, Frameworks: true, Agents: true, HTTPReadOnly: true, HTTPReadWrite: true})
	if err != nil {
		t.Fatal(err)
	}
	return clustertest.Start(t, clustertest.Options{
		Master: func(c *master.Config) { c.HTTP.Auth = authn },
		Agent: func(i int, c *agent.Config) {
			if i == 0 {
				c.Credential = agentCred
			}
			c.HTTP.Auth = authn.Clone() // the agent's own endpoints too
		},
		Credential: operator,
	})
}

// do sends one request to the master with cred (none if empty) and
// returns the status and body.
func do(t *testing.T, c *clustertest.Cluster, method, path, contentType, body string, cred auth.Credential) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, c.MasterURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	cred.Apply(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != `Basic realm="agora"` {
		t.Errorf("%s %s: 401 without Basic's challenge (WWW-Authenticate %q)", method, path, resp.Header.Get("WWW-Authenticate"))
	}
	return resp.StatusCode, string(b)
}

// failures is the master's count of refused authentications.
func failures(t *testing.T, c *clustertest.Cluster) float64 {
	t.Helper()
	code, body := do(t, c, http.MethodGet, "/metrics/snapshot", "", "", operator)
	var m map[string]float64
	if err := json.Unmarshal([]byte(body), &m); code != http.StatusOK || err != nil {
		t.Fatalf("/metrics/snapshot: %d %s (%v)", code, body, err)
	}
	return m["master/http_authentication_failures"]
}

// TestClusterAuthenticatedEndpoints: with the readonly and readwrite flags
// on, the master's endpoints answer 401 without credentials or with wrong
// ones (counted), work with the right ones, and a refused change changes
// nothing; /health and /version stay open.
func TestClusterAuthenticatedEndpoints(t *testing.T) {
	c := secureCluster(t)
	before := failures(t, c)
	wrong := auth.Credential{Principal: "operator", Secret: "guess"}
	for _, tc := range []struct {
		method, path, contentType, body string
		cred                            auth.Credential
		code                            int
		says                            string
	}{
		{"GET", "/master/state", "", "", auth.Credential{}, 401, "--authenticate_http_readonly"},
		{"GET", "/master/state", "", "", wrong, 401, `invalid credentials for principal "operator"`},
		{"GET", "/state", "", "", auth.Credential{}, 401, "--authenticate_http_readonly"},
		{"GET", "/metrics/snapshot", "", "", auth.Credential{}, 401, "--authenticate_http_readonly"},
		{"GET", "/", "", "", auth.Credential{}, 401, "--authenticate_http_readonly"},
		{"POST", "/api/v1", "application/json", `{"type":"GET_HEALTH"}`, auth.Credential{}, 401, "--authenticate_http_readwrite"},
		{"PUT", "/weights", "application/json", `[{"role":"eng","weight":2.5}]`, auth.Credential{}, 401, "--authenticate_http_readwrite"},
		{"PUT", "/weights", "application/json", `[{"role":"eng","weight":2.5}]`, wrong, 401, "invalid credentials"},
		{"GET", "/health", "", "", auth.Credential{}, 200, ""},
		{"GET", "/version", "", "", auth.Credential{}, 200, "version"},
		{"GET", "/master/state", "", "", operator, 200, `"slaves"`},
		{"POST", "/api/v1", "application/json", `{"type":"GET_HEALTH"}`, operator, 200, "healthy"},
	} {
		code, body := do(t, c, tc.method, tc.path, tc.contentType, tc.body, tc.cred)
		if code != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("%s %s as %q: %d %q, want %d saying %q", tc.method, tc.path, tc.cred.Principal, code, body, tc.code, tc.says)
		}
	}
	// Eight requests above were refused.
	if got := failures(t, c); got != before+8 {
		t.Errorf("master/http_authentication_failures went from %v to %v, want +8", before, got)
	}
	if _, body := do(t, c, "GET", "/weights", "", "", operator); strings.Contains(body, "eng") {
		t.Errorf("a refused PUT /weights changed the weights: %s", body)
	}
}

// TestClusterAgentEndpoints: an agent with --authenticate_http_readonly
// answers 401 without credentials (counted in its own metrics) and 200
// with them; the master's relay passes the caller's credentials on.
func TestClusterAgentEndpoints(t *testing.T) {
	c := secureCluster(t)
	ag := c.Agents[0]
	get := func(url string, cred auth.Credential) (int, string) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		cred.Apply(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	agentURL := "http://" + ag.Addr()
	for _, tc := range []struct {
		url  string
		cred auth.Credential
		code int
	}{
		{agentURL + "/state", auth.Credential{}, 401},
		{agentURL + "/files/debug", auth.Credential{}, 401},
		{agentURL + "/health", auth.Credential{}, 200},
		{agentURL + "/state", operator, 200},
		{c.MasterURL + "/agent/" + ag.ID() + "/state", auth.Credential{}, 401},
		{c.MasterURL + "/agent/" + ag.ID() + "/state", operator, 200},
	} {
		if code, body := get(tc.url, tc.cred); code != tc.code {
			t.Errorf("GET %s as %q: %d %q, want %d", tc.url, tc.cred.Principal, code, body, tc.code)
		}
	}
	_, body := get(agentURL+"/metrics/snapshot", operator)
	var m map[string]float64
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("agent /metrics/snapshot: %v: %s", err, body)
	}
	if m["slave/http_authentication_failures"] != 2 || m["slave/http_authentication_successes"] < 3 {
		t.Errorf("agent metrics: failures %v (want 2), successes %v (want at least 3)",
			m["slave/http_authentication_failures"], m["slave/http_authentication_successes"])
	}
}

// TestClusterAgentAuthentication: with --authenticate_agents, the agent
// with a credential registered (secureCluster waited for it) and one
// without is refused until it gives up; the master never lists it.
func TestClusterAgentAuthentication(t *testing.T) {
	c := secureCluster(t)
	before := failures(t, c)
	stranger := c.StartAgent(1, "")
	deadline := time.Now().Add(60 * time.Second)
	for failures(t, c) < before+2 { // two attempts refused: it retries, and is refused again
		if time.Now().After(deadline) {
			t.Fatal("the agent without a credential made no refused registration attempt in 60 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	s, err := c.State()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Slaves) != 1 || stranger.Registered() || stranger.ID() != "" {
		t.Errorf("master lists %d agents (want 1, the one with a credential); the stranger registered=%v id=%q",
			len(s.Slaves), stranger.Registered(), stranger.ID())
	}
}

// TestClusterFrameworkAuthentication: with --authenticate_frameworks, a
// framework without credentials cannot subscribe, one whose
// FrameworkInfo.principal is not its own is refused, and one with the
// right credentials runs a task to the end under its principal.
func TestClusterFrameworkAuthentication(t *testing.T) {
	c := secureCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	task := oneshot.Spec{Command: []string{"true"}, CPUs: 0.1, Mem: 32}

	anonymous, err := oneshot.New(oneshot.Config{Masters: []string{c.MasterAddr}, MaxConnectFailures: 1, Task: task})
	if err != nil {
		t.Fatal(err)
	}
	var apiErr *scheduler.APIError
	if _, err := anonymous.Run(ctx); !errors.As(err, &apiErr) || apiErr.Code != http.StatusUnauthorized {
		t.Fatalf("a framework without credentials: %v, want a 401", err)
	}

	other := "someone-else"
	d, err := scheduler.New(scheduler.Config{
		Masters: []string{c.MasterAddr}, MaxConnectFailures: 1,
		Framework: mesos.FrameworkInfo{Name: "impostor", Principal: &other},
		Principal: framework.Principal, Secret: framework.Secret,
	}, scheduler.Funcs{})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Run(ctx)
	if !errors.As(err, &apiErr) || apiErr.Code != http.StatusBadRequest ||
		!strings.Contains(apiErr.Message, "'analytics' does not match principal 'someone-else'") {
		t.Fatalf("a framework claiming another principal: %v, want a 400 naming both", err)
	}

	job, err := oneshot.New(oneshot.Config{Masters: []string{c.MasterAddr}, MaxConnectFailures: 3, Task: task,
		Principal: framework.Principal, Secret: framework.Secret})
	if err != nil {
		t.Fatal(err)
	}
	res, err := job.Run(ctx)
	if err != nil {
		t.Fatalf("a framework with credentials: %v", err)
	}
	if res.Status.GetState() != mesos.TASK_FINISHED {
		t.Fatalf("its task ended %s: %s", res.Status.GetState(), res.Status.GetMessage())
	}
	_, body := do(t, c, "GET", "/master/frameworks", "", "", operator)
	if !strings.Contains(body, `"principal":"analytics"`) {
		t.Errorf("/master/frameworks does not show the framework's principal (the SDK's default): %s", body)
	}
}

// TestClusterMesosGoBasicAuth: mesos-go's httpsched client subscribes with
// HTTP Basic credentials (httpcli.BasicAuth), and its HTTP client without
// them is refused. (httpsched itself does not return on a refused
// SUBSCRIBE before its context ends, so the refusal is checked one level
// down.)
func TestClusterMesosGoBasicAuth(t *testing.T) {
	c := secureCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := func(opts ...httpcli.ConfigOpt) *httpcli.Client {
		return httpcli.New(httpcli.Endpoint(c.MasterURL+"/api/v1/scheduler"),
			httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]), httpcli.Do(httpcli.With(opts...)))
	}
	principal := framework.Principal
	info := &mesos.FrameworkInfo{User: "root", Name: "mesos-go", Principal: &principal}
	subscribe := func(opts ...httpcli.ConfigOpt) (*sched.Event, error) {
		callCtx, stop := context.WithCancel(ctx)
		resp, err := httpsched.NewCaller(client(opts...)).Call(callCtx, calls.Subscribe(info))
		if err != nil {
			stop()
			return nil, err
		}
		// mesos-go's Close drains the stream: end it first.
		defer func() { stop(); resp.Close() }()
		var ev sched.Event
		return &ev, resp.Decode(&ev)
	}
	// mesos-go maps a 401 to "call not authenticated".
	if resp, err := client().Do(calls.Subscribe(info), httpcli.Context(ctx)); err == nil || !strings.Contains(err.Error(), "not authenticated") {
		if resp != nil {
			resp.Close()
		}
		t.Fatalf("mesos-go without credentials: %v, want 401 Unauthorized", err)
	}
	ev, err := subscribe(httpcli.BasicAuth(framework.Principal, framework.Secret))
	if err != nil {
		t.Fatalf("httpsched with Basic credentials: %v", err)
	}
	if ev.GetType() != sched.Event_SUBSCRIBED || ev.GetSubscribed().FrameworkID.GetValue() == "" {
		t.Fatalf("first event %s, want SUBSCRIBED with a framework ID", ev.GetType())
	}
}

// TestClusterCallsNeedTheFrameworksPrincipal: with
// --authenticate_frameworks, the calls after SUBSCRIBE must come from the
// principal the framework subscribed as. Another valid principal holding
// the framework's ID and stream ID is refused with a 403 naming both, and
// nothing changes: the offer stays outstanding, the framework stays
// active. The framework's own principal then makes the same calls.
func TestClusterCallsNeedTheFrameworksPrincipal(t *testing.T) {
	c := secureCluster(t)
	s := clustertest.SubscribeWith(t, c.MasterURL, `{"user":"root","name":"team-a","principal":"analytics"}`, framework)
	offer := s.Offer()

	s.Credential = operator // valid credentials, but not the framework's principal
	for _, call := range []*sched.Call{
		{Type: sched.Call_DECLINE, Decline: &sched.Call_Decline{OfferIDs: []mesos.OfferID{offer.ID}}},
		{Type: sched.Call_TEARDOWN},
	} {
		code, body := s.CallBody(call)
		if code != http.StatusForbidden || !strings.Contains(body, "'operator' does not match principal 'analytics'") ||
			!strings.Contains(body, call.GetType().String()) {
			t.Errorf("%s as another principal: %d %q, want 403 naming both principals and the call", call.GetType(), code, body)
		}
	}
	type frameworks struct {
		Frameworks []struct {
			ID     string `json:"id"`
			Active bool   `json:"active"`
			Offers []struct {
				ID string `json:"id"`
			} `json:"offers"`
		} `json:"frameworks"`
	}
	look := func() (active bool, offers []string) {
		_, body := do(t, c, "GET", "/master/frameworks", "", "", operator)
		var fs frameworks
		if err := json.Unmarshal([]byte(body), &fs); err != nil {
			t.Fatalf("/master/frameworks: %v: %s", err, body)
		}
		for _, f := range fs.Frameworks {
			if f.ID == s.ID {
				for _, o := range f.Offers {
					offers = append(offers, o.ID)
				}
				return f.Active, offers
			}
		}
		return false, nil
	}
	if active, offers := look(); !active || len(offers) != 1 || offers[0] != offer.ID.Value {
		t.Fatalf("after the refused calls: active %v, offers %v; want the framework active holding offer %s", active, offers, offer.ID.Value)
	}

	s.Credential = framework
	if code, body := s.CallBody(&sched.Call{Type: sched.Call_DECLINE, Decline: &sched.Call_Decline{OfferIDs: []mesos.OfferID{offer.ID}}}); code != http.StatusAccepted {
		t.Fatalf("DECLINE as the framework's principal: %d %s", code, body)
	}
	if code, body := s.CallBody(&sched.Call{Type: sched.Call_TEARDOWN}); code != http.StatusAccepted {
		t.Fatalf("TEARDOWN as the framework's principal: %d %s", code, body)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if active, _ := look(); !active {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the framework is still active 30 s after its own TEARDOWN")
		}
	}
}
