package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/webui/webuitest"
	hclient "github.com/agora-cluster/agora/hadoop/client"
	hframework "github.com/agora-cluster/agora/hadoop/framework"
	"github.com/agora-cluster/agora/hadoop/hadooptest"
)

// TestHadoopUIBehindCredentials: with --http_credentials the Hadoop
// framework's page is behind the same guard as its API (`agora hadoop
// scheduler` wraps the whole handler), and it works there: the browser
// asks once, and the page's own calls to the API reuse the answer.
func TestHadoopUIBehindCredentials(t *testing.T) {
	flags := serviceHTTPFlags{userPassword: "ops:pw"}
	sec, err := flags.security("hadoop", hadoopOpenPaths...)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// No master answers: the API and the page do without one.
	fw, err := hframework.New(hframework.Config{Masters: []string{"127.0.0.1:1"}, Listener: ln, StateDir: t.TempDir(),
		ExecutorBinary: agoraBin, WrapHTTP: sec.handler})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fwDone := make(chan error, 1)
	go func() { fwDone <- fw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-fwDone:
		case <-time.After(time.Minute):
			t.Error("the Hadoop framework did not stop within a minute")
		}
	})

	resp, err := http.Get(fw.URL() + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /ui/ without credentials: %s, want 401", resp.Status)
	}

	b := webuitest.NewBrowser(t)
	// Loaded: the page read the jobs and the trackers (an API error would
	// show the error banner instead).
	if n := webuitest.NavigateWithCredentials(t, b, fw.URL()+"/ui/?poll=0.2", "ops", "pw", `document.body.dataset.loaded === 'list'
		&& !document.getElementById('jobs-empty').hidden && document.getElementById('error-banner').hidden`); n != 1 {
		t.Errorf("the browser asked for credentials %d times, want once (0: the page is not behind them)", n)
	}

	// A job submitted with the credentials is the principal's, whatever
	// user it claims, and the page's user column says so.
	dir := t.TempDir()
	hadooptest.WriteCorpus(t, filepath.Join(dir, "in", "a.txt"), 4<<10, 1)
	ex := hadooptest.Examples(t)
	cl := hclient.New(fw.URL())
	cl.HTTP = &http.Client{Timeout: 30 * time.Second, Transport: basicAuthTransport{"ops", "pw"}}
	info, err := cl.Submit(context.Background(), hclient.SubmitRequest{Cwd: dir, User: "alice", Args: []string{
		"-files", filepath.Join(ex, "mapper.py") + "," + filepath.Join(ex, "reducer.py"),
		"-input", "in", "-output", "out", "-mapper", "mapper.py", "-reducer", "reducer.py"}})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	row := fmt.Sprintf(`#jobs tr[data-job=%q] td.user`, info.ID)
	webuitest.Wait(t, b, "the job listed with its user", fmt.Sprintf(`(() => { const c = document.querySelector('%s'); return c !== null && c.innerText === 'ops'; })()`, row))

	// `agora hadoop jobs` shows the user too, in its table and its JSON.
	jobs := func(args ...string) string {
		cmd := exec.Command(agoraBin, append([]string{"hadoop", "jobs", "--hadoop", fw.URL(), "--principal", "ops"}, args...)...)
		cmd.Env = append(os.Environ(), "AGORA_SECRET=pw")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("agora hadoop jobs %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	table := strings.Split(jobs(), "\n")
	if len(table) < 2 || strings.Fields(table[0])[3] != "USER" || !strings.HasPrefix(table[1], info.ID) || strings.Fields(table[1])[2] != "ops" {
		t.Errorf("agora hadoop jobs printed\n%s\nwant a USER column holding ops for %s", strings.Join(table, "\n"), info.ID)
	}
	var listed []hclient.JobInfo
	if out := jobs("--json"); json.Unmarshal([]byte(out), &listed) != nil || len(listed) != 1 || listed[0].User != "ops" {
		t.Errorf("agora hadoop jobs --json printed %s, want the job with user ops", out)
	}
}

// basicAuthTransport sends every request with a principal's credentials.
type basicAuthTransport struct{ principal, secret string }

func (b basicAuthTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.principal, b.secret)
	return http.DefaultTransport.RoundTrip(r)
}
