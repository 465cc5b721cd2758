package tlsconf

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/api"
)

// serveDowngrade runs a server with --ssl_support_downgrade whose handler
// is h and returns its address and the client configuration trusting it.
func serveDowngrade(t *testing.T, h http.Handler) (string, *http.Client) {
	t.Helper()
	files, err := GenerateCA(t.TempDir(), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f := Flags{CertFile: files.Cert, KeyFile: files.Key, Downgrade: true}
	cfg, err := f.Server()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(Listener(ln, cfg, true))
	t.Cleanup(func() { srv.Close() })
	client, err := ClientConfig(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: client}
	t.Cleanup(tr.CloseIdleConnections)
	return ln.Addr().String(), &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

func TestDowngradeSetsRequestTLSOnlyOverTLS(t *testing.T) {
	addr, c := serveDowngrade(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && r.TLS.HandshakeComplete {
			io.WriteString(w, "tls")
			return
		}
		if r.TLS != nil {
			io.WriteString(w, "tls, handshake incomplete")
			return
		}
		io.WriteString(w, "plain")
	}))
	// A client that connects and says nothing holds no other.
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	for _, tc := range []struct{ scheme, want string }{{"https", "tls"}, {"http", "plain"}, {"https", "tls"}} {
		resp, err := c.Get(tc.scheme + "://" + addr + "/")
		if err != nil {
			t.Fatalf("%s: %v", tc.scheme, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != tc.want {
			t.Fatalf("%s: the handler saw %q (%v), want %q", tc.scheme, b, err, tc.want)
		}
	}
}

// A page the server served over https posts a form back to it: the
// same-origin guard must see the https scheme the browser sends in Origin.
func TestDowngradeSameOriginFormPostOverHTTPS(t *testing.T) {
	addr, c := serveDowngrade(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if herr := api.SameOrigin(r); herr != nil {
			http.Error(w, herr.Message, herr.Code)
			return
		}
		io.WriteString(w, "accepted")
	}))
	for _, tc := range []struct {
		scheme, origin string
		code           int
	}{
		{"https", "https://" + addr, http.StatusOK},
		{"http", "http://" + addr, http.StatusOK},
		{"https", "http://" + addr, http.StatusForbidden},
		{"http", "https://" + addr, http.StatusForbidden},
	} {
		req, err := http.NewRequest("POST", tc.scheme+"://"+addr+"/", strings.NewReader(url.Values{"x": {"1"}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", tc.origin)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s from %s: %v", tc.scheme, tc.origin, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("POST over %s from a page on %s: %d %q, want %d", tc.scheme, tc.origin, resp.StatusCode, b, tc.code)
		}
	}
}

// Closing the listener closes a connection still waiting for its first
// byte, and Accept then fails.
func TestDowngradeCloseClosesSilentConnections(t *testing.T) {
	files, err := GenerateCA(t.TempDir(), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := (&Flags{CertFile: files.Cert, KeyFile: files.Key}).Server()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Listener(raw, cfg, true)
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if c != nil {
			c.Close()
		}
		accepted <- err
	}()
	silent, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// Close only once the listener holds the connection: it is being sniffed.
	dl := ln.(*downgradeListener)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		dl.mu.Lock()
		n := len(dl.sniffing)
		dl.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the connection was never picked up for sniffing")
		}
	}
	ln.Close()
	select {
	case err := <-accepted:
		if err == nil {
			t.Fatal("Accept handed out a connection that sent nothing")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
	silent.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the silent connection after Close: read %v, want EOF", err)
	}
}
