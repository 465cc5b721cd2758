package agent_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/tlsconf"
)

// TestExecutorOverTLSWithToken: an agent that serves only TLS and runs
// with --authenticate_http_executors starts a command task and a custom
// executor written with the SDK, which reaches the agent over TLS (the
// CA and the token come in its environment) and runs its task to the
// end. Its executor API refuses a call without a token and one with a
// token of another key (401), a token of another executor or of an
// earlier container of this one (403), and takes the executor's own.
func TestExecutorOverTLSWithToken(t *testing.T) {
	dir := t.TempDir()
	files, err := tlsconf.GenerateCA(filepath.Join(dir, "tls"), []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, err := (&tlsconf.Flags{CertFile: files.Cert, KeyFile: files.Key}).Server()
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	c := clustertest.Start(t, clustertest.Options{Agent: func(_ int, cfg *agent.Config) {
		cfg.TLS, cfg.TLSCAFile = serverTLS, files.CA
		cfg.ExecutorSecretKey, cfg.AuthenticateHTTPExecutors = key, true
	}})
	markers := t.TempDir()
	s := subscribe(t, c.MasterURL, `{"user":"root","name":"secure-executor"}`)

	o := s.offer()
	s.launch(o, shellTask(t, "cmd", o.AgentID, "echo over-tls", "cpus:0.1;mem:32"))
	if st := s.waitTerminal("cmd"); st.GetState() != mesos.TASK_FINISHED {
		t.Fatalf("command task: %s", describe(s.statuses("cmd")))
	}

	self := testBinary(t)
	exec := mesos.ExecutorInfo{Type: mesos.ExecutorInfo_CUSTOM, ExecutorID: mesos.ExecutorID{Value: "secure"},
		Command: &mesos.CommandInfo{Value: &self, Shell: new(bool), Arguments: []string{"sdk-executor"},
			Environment: &mesos.Environment{Variables: []mesos.Environment_Variable{
				{Name: "AGORA_TEST_ROLE", Value: strp("sdk-executor")},
				{Name: "AGORA_TEST_DONE_DIR", Value: strp(markers)},
			}}},
		Resources: resources(t, "cpus:0.1;mem:32")}
	o = s.offer()
	marker := filepath.Join(markers, "go")
	s.launch(o, mesos.TaskInfo{Name: "sdk", TaskID: mesos.TaskID{Value: "sdk"}, AgentID: o.AgentID, Executor: &exec,
		Data: []byte(marker), Resources: resources(t, "cpus:0.1;mem:32")})
	running := s.waitState("sdk", mesos.TASK_RUNNING)
	container := running.GetContainerStatus().GetContainerID().GetValue()

	// The executor API, called as an executor would.
	cfg, err := tlsconf.ClientConfig(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	url := "https://" + c.Agents[0].Addr() + agent.ExecutorAPIPath
	heartbeat := func(frameworkID, executorID, token string) (int, string) {
		t.Helper()
		body := fmt.Sprintf(`{"type":"HEARTBEAT","framework_id":{"value":%q},"executor_id":{"value":%q}}`, frameworkID, executorID)
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", api.MediaJSON)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("HEARTBEAT over TLS: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	sign := func(k []byte, claims auth.ExecutorClaims) string {
		t.Helper()
		signer, err := auth.NewTokenSigner(k)
		if err != nil {
			t.Fatal(err)
		}
		token, err := signer.Sign(claims)
		if err != nil {
			t.Fatal(err)
		}
		return token
	}
	own := auth.ExecutorClaims{FrameworkID: s.id, ExecutorID: "secure", ContainerID: container}
	otherKey := bytes.Repeat([]byte("k"), 32)
	for _, tc := range []struct {
		name, executor, token string
		code                  int
		says                  string
	}{
		{"no token", "secure", "", http.StatusUnauthorized, "--authenticate_http_executors"},
		{"another key's token", "secure", sign(otherKey, own), http.StatusUnauthorized, "signature"},
		{"not a token", "secure", "abc", http.StatusUnauthorized, "not a JSON Web Token"},
		{"its token for another executor", "other", sign(key, own), http.StatusForbidden, "cannot act for executor other"},
		{"an earlier container's token", "secure", sign(key, auth.ExecutorClaims{FrameworkID: s.id, ExecutorID: "secure", ContainerID: "earlier"}),
			http.StatusForbidden, "container earlier"},
		{"its own token", "secure", sign(key, own), http.StatusAccepted, ""},
	} {
		code, body := heartbeat(s.id, tc.executor, tc.token)
		if code != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("HEARTBEAT with %s: %d %q, want %d saying %q", tc.name, code, body, tc.code, tc.says)
		}
	}

	// Plain HTTP is not served: the executor's subscription was TLS.
	if resp, err := http.Post("http://"+c.Agents[0].Addr()+agent.ExecutorAPIPath, api.MediaJSON, strings.NewReader("{}")); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP to the TLS agent: %s, want the TLS server's 400", resp.Status)
		}
	}

	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if st := s.waitTerminal("sdk"); st.GetState() != mesos.TASK_FINISHED {
		t.Fatalf("the SDK executor's task: %s", describe(s.statuses("sdk")))
	}
}

