package auth

import (
	"context"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRedirectPolicies: SameOrigin keeps credentials to the first
// address (or this host's loopback); LeaderRedirect also lets them go
// from HTTPS to HTTPS on another host; neither sends them over plain
// HTTP to another host, nor from HTTPS down to HTTP off this host.
func TestRedirectPolicies(t *testing.T) {
	for _, c := range []struct {
		first, next   string
		same, leader  bool
		wantInRefusal string // in SameOrigin's reason
		wantInLeader  string // in LeaderRedirect's reason
	}{
		{"http://127.0.0.1:8080/a", "http://127.0.0.1:8080/b", true, true, "", ""},
		{"https://svc.example:8443/a", "https://SVC.example:8443/b", true, true, "", ""},
		{"https://svc.example/a", "https://svc.example:443/b", true, true, "", ""},
		{"http://127.0.0.1:8080/", "http://localhost:9090/", true, true, "", ""},
		{"http://127.0.0.1:8080/", "http://172.17.0.1:8080/", false, false, "plain HTTP off this host", "plain HTTP off this host"},
		{"https://m1.example:5050/", "http://m1.example:5050/", false, false, "plain HTTP off this host", "plain HTTP off this host"},
		{"http://m1.example:5050/", "http://m2.example:5050/", false, false, "plain HTTP off this host", "plain HTTP off this host"},
		{"https://m1.example:5050/", "https://m2.example:5050/", false, true, "is not https://m1.example:5050", ""},
		{"https://svc.example:8443/", "https://127.0.0.1:8443/", false, true, "is not https://svc.example:8443", ""},
		{"https://svc.example:8443/", "http://127.0.0.1:8443/", false, false, "is not https://svc.example:8443", "is not https://svc.example:8443"},
	} {
		first, _ := url.Parse(c.first)
		next, _ := url.Parse(c.next)
		for _, p := range []struct {
			name string
			f    RedirectPolicy
			ok   bool
			want string
		}{{"SameOrigin", SameOrigin, c.same, c.wantInRefusal}, {"LeaderRedirect", LeaderRedirect, c.leader, c.wantInLeader}} {
			err := p.f(first, next)
			if (err == nil) != p.ok || err != nil && !strings.Contains(err.Error(), p.want) {
				t.Errorf("%s(%s, %s) = %v; want allowed %v (refusal saying %q)", p.name, c.first, c.next, err, p.ok, p.want)
			}
		}
	}
}

// recorder is a test server's log of the Authorization headers it got.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *recorder) note(req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, req.URL.Path+" "+req.Header.Get("Authorization"))
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// TestTransportRefusesCredentialsOnRedirectsThePolicyRefuses: with two
// servers, a Transport with a policy sends its credentials on the
// redirects the policy allows and refuses the others with the policy's
// reason, before anything reaches the other server; every request body
// is closed. Without a policy it sends them on every hop, as before.
func TestTransportRefusesCredentialsOnRedirectsThePolicyRefuses(t *testing.T) {
	var first, other recorder
	otherSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { other.note(r) }))
	t.Cleanup(otherSrv.Close)
	// offHost stands for another machine's plain HTTP port: the client
	// dials the other server for it.
	const offHost = "192.0.2.7:8080"
	firstSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first.note(r)
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/landed", http.StatusTemporaryRedirect)
		case "/away":
			http.Redirect(w, r, "http://"+offHost+"/landed", http.StatusTemporaryRedirect)
		case "/loopback":
			http.Redirect(w, r, "http://localhost:"+strconv.Itoa(otherSrv.Listener.Addr().(*net.TCPAddr).Port)+"/landed", http.StatusTemporaryRedirect)
		}
	}))
	t.Cleanup(firstSrv.Close)
	base := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == offHost {
			addr = otherSrv.Listener.Addr().String()
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(base.CloseIdleConnections)
	cred := Credential{Principal: "ops", Secret: "s3cret"}
	basic := func() string {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		cred.Apply(r)
		return r.Header.Get("Authorization")
	}()
	client := func(p RedirectPolicy) *http.Client {
		return &http.Client{Timeout: 30 * time.Second, Transport: &Transport{Base: base, Credential: cred, Redirect: p}}
	}
	for _, c := range []struct {
		name     string
		policy   RedirectPolicy
		path     string
		refusal  string   // "" if the request should succeed
		firstSaw []string // Authorization by path, on the first server
		otherSaw []string // and on the other
	}{
		{"same origin", SameOrigin, "/same", "", []string{"/same " + basic, "/landed " + basic}, nil},
		{"to loopback", SameOrigin, "/loopback", "", []string{"/loopback " + basic}, []string{"/landed " + basic}},
		{"plain HTTP off this host", SameOrigin, "/away", "plain HTTP off this host", []string{"/away " + basic}, nil},
		{"leader, plain HTTP off this host", LeaderRedirect, "/away", "plain HTTP off this host", []string{"/away " + basic}, nil},
		{"no policy", nil, "/away", "", []string{"/away " + basic}, []string{"/landed " + basic}},
	} {
		first.seen, other.seen = nil, nil
		var bodies []*closeRecorder
		newBody := func() (io.ReadCloser, error) {
			b := &closeRecorder{Reader: strings.NewReader("{}")}
			bodies = append(bodies, b)
			return b, nil
		}
		b, _ := newBody()
		req, _ := http.NewRequest(http.MethodPost, firstSrv.URL+c.path, b)
		req.GetBody = newBody // a 307 sends the body again
		resp, err := client(c.policy).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		switch {
		case c.refusal == "" && err != nil:
			t.Errorf("%s: %v; want it followed", c.name, err)
		case c.refusal != "" && (err == nil || !strings.Contains(err.Error(), c.refusal) || !strings.Contains(err.Error(), "refusing to send the credentials of ops")):
			t.Errorf("%s: error %v; want a refusal saying %q", c.name, err, c.refusal)
		case c.refusal != "" && strings.Contains(err.Error(), "s3cret"):
			t.Errorf("%s: the refusal %v shows the secret", c.name, err)
		}
		if got := first.got(); strings.Join(got, "|") != strings.Join(c.firstSaw, "|") {
			t.Errorf("%s: the first server saw %q; want %q", c.name, got, c.firstSaw)
		}
		if got := other.got(); strings.Join(got, "|") != strings.Join(c.otherSaw, "|") {
			t.Errorf("%s: the other server saw %q; want %q", c.name, got, c.otherSaw)
		}
		for i, b := range bodies {
			if !b.closed() {
				t.Errorf("%s: request body %d (of %d) was not closed", c.name, i+1, len(bodies))
			}
		}
	}
}

