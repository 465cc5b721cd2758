package tlsconf

import (
	"crypto/tls"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serve runs an HTTPS server with f on a free port and returns its
// address; it answers with the protocol the request came in.
func serve(t *testing.T, f Flags) string {
	t.Helper()
	cfg, err := f.Server()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(Listener(ln, cfg, f.Downgrade))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func get(t *testing.T, cfg *tls.Config, url string) (string, error) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestGeneratedCAServesHTTPSAndClientsVerify(t *testing.T) {
	dir := t.TempDir()
	files, err := GenerateCA(filepath.Join(dir, "tls"), []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(files.Key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %s: %v, mode %v; want 0600", files.Key, err, fi.Mode().Perm())
	}
	addr := serve(t, Flags{CertFile: files.Cert, KeyFile: files.Key})
	client, err := ClientConfig(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	proto, err := get(t, client, "https://"+addr+"/")
	if err != nil || proto != "HTTP/2.0" {
		t.Fatalf("GET with the CA: %q, %v; want HTTP/2.0 negotiated by ALPN", proto, err)
	}
	// Without the CA the system's roots do not know the certificate.
	system, _ := ClientConfig("")
	_, err = get(t, system, "https://"+addr+"/")
	verr := VerifyError(addr, err)
	if verr == nil || !strings.Contains(verr.Error(), addr) || !strings.Contains(verr.Error(), "unknown authority") {
		t.Fatalf("GET without the CA: %v (explained %v); want an unknown-authority error naming %s", err, verr, addr)
	}
	// Plain HTTP is not served without downgrade.
	if proto, err := get(t, nil, "http://"+addr+"/"); err == nil && strings.HasPrefix(proto, "HTTP/") {
		t.Fatalf("plain HTTP served (%s) on a TLS port without --ssl_support_downgrade", proto)
	}
}

func TestRequireCertRefusesClientsWithoutOne(t *testing.T) {
	files, err := GenerateCA(t.TempDir(), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, Flags{CertFile: files.Cert, KeyFile: files.Key, CAFile: files.CA, RequireCert: true})
	anonymous, _ := ClientConfig(files.CA)
	if _, err := get(t, anonymous, "https://"+addr+"/"); err == nil {
		t.Fatal("a client without a certificate was served under --ssl_require_cert")
	}
	withCert := Flags{CertFile: files.Cert, KeyFile: files.Key, CAFile: files.CA}
	cfg, err := withCert.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, cfg, "https://"+addr+"/"); err != nil {
		t.Fatalf("a client presenting a certificate of the CA: %v", err)
	}
}

func TestDowngradeServesBoth(t *testing.T) {
	files, err := GenerateCA(t.TempDir(), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, Flags{CertFile: files.Cert, KeyFile: files.Key, Downgrade: true})
	if proto, err := get(t, nil, "http://"+addr+"/"); err != nil || proto != "HTTP/1.1" {
		t.Fatalf("plain HTTP with downgrade: %q, %v", proto, err)
	}
	cfg, _ := ClientConfig(files.CA)
	if proto, err := get(t, cfg, "https://"+addr+"/"); err != nil || proto != "HTTP/1.1" {
		t.Fatalf("HTTPS with downgrade: %q, %v; want HTTP/1.1", proto, err)
	}
}

func TestFlagsAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	files, err := GenerateCA(dir, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvCertFile, files.Cert)
	t.Setenv(EnvKeyFile, files.Key)
	t.Setenv(EnvRequireCert, "true")
	t.Setenv(EnvCAFile, files.CA)
	var f Flags
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f.Register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.Server()
	if err != nil || cfg == nil || cfg.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("LIBPROCESS_SSL_* aliases: %+v, %v; want TLS with required client certificates", f, err)
	}
	for _, c := range []struct {
		f    Flags
		want string
	}{
		{Flags{CertFile: files.Cert}, "--ssl_cert_file needs --ssl_key_file"},
		{Flags{KeyFile: files.Key}, "--ssl_key_file needs --ssl_cert_file"},
		{Flags{CertFile: filepath.Join(dir, "absent.pem"), KeyFile: files.Key}, "--ssl_cert_file"},
		{Flags{CertFile: files.Key, KeyFile: files.Cert}, "--ssl_cert_file"},
		{Flags{CertFile: files.Cert, KeyFile: files.Key, RequireCert: true}, "need --ssl_ca_file"},
		{Flags{CertFile: files.Cert, KeyFile: files.Key, CAFile: files.Key, RequireCert: true}, "holds no PEM certificate"},
	} {
		if _, err := c.f.Server(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v; want an error saying %q", c.f, err, c.want)
		}
	}
}

// TestServerNameFor: a client dialing an address the certificate names
// needs no server name; otherwise it verifies the preferred name when the
// certificate holds it, else the certificate's first DNS name; a client
// built from the environment verifies AGORA_SSL_SERVER_NAME.
func TestServerNameFor(t *testing.T) {
	files, err := GenerateCA(filepath.Join(t.TempDir(), "tls"), []string{"10.0.0.7", "*.wild.example", "agent.example", "alias.example"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := (&Flags{CertFile: files.Cert, KeyFile: files.Key}).Server()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ host, preferred, want string }{
		{"10.0.0.7", "alias.example", ""},
		{"127.0.0.1", "alias.example", "alias.example"},
		{"127.0.0.1", "other.example", "agent.example"},
		{"127.0.0.1", "", "agent.example"},
	} {
		if got := ServerNameFor(cfg, tc.host, tc.preferred); got != tc.want {
			t.Errorf("ServerNameFor(%s, %q) = %q, want %q", tc.host, tc.preferred, got, tc.want)
		}
	}
	if got := ServerNameFor(nil, "127.0.0.1", "x"); got != "" {
		t.Errorf("ServerNameFor(nil) = %q, want none", got)
	}
	t.Setenv(EnvServerName, "agent.example")
	t.Setenv(EnvCAFile, files.CA)
	f := FromEnv()
	client, err := f.Client()
	if err != nil {
		t.Fatal(err)
	}
	if client.ServerName != "agent.example" {
		t.Errorf("client from the environment verifies %q, want agent.example", client.ServerName)
	}
}
