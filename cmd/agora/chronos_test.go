package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestChronosKill9AtRunStartRunsInstantOnce runs `agora chronos` as a
// real process next to a real master and agent, kills it with SIGKILL at
// the moment a run's task starts (the task blocks until the test lets it
// go), and starts it again on the same work directory and port: the
// instant runs exactly once, its task is adopted, and the later instants
// of the schedule still run, each once. Then the jobs and cron client
// commands are checked against the restarted framework.
func TestChronosKill9AtRunStartRunsInstantOnce(t *testing.T) {
	dir := t.TempDir()
	_, master := startBound(t, "master", "--work_dir="+filepath.Join(dir, "master"), "--port=0",
		"--agent_ping_timeout=1s", "--max_agent_ping_timeouts=30", "--allocation_interval=100ms")
	startBound(t, "agent", "--master="+master, "--work_dir="+filepath.Join(dir, "agent"),
		"--port=0", "--resources=cpus:2;mem:1024;disk:1024", "--switch_user=false")
	waitState(t, "http://"+master, "agent registered", func(s *masterState) bool { return len(s.Slaves) == 1 })

	// Not under /tmp: tasks get their own.
	markers, err := os.MkdirTemp("/var/tmp", "agora-chronos-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(markers) })
	runs, release := filepath.Join(markers, "runs"), filepath.Join(markers, "release")

	chronosArgs := []string{"chronos", "--master=" + master, "--work_dir=" + filepath.Join(dir, "chronos"),
		"--hostname=127.0.0.1", "--http_port=0"}
	fw, api := startBound(t, chronosArgs...)
	_, port, _ := net.SplitHostPort(api)
	chronosArgs[len(chronosArgs)-1] = "--http_port=" + port

	// Every 3 s from a few seconds ahead; a run more than 10 s late is
	// missed rather than run late (a busy machine may start one late).
	start := time.Now().UTC().Truncate(time.Second).Add(3 * time.Second)
	job := fmt.Sprintf(`{"name":"once","command":"echo $CHRONOS_SCHEDULED_TIME >> %s; while [ ! -e %s ]; do sleep 0.1; done",`+
		`"schedule":"R/%s/PT3S","epsilon":"PT10S","cpus":0.1,"mem":16,"disk":0}`, runs, release, start.Format("2006-01-02T15:04:05Z"))
	resp, err := http.Post("http://"+api+"/v1/scheduler/iso8601", "application/json", strings.NewReader(job))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST the job: %s", resp.Status)
	}

	// The moment the run starts: its task wrote its line.
	waitUntil(t, "the first run's task to start", 90*time.Second, func() bool { return len(runLines(t, runs)) == 1 })
	first := runLines(t, runs)[0]
	fw.kill9(t)
	restartChronos(t, api, chronosArgs)
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	var j struct {
		SuccessCount int `json:"successCount"`
		ErrorCount   int `json:"errorCount"`
	}
	waitUntil(t, "the first run and two later ones to succeed", 90*time.Second, func() bool {
		out, _, code := runClient(t, master, "jobs", "show", "--chronos="+api, "--json", "once")
		var v struct {
			Job json.RawMessage `json:"job"`
		}
		return code == 0 && json.Unmarshal([]byte(out), &v) == nil && json.Unmarshal(v.Job, &j) == nil && j.SuccessCount >= 3
	})
	lines := runLines(t, runs)
	seen := map[string]int{}
	for _, l := range lines {
		seen[l]++
	}
	for l, n := range seen {
		if n != 1 {
			t.Errorf("instant %s ran %d times, want once (runs %v)", l, n, lines)
		}
	}
	at, err := time.Parse(time.RFC3339, first)
	if lines[0] != first || err != nil || at.Before(start) || at.Sub(start)%(3*time.Second) != 0 {
		t.Fatalf("runs %v: want first the instant killed, %s, one of the schedule's from %s", lines, first, start.Format(time.RFC3339))
	}
	if len(seen) < 3 || j.ErrorCount != 0 {
		t.Fatalf("runs %v, %d errors: want the killed instant and two later ones, no errors", lines, j.ErrorCount)
	}
	checkJobsCommands(t, master, api)
}

