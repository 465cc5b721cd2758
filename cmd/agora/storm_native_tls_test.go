package main

import (
	"context"
	"crypto/tls"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/tlsconf"
	"github.com/agora-cluster/agora/frameworks/state"
)

// secureNativeCluster is a master that asks for credentials everywhere
// (frameworks and both HTTP kinds) and speaks TLS with a certificate of
// CA masterCA, an agent that verifies it, and the operator's secret file.
type secureNativeCluster struct {
	dir, master, path string
	masterCA          tlsconf.Files
	secret            string // ops's secret file
	secretText        string // what it holds: one no other text of the test contains
}

func startSecureNativeCluster(t *testing.T) secureNativeCluster {
	t.Helper()
	c := secureNativeCluster{dir: t.TempDir()}
	var err error
	if c.masterCA, err = tlsconf.GenerateCA(filepath.Join(c.dir, "master-tls"), []string{"127.0.0.1", "localhost"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(c.dir, "credentials.json")
	c.secretText = "ops-secret-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := os.WriteFile(creds, []byte(`{"credentials": [{"principal": "ops", "secret": "`+c.secretText+`"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c.secret = filepath.Join(c.dir, "ops.secret")
	if err := os.WriteFile(c.secret, []byte(c.secretText+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := tlsconf.ClientConfig(c.masterCA.CA)
	if err != nil {
		t.Fatal(err)
	}
	mc := stateClient(auth.Credential{Principal: "ops", Secret: c.secretText}, cfg, auth.LeaderRedirect)
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
// with the master's CA ends the topology. The submission runs with
// LIBPROCESS_SSL_REQUIRE_CERT=true in its environment (as a task of an
// agent asking its clients for certificates): it is warned of, and the
// control serves a client that presents no certificate.
func TestStormNativeControlOverTLS(t *testing.T) {
	c := startSecureNativeCluster(t)
	t.Setenv(tlsconf.EnvRequireCert, "true") // the submitting command's, started below
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
	if out := sub.out.String(); strings.Count(out, "WARNING") != 1 || !strings.Contains(out, "WARNING: "+tlsconf.EnvRequireCert+" is set") {
		t.Errorf("a submission with page credentials over TLS and %s=true: %s; want only the warning naming %[1]s", tlsconf.EnvRequireCert, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, _ := tlsconf.ClientConfig(c.masterCA.CA)
	base, err := nativeControlURL(ctx, stateClient(auth.Credential{Principal: "ops", Secret: c.secretText}, cfg, auth.LeaderRedirect), c.master, "wc")
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
	// The page over TLS, behind its credentials; the client presents no
	// certificate.
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
	if code != 0 || !strings.Contains(out, "INACTIVE") || errOut != "" {
		t.Errorf("list with both CAs: exit %d, %q %q; want wc INACTIVE and nothing on stderr", code, out, errOut)
	}
	// Trusting the master's CA only, list still lists wc (its status
	// unknown), names the control it could not verify once and what to
	// pass, and exits 1.
	code, out, errOut = runStormCmd(stormListCmd, append([]string{"--runtime", "native", "--master", c.master, "--ca_file", c.masterCA.CA}, asOps...)...)
	if code != 1 || !strings.Contains(out, "wc") || !strings.Contains(out, "UNKNOWN") ||
		strings.Count(errOut, "does not verify") != 1 || !strings.Contains(errOut, `native topology "wc"`) || !strings.Contains(errOut, "--ca_file") {
		t.Errorf("list trusting the master's CA only: exit %d, %q %q; want 1, wc UNKNOWN, and the control named once with --ca_file", code, out, errOut)
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

// A native submission without credentials is refused before it
// subscribes by a master that asks for credentials on its state (naming
// the 401 of /master/state); by a master that asks frameworks only, it
// reads the state and its subscription is refused, the command saying
// the master asks for credentials. One given a certificate without its
// key is refused before anything is sent.
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
	if code := p.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(p.out.String(), "/master/state: 401 Unauthorized") {
		t.Errorf("submit without credentials: exit %d, %q; want 1 naming the master's 401 on /master/state", code, p.out.String())
	}

	// A master asking frameworks only for credentials.
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials.json")
	if err := os.WriteFile(creds, []byte(`{"credentials": [{"principal": "ops", "secret": "`+c.secretText+`"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	master, path := startNativeStormClusterIn(t, dir, state.Client{}, []string{"--credentials=" + creds, "--authenticate_frameworks"}, nil)
	p = start(t, "storm", "submit", path, "--runtime", "native", "--master", master, "--name", "wc")
	select {
	case <-p.done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("submit without credentials to a master asking frameworks for them did not end: %s", p.out.String())
	}
	if out := p.out.String(); p.cmd.ProcessState.ExitCode() != 1 || !strings.Contains(out, "SUBSCRIBE call to "+master+": 401") ||
		!strings.Contains(out, "--authenticate_frameworks is on") || !strings.Contains(out, "pass --principal=NAME --secret_file=FILE") || strings.Contains(out, "/master/state") {
		t.Errorf("submit without credentials to a master asking frameworks for them: exit %d, %q; want 1, the subscription's 401 and what to pass", p.cmd.ProcessState.ExitCode(), out)
	}
}

// The control's TLS flags: LIBPROCESS_SSL_ENABLED (a Mesos client's
// environment, or the agent's a speed task inherits) with a CA only
// leaves the control on plain HTTP instead of failing; a control asking
// for client certificates, which the other commands cannot present, is
// refused; the --ssl_* flags on a submission to Storm (a Flux file on
// --runtime storm, or a JAR) are refused rather than ignored; and
// --ssl_support_downgrade, which lets the page's credentials cross in
// clear, is warned of.
func TestStormNativeControlTLSFlags(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsconf.GenerateCA(filepath.Join(dir, "tls"), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(tlsconf.EnvEnabled, "true")
	t.Setenv(tlsconf.EnvCertFile, "")
	t.Setenv(tlsconf.EnvKeyFile, "")
	var s stormTarget
	for _, f := range []*tlsconf.Flags{nil, {CAFile: ca.CA}} {
		if ns, err := s.nativeSecurity(nil, f); err != nil || ns.control != nil {
			t.Errorf("%s=true, control flags %+v: control %v, err %v; want plain HTTP and no error", tlsconf.EnvEnabled, f, ns.control, err)
		}
	}
	if _, err := s.nativeSecurity(nil, &tlsconf.Flags{CertFile: ca.Cert, KeyFile: ca.Key, CAFile: ca.CA, RequireCert: true}); err == nil || !strings.Contains(err.Error(), "--ssl_require_cert") {
		t.Errorf("a control requiring client certificates: %v, want refused naming --ssl_require_cert", err)
	}
	if ns, err := s.nativeSecurity(nil, &tlsconf.Flags{CertFile: ca.Cert, KeyFile: ca.Key}); err != nil || ns.control == nil {
		t.Errorf("a control with a certificate: control %v, err %v; want TLS", ns.control, err)
	}
	if _, err := s.nativeSecurity(nil, &tlsconf.Flags{RequireCert: true}); err == nil || !strings.Contains(err.Error(), "--ssl_require_cert") {
		t.Errorf("--ssl_require_cert without a certificate: %v, want refused naming --ssl_require_cert", err)
	}

	// LIBPROCESS_SSL_REQUIRE_CERT, LIBPROCESS_SSL_CERT_FILE and
	// LIBPROCESS_SSL_KEY_FILE from the environment (a task's, inherited
	// from an agent asking its clients for certificates): the control
	// serves TLS asking for none, with a warning naming the variable;
	// --ssl_require_cert on the command line is refused, and
	// --ssl_require_cert=false says nothing.
	refused := clustertest.RefusedAddr(t)
	t.Setenv(tlsconf.EnvRequireCert, "true")
	t.Setenv(tlsconf.EnvCertFile, ca.Cert)
	t.Setenv(tlsconf.EnvKeyFile, ca.Key)
	t.Setenv(tlsconf.EnvCAFile, ca.CA)
	fromEnv := func(args ...string) (*flag.FlagSet, tlsconf.Flags) {
		t.Helper()
		fs := flag.NewFlagSet("submit", flag.ContinueOnError)
		var f tlsconf.Flags
		f.Register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return fs, f
	}
	fs, f := fromEnv()
	if w := controlRequireCertFromEnv(fs, &f); !strings.Contains(w, tlsconf.EnvRequireCert) || f.RequireCert {
		t.Errorf("%s=true from the environment: warning %q, RequireCert %v; want a warning naming it and RequireCert cleared", tlsconf.EnvRequireCert, w, f.RequireCert)
	}
	if ns, err := s.nativeSecurity(nil, &f); err != nil || ns.control == nil || ns.control.ClientAuth != tls.NoClientCert {
		t.Errorf("%s=true from the environment: control %v, err %v; want TLS asking for no client certificate", tlsconf.EnvRequireCert, ns.control, err)
	}
	fs, f = fromEnv("--ssl_require_cert")
	if w := controlRequireCertFromEnv(fs, &f); w != "" || !f.RequireCert {
		t.Errorf("--ssl_require_cert on the command line: warning %q, RequireCert %v; want it kept for nativeSecurity to refuse", w, f.RequireCert)
	}
	base := []string{wordcountYAML, "--runtime", "native", "--master", refused, "--http_credentials", "viewer:seen"}
	code, _, stderr := runStormCmd(stormSubmitCmd, base...)
	if code == 2 || strings.Contains(stderr, "--ssl_require_cert:") || strings.Count(stderr, "WARNING") != 1 || !strings.Contains(stderr, "WARNING: "+tlsconf.EnvRequireCert+" is set") {
		t.Errorf("a native submission with %s=true from the environment: exit %d, %q; want no refusal and one warning naming it", tlsconf.EnvRequireCert, code, stderr)
	}
	code, _, stderr = runStormCmd(stormSubmitCmd, append(base, "--ssl_require_cert")...)
	if code != 2 || !strings.Contains(stderr, "--ssl_require_cert: the topology's control port does not ask for client certificates") {
		t.Errorf("a native submission with --ssl_require_cert: exit %d, %q; want 2 naming --ssl_require_cert", code, stderr)
	}
	code, _, stderr = runStormCmd(stormSubmitCmd, append(base, "--ssl_require_cert=false")...)
	if code == 2 || strings.Contains(stderr, "WARNING") {
		t.Errorf("a native submission with --ssl_require_cert=false over %s=true: exit %d, %q; want no refusal and no warning", tlsconf.EnvRequireCert, code, stderr)
	}
	t.Setenv(tlsconf.EnvRequireCert, "")
	t.Setenv(tlsconf.EnvCertFile, "")
	t.Setenv(tlsconf.EnvKeyFile, "")
	t.Setenv(tlsconf.EnvCAFile, "")

	tlsArgs := []string{"--ssl_cert_file", ca.Cert, "--ssl_key_file", ca.Key}
	jar := filepath.Join(dir, "app.jar")
	writeJar(t, jar, "com/x/Main.class")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"--runtime storm", append([]string{wordcountYAML, "--runtime", "storm", "--nimbus", refused}, tlsArgs...)},
		{"a JAR", append([]string{jar, "--class", "com.x.Main", "--nimbus", refused}, tlsArgs...)},
	} {
		code, _, stderr := runStormCmd(stormSubmitCmd, tc.args...)
		if code != 2 || !strings.Contains(stderr, "--ssl_cert_file, --ssl_key_file") || !strings.Contains(stderr, "--runtime native only") || strings.Contains(stderr, "not reachable") {
			t.Errorf("%s with --ssl_cert_file: exit %d, %q; want 2 naming the flags, before Nimbus is asked", tc.name, code, stderr)
		}
	}

	native := append([]string{wordcountYAML, "--runtime", "native", "--master", refused, "--http_credentials", "viewer:seen"}, tlsArgs...)
	if _, _, stderr := runStormCmd(stormSubmitCmd, native...); strings.Contains(stderr, "WARNING") {
		t.Errorf("a native submission with credentials over TLS is warned of: %q", stderr)
	}
	if _, _, stderr := runStormCmd(stormSubmitCmd, append(native, "--ssl_support_downgrade")...); !strings.Contains(stderr, "WARNING: --ssl_support_downgrade") || !strings.Contains(stderr, "in clear") {
		t.Errorf("a native submission with --ssl_support_downgrade: %q, want a warning that the credentials may cross in clear", stderr)
	}
}
