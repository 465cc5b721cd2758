package scheduler

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func TestEndpointForms(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5050":                         "http://127.0.0.1:5050/api/v1/scheduler",
		"http://m1:5050":                         "http://m1:5050/api/v1/scheduler",
		"http://m1:5050/":                        "http://m1:5050/api/v1/scheduler",
		"https://m1:5050/master":                 "https://m1:5050/master/api/v1/scheduler",
		"http://m1:5050/api/v1/scheduler":        "http://m1:5050/api/v1/scheduler",
		" m1:5050 ":                              "http://m1:5050/api/v1/scheduler",
		"http://m1:5050/master/api/v1/scheduler": "http://m1:5050/master/api/v1/scheduler",
	} {
		u, err := Endpoint(in)
		if err != nil {
			t.Errorf("Endpoint(%q): %v", in, err)
			continue
		}
		if u.String() != want {
			t.Errorf("Endpoint(%q) = %s, want %s", in, u, want)
		}
	}
	for _, bad := range []string{"", "zk://zk1:2181/mesos", "ftp://m1:21", "http://m1:5050/state", "http://"} {
		if u, err := Endpoint(bad); err == nil {
			t.Errorf("Endpoint(%q) = %s, want an error", bad, u)
		}
	}
}

func TestRedirectLocationForms(t *testing.T) {
	from, _ := url.Parse("http://m1:5050/api/v1/scheduler")
	for loc, want := range map[string]string{
		"//m2:5050/api/v1/scheduler":        "http://m2:5050/api/v1/scheduler",
		"//m2:5050/master/api/v1/scheduler": "http://m2:5050/master/api/v1/scheduler",
		"http://m3:5051/api/v1/scheduler":   "http://m3:5051/api/v1/scheduler",
		"m4:5050":                           "http://m4:5050/api/v1/scheduler",
		"//m5:5050":                         "http://m5:5050/api/v1/scheduler",
		"/api/v1/scheduler":                 "http://m1:5050/api/v1/scheduler",
	} {
		u, err := Redirect(from, loc)
		if err != nil {
			t.Errorf("Redirect(%q): %v", loc, err)
			continue
		}
		if u.String() != want {
			t.Errorf("Redirect(%q) = %s, want %s", loc, u, want)
		}
	}
	if _, err := Redirect(from, ""); err == nil {
		t.Error("Redirect with no Location: want an error")
	}
}

// TestTLSMastersAreCalledOverHTTPS: with Config.TLS, a master given as
// host:port (and so a leader ZooKeeper names, whose MasterInfo carries no
// scheme) is called over HTTPS; an explicit scheme is kept.
func TestTLSMastersAreCalledOverHTTPS(t *testing.T) {
	var h Funcs
	for _, c := range []struct {
		master string
		tls    *tls.Config
		want   string
	}{
		{"127.0.0.1:5050", &tls.Config{}, "https://127.0.0.1:5050/api/v1/scheduler"},
		{"https://127.0.0.1:5050", nil, "https://127.0.0.1:5050/api/v1/scheduler"},
		{"http://127.0.0.1:5050", &tls.Config{}, "http://127.0.0.1:5050/api/v1/scheduler"},
		{"127.0.0.1:5050", nil, "http://127.0.0.1:5050/api/v1/scheduler"},
	} {
		d, err := New(Config{Masters: []string{c.master}, Framework: mesos.FrameworkInfo{Name: "t"}, TLS: c.tls}, h)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.masters[0].String(); got != c.want {
			t.Errorf("master %q with TLS %v: %s, want %s", c.master, c.tls != nil, got, c.want)
		}
		if c.tls != nil {
			if tr, ok := d.calls.Transport.(*http.Transport); !ok || tr.TLSClientConfig == nil {
				t.Errorf("master %q: the calls' transport does not use Config.TLS", c.master)
			}
		}
	}
}