// restartChronos starts agora chronos again on the port it had: another
// process may have taken it since the kill, for a moment, so a start
// refused with "address already in use" is tried again, at most 5 times.
func restartChronos(t *testing.T, api string, args []string) *proc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p := start(t, args...)
		got, err := p.awaitAddr(time.Minute)
		switch {
		case err == nil && got != api:
			t.Fatalf("agora chronos listens on %s, not %s", got, api)
		case err == nil:
			return p
		case attempt == 5 || !errors.Is(err, errPortTaken):
			t.Fatalf("agora chronos again on %s (attempt %d): %v", api, attempt, err)
		}
		time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
	}
}

// runLines are the instants the job's tasks wrote, one a line.
func runLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// checkJobsCommands drives `agora jobs` and `agora cron` against the
// framework at api, which has the job "once".
func checkJobsCommands(t *testing.T, master, api string) {
	t.Helper()
	flag := "--chronos=" + api
	out, errOut, code := runClient(t, master, "jobs", "list", flag)
	if code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, "once") || !strings.Contains(out, "PT3S") {
		t.Fatalf("agora jobs list: exit %d, %q %q", code, out, errOut)
	}
	out, _, code = runClient(t, master, "jobs", "list", flag, "--json")
	var list []struct {
		Name string `json:"name"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].Name != "once" {
		t.Fatalf("agora jobs list --json: exit %d, %q", code, out)
	}
	out, _, code = runClient(t, master, "jobs", "show", flag, "once")
	if code != 0 || !strings.Contains(out, "TASK_FINISHED") || !strings.Contains(out, "Successes:") {
		t.Fatalf("agora jobs show once: exit %d, %q", code, out)
	}
	out, _, code = runClient(t, master, "cron", "next", flag, "once", "-n", "4")
	if ts := strings.Fields(out); code != 0 || len(ts) != 5 || ts[0] != "UTC" {
		t.Fatalf("agora cron next once -n 4: exit %d, %q; want a header and 4 times", code, out)
	}
	out, _, code = runClient(t, master, "cron", "next", flag, "once", "-n", "2", "--json")
	var next struct {
		Runs []string `json:"nextRuns"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &next) != nil || len(next.Runs) != 2 {
		t.Fatalf("agora cron next --json: exit %d, %q", code, out)
	}
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"jobs", "show", flag, "nosuch"}, 1, `no job "nosuch"`},
		{[]string{"jobs", "run", flag, "nosuch"}, 1, "404"},
		{[]string{"jobs", "show", flag}, 2, "give exactly one JOB"},
		{[]string{"cron", "next", flag, "once", "-n", "0"}, 2, "not from 1 to 1000"},
		{[]string{"jobs", "frob"}, 2, "unknown command"},
		{[]string{"jobs", "list", "--chronos=127.0.0.1:1"}, 1, "is `agora chronos` or `agora dev` running?"},
	} {
		_, errOut, code := runClient(t, master, c.args...)
		if code != c.code || !strings.Contains(errOut, c.says) {
			t.Errorf("agora %s: exit %d, stderr %q; want exit %d saying %q", strings.Join(c.args, " "), code, errOut, c.code, c.says)
		}
	}
	if out, errOut, code := runClient(t, master, "jobs", "delete", flag, "once"); code != 0 || !strings.Contains(out, "deleted once") {
		t.Fatalf("agora jobs delete once: exit %d, %q %q", code, out, errOut)
	}
	if out, _, code := runClient(t, master, "jobs", "list", flag, "--json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("after delete, agora jobs list --json: exit %d, %q", code, out)
	}
}
