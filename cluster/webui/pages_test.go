package webui_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/webui"
	"github.com/agora-cluster/agora/cluster/webui/webuitest"
	"github.com/agora-cluster/agora/frameworks/oneshot"
)

// send makes one HTTP call with a JSON body and fails the test unless the
// master answers 200.
func send(t *testing.T, method, url, body string) string {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", api.MediaJSON)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s %s", method, url, resp.Status, b)
	}
	return string(b)
}

// rowText is the text of the cell matching cell in the table row matching row.
func rowText(t *testing.T, ctx context.Context, row, cell string) string {
	t.Helper()
	return text(t, ctx, row+" "+cell)
}

// TestLivePages opens the roles, agents and task pages of a real cluster
// whose role "analytics" has a weight, a quota and a static reservation, and
// whose agent is scheduled for maintenance. It checks each page shows what
// the master's API says, that the roles page counts a task started while it
// is open (pushed by the event stream, not polled: refresh is 10 minutes),
// and that the task's stdout is followed as the task prints a line a second.
func TestLivePages(t *testing.T) {
	workDir := screenshotWorkDir(t)
	c := clustertest.Start(t, clustertest.Options{
		UI:             webui.Handler(),
		AgentResources: "cpus:3;mem:2048;disk:100;cpus(analytics):1;mem(analytics):256;disk(analytics):50",
		Agent: func(_ int, cfg *agent.Config) {
			cfg.Attributes = "rack:r7;zone:z1"
			if workDir != "" {
				cfg.WorkDir = workDir
			}
		},
	})
	send(t, http.MethodPut, c.MasterURL+"/weights", `[{"role":"analytics","weight":2.5}]`)
	send(t, http.MethodPost, c.MasterURL+"/api/v1", `{"type":"UPDATE_QUOTA","update_quota":{"quota_configs":[`+
		`{"role":"analytics","guarantees":{"cpus":{"value":1}},"limits":{"cpus":{"value":2},"mem":{"value":512}}}]}}`)
	if q := send(t, http.MethodGet, c.MasterURL+"/quota", ""); !strings.Contains(q, `"analytics"`) {
		t.Fatalf("/quota lacks the analytics quota: %s", q)
	}

	// A persistent volume on the reserved disk.
	agentID := c.WaitFor("the agent", func(s *clustertest.State) bool { return len(s.Slaves) == 1 }).Slaves[0].ID
	send(t, http.MethodPost, c.MasterURL+"/api/v1", `{"type":"CREATE_VOLUMES","create_volumes":{"agent_id":{"value":"`+agentID+`"},`+
		`"volumes":[{"name":"disk","type":"SCALAR","scalar":{"value":20},"reservations":[{"type":"STATIC","role":"analytics"}],`+
		`"disk":{"persistence":{"id":"logs"},"volume":{"container_path":"logs","mode":"RW"}}}]}}`)

	bctx := webuitest.NewBrowser(t)
	row := `#roles-table tr[data-role="analytics"]`
	t.Run("roles", func(t *testing.T) {
		run(t, bctx, "opening the roles view", chromedp.Navigate(c.MasterURL+"/?refresh=600#/roles"))
		waitFor(t, bctx, "the analytics role", `!!document.querySelector('`+row+`')`)
		for cell, want := range map[string]string{
			".weight":    "2.5",
			".guarantee": "1 cpus",
			".limit":     "2 cpus, 512 MB mem",
			".reserved":  "1 cpus, 256 MB mem, 50 MB disk",
			".allocated": "–",
		} {
			if got := rowText(t, bctx, row, cell); got != want {
				t.Errorf("analytics %s = %q, want %q", cell, got, want)
			}
		}
	})

	// A task in role analytics, printing a line a second, started while the
	// roles page is open.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	job, err := oneshot.New(oneshot.Config{Masters: []string{c.MasterAddr}, Codec: api.JSON, FrameworkName: "ticker",
		Task: oneshot.Spec{Name: "ticker", Shell: true, CPUs: 0.5, Mem: 64, Role: "analytics",
			Command: []string{`i=0; while [ $i -lt 120 ]; do i=$((i+1)); echo "tick $i"; sleep 1; done`}}})
	if err != nil {
		t.Fatal(err)
	}
	go job.Run(ctx)
	st := c.WaitFor("the ticker running", func(s *clustertest.State) bool {
		for _, f := range s.Frameworks {
			for _, tk := range f.Tasks {
				if tk.Name == "ticker" && tk.State == "TASK_RUNNING" {
					return true
				}
			}
		}
		return false
	})
	var fwID, taskID string
	for _, f := range st.Frameworks {
		for _, tk := range f.Tasks {
			if tk.Name == "ticker" {
				fwID, taskID = f.ID, tk.ID
			}
		}
	}

	t.Run("roles live", func(t *testing.T) {
		waitFor(t, bctx, "the ticker counted in its role, pushed by the event stream",
			`document.querySelector('`+row+` td.allocated').textContent.includes('0.5 cpus')`)
		if got := rowText(t, bctx, row, "td:nth-of-type(3)"); got != "1" {
			t.Errorf("analytics active tasks = %q, want 1", got)
		}
		shot(t, bctx, "roles")
	})

	t.Run("tasks", func(t *testing.T) {
		run(t, bctx, "opening the tasks view", chromedp.Navigate(c.MasterURL+"/?refresh=600#/tasks"))
		waitFor(t, bctx, "the ticker", `!!document.querySelector('#tasks-active tr[data-task-id="`+taskID+`"]')`)
		shot(t, bctx, "tasks")
	})

	t.Run("agents", func(t *testing.T) {
		start := time.Now().Add(time.Hour).UnixNano()
		send(t, http.MethodPost, c.MasterURL+"/maintenance/schedule", `{"windows":[{"machine_ids":[{"hostname":"localhost"}],`+
			`"unavailability":{"start":{"nanoseconds":`+strconv.FormatInt(start, 10)+`}}}]}`)
		run(t, bctx, "opening the agents view", chromedp.Navigate(c.MasterURL+"/?refresh=600#/agents"))
		agentRow := `#agents-table tr[data-agent-id="` + st.Slaves[0].ID + `"]`
		waitFor(t, bctx, "the agent's maintenance state", `(document.querySelector('`+agentRow+` td.maintenance') || {}).textContent === 'scheduled'`)
		if got := rowText(t, bctx, agentRow, "td.attributes"); got != "rack=r7, zone=z1" {
			t.Errorf("attributes = %q", got)
		}
		waitFor(t, bctx, "the agent's volume", `!!document.querySelector('`+agentRow+` td.reservations .volume')`)
		want := []string{"analytics: 1 cpus, 256 MB mem, 50 MB disk", "volume logs: 20 MB at logs (analytics)"}
		if got := texts(t, bctx, agentRow+" td.reservations span"); !slices.Equal(got, want) {
			t.Errorf("reservations and volumes = %q, want %q", got, want)
		}
		shot(t, bctx, "agents")
	})

	t.Run("task log tail", func(t *testing.T) {
		run(t, bctx, "opening the ticker", chromedp.Navigate(c.MasterURL+"/?refresh=600#/task/"+fwID+"/"+taskID))
		waitFor(t, bctx, "the sandbox listing", `!!document.querySelector('#sandbox-files tr[data-path$="/stdout"] button')`)
		if got := texts(t, bctx, "#task-statuses tbody .state"); len(got) == 0 || got[0] != "RUNNING" {
			t.Errorf("status history = %v, want RUNNING last", got)
		}
		webuitest.Click(t, bctx, "opening stdout", `#sandbox-files tr[data-path$="/stdout"] button`)
		waitFor(t, bctx, "stdout", `/tick \d+/.test(document.getElementById('file-body').textContent)`)
		last := lastTick(t, bctx)
		// New lines appear without reloading the page (the state is not
		// polled again for 10 minutes: the tail reads on its own).
		want := last + 3
		waitFor(t, bctx, "tick "+strconv.Itoa(want), `document.getElementById('file-body').textContent.includes('tick `+strconv.Itoa(want)+`\n')`)
		body := text(t, bctx, "#file-body") + "\n" // text trims the last newline
		for i := last; i <= want; i++ {
			if !strings.Contains(body, "tick "+strconv.Itoa(i)+"\n") {
				t.Errorf("followed log lacks tick %d:\n%s", i, body)
			}
		}
		shot(t, bctx, "task")

		href := run(t, bctx, "reading the download link", chromedp.Evaluate[string](`document.getElementById('file-download').href`))
		if !strings.Contains(href, "/files/download?path=") {
			t.Fatalf("download link = %q", href)
		}
		got := send(t, http.MethodGet, href, "")
		if !strings.HasPrefix(got, "tick 1\n") {
			t.Errorf("download of stdout starts %q, want tick 1", got[:min(len(got), 40)])
		}
	})
}

