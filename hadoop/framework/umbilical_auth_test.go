package framework_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/tlsconf"
	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/framework"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
	"github.com/agora-cluster/agora/hadoop/umbilical"
)

// TestUmbilicalRefusesCallsWithoutTheTrackersToken: while a job runs,
// the TaskTrackers' umbilical tokens show in none of the master's and
// agents' state views (which do show the trackers' executors and their
// environment), and umbilical calls for one of the job's live attempts
// are refused without a token (401), with a wrong one (403) and with the
// token of another TaskTracker (403), and change nothing: the job
// succeeds with one attempt per task, its real TaskTrackers calling with
// their tokens.
func TestUmbilicalRefusesCallsWithoutTheTrackersToken(t *testing.T) {
	needPython(t)
	e := startEnv(t)
	dir := t.TempDir()
	for i := 0; i < 4; i++ {
		writeCorpus(t, filepath.Join(dir, "in", fmt.Sprintf("%d.txt", i)), 200<<10, uint64(20+i))
	}
	slow := filepath.Join(dir, "slow_mapper.sh")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\nsleep 3\nexec ./mapper.py\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	info, err := e.cl.Submit(context.Background(), client.SubmitRequest{Cwd: dir,
		Args: wordcount(examples(t), "in", "out", "-file", slow, "-mapper", "slow_mapper.sh")})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := e.cl.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// A running attempt, and the token of a tracker on the other agent.
	var victim job.AttemptID
	var otherToken string
	var tokens map[string]string
	waitFor(t, "a running map and TaskTrackers on both agents", func() bool {
		d, err := e.cl.Job(context.Background(), info.ID, true)
		if err != nil || d.Done() {
			t.Fatalf("job: %v %s", err, d.State)
		}
		ts, err := e.cl.Trackers(context.Background())
		if err != nil {
			return false
		}
		if tokens, err = framework.TrackerTokens(context.Background(), e.fw); err != nil {
			return false
		}
		for _, task := range d.Tasks {
			for _, a := range task.Attempts {
				if a.State != jobtracker.AttemptRunning {
					continue
				}
				for _, tr := range ts {
					if tr.State == "RUNNING" && tr.Host != a.Host && tokens[tr.ID] != "" {
						victim, otherToken = a.ID, tokens[tr.ID]
						return true
					}
				}
			}
		}
		return false
	})
	tokensInNoStateView(t, e, tokens)
	task := umbilical.TaskID(victim, fi.Incarnation)
	base := e.fw.URL()
	call := func(method, path string, body any, token string) (int, string) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		if token != "" {
			umbilical.SetToken(req, token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	completions := umbilical.CompletionsPath + "?task=" + task + "&from=0"
	for _, c := range []struct {
		name, token string
		code        int
		want        string
	}{
		{"without a token", "", http.StatusUnauthorized, "Authorization: Bearer"},
		{"with a wrong token", strings.Repeat("0", 64), http.StatusForbidden, "not that of the TaskTracker running " + task},
		{"with another tracker's token", otherToken, http.StatusForbidden, "not that of the TaskTracker running " + task},
	} {
		for _, r := range []struct {
			method, path string
			body         any
		}{
			{http.MethodPost, umbilical.FetchFailedPath, umbilical.FetchFailure{Task: task, Map: 0}},
			{http.MethodPost, umbilical.CommitPath, umbilical.CommitRequest{Task: task}},
			{http.MethodGet, completions, nil},
		} {
			if code, body := call(r.method, r.path, r.body, c.token); code != c.code || !strings.Contains(body, c.want) {
				t.Errorf("%s %s %s: %d %q; want %d saying %q", r.method, r.path, c.name, code, body, c.code, c.want)
			}
		}
	}
	j := e.wait(info.ID)
	if j.State != jobtracker.JobSucceeded {
		t.Fatalf("job %s: %s", j.State, j.Error)
	}
	d, err := e.cl.Job(context.Background(), j.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range d.Tasks {
		if len(task.Attempts) != 1 {
			t.Errorf("task %v ran %d attempts; want 1 (the refused calls changed nothing)", task.ID, len(task.Attempts))
		}
	}
	compareCounts(t, readOutput(t, filepath.Join(dir, "out")), unixCounts(t, filepath.Join(dir, "in")))
}

// tokensInNoStateView reads the master's and every agent's state, as
// JSON and as the v1 operator API's GET_STATE, and fails the test if a
// tracker's token appears in any of them. Each view must list the
// trackers (and the v1 views their environment), or the check would
// prove nothing.
func tokensInNoStateView(t *testing.T, e *env, tokens map[string]string) {
	t.Helper()
	type view struct{ name, method, url, body, mustShow string }
	views := []view{
		{"the master's /master/state", http.MethodGet, e.c.MasterURL + "/master/state", "", "tasktracker-"},
		{"the master's GET_STATE", http.MethodPost, e.c.MasterURL + "/api/v1", `{"type":"GET_STATE"}`, umbilical.EnvJobTracker},
	}
	for i, a := range e.c.Agents {
		base := "http://" + a.Addr()
		views = append(views,
			view{fmt.Sprintf("agent %d's /state", i), http.MethodGet, base + "/state", "", "tasktracker-"},
			view{fmt.Sprintf("agent %d's GET_STATE", i), http.MethodPost, base + "/api/v1", `{"type":"GET_STATE"}`, umbilical.EnvJobTracker})
	}
	for _, v := range views {
		req, err := http.NewRequest(v.method, v.url, strings.NewReader(v.body))
		if err != nil {
			t.Fatal(err)
		}
		if v.body != "" {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v %.200s", v.name, resp.StatusCode, err, b)
		}
		if !bytes.Contains(b, []byte(v.mustShow)) {
			t.Errorf("%s does not show %q: the check that no token shows there proves nothing", v.name, v.mustShow)
		}
		for id, token := range tokens {
			if bytes.Contains(b, []byte(token)) {
				t.Errorf("%s shows the umbilical token of %s", v.name, id)
			}
		}
	}
}

// TestAPIServesPlainHTTPWithDowngrade: with TLS and TLSDowngrade
// (--ssl_support_downgrade) the framework's port answers both HTTPS and
// plain HTTP, as the other services' do.
func TestAPIServesPlainHTTPWithDowngrade(t *testing.T) {
	files, err := tlsconf.GenerateCA(t.TempDir(), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	flags := tlsconf.Flags{CertFile: files.Cert, KeyFile: files.Key}
	serverTLS, err := flags.Server()
	if err != nil {
		t.Fatal(err)
	}
	clientTLS, err := tlsconf.ClientConfig(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// No master answers at port 1: the API serves while the framework
	// keeps trying to subscribe.
	fw, err := framework.New(framework.Config{Masters: []string{"127.0.0.1:1"}, Listener: ln, StateDir: t.TempDir(),
		TLS: serverTLS, TLSDowngrade: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("the framework did not stop within a minute of its context ending")
		}
	})
	addr := ln.Addr().String()
	httpsClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS}}
	plainClient := &http.Client{Timeout: 10 * time.Second}
	for _, c := range []struct {
		url    string
		client *http.Client
	}{{"https://" + addr + "/api/v1/info", httpsClient}, {"http://" + addr + "/api/v1/info", plainClient}} {
		var code int
		waitFor(t, "GET "+c.url, func() bool {
			resp, err := c.client.Get(c.url)
			if err != nil {
				return false
			}
			resp.Body.Close()
			code = resp.StatusCode
			return true
		})
		if code != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", c.url, code)
		}
	}
}
