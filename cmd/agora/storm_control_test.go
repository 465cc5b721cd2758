package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/frameworks/state"
	nativefw "github.com/agora-cluster/agora/storm/native/framework"
)

// authRecorder is a test server standing in for a native topology's
// control or an agent: it records the Authorization header of each
// request it gets.
type authRecorder struct {
	mu   sync.Mutex
	seen []string // "PATH AUTHORIZATION"
}

func (a *authRecorder) record(r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen = append(a.seen, r.URL.Path+" "+r.Header.Get("Authorization"))
}

// take is what was recorded since the last take.
func (a *authRecorder) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.seen
	a.seen = nil
	return s
}

// basicOf is the value of an Authorization header of user and password.
func basicOf(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

// fakeControl serves a control's POST /deactivate on ln (nil: loopback).
func fakeControl(t *testing.T, ln net.Listener) (*httptest.Server, *authRecorder) {
	t.Helper()
	rec := &authRecorder{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		json.NewEncoder(w).Encode(nativeStatusReply{Status: "INACTIVE", Workers: 1})
	}))
	if ln != nil {
		srv.Listener.Close()
		srv.Listener = ln
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, rec
}

// fakeNativeMaster serves /master/state listing a native framework whose
// webui_url is control and whose task is topology wc, to callers
// presenting principal op with secret opsecret only.
func fakeNativeMaster(t *testing.T, control string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "op" || p != "opsecret" {
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"frameworks": []map[string]any{
			{"id": "fw-1", "name": nativefw.Name, "webui_url": control, "tasks": []map[string]string{{"name": "wc"}}},
		}})
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// The CLI presents the master's credentials to the master only: the
// control (the framework's webui_url, which any framework may set) gets
// none, or its own (--control_principal), and those never over plain
// HTTP off this host unless --control_insecure; a refusal sends nothing.
func TestStormControlGetsItsOwnCredentials(t *testing.T) {
	dir := t.TempDir()
	opSecret, pageSecret := filepath.Join(dir, "op"), filepath.Join(dir, "page")
	if err := os.WriteFile(opSecret, []byte("opsecret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pageSecret, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	asOp := []string{"wc", "--runtime", "native", "--principal", "op", "--secret_file", opSecret}
	asPage := []string{"--control_principal", "ops", "--control_secret_file", pageSecret}
	pageBasic := "Basic " + basicOf("ops", "pw")

	local, localSaw := fakeControl(t, nil)
	master := fakeNativeMaster(t, local.URL)
	if code, out, errOut := runStormCmd(stormDeactivateCmd, append(asOp, "--master", master)...); code != 0 || !strings.Contains(out, "deactivated wc") {
		t.Fatalf("deactivate with the master's credentials: exit %d, %q %q", code, out, errOut)
	}
	if got := localSaw.take(); len(got) != 1 || got[0] != "/deactivate " {
		t.Errorf("the control saw %q; want /deactivate with no credentials", got)
	}
	if code, _, errOut := runStormCmd(stormDeactivateCmd, append(append(asOp, "--master", master), asPage...)...); code != 0 {
		t.Fatalf("deactivate with the control's credentials: exit %d, %q", code, errOut)
	}
	if got := localSaw.take(); len(got) != 1 || got[0] != "/deactivate "+pageBasic {
		t.Errorf("the control saw %q; want /deactivate with ops's credentials only", got)
	}

	// A control off this host over plain HTTP.
	ln, err := net.Listen("tcp", net.JoinHostPort(nonLoopbackIP(t), "0"))
	if err != nil {
		t.Fatal(err)
	}
	remote, remoteSaw := fakeControl(t, ln)
	master = fakeNativeMaster(t, remote.URL)
	code, _, errOut := runStormCmd(stormRebalanceCmd, append(append(asOp, "--master", master), asPage...)...)
	if code != 2 || !strings.Contains(errOut, "refusing to send the credentials of ops over plain HTTP to "+remote.URL) || !strings.Contains(errOut, "--control_insecure") {
		t.Errorf("rebalance with the control's credentials to %s: exit %d, %q; want 2 and the refusal", remote.URL, code, errOut)
	}
	if got := remoteSaw.take(); len(got) != 0 {
		t.Errorf("the refused control saw %q; want nothing", got)
	}
	if code, _, errOut := runStormCmd(stormActivateCmd, append(asOp, "--master", master)...); code != 0 {
		t.Fatalf("activate without the control's credentials: exit %d, %q", code, errOut)
	}
	if got := remoteSaw.take(); len(got) != 1 || got[0] != "/activate " {
		t.Errorf("the control off this host saw %q; want /activate with no credentials", got)
	}
	if code, _, errOut := runStormCmd(stormDeactivateCmd, append(append(asOp, "--master", master, "--control_insecure"), asPage...)...); code != 0 {
		t.Fatalf("deactivate with --control_insecure: exit %d, %q", code, errOut)
	}
	if got := remoteSaw.take(); len(got) != 1 || got[0] != "/deactivate "+pageBasic {
		t.Errorf("with --control_insecure the control saw %q; want ops's credentials only", got)
	}
}

// A worker's metrics are read from its agent over HTTPS when the
// command's cluster is on HTTPS, and the command's credentials go to an
// agent over plain HTTP only on this host's loopback.
func TestWorkerMetricsCredentialsGoOnlyWhereSafe(t *testing.T) {
	cred := auth.Credential{Principal: "op", Secret: "opsecret"}
	opBasic := "Basic " + basicOf("op", "opsecret")
	agentHandler := func(rec *authRecorder) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec.record(r)
			if r.URL.Path == "/state" {
				json.NewEncoder(w).Encode(state.AgentState{Frameworks: []state.AgentFramework{{Executors: []state.Executor{{ID: "t1", Directory: "/sandbox"}}}}})
				return
			}
			w.Write([]byte(`{}`))
		})
	}
	read := func(mc state.Client, addr string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := workerMetrics(ctx, mc, state.Agent{ID: "a1", Hostname: "agent", PID: "slave(1)@" + addr}, "t1"); err != nil {
			t.Fatalf("metrics from the agent at %s: %v", addr, err)
		}
	}
	want := func(rec *authRecorder, auth, why string) {
		t.Helper()
		got := rec.take()
		if len(got) != 2 || got[0] != "/state "+auth || got[1] != "/files/download "+auth {
			t.Errorf("%s: the agent saw %q; want /state and /files/download with %q", why, got, auth)
		}
	}

	// Over HTTPS (the cluster's CA), with the credentials.
	tlsRec := &authRecorder{}
	tlsSrv := httptest.NewTLSServer(agentHandler(tlsRec))
	t.Cleanup(tlsSrv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(tlsSrv.Certificate())
	read(stateClient(cred, &tls.Config{RootCAs: pool}, auth.LeaderRedirect), strings.TrimPrefix(tlsSrv.URL, "https://"))
	want(tlsRec, opBasic, "an agent over HTTPS")

	// Over plain HTTP on loopback, with them; off this host, without.
	mc := stateClient(cred, nil, auth.LeaderRedirect)
	localRec := &authRecorder{}
	local := httptest.NewServer(agentHandler(localRec))
	t.Cleanup(local.Close)
	read(mc, strings.TrimPrefix(local.URL, "http://"))
	want(localRec, opBasic, "an agent on loopback")
	ln, err := net.Listen("tcp", net.JoinHostPort(nonLoopbackIP(t), "0"))
	if err != nil {
		t.Fatal(err)
	}
	remoteRec := &authRecorder{}
	remote := httptest.NewUnstartedServer(agentHandler(remoteRec))
	remote.Listener.Close()
	remote.Listener = ln
	remote.Start()
	t.Cleanup(remote.Close)
	read(mc, ln.Addr().String())
	want(remoteRec, "", "an agent off this host over plain HTTP")
}
