package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/webui/webuitest"
)

// TestUIShowsTheRing opens the ring's page in headless Chromium. The
// framework runs without a master or a JVM: offers are handed to it and
// task updates fed to it as the scheduler driver would, and the probes'
// findings (joined, host ID) set as probeAll sets them. The page shows
// each node as GET /v1/nodes does, links its task and sandbox in the
// master's UI, and shows a node's state and health changing, and a repair
// starting, without a reload.
func TestUIShowsTheRing(t *testing.T) {
	f := testFramework(t, 3)
	f.frameworkID = "fw-ring"
	res := func(first uint64) []mesos.Resource {
		return []mesos.Resource{scalar("cpus", 2), scalar("mem", 4000), scalar("disk", 1000), ports(first, first+10)}
	}
	ctx := context.Background()
	// node-0 placed, running, healthy and in the ring; node-1 placed and
	// starting (each node is placed only once those before it are up).
	f.useOffer(time.Now(), offer("a1", "127.0.0.1", res(7000)...))
	healthy := true
	f.update(ctx, mesos.TaskStatus{TaskID: mesos.TaskID{Value: f.nodes[0].TaskID}, State: mesos.TASK_RUNNING.Enum(), Healthy: &healthy})
	f.mu.Lock()
	f.nodes[0].Joined, f.nodes[0].Up, f.nodes[0].HostID = true, true, "6f1c1c3e-0000-4000-8000-000000000000"
	f.mu.Unlock()
	if ops, _ := f.useOffer(time.Now(), offer("a2", "127.0.0.2", res(8000)...)); len(ops) != 3 {
		t.Fatalf("node-1 not placed: %v", ops)
	}
	f.update(ctx, mesos.TaskStatus{TaskID: mesos.TaskID{Value: f.nodes[1].TaskID}, State: mesos.TASK_STARTING.Enum()})

	srv := httptest.NewServer(f.Handler())
	t.Cleanup(srv.Close)
	b := webuitest.NewBrowser(t)
	webuitest.Run(t, b, "opening the page", chromedp.Navigate(srv.URL+"/ui/?poll=0.2"))
	webuitest.Wait(t, b, "the nodes listed", `document.body.dataset.loaded === 'ring' && document.querySelectorAll('#nodes tr[data-node]').length === 3`)

	// What the page shows of each node is what /v1/nodes says.
	var nodes []Node
	if err := getNodes(srv.URL, &nodes); err != nil {
		t.Fatal(err)
	}
	type shown struct {
		Node, State, Health, HostID, Address, Agent, Volume, Tokens, Task string
	}
	rows := webuitest.Run(t, b, "reading the nodes", chromedp.Evaluate[[]shown](`[...document.querySelectorAll('#nodes tr[data-node]')].map((r) => {
		const code = (sel) => { const c = r.querySelector(sel + ' code'); return c ? c.innerText : ''; };
		const a = r.querySelector('td.task a');
		return { Node: r.dataset.node, State: r.dataset.state, Health: r.dataset.health, HostID: code('td.host-id'), Address: code('td.address'),
			Agent: code('td.agent'), Volume: code('td.volume'), Tokens: r.querySelector('td.tokens').innerText, Task: a ? a.href : '' };
	})`))
	if len(rows) != len(nodes) {
		t.Fatalf("the page shows %d nodes, the API %d", len(rows), len(nodes))
	}
	for i, n := range nodes {
		want := shown{Node: n.Name, State: n.State, Health: "unknown", HostID: n.HostID, Agent: n.AgentID, Volume: n.VolumeID,
			Tokens: strconv.Itoa(f.Spec().NumTokens)}
		if n.Healthy != nil {
			want.Health = map[bool]string{true: "healthy", false: "unhealthy"}[*n.Healthy]
		}
		if n.Host != "" {
			want.Address = n.NativeAddr()
		}
		if n.TaskID != "" {
			want.Task = "http://127.0.0.1:5050/#/task/fw-ring/" + n.TaskID
		}
		if rows[i] != want {
			t.Errorf("node %d on the page\n%+v\nwant, from /v1/nodes,\n%+v", i, rows[i], want)
		}
	}
	if nodes[0].State != "TASK_RUNNING" || nodes[0].HostID == "" || nodes[2].AgentID != "" {
		t.Fatalf("the ring is not as set up: %+v", nodes)
	}

	// Changes show without a reload: node-1 runs but fails its health
	// check; a repair starts on node-0.
	webuitest.Run(t, b, "marking the page", chromedp.Evaluate[bool](`window.notReloaded = true`))
	unhealthy := false
	f.update(ctx, mesos.TaskStatus{TaskID: mesos.TaskID{Value: nodes[1].TaskID}, State: mesos.TASK_RUNNING.Enum(), Healthy: &unhealthy})
	webuitest.Wait(t, b, "node-1 running and unhealthy, without a reload", `window.notReloaded === true
		&& document.querySelector('#nodes tr[data-node="node-1"][data-state="TASK_RUNNING"][data-health="unhealthy"]') !== null`)
	if _, err := f.StartJob(JobRepair, "ks"); err != nil {
		t.Fatal(err)
	}
	webuitest.Wait(t, b, "the repair under way", `window.notReloaded === true
		&& document.querySelector('#ops tr[data-op="repair"][data-state="running"]') !== null
		&& document.querySelector('#nodes tr[data-node="node-0"] td.operation').innerText.includes('repair')`)
	if text := webuitest.Text(t, b, `#ops tr[data-op="repair"]`); !regexp.MustCompile(`repair of ks\s+running\s+0/2 nodes`).MatchString(text) {
		t.Errorf("the repair's row reads %q, want the keyspace, its state and 0/2 nodes", text)
	}
	webuitest.Screenshot(t, b, "agora-cassandra-ring")
}

func getNodes(base string, v any) error {
	resp, err := http.Get(base + "/v1/nodes")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /v1/nodes: %s", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
