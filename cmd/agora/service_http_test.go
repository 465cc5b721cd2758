package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/tlsconf"
	"github.com/agora-cluster/agora/cluster/webui/webuitest"
)

// TestMarathonHTTPCredentialsAndTLS: `agora marathon` with Marathon's
// --http_credentials user:password and the --ssl_* flags serves its API
// over TLS only to that user (/ping stays open), and `agora apps` calls
// it with --principal, AGORA_SECRET and --ca_file.
func TestMarathonHTTPCredentialsAndTLS(t *testing.T) {
	dir := t.TempDir()
	files, err := tlsconf.GenerateCA(filepath.Join(dir, "tls"), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		// No master answers at port 1: the API serves while the framework
		// keeps trying to subscribe.
		done <- marathonCommand(ctx, []string{"--master=127.0.0.1:1", "--work_dir", filepath.Join(dir, "work"), "--http_port=0",
			"--hostname=127.0.0.1", "--http_credentials=ops:pa:ss", "--ssl_cert_file", files.Cert, "--ssl_key_file", files.Key}, &logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("agora marathon did not stop within 30 s")
		}
	})
	listening := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)
	var addr string
	for deadline := time.Now().Add(30 * time.Second); addr == ""; time.Sleep(50 * time.Millisecond) {
		if m := listening.FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("agora marathon did not listen within 30 s: %s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "REST API on https://"+addr+" (asks for credentials, speaks TLS)") {
		t.Errorf("start-up line does not say the API is secured: %s", logs.String())
	}
	client := tlsClient(t, files.CA)
	call := func(method, path, user, pass string) (int, string) {
		req, _ := http.NewRequest(method, "https://"+addr+path, strings.NewReader(`{"id":"/x","cmd":"sleep 1","cpus":0.1,"mem":8}`))
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := call("GET", "/ping", "", ""); code != http.StatusOK {
		t.Errorf("GET /ping without credentials: %d %s, want 200", code, body)
	}
	if code, body := call("POST", "/v2/apps", "", ""); code != http.StatusUnauthorized || !strings.Contains(body, "authentication required") {
		t.Errorf("POST /v2/apps without credentials: %d %q, want 401", code, body)
	}
	if code, body := call("POST", "/v2/apps", "ops", "pa"); code != http.StatusUnauthorized || !strings.Contains(body, `invalid credentials for principal "ops"`) {
		t.Errorf("POST /v2/apps with a wrong password: %d %q, want 401", code, body)
	}
	if code, body := call("GET", "/v2/apps", "ops", "pa:ss"); code != http.StatusOK || !strings.Contains(body, `"apps":[]`) {
		t.Errorf("GET /v2/apps as ops: %d %q, want 200 and no apps (the refused POSTs created none)", code, body)
	}

	t.Setenv("AGORA_PRINCIPAL", "")
	t.Setenv("AGORA_CA_FILE", "")
	t.Setenv("AGORA_SECRET", "pa:ss")
	var out, errOut bytes.Buffer
	if code := appsList([]string{"--marathon", addr, "--principal", "ops"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "HTTPS server") {
		t.Errorf("agora apps without --ca_file (plain HTTP to a TLS port): exit %d, %q; want 1", code, errOut.String())
	}
	errOut.Reset()
	if code := appsList([]string{"--marathon", "https://" + addr, "--principal", "ops"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "--ca_file=FILE") {
		t.Errorf("agora apps over HTTPS without the CA: exit %d, %q; want 1 naming --ca_file", code, errOut.String())
	}
	errOut.Reset()
	if code := appsList([]string{"--marathon", addr, "--ca_file", files.CA}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "--principal=NAME --secret_file=FILE") {
		t.Errorf("agora apps without a principal: exit %d, %q; want 1 and the flags to pass", code, errOut.String())
	}
	errOut.Reset()
	if code := appsList([]string{"--marathon", addr, "--ca_file", files.CA, "--principal", "ops", "--json"}, &out, &errOut); code != 0 {
		t.Errorf("agora apps with credentials and the CA: exit %d, %q", code, errOut.String())
	}
}

// TestServicesRefuseBadHTTPSecurity: a malformed --http_credentials, both
// credential flags, an unreadable --credentials file or half of the TLS
// flags stop `agora marathon`, `chronos` and `dns` at start with exit 2
// naming the flag.
func TestServicesRefuseBadHTTPSecurity(t *testing.T) {
	t.Setenv("AGORA_PRINCIPAL", "")
	t.Setenv("AGORA_SECRET", "")
	dir := t.TempDir()
	commands := map[string]func(context.Context, []string, io.Writer) int{
		"marathon": marathonCommand, "chronos": chronosCommand, "dns": dnsCommand,
	}
	for name, run := range commands {
		base := []string{"--work_dir", filepath.Join(dir, name), "--http_port", "0"}
		if name == "dns" {
			base = []string{"--port", "0", "--http_port", "0"}
		}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--http_credentials", "ops"}, "--http_credentials: not of the form user:password"},
			{[]string{"--http_credentials", "ops:"}, `--http_credentials: empty password for user "ops"`},
			{[]string{"--http_credentials", "ops:pw", "--credentials", filepath.Join(dir, "creds.json")}, "give --credentials or --http_credentials, not both"},
			{[]string{"--credentials", filepath.Join(dir, "missing.json")}, "--credentials: credentials file"},
			{[]string{"--ssl_cert_file", filepath.Join(dir, "cert.pem")}, "--ssl_cert_file needs --ssl_key_file"},
		} {
			var out bytes.Buffer
			if code := run(context.Background(), append(base, c.args...), &out); code != 2 || !strings.Contains(out.String(), c.want) {
				t.Errorf("agora %s %v: exit %d, %q; want 2 and %q", name, c.args, code, out.String(), c.want)
			}
		}
	}
}

// TestMarathonUIBehindCredentials: with --http_credentials, Marathon's
// /ui/ in headless Chromium is challenged once, and with the credentials
// given at that prompt the page's own calls (/v2/apps, the /v2/events
// stream) carry them: the app appears and the stream attaches.
func TestMarathonUIBehindCredentials(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- marathonCommand(ctx, []string{"--master=127.0.0.1:1", "--work_dir", filepath.Join(dir, "work"), "--http_port=0",
			"--hostname=127.0.0.1", "--http_credentials=ops:pw"}, &logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("agora marathon did not stop within 30 s")
		}
	})
	listening := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)
	var addr string
	for deadline := time.Now().Add(30 * time.Second); addr == ""; time.Sleep(50 * time.Millisecond) {
		if m := listening.FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("agora marathon did not listen within 30 s: %s", logs.String())
		}
	}
	if code, body := webuitest.Post(t, "http://"+addr+"/v2/apps", "ops", "pw", map[string]string{"Content-Type": "application/json"},
		`{"id":"/ui-app","cmd":"sleep 600","cpus":0.1,"mem":8,"instances":1}`); code != http.StatusCreated {
		t.Fatalf("POST /v2/apps as ops: %d %s, want 201", code, body)
	}

	b := webuitest.NewBrowser(t)
	// Once: the page's own calls reuse what was given at the prompt.
	if n := webuitest.NavigateWithCredentials(t, b, "http://"+addr+"/ui/", "ops", "pw",
		`document.querySelector('#apps tr[data-app-id="/ui-app"]') !== null && document.body.dataset.live === 'true'`); n != 1 {
		t.Errorf("the browser asked for credentials %d times, want once (0: the UI is not behind them)", n)
	}
}