// TestExecutorOverTLSWithDNSNameCertificate: an agent whose certificate
// names only a DNS name (not the 127.0.0.1 its executors dial), and which
// requires client certificates with its own given as files, still runs an
// SDK executor's task: the executor verifies the certificate against the
// name the agent passes it and presents the agent's certificate.
func TestExecutorOverTLSWithDNSNameCertificate(t *testing.T) {
	files, err := tlsconf.GenerateCA(filepath.Join(t.TempDir(), "tls"), []string{"agent.example"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, err := (&tlsconf.Flags{CertFile: files.Cert, KeyFile: files.Key, CAFile: files.CA, RequireCert: true}).Server()
	if err != nil {
		t.Fatal(err)
	}
	c := clustertest.Start(t, clustertest.Options{Agent: func(_ int, cfg *agent.Config) {
		cfg.TLS, cfg.TLSCAFile = serverTLS, files.CA
		cfg.TLSCertFile, cfg.TLSKeyFile = files.Cert, files.Key
	}})
	markers := t.TempDir()
	s := subscribe(t, c.MasterURL, `{"user":"root","name":"dns-name-agent"}`)
	self := testBinary(t)
	exec := mesos.ExecutorInfo{Type: mesos.ExecutorInfo_CUSTOM, ExecutorID: mesos.ExecutorID{Value: "named"},
		Command: &mesos.CommandInfo{Value: &self, Shell: new(bool), Arguments: []string{"sdk-executor"},
			Environment: &mesos.Environment{Variables: []mesos.Environment_Variable{
				{Name: "AGORA_TEST_ROLE", Value: strp("sdk-executor")},
				{Name: "AGORA_TEST_DONE_DIR", Value: strp(markers)},
			}}},
		Resources: resources(t, "cpus:0.1;mem:32")}
	o := s.offer()
	marker := filepath.Join(markers, "go")
	s.launch(o, mesos.TaskInfo{Name: "sdk", TaskID: mesos.TaskID{Value: "sdk"}, AgentID: o.AgentID, Executor: &exec,
		Data: []byte(marker), Resources: resources(t, "cpus:0.1;mem:32")})
	s.waitState("sdk", mesos.TASK_RUNNING)
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if st := s.waitTerminal("sdk"); st.GetState() != mesos.TASK_FINISHED {
		t.Fatalf("the SDK executor's task: %s", describe(s.statuses("sdk")))
	}
}

// TestExecutorAuthenticationNeedsKey: --authenticate_http_executors
// without a key, or with a short one, stops the agent at New, naming the
// flag.
func TestExecutorAuthenticationNeedsKey(t *testing.T) {
	for _, tc := range []struct {
		key  []byte
		says string
	}{
		{nil, "--authenticate_http_executors needs --jwt_secret_key"},
		{[]byte("short"), "--jwt_secret_key: the secret key has 5 bytes, want at least 32"},
	} {
		_, err := agent.New(agent.Config{MasterAddr: "127.0.0.1:1", WorkDir: t.TempDir(), Listen: "127.0.0.1:0",
			ExecutorSecretKey: tc.key, AuthenticateHTTPExecutors: true})
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("agent.New with key %q: %v, want an error saying %q", tc.key, err, tc.says)
		}
	}
}
