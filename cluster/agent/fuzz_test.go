package agent

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/api"
)

// FuzzExecutorCall: no body, in JSON or protobuf, makes the executor
// API's decoding and validation panic; a call they refuse gets a 4xx or
// 501 with a message, and one they accept names its executor and
// framework.
func FuzzExecutorCall(f *testing.F) {
	f.Add([]byte(`{"type":"SUBSCRIBE","framework_id":{"value":"f"},"executor_id":{"value":"e"},"subscribe":{}}`), false)
	f.Add([]byte(`{"type":"UPDATE","framework_id":{"value":"f"},"executor_id":{"value":"e"},"update":{"status":{"task_id":{"value":"t"},"state":"TASK_RUNNING","source":"SOURCE_EXECUTOR","uuid":"AAAAAAAAAAAAAAAAAAAAAA=="}}}`), false)
	f.Add([]byte(`{"type":"MESSAGE","framework_id":{"value":"f"},"executor_id":{"value":"e"}}`), false)
	f.Add([]byte(`{"type":"HEARTBEAT"}`), false)
	f.Add([]byte{0x08, 0x01, 0x12, 0x03, 0x0a, 0x01, 'e'}, true)
	f.Add([]byte{0xff, 0xff, 0xff}, true)
	f.Fuzz(func(t *testing.T, body []byte, protobuf bool) {
		req := httptest.NewRequest(http.MethodPost, ExecutorAPIPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", map[bool]string{true: api.MediaProtobuf, false: api.MediaJSON}[protobuf])
		w := httptest.NewRecorder()
		call, herr := readExecutorCall(w, req)
		if herr == nil {
			herr = validateExecutorCall(call)
		}
		if herr != nil {
			if herr.msg == "" || herr.code < 400 || (herr.code >= 500 && herr.code != http.StatusNotImplemented) {
				t.Fatalf("refused with %d %q", herr.code, herr.msg)
			}
			return
		}
		if call.ExecutorID.Value == "" || call.FrameworkID.Value == "" {
			t.Fatalf("accepted a call without its IDs: %+v", call)
		}
	})
}

// FuzzFilesPath: whatever ?path= a /files request names, the file opened
// is inside WORK_DIR/slaves; a secret beside the work directory, and one
// a symlink in a sandbox points to, are never opened.
func FuzzFilesPath(f *testing.F) {
	base := f.TempDir()
	work := filepath.Join(base, "work")
	sandbox := filepath.Join(work, "slaves", "S", "frameworks", "F", "executors", "E", "runs", "R")
	if err := os.MkdirAll(sandbox, 0o755); err != nil {
		f.Fatal(err)
	}
	secret := filepath.Join(base, "secret")
	for p, s := range map[string]string{secret: "secret", filepath.Join(sandbox, "stdout"): "out"} {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.Symlink(secret, filepath.Join(sandbox, "escape")); err != nil {
		f.Fatal(err)
	}
	if err := os.Symlink(base, filepath.Join(sandbox, "up")); err != nil {
		f.Fatal(err)
	}
	a := &Agent{workDir: work}
	for _, seed := range []string{sandbox + "/stdout", sandbox + "/escape", sandbox + "/up/secret", sandbox + "/../../../../../../../secret",
		work + "/slaves", secret, "relative", "", work + "/slaves//S/./frameworks", "/\x00", sandbox + "/%2e%2e/secret"} {
		f.Add(seed)
	}
	root, err := filepath.EvalSymlinks(filepath.Join(work, "slaves"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, p string) {
		req := httptest.NewRequest(http.MethodGet, "/files/read?path="+url.QueryEscape(p), nil)
		file, clean, _, err := a.openSandboxPath(req)
		if err != nil {
			return
		}
		defer file.Close()
		resolved, rerr := filepath.EvalSymlinks(clean)
		if rerr != nil || (resolved != root && !strings.HasPrefix(resolved, root+"/")) {
			t.Fatalf("path %q opened %s (%s), outside %s", p, clean, resolved, root)
		}
		if fi, err := file.Stat(); err == nil && !fi.IsDir() {
			b := make([]byte, 16)
			n, _ := file.Read(b)
			if string(b[:n]) == "secret" {
				t.Fatalf("path %q read the secret", p)
			}
		}
	})
}
