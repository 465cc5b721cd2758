package executor

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/tlsconf"
)

// TestExecutorHonoursVerifyCert: an executor of an agent serving TLS with
// a certificate its CA bundle does not hold refuses the agent by default
// and with LIBPROCESS_SSL_VERIFY_CERT=true (no SUBSCRIBE is sent; the
// error names the certificate), takes it with
// LIBPROCESS_SSL_VERIFY_CERT=false (the SUBSCRIBE arrives), verifies it
// again when LIBPROCESS_SSL_REQUIRE_CERT=true asks for the peer's
// certificate, and reads a value that is not a boolean as an error
// naming the variable.
func TestExecutorHonoursVerifyCert(t *testing.T) {
	dir := t.TempDir()
	agentFiles, err := tlsconf.GenerateCA(filepath.Join(dir, "agent"), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherFiles, err := tlsconf.GenerateCA(filepath.Join(dir, "other"), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(agentFiles.Cert, agentFiles.Key)
	if err != nil {
		t.Fatal(err)
	}
	var subscribes atomic.Int64
	agentAPI := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		subscribes.Add(1)
		http.Error(w, "no executor API here", http.StatusServiceUnavailable)
	}))
	agentAPI.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	agentAPI.StartTLS()
	t.Cleanup(agentAPI.Close)

	for _, tc := range []struct {
		name            string
		verify, require string
		ca              string
		accepted        bool
	}{
		{name: "unset", ca: otherFiles.CA},
		{name: "verify=true", verify: "true", ca: otherFiles.CA},
		{name: "verify=false", verify: "false", ca: otherFiles.CA, accepted: true},
		{name: "verify=0 with require=true", verify: "0", require: "true", ca: otherFiles.CA},
		{name: "verify=true, the agent's CA", verify: "true", ca: agentFiles.CA, accepted: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			executorEnv(t, agentAPI.Listener.Addr().String(), tc.ca)
			t.Setenv(tlsconf.EnvVerifyCert, tc.verify)
			t.Setenv(tlsconf.EnvRequireCert, tc.require)
			cfg, err := FromEnv()
			if err != nil {
				t.Fatal(err)
			}
			cfg.InitialTimeout = 300 * time.Millisecond
			d, err := New(cfg, Funcs{})
			if err != nil {
				t.Fatal(err)
			}
			before := subscribes.Load()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = d.Run(ctx)
			arrived := subscribes.Load() > before
			switch {
			case err == nil:
				t.Fatal("Run returned nil against an agent that answers no SUBSCRIBE")
			case tc.accepted && (!arrived || !strings.Contains(err.Error(), "503")):
				t.Errorf("the agent's certificate was not accepted: SUBSCRIBE arrived=%v, %v", arrived, err)
			case !tc.accepted && (arrived || !strings.Contains(err.Error(), "certificate")):
				t.Errorf("the agent's certificate was not refused: SUBSCRIBE arrived=%v, %v", arrived, err)
			}
		})
	}
	t.Run("not a boolean", func(t *testing.T) {
		executorEnv(t, agentAPI.Listener.Addr().String(), otherFiles.CA)
		t.Setenv(tlsconf.EnvVerifyCert, "maybe")
		if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), tlsconf.EnvVerifyCert+`="maybe"`) {
			t.Errorf("FromEnv with %s=maybe: %v, want an error naming it", tlsconf.EnvVerifyCert, err)
		}
	})
}

// executorEnv is the environment an agent serving TLS at endpoint gives a
// non-checkpointing executor, with caFile as the bundle it trusts.
func executorEnv(t *testing.T, endpoint, caFile string) {
	for k, v := range map[string]string{
		"MESOS_FRAMEWORK_ID": "fw", "MESOS_EXECUTOR_ID": "ex", "MESOS_DIRECTORY": t.TempDir(),
		"MESOS_AGENT_ENDPOINT": endpoint, "MESOS_CHECKPOINT": "0",
		tlsconf.EnvEnabled: "true", tlsconf.EnvCAFile: caFile,
		tlsconf.EnvCertFile: "", tlsconf.EnvKeyFile: "", tlsconf.EnvServerName: "",
	} {
		t.Setenv(k, v)
	}
}
