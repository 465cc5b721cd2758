package scheduler

import (
	"net/url"
	"testing"
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
