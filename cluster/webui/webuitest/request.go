package webuitest

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Post posts body to url as a page's change, a CLI or a form of another
// site would: see Request.
func Post(t testing.TB, url, user, password string, headers map[string]string, body string) (int, string) {
	t.Helper()
	return Request(t, http.MethodPost, url, user, password, headers, body)
}

// Request sends body to url with headers set (a page's change carries
// servicepage.RequestedBy; a test of the guard leaves it out or adds
// Origin), and Basic credentials when user is given. It returns the
// status and the first 64 KiB of the answer, and fails the test if no
// answer comes within a minute.
func Request(t testing.TB, method, url, user, password string, headers map[string]string, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err) // names the method and the URL
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b)
}