// neutralWorkDir is the agent's work directory while screenshots are
// taken for the docs, so that the task page shows a sandbox path like an
// installation's, not a test's temporary directory.
const neutralWorkDir = "/var/lib/agora/agent"

// screenshotWorkDir is neutralWorkDir when $AGORA_WEBUI_SCREENSHOTS is set
// (made now, removed when the test ends), else "" (the test's own).
func screenshotWorkDir(t *testing.T) string {
	t.Helper()
	if os.Getenv("AGORA_WEBUI_SCREENSHOTS") == "" {
		return ""
	}
	top := filepath.Dir(neutralWorkDir)
	if _, err := os.Stat(top); err == nil {
		t.Fatalf("%s exists; the screenshots put an agent's work directory there and remove it after, so move it away first", top)
	}
	if err := os.MkdirAll(neutralWorkDir, 0o755); err != nil {
		t.Fatalf("screenshots need %s: %v", neutralWorkDir, err)
	}
	// Registered before the cluster's cleanup, so it runs after the agent stops.
	t.Cleanup(func() { os.RemoveAll(top) })
	return neutralWorkDir
}

var tickRE = regexp.MustCompile(`tick (\d+)\n`)

// lastTick is the number of the last tick line the log viewer shows.
func lastTick(t *testing.T, ctx context.Context) int {
	t.Helper()
	m := tickRE.FindAllStringSubmatch(text(t, ctx, "#file-body")+"\n", -1)
	if len(m) == 0 {
		t.Fatal("no tick lines in the log viewer")
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}
