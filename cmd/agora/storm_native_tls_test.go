package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/tlsconf"
)

// secureNativeCluster is a master that asks for credentials everywhere
// (frameworks and both HTTP kinds) and speaks TLS with a certificate of
// CA masterCA, an agent that verifies it, and the operator's secret file.
type secureNativeCluster struct {
	dir, master, path string
	masterCA          tlsconf.Files
	secret            string // ops's secret file
	mc                func() *http.Client
}

func startSecureNativeCluster(t *testing.T) secureNativeCluster {
	t.Helper()
	c := secureNativeCluster{dir: t.TempDir()}
	var err error
	if c.masterCA, err = tlsconf.GenerateCA(filepath.Join(c.dir, "master-tls"), []string{"127.0.0.1", "localhost"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(c.dir, "credentials.json")
	if err := os.WriteFile(creds, []byte(`{"credentials": [{"principal": "ops", "secret": "pw"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c.secret = filepath.Join(c.dir, "ops.secret")
	if err := os.WriteFile(c.secret, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := tlsconf.ClientConfig(c.masterCA.CA)
	if err != nil {
		t.Fatal(err)
	}
	mc := stateClient(auth.Credential{Principal: "ops", Secret: "pw"}, cfg, auth.LeaderRedirect)
	c.master, c.path = startNativeStormClusterIn(t, c.dir, mc,
		[]string{"--credentials=" + creds, "--authenticate_frameworks", "--authenticate_http_readonly", "--authenticate_http_readwrite",
			"--ssl_cert_file=" + c.masterCA.Cert, "--ssl_key_file=" + c.masterCA.Key},
		[]string{"--ssl_ca_file=" + c.masterCA.CA})
	return c
}

// TestStormNativeControlOverTLS: on a master that asks every caller for
// credentials and speaks TLS, `agora storm submit --runtime native` with
// --principal, --secret_file and --ca_file subscribes (the master refuses
// frameworks without credentials) and, with --ssl_cert_file and
// --ssl_key_file, serves its control port over HTTPS, advertised as an
// https webui_url. The port refuses plain HTTP; the page and its API ask
// for --http_credentials over TLS; deactivate refuses a control whose
// certificate its --ca_file does not verify, saying what to pass, and
// works with a bundle of both CAs; list reads the status over TLS; kill
// with the master's CA ends the topology.
func TestStormNativeControlOverTLS(t *testing.T) {
	c := startSecureNativeCluster(t)
	// The control's certificate comes from a CA of its own: the CLI's
	// --ca_file must name it, the master's alone does not verify it.
	controlCA, err := tlsconf.GenerateCA(filepath.Join(c.dir, "control-tls"), []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(c.dir, "both-cas.pem")
	if err := os.WriteFile(bundle, []byte(mustRead(t, c.masterCA.CA)+mustRead(t, controlCA.CA)), 0o644); err != nil {
		t.Fatal(err)
	}
	asOps := []string{"--principal", "ops", "--secret_file", c.secret}

	sub := submitNative(t, c.dir, c.master, c.path, "wc", 1, append(asOps, "--ca_file", c.masterCA.CA,
		"--http_credentials", "viewer:seen", "--ssl_cert_file", controlCA.Cert, "--ssl_key_file", controlCA.Key)...)
	if strings.Contains(sub.out.String(), "WARNING") {
		t.Errorf("a submission with page credentials over TLS is warned of: %s", sub.out.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, _ := tlsconf.ClientConfig(c.masterCA.CA)
	base, err := nativeControlURL(ctx, stateClient(auth.Credential{Principal: "ops", Secret: "pw"}, cfg, auth.LeaderRedirect), c.master, "wc")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("the framework's webui_url is %q, want https://", base)
	}

	// Plain HTTP on the control port gets no answer of the control.
	plain := "http://" + strings.TrimPrefix(base, "https://")
	if resp, err := http.Get(plain + "/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("GET %s/status over plain HTTP: %s, want it refused", plain, resp.Status)
		}
	}
	// An unknown certificate is refused by a client that does not trust it.
	if resp, err := tlsClient(t, c.masterCA.CA).Get(base + "/status"); err == nil {
		resp.Body.Close()
		t.Errorf("GET %s/status trusting the master's CA only: %s, want the certificate refused", base, resp.Status)
	}
	// The page over TLS, behind its credentials.
	page := tlsClient(t, controlCA.CA)
	get := func(user, password string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/topologies", nil)
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := page.Do(req)
		if err != nil {
			t.Fatalf("GET %s/api/v1/topologies: %v", base, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("", ""); code != http.StatusUnauthorized {
		t.Errorf("the page's API without credentials: %d, want 401", code)
	}
	if code := get("viewer", "seen"); code != http.StatusOK {
		t.Errorf("the page's API with --http_credentials over TLS: %d, want 200", code)
	}

	viewerSecret := filepath.Join(c.dir, "viewer.secret")
	if err := os.WriteFile(viewerSecret, []byte("seen\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	asViewer := []string{"--control_principal", "viewer", "--control_secret_file", viewerSecret}
	deactivate := append(append([]string{"wc", "--runtime", "native", "--master", c.master}, asOps...), asViewer...)
	code, out, errOut := runStormCmd(stormDeactivateCmd, append(deactivate, "--ca_file", c.masterCA.CA)...)
	if code != 1 || !strings.Contains(errOut, "does not verify") || !strings.Contains(errOut, "--ca_file") {
		t.Fatalf("deactivate trusting the master's CA only: exit %d, %q %q; want 1 naming the certificate and --ca_file", code, out, errOut)
	}
	if code, out, errOut := runStormCmd(stormDeactivateCmd, append(deactivate, "--ca_file", bundle)...); code != 0 || !strings.Contains(out, "deactivated wc") {
		t.Fatalf("deactivate with both CAs: exit %d, %q %q", code, out, errOut)
	}
	code, out, errOut = runStormCmd(stormListCmd, append([]string{"--runtime", "native", "--master", c.master, "--ca_file", bundle}, asOps...)...)
	if code != 0 || !strings.Contains(out, "INACTIVE") {
		t.Errorf("list with both CAs: exit %d, %q %q; want wc INACTIVE", code, out, errOut)
	}

	code, out, errOut = runStormCmd(stormKillCmd, append([]string{"wc", "--runtime", "native", "--master", c.master, "--ca_file", c.masterCA.CA}, asOps...)...)
	if code != 0 || !strings.Contains(out, "killing wc") {
		t.Fatalf("kill with the master's CA: exit %d, %q %q", code, out, errOut)
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

// A native submission without credentials is refused by a master with
// --authenticate_frameworks, naming why; one given a certificate without
// its key is refused before anything is sent.
func TestStormNativeSubmitSecurityRefusals(t *testing.T) {
	c := startSecureNativeCluster(t)
	args := []string{"storm", "submit", c.path, "--runtime", "native", "--master", c.master, "--name", "wc", "--ca_file", c.masterCA.CA}
	p := start(t, append(args, "--principal", "ops", "--secret_file", c.secret, "--ssl_cert_file", c.masterCA.Cert)...)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Fatalf("submit with --ssl_cert_file alone did not end: %s", p.out.String())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(p.out.String(), "--ssl_cert_file needs --ssl_key_file") {
		t.Errorf("submit with --ssl_cert_file alone: exit %d, %q; want 2 naming --ssl_key_file", code, p.out.String())
	}
	p = start(t, args...)
	select {
	case <-p.done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("submit without credentials did not end: %s", p.out.String())
	}
	if code := p.cmd.ProcessState.ExitCode(); code == 0 || !strings.Contains(p.out.String(), "401") && !strings.Contains(strings.ToLower(p.out.String()), "credentials") {
		t.Errorf("submit without credentials: exit %d, %q; want a failure naming the missing credentials", code, p.out.String())
	}
}
