package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// eventLines runs `agora events ARGS` and returns a channel of its stdout
// lines; the process is interrupted when the test ends.
func eventLines(t *testing.T, master string, args ...string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, agoraBin, append([]string{"events"}, args...)...)
	cmd.Env = append(os.Environ(), "AGORA_MASTER="+master)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // a test that stopped reading does not stall the process
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		cancel()
	})
	return lines
}

// nextLine waits, at most a minute, for a line satisfying match.
func nextLine(t *testing.T, lines <-chan string, what string, match func(string) bool) string {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the event stream ended before %s", what)
			}
			if match(l) {
				return l
			}
		case <-timeout:
			t.Fatalf("no %s within a minute", what)
		}
	}
}

// agora events prints a task launched during the stream as TASK_ADDED and
// TASK_UPDATED lines; --json prints each event as one JSON object.
func TestEventsShowsATaskLaunchedDuringTheStream(t *testing.T) {
	master := startSmallCluster(t)
	lines := eventLines(t, master)
	nextLine(t, lines, "SUBSCRIBED", func(l string) bool { return strings.HasPrefix(l, "SUBSCRIBED agents=1 ") })
	jsonLines := eventLines(t, master, "--json")
	first := nextLine(t, jsonLines, "a JSON event", func(string) bool { return true })

	startRun(t, master, "--name=evented", "--", "sh", "-c", "sleep 1; exit 0")
	added := nextLine(t, lines, "TASK_ADDED", func(l string) bool { return strings.HasPrefix(l, "TASK_ADDED ") })
	if !strings.Contains(added, "name=evented") {
		t.Errorf("TASK_ADDED line %q does not name the task", added)
	}
	id := strings.TrimPrefix(strings.Fields(added)[1], "task=")
	nextLine(t, lines, "TASK_UPDATED to TASK_RUNNING", func(l string) bool {
		return strings.HasPrefix(l, "TASK_UPDATED task="+id+" ") && strings.Contains(l, "state=TASK_RUNNING")
	})
	nextLine(t, lines, "TASK_UPDATED to TASK_FINISHED", func(l string) bool {
		return strings.HasPrefix(l, "TASK_UPDATED task="+id+" ") && strings.Contains(l, "state=TASK_FINISHED")
	})

	var ev struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal([]byte(first), &ev); err != nil || ev.Type != "SUBSCRIBED" {
		t.Errorf("agora events --json: first line %q: %v, type %q", lastBytes(first, 200), err, ev.Type)
	}
	nextLine(t, jsonLines, "TASK_ADDED in JSON", func(l string) bool {
		var e struct {
			Type      string `json:"type"`
			TaskAdded struct {
				Task struct {
					TaskID struct {
						Value string `json:"value"`
					} `json:"task_id"`
				} `json:"task"`
			} `json:"task_added"`
		}
		return json.Unmarshal([]byte(l), &e) == nil && e.Type == "TASK_ADDED" && e.TaskAdded.Task.TaskID.Value == id
	})

	// --count ends the command by itself.
	out, errOut, code := runClient(t, master, "events", "--count=1", "--timeout=30s")
	if code != 0 || !strings.HasPrefix(out, "SUBSCRIBED ") || strings.Count(out, "\n") != 1 {
		t.Errorf("agora events --count=1: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// Against a master that asks for credentials, events, top and logs are
// refused without them (exit 1, saying how to give them) and work with
// them, the agent's sandbox reads included.
func TestCockpitWithAuthentication(t *testing.T) {
	work := t.TempDir()
	_, master := startBound(t, "dev", "--secure", "--port=0", "--work_dir", work,
		"--hadoop_port=0", "--marathon_port=0", "--chronos_port=0", "--dns_port=0", "--spark_port", "0")
	secretFile := filepath.Join(work, "secure", "operator.secret")
	t.Setenv("AGORA_CA_FILE", filepath.Join(work, "secure", "tls", "ca.pem")) // the master speaks TLS
	for _, args := range [][]string{{"events", "--count=1"}, {"top", "--once"}, {"logs", "x"}} {
		_, errOut, code := runClient(t, master, args...)
		if code != 1 || !strings.Contains(errOut, "--principal=NAME --secret_file=FILE") {
			t.Errorf("agora %v without credentials: exit %d, stderr %q", args, code, errOut)
		}
	}
	cred := []string{"--principal=operator", "--secret_file=" + secretFile}
	out, errOut, code := runClient(t, master, append([]string{"events", "--count=1", "--timeout=60s"}, cred...)...)
	if code != 0 || !strings.HasPrefix(out, "SUBSCRIBED ") {
		t.Fatalf("agora events with credentials: exit %d, %q %q", code, out, errOut)
	}
	secret, err := os.ReadFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AGORA_PRINCIPAL", "operator")
	t.Setenv("AGORA_SECRET", strings.TrimSpace(string(secret)))
	if out, errOut, code := runClient(t, master, "run", "--name=secured", "--", "echo", "guarded"); code != 0 || out != "guarded\n" {
		t.Fatalf("agora run: exit %d, %q %q", code, out, errOut)
	}
	id := waitTaskID(t, master, "secured", "TASK_FINISHED")
	if out, errOut, code := runClient(t, master, "logs", "-f", id); code != 0 || out != "guarded\n" {
		t.Errorf("agora logs -f with credentials: exit %d, %q %q", code, out, errOut)
	}
}
