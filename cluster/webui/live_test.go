package webui_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/webui"
	"github.com/agora-cluster/agora/cluster/webui/webuitest"
	"github.com/agora-cluster/agora/frameworks/oneshot"
)

// TestLiveCluster opens the UI served by a real master with a real agent,
// after a real framework ran a task, and checks what a person would see.
func TestLiveCluster(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{UI: webui.Handler(), AgentResources: "cpus:3;mem:2048;disk:100"})
	job, err := oneshot.New(oneshot.Config{Masters: []string{c.MasterAddr}, Codec: api.JSON, FrameworkName: "ui-check",
		Task: oneshot.Spec{Name: "hello-ui", Command: []string{"true"}, CPUs: 0.1, Mem: 32}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := job.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	taskID := res.TaskID

	bctx := webuitest.NewBrowser(t)
	run(t, bctx, "opening the tasks view", chromedp.Navigate(c.MasterURL+"/?refresh=0.5#/tasks"))
	waitFor(t, bctx, "the finished task", `document.body.innerText.includes(`+jsString(taskID)+`)`)
	tasks := text(t, bctx, "body")
	run(t, bctx, "opening the agents view", chromedp.Navigate(c.MasterURL+"/?refresh=0.5#/agents"))
	waitFor(t, bctx, "the agent", `document.body.innerText.includes("localhost")`)
	agents := text(t, bctx, "body")
	if !strings.Contains(tasks, "FINISHED") || !strings.Contains(tasks, "ui-check") {
		t.Fatalf("tasks view lacks the finished task of ui-check:\n%s", tasks)
	}
	if !strings.Contains(agents, "localhost") {
		t.Fatalf("agents view lacks the agent:\n%s", agents)
	}

	// With polling all but off, a new task still shows up: the page follows
	// the operator API's event stream.
	run(t, bctx, "opening the tasks view", chromedp.Navigate(c.MasterURL+"/?refresh=600#/tasks"))
	waitFor(t, bctx, "the first task", `document.body.innerText.includes(`+jsString(taskID)+`)`)
	job2, err := oneshot.New(oneshot.Config{Masters: []string{c.MasterAddr}, Codec: api.JSON, FrameworkName: "ui-live",
		Task: oneshot.Spec{Name: "second", Command: []string{"true"}, CPUs: 0.1, Mem: 32}})
	if err != nil {
		t.Fatal(err)
	}
	res2, err := job2.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, bctx, "the second task, pushed by the event stream", `document.body.innerText.includes(`+jsString(res2.TaskID)+`)`)

	// The master filters: the framework's name finds its task only.
	setFilter(t, bctx, "ui-live")
	waitFor(t, bctx, "the filtered list", `document.getElementById('task-count').textContent === '1 of 2 tasks match'`)
	if got := texts(t, bctx, "#tasks-completed tbody tr[data-task-id] th"); len(got) != 1 || got[0] != res2.TaskID {
		t.Errorf("tasks matching ui-live = %v, want only %s", got, res2.TaskID)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
