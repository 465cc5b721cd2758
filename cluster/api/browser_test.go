package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func serveJSON(opts HTTPOptions, req *http.Request) *httptest.ResponseRecorder {
	h := opts.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, r, map[string]string{"data": "secret"})
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestCrossOriginReadsAreOptIn(t *testing.T) {
	const page = "https://dash.example.com"
	get := func(query string, headers ...string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://agent:5051/files/read"+query, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Set(headers[i], headers[i+1])
		}
		return r
	}

	// By default: no CORS answer and no JSONP, whoever asks.
	for _, opts := range []HTTPOptions{{}, {CORSAllowedOrigins: []string{"https://other.example.com"}}} {
		rec := serveJSON(opts, get("", "Origin", page))
		if rec.Code != 200 || rec.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%+v: a page on %s got %d with Access-Control-Allow-Origin %q", opts, page, rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
		}
		rec = serveJSON(opts, get("?jsonp=cb", "Referer", page+"/x.html"))
		if rec.Code != http.StatusForbidden || strings.Contains(rec.Body.String(), "secret") || !strings.Contains(rec.Body.String(), "--cors_allowed_origins") {
			t.Errorf("%+v: JSONP for a page on %s: %d %q, want 403 naming the flag", opts, page, rec.Code, rec.Body)
		}
		rec = serveJSON(opts, get("?jsonp=cb"))
		if rec.Code != http.StatusForbidden {
			t.Errorf("%+v: JSONP without an origin: %d, want 403", opts, rec.Code)
		}
	}

	// Listed: the origin is echoed, with Vary, and JSONP is served to it.
	opts := HTTPOptions{CORSAllowedOrigins: []string{page}}
	rec := serveJSON(opts, get("", "Origin", page))
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != page || rec.Header().Get("Vary") != "Origin" {
		t.Errorf("listed origin: Access-Control-Allow-Origin %q, Vary %q", got, rec.Header().Get("Vary"))
	}
	rec = serveJSON(opts, get("?jsonp=cb", "Referer", page+"/index.html"))
	if rec.Code != 200 || rec.Body.String() != `cb({"data":"secret"});` {
		t.Errorf("JSONP for a listed page: %d %q", rec.Code, rec.Body)
	}
	rec = serveJSON(opts, get("?jsonp=cb", "Referer", "https://dash.example.com.evil.test/"))
	if rec.Code != http.StatusForbidden {
		t.Errorf("JSONP for a look-alike origin: %d, want 403", rec.Code)
	}
}

func TestPprofIsOptIn(t *testing.T) {
	for _, on := range []bool{false, true} {
		h := HTTPOptions{EnablePprof: on}.Wrap(http.NotFoundHandler())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/pprof/goroutine?debug=1", nil))
		if want := map[bool]int{false: 404, true: 200}[on]; rec.Code != want {
			t.Errorf("EnablePprof=%v: /debug/pprof/goroutine = %d, want %d", on, rec.Code, want)
		}
	}
}

func TestParseOrigins(t *testing.T) {
	got, err := ParseOrigins(" https://Dash.example.com:8443, http://10.0.0.5 ,")
	if err != nil || strings.Join(got, " ") != "https://dash.example.com:8443 http://10.0.0.5" {
		t.Errorf("ParseOrigins = %q, %v", got, err)
	}
	for _, bad := range []string{"*", "null", "dash.example.com", "https://dash.example.com/ui", "ftp://x", "https://"} {
		if _, err := ParseOrigins(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseOrigins(%q): %v, want an error naming it", bad, err)
		}
	}
}

func TestCheckContentType(t *testing.T) {
	for ct, ok := range map[string]bool{
		"application/json": true, "application/json; charset=utf-8": true,
		"text/plain": false, "application/x-www-form-urlencoded": false, "": false, "multipart/form-data; boundary=x": false,
	} {
		r := httptest.NewRequest(http.MethodPost, "/machine/down", nil)
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		herr := CheckContentType(r, MediaJSON)
		if ok != (herr == nil) {
			t.Errorf("Content-Type %q: %v", ct, herr)
		}
		if herr != nil && (herr.Code != http.StatusUnsupportedMediaType || !strings.Contains(herr.Message, MediaJSON)) {
			t.Errorf("Content-Type %q: %d %q, want 415 naming %s", ct, herr.Code, herr.Message, MediaJSON)
		}
	}
}

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		origin, site string
		ok           bool
	}{
		{"", "", true}, // curl, Mesos tools
		{"http://master:5050", "", true},
		{"http://master:5050", "same-origin", true},
		{"", "none", true},
		{"http://master:5051", "", false}, // another port: another origin
		{"http://evil.test", "", false},
		{"null", "", false},
		{"", "cross-site", false},
		{"http://master:5050", "same-site", false},
	} {
		r := httptest.NewRequest(http.MethodPost, "http://master:5050/reserve", nil)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if tc.site != "" {
			r.Header.Set("Sec-Fetch-Site", tc.site)
		}
		herr := SameOrigin(r)
		if tc.ok != (herr == nil) {
			t.Errorf("Origin %q, Sec-Fetch-Site %q: %v, want ok=%v", tc.origin, tc.site, herr, tc.ok)
		}
		if herr != nil && (herr.Code != http.StatusForbidden || (tc.origin != "" && !strings.Contains(herr.Message, tc.origin))) {
			t.Errorf("Origin %q: %d %q, want 403 naming the origin", tc.origin, herr.Code, herr.Message)
		}
	}
}