// TestLeaderRedirectFollowsHTTPSToAnotherHost: a standby master's
// redirect to the leader over HTTPS, another host name with a certificate
// the client trusts, keeps the credentials.
func TestLeaderRedirectFollowsHTTPSToAnotherHost(t *testing.T) {
	var leader recorder
	leaderSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { leader.note(r) }))
	t.Cleanup(leaderSrv.Close)
	// The test certificate names example.com: the leader is reached as
	// that host.
	leaderAddr := "example.com:" + leaderSrv.URL[strings.LastIndexByte(leaderSrv.URL, ':')+1:]
	standby := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://"+leaderAddr+"/master/state", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(standby.Close)
	pool := x509.NewCertPool()
	pool.AddCert(leaderSrv.Certificate())
	base := leaderSrv.Client().Transport.(*http.Transport).Clone()
	base.TLSClientConfig.RootCAs = pool
	base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == leaderAddr {
			addr = leaderSrv.Listener.Addr().String()
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	t.Cleanup(base.CloseIdleConnections)
	c := &http.Client{Timeout: 30 * time.Second, Transport: &Transport{Base: base, Credential: Credential{Principal: "ops", Secret: "s"}, Redirect: LeaderRedirect}}
	resp, err := c.Get(standby.URL + "/master/state")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := leader.got(); len(got) != 1 || !strings.HasPrefix(got[0], "/master/state Basic ") {
		t.Errorf("the leader saw %q; want /master/state with Basic credentials", got)
	}
}

// closeRecorder is a request body that records being closed.
type closeRecorder struct {
	*strings.Reader
	mu sync.Mutex
	c  bool
}

func (b *closeRecorder) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.c = true
	return nil
}

func (b *closeRecorder) closed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.c
}
