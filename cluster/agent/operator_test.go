package agent_test

import (
	"context"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	agentpb "github.com/mesos/mesos-go/api/v1/lib/agent"
	"github.com/mesos/mesos-go/api/v1/lib/agent/calls"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpagent"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/frameworks/oneshot"
)

// TestAgentOperatorAPIWithMesosGo queries a real agent running a task with
// mesos-go's httpagent client (protobuf, as its tools do).
func TestAgentOperatorAPIWithMesosGo(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{AgentResources: "cpus:2;mem:1024;disk:100"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	job, err := oneshot.New(oneshot.Config{Masters: []string{c.MasterAddr}, Codec: api.JSON,
		Task: oneshot.Spec{Name: "watched", Command: []string{"sleep", "30"}, CPUs: 0.2, Mem: 64}})
	if err != nil {
		t.Fatal(err)
	}
	go job.Run(ctx)

	sender := httpagent.NewSender(httpcli.New(httpcli.Endpoint("http://"+c.Agents[0].Addr()+"/api/v1"),
		httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf])).Send)
	get := func(call *agentpb.Call) *agentpb.Response {
		t.Helper()
		resp, err := sender.Send(ctx, calls.NonStreaming(call))
		if err != nil {
			t.Fatalf("%v: %v", call.Type, err)
		}
		defer resp.Close()
		var r agentpb.Response
		if err := resp.Decode(&r); err != nil {
			t.Fatalf("decode %v: %v", call.Type, err)
		}
		return &r
	}
	if r := get(calls.GetHealth()); !r.GetGetHealth().GetHealthy() {
		t.Fatal("GET_HEALTH: not healthy")
	}
	if r := get(calls.GetAgent()); r.GetGetAgent().GetAgentInfo().GetID().GetValue() != c.Agents[0].ID() {
		t.Fatalf("GET_AGENT: %+v", r.GetGetAgent())
	}
	var containers []agentpb.Response_GetContainers_Container
	deadline := time.Now().Add(30 * time.Second)
	for len(containers) == 0 && time.Now().Before(deadline) {
		containers = get(calls.GetContainers()).GetGetContainers().Containers
		time.Sleep(50 * time.Millisecond)
	}
	if len(containers) != 1 {
		t.Fatalf("GET_CONTAINERS: %d containers", len(containers))
	}
	ct := containers[0]
	if ct.GetContainerStatus().GetExecutorPID() == 0 || ct.GetResourceStatistics() == nil || ct.GetResourceStatistics().GetMemRSSBytes() == 0 {
		t.Fatalf("GET_CONTAINERS entry lacks a pid or usage: %+v", ct)
	}
	st := get(calls.GetState()).GetGetState()
	if n := len(st.GetGetTasks().LaunchedTasks); n != 1 || st.GetGetTasks().LaunchedTasks[0].GetState() != mesos.TASK_RUNNING {
		t.Fatalf("GET_STATE tasks: %+v", st.GetGetTasks())
	}
	if n := len(st.GetGetFrameworks().Frameworks); n != 1 {
		t.Fatalf("GET_STATE frameworks: %d", n)
	}
	job.Kill(ctx)
}
