package servicepage

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func TestServesPagesAndTheSharedStyleAndScript(t *testing.T) {
	h := Handler(fstest.MapFS{"index.html": {Data: []byte("<p>apps</p>")}}, nil)
	for _, tc := range []struct{ path, want, ctype string }{
		{"/ui/", "<p>apps</p>", "text/html"},
		{"/ui/style.css", ":root", "text/css"},
		{"/ui/page.js", "function el(", "text/javascript"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != 200 || !strings.Contains(string(body), tc.want) || !strings.HasPrefix(rec.Header().Get("Content-Type"), tc.ctype) {
			t.Errorf("%s: %d %s %q", tc.path, rec.Code, rec.Header().Get("Content-Type"), body)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/ui/nosuch.js", nil))
	if rec.Code != 404 {
		t.Errorf("/ui/nosuch.js: %d, want 404", rec.Code)
	}
}
