package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest"
	sparkclient "github.com/agora-cluster/agora/spark/client"
	"github.com/agora-cluster/agora/spark/sparktest"
)

// dispatcherRequest sends one request to the dispatcher at addr, with
// Basic credentials when principal is set, and returns the status, the
// challenge and the body.
func dispatcherRequest(t *testing.T, method, url, body, principal, secret string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if principal != "" {
		req.SetBasicAuth(principal, secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(b)
}

// agora spark dispatcher --credentials: Spark's REST submission protocol
// and the drivers' listing answer 401 with Basic's challenge without
// credentials (a submission so made queues nothing) and 200 with them;
// agora spark submit and drivers present --principal and --secret_file,
// and without them say what to pass.
func TestSparkDispatcherAsksForCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the dispatcher against the Spark distribution; not in -short")
	}
	home := sparktest.Home(t)
	c := clustertest.Start(t, clustertest.Options{})
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials.json")
	secretFile := filepath.Join(dir, "submitter.secret")
	if err := os.WriteFile(creds, []byte(`{"credentials": [{"principal": "submitter", "secret": "s3cret"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secretFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port, _ := clustertest.PortRange(1)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	start(t, "spark", "dispatcher", "--master", c.MasterAddr, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--work_dir", filepath.Join(dir, "work"), "--spark_home", home, "--executors=false", "--credentials", creds)
	base := "http://" + addr

	// Up and subscribed: a status with credentials is answered.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, _, body := dispatcherRequest(t, http.MethodGet, base+"/v1/submissions/status/driver-x", "", "submitter", "s3cret")
		if code == http.StatusOK && strings.Contains(body, sparkclient.StateNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dispatcher at %s did not answer a status with credentials within 60 s: %d %s", addr, code, body)
		}
	}

	create := `{"action":"CreateSubmissionRequest","clientSparkVersion":"3.5.1","appResource":"file:/nonexistent/app.jar",` +
		`"mainClass":"Main","appArgs":[],"sparkProperties":{"spark.app.name":"sneaky"},"environmentVariables":{}}`
	for _, tc := range []struct{ what, method, path, body string }{
		{"create", http.MethodPost, "/v1/submissions/create", create},
		{"status", http.MethodGet, "/v1/submissions/status/driver-x", ""},
		{"kill", http.MethodPost, "/v1/submissions/kill/driver-x", ""},
		{"drivers", http.MethodGet, "/drivers", ""},
	} {
		code, challenge, body := dispatcherRequest(t, tc.method, base+tc.path, tc.body, "", "")
		if code != http.StatusUnauthorized || challenge != `Basic realm="spark"` || !strings.Contains(body, "authentication required") {
			t.Errorf("%s without credentials: %d, challenge %q, %q; want 401 with Basic's challenge", tc.what, code, challenge, body)
		}
		code, _, body = dispatcherRequest(t, tc.method, base+tc.path, tc.body, "submitter", "wrong")
		if code != http.StatusUnauthorized || !strings.Contains(body, `invalid credentials for principal "submitter"`) {
			t.Errorf("%s with a wrong secret: %d %q; want 401 naming the principal", tc.what, code, body)
		}
	}
	code, _, body := dispatcherRequest(t, http.MethodGet, base+"/drivers", "", "submitter", "s3cret")
	var ds []sparkclient.Driver
	if err := json.Unmarshal([]byte(body), &ds); code != http.StatusOK || err != nil || len(ds) != 0 {
		t.Fatalf("drivers with credentials after the refused create: %d %v %s; want 200 and none", code, err, body)
	}

	// The CLI: without credentials it says what to pass; with them it
	// submits and lists.
	var out, errOut bytes.Buffer
	if code := sparkDrivers([]string{"--dispatcher", addr}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "--principal=NAME --secret_file=FILE") {
		t.Errorf("agora spark drivers without credentials: exit %d, %q", code, errOut.String())
	}
	out.Reset()
	errOut.Reset()
	cred := []string{"--dispatcher", "mesos://" + addr, "--principal", "submitter", "--secret_file", secretFile}
	if code := sparkSubmit(append(cred, "--class", "Main", "--name", "with-credentials", "file:/nonexistent/app.jar"), &out, &errOut); code != 0 ||
		!strings.HasPrefix(out.String(), "driver-") {
		t.Fatalf("agora spark submit with credentials: exit %d, %q %q", code, out.String(), errOut.String())
	}
	id := strings.TrimSpace(out.String())
	out.Reset()
	errOut.Reset()
	if code := sparkDrivers(append(cred, "--json"), &out, &errOut); code != 0 || !strings.Contains(out.String(), id) || !strings.Contains(out.String(), "with-credentials") {
		t.Errorf("agora spark drivers with credentials: exit %d, %q %q", code, out.String(), errOut.String())
	}
}
