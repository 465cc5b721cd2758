package framework

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExecutorBinaryNeedsTheFetchToken: with ServeExecutor the binary is
// served only to a URI carrying the framework's token, the one its
// TaskTrackers' CommandInfo names; without it 401, with another 403.
func TestExecutorBinaryNeedsTheFetchToken(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "agora")
	if err := os.WriteFile(bin, []byte("the executor"), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := New(Config{Masters: []string{"127.0.0.1:1"}, Listener: ln, StateDir: filepath.Join(dir, "state"),
		ExecutorBinary: bin, ServeExecutor: true})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(f.executorURI())
	if err != nil || len(u.Query().Get("token")) != 64 {
		t.Fatalf("executor URI %q (%v): want a 32-byte token in it", f.executorURI(), err)
	}
	h := f.Handler()
	get := func(target string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	path := executorPath + "agora"
	for _, c := range []struct {
		target string
		code   int
		want   string
	}{
		{path, http.StatusUnauthorized, "carries a token"},
		{path + "?token=" + strings.Repeat("0", 64), http.StatusForbidden, "not the framework's"},
		{u.RequestURI(), http.StatusOK, "the executor"},
	} {
		if code, body := get(c.target); code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("GET %s: %d %q; want %d with %q", c.target, code, body, c.code, c.want)
		}
	}
}