// TestServiceClientsKeepToTheirAddress: the master's environment
// (AGORA_CA_FILE, AGORA_PRINCIPAL without AGORA_SECRET) neither turns a
// plain service's host:port into HTTPS nor fails the command; a principal
// with no secret is mentioned only when the API asks for credentials;
// credentials given as flags are not sent over plain HTTP off this host;
// and --watch polls over the one connection the command opened.
func TestServiceClientsKeepToTheirAddress(t *testing.T) {
	files, err := tlsconf.GenerateCA(filepath.Join(t.TempDir(), "tls"), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var conns, polls atomic.Int32
	var sawAuth atomic.Bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			sawAuth.Store(true)
		}
		switch {
		case r.URL.Path == "/v2/apps" && r.Method == "GET":
			io.WriteString(w, `{"apps":[]}`)
		case r.URL.Path == "/v2/apps/locked":
			http.Error(w, "authentication required", http.StatusUnauthorized)
		case r.URL.Path == "/v2/apps/web" && r.Method == "PUT":
			io.WriteString(w, `{"deploymentId":"d1","version":"v1"}`)
		case r.URL.Path == "/v2/deployments":
			status := "running"
			if polls.Add(1) >= 3 {
				status = "success"
			}
			io.WriteString(w, `[{"id":"d1","status":"`+status+`","currentStep":1,"totalSteps":1}]`)
		default:
			http.NotFound(w, r)
		}
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	tlsSrv := httptest.NewUnstartedServer(h)
	tlsSrv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(srv.URL, "http://")

	t.Setenv("AGORA_CA_FILE", files.CA) // exported for a TLS master
	t.Setenv("AGORA_PRINCIPAL", "ops")  // without AGORA_SECRET
	t.Setenv("AGORA_SECRET", "")
	var out, errOut bytes.Buffer
	if code := appsList([]string{"--marathon", addr}, &out, &errOut); code != 0 || sawAuth.Load() {
		t.Errorf("agora apps against a plain Marathon with the master's environment: exit %d, %q (credentials sent: %v); want 0, none sent", code, errOut.String(), sawAuth.Load())
	}
	errOut.Reset()
	if code := appShow([]string{"--marathon", addr, "/locked"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "AGORA_PRINCIPAL=ops is set without its secret") || !strings.Contains(errOut.String(), "--principal=NAME --secret_file=FILE") {
		t.Errorf("agora app show on an API that asks for credentials: exit %d, %q; want 1 naming the missing secret and the flags", code, errOut.String())
	}

	// Flags: refused before anything is sent, naming the address.
	t.Setenv("AGORA_SECRET", "pa:ss")
	errOut.Reset()
	if code := appsList([]string{"--marathon", "http://192.0.2.1:8080", "--principal", "ops"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "over plain HTTP to http://192.0.2.1:8080") {
		t.Errorf("agora apps --principal to a plain remote address: exit %d, %q; want 1 refusing it by address", code, errOut.String())
	}

	out.Reset()
	errOut.Reset()
	if code := appChange("scale", []string{"--marathon", tlsSrv.URL, "--ca_file", caFile, "--principal", "ops", "web", "2", "--watch"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "deployment d1 succeeded") {
		t.Fatalf("agora app scale --watch over TLS with credentials: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("agora app scale --watch opened %d connections for %d requests; want 1", n, polls.Load()+1)
	}
}

// TestClientsKeepCredentialsOffRedirects: with two servers, a service's
// API on this host that redirects to plain HTTP on another address of
// this machine gets the command's credentials on its own address, and
// the command refuses the redirect, naming why, before anything reaches
// the other server; a redirect within the API's address keeps them. The
// master's client refuses the same hop, and follows a redirect to
// another master on this host with the credentials (as a standby's to
// the leader of `agora dev`'s masters).
func TestClientsKeepCredentialsOffRedirects(t *testing.T) {
	ip := nonLoopbackIP(t)
	var mu sync.Mutex
	var apiSaw, otherSaw []string
	note := func(to *[]string, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		*to = append(*to, r.URL.Path+" "+r.Header.Get("Authorization"))
	}
	saw := func(from *[]string) string {
		mu.Lock()
		defer mu.Unlock()
		s := strings.Join(*from, "|")
		*from = nil
		return s
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		note(&otherSaw, r)
		io.WriteString(w, `{"app":{"id":"/moved"}}`)
	}))
	other.Listener.Close()
	other.Listener = ln
	other.Start()
	t.Cleanup(other.Close)
	var api *httptest.Server
	api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		note(&apiSaw, r)
		switch r.URL.Path {
		case "/v2/apps/moved", "/master/state":
			http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
		case "/v2/apps/renamed":
			http.Redirect(w, r, "/v2/apps/web", http.StatusTemporaryRedirect)
		case "/standby/master/state":
			http.Redirect(w, r, "http://localhost:"+api.URL[strings.LastIndexByte(api.URL, ':')+1:]+"/leader/master/state", http.StatusTemporaryRedirect)
		case "/v2/apps/web":
			io.WriteString(w, `{"app":{"id":"/web"}}`)
		default:
			io.WriteString(w, `{}`)
		}
	}))
	t.Cleanup(api.Close)
	t.Setenv("AGORA_PRINCIPAL", "")
	t.Setenv("AGORA_SECRET", "pa:ss")
	basic := "Basic b3BzOnBhOnNz" // ops:pa:ss

	var out, errOut bytes.Buffer
	if code := appShow([]string{"--marathon", api.URL, "--principal", "ops", "--json", "moved"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "refusing to send the credentials of ops on the redirect") ||
		!strings.Contains(errOut.String(), "plain HTTP off this host") {
		t.Errorf("agora app show, redirected to plain HTTP at %s: exit %d, %q; want 1 refusing the redirect", ip, code, errOut.String())
	}
	if got, want := saw(&apiSaw), "/v2/apps/moved "+basic; got != want {
		t.Errorf("the API saw %q; want %q", got, want)
	}
	if got := saw(&otherSaw); got != "" {
		t.Errorf("the server the API redirected to saw %q; want nothing", got)
	}
	errOut.Reset()
	if code := appShow([]string{"--marathon", api.URL, "--principal", "ops", "--json", "renamed"}, &out, &errOut); code != 0 {
		t.Errorf("agora app show, redirected within the API: exit %d, %q; want 0", code, errOut.String())
	}
	if got, want := saw(&apiSaw), "/v2/apps/renamed "+basic+"|/v2/apps/web "+basic; got != want {
		t.Errorf("the API saw %q; want %q", got, want)
	}

	masters := (&clientOptions{cred: auth.Credential{Principal: "ops", Secret: "pa:ss"}}).state()
	var doc map[string]any
	err = masters.Get(context.Background(), api.URL, "/master/state", &doc)
	if err == nil || !strings.Contains(err.Error(), "refusing to send the credentials of ops") || !strings.Contains(err.Error(), "plain HTTP off this host") {
		t.Errorf("the master's client, redirected to plain HTTP at %s: %v; want the redirect refused", ip, err)
	}
	if got := saw(&otherSaw); got != "" {
		t.Errorf("the server the master redirected to saw %q; want nothing", got)
	}
	saw(&apiSaw)
	if err := masters.Get(context.Background(), api.URL, "/standby/master/state", &doc); err != nil {
		t.Errorf("the master's client, redirected to another master on this host: %v", err)
	}
	if got, want := saw(&apiSaw), "/standby/master/state "+basic+"|/leader/master/state "+basic; got != want {
		t.Errorf("the masters saw %q; want %q", got, want)
	}
}

// nonLoopbackIP is an IPv4 address of this machine off its loopback: a
// server there stands for another host that plain HTTP would cross a
// network to reach.
func nonLoopbackIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("this machine's addresses: %v", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Skip("this machine has no address off its loopback")
	return ""
}
