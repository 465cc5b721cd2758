package master_test

import (
	"context"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpmaster"
	"github.com/mesos/mesos-go/api/v1/lib/master"
	"github.com/mesos/mesos-go/api/v1/lib/master/calls"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/clustertest"
)

// TestOperatorAPIWithMesosGo queries the operator API and watches its event
// stream with mesos-go's httpmaster client, in both codecs, the way mwatch
// and DC/OS-style tools do.
func TestOperatorAPIWithMesosGo(t *testing.T) {
	for _, codec := range []encoding.Codec{codecs.ByMediaType[codecs.MediaTypeProtobuf], codecs.ByMediaType[codecs.MediaTypeJSON]} {
		t.Run(codec.Name, func(t *testing.T) { testOperatorAPI(t, codec) })
	}
}

func testOperatorAPI(t *testing.T, codec encoding.Codec) {
	c := clustertest.Start(t, clustertest.Options{Agents: 2})
	sender := httpmaster.NewSender(httpcli.New(httpcli.Endpoint(c.MasterURL+"/api/v1"), httpcli.Codec(codec)).Send)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	get := func(call *master.Call) *master.Response {
		t.Helper()
		resp, err := sender.Send(ctx, calls.NonStreaming(call))
		if err != nil {
			t.Fatalf("%v: %v", call.Type, err)
		}
		defer resp.Close()
		var r master.Response
		if err := resp.Decode(&r); err != nil {
			t.Fatalf("decode %v: %v", call.Type, err)
		}
		return &r
	}
	if r := get(calls.GetHealth()); !r.GetGetHealth().GetHealthy() {
		t.Fatal("GET_HEALTH: not healthy")
	}
	if r := get(calls.GetAgents()); len(r.GetGetAgents().GetAgents()) != 2 {
		t.Fatalf("GET_AGENTS: %d agents", len(r.GetGetAgents().GetAgents()))
	}

	// Subscribe, then run a task: the stream shows it added and updated.
	resp, err := sender.Send(ctx, calls.NonStreaming(calls.Subscribe()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	events := make(chan *master.Event, 100)
	stop := make(chan struct{}) // ends the reader even when events is full
	defer close(stop)
	go func() {
		defer close(events)
		for {
			var e master.Event
			if err := resp.Decode(&e); err != nil {
				return
			}
			select {
			case events <- &e:
			case <-stop:
				return
			}
		}
	}()
	next := func(typ master.Event_Type) *master.Event {
		t.Helper()
		for {
			select {
			case e, ok := <-events:
				if !ok {
					t.Fatalf("event stream ended before %v", typ)
				}
				if e.Type == typ {
					return e
				}
			case <-ctx.Done():
				t.Fatalf("no %v event", typ)
			}
		}
	}
	sub := next(master.Event_SUBSCRIBED)
	if n := len(sub.Subscribed.GetState.GetGetAgents().Agents); n != 2 {
		t.Fatalf("SUBSCRIBED state has %d agents", n)
	}
	s := clustertest.SubscribeTo(t, c.MasterURL, `{"user":"root","name":"watched"}`)
	if e := next(master.Event_FRAMEWORK_ADDED); e.FrameworkAdded.Framework.FrameworkInfo.Name != "watched" {
		t.Fatalf("FRAMEWORK_ADDED for %q", e.FrameworkAdded.Framework.FrameworkInfo.Name)
	}
	offer := s.Next(scheduler.Event_OFFERS).Offers.Offers[0]
	s.Call(launch([]mesos.OfferID{offer.ID}, cmdTask("watched-1", offer.AgentID, "cpus:0.1;mem:16")))
	if e := next(master.Event_TASK_ADDED); e.TaskAdded.Task.TaskID.Value != "watched-1" {
		t.Fatalf("TASK_ADDED for %s", e.TaskAdded.Task.TaskID.Value)
	}
	for {
		e := next(master.Event_TASK_UPDATED)
		if e.TaskUpdated.GetState() == mesos.TASK_FINISHED {
			break
		}
	}
	if r := get(calls.GetTasks()); len(r.GetGetTasks().Tasks)+len(r.GetGetTasks().CompletedTasks) != 1 {
		t.Fatalf("GET_TASKS: %+v", r.GetGetTasks())
	}
	if r := get(calls.GetState()); len(r.GetGetState().GetGetFrameworks().Frameworks) != 1 {
		t.Fatalf("GET_STATE frameworks: %+v", r.GetGetState().GetGetFrameworks())
	}
}
