package master_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	mshapp "github.com/mesos/mesos-go/api/v1/cmd/msh/app"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/extras/scheduler/controller"
	"github.com/mesos/mesos-go/api/v1/lib/extras/store"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/events"

	"github.com/agora-cluster/agora/cluster/clustertest"
)

// TestMshProtobuf runs mesos-go's own msh tool (protobuf codec, MULTI_ROLE,
// command executor) against agora: it must see its command finish.
func TestMshProtobuf(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	for _, tc := range []struct {
		cmd  []string
		want error
	}{
		{[]string{"true"}, mshapp.ExitError(0)},
		{[]string{"sh", "-c", "exit 3"}, mshapp.ExitError(3)},
	} {
		conf := mshapp.DefaultConfig()
		conf.MesosMaster = c.MasterAddr
		conf.Command = tc.cmd
		conf.Silent = true
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := mshapp.New(conf).Run(ctx)
		cancel()
		if fmt.Sprint(err) != fmt.Sprint(tc.want) {
			t.Fatalf("msh %v: got %v, want %v", tc.cmd, err, tc.want)
		}
	}
}

// TestHTTPSchedJSON drives a command task through mesos-go's httpsched
// client with the JSON codec and its controller (subscribe, offers, accept,
// updates, acknowledgements).
func TestHTTPSchedJSON(t *testing.T) {
	testHTTPSched(t, codecs.ByMediaType[codecs.MediaTypeJSON])
}

// TestHTTPSchedProtobuf is the same with the protobuf codec and a
// framework without MULTI_ROLE.
func TestHTTPSchedProtobuf(t *testing.T) {
	testHTTPSched(t, codecs.ByMediaType[codecs.MediaTypeProtobuf])
}

func testHTTPSched(t *testing.T, codec encoding.Codec) {
	c := clustertest.Start(t, clustertest.Options{})
	cli := httpcli.New(httpcli.Endpoint(c.MasterURL+"/api/v1/scheduler"), httpcli.Codec(codec))
	fidStore := store.NewInMemorySingleton()
	caller := httpsched.NewCaller(cli)
	caller = callerWithFrameworkID(caller, fidStore)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var (
		mu       sync.Mutex
		launched bool
		states   []mesos.TaskState
		done     = make(chan struct{})
	)
	handler := events.Handlers{
		scheduler.Event_SUBSCRIBED: controller.TrackSubscription(fidStore, 0),
		scheduler.Event_OFFERS: events.HandlerFunc(func(ctx context.Context, e *scheduler.Event) error {
			mu.Lock()
			defer mu.Unlock()
			offers := e.GetOffers().GetOffers()
			var ids []mesos.OfferID
			for i := range offers {
				ids = append(ids, offers[i].ID)
			}
			if launched || len(offers) == 0 {
				return calls.CallNoData(ctx, caller, calls.Decline(ids...).With(calls.RefuseSeconds(time.Hour)))
			}
			o := offers[0]
			if len(o.AllocationInfo.GetRole()) != 0 {
				return fmt.Errorf("non-MULTI_ROLE framework got an offer with allocation_info")
			}
			want := mesos.Resources{resources.NewCPUs(0.1).Resource, resources.NewMemory(32).Resource}
			task := mesos.TaskInfo{
				Name: "compat", TaskID: mesos.TaskID{Value: "compat-1"}, AgentID: o.AgentID,
				Command:   &mesos.CommandInfo{Value: strPtr("echo compat")},
				Resources: want,
			}
			launched = true
			return calls.CallNoData(ctx, caller, calls.Accept(calls.OfferOperations{calls.OpLaunch(task)}.WithOffers(ids...)))
		}),
		scheduler.Event_UPDATE: controller.AckStatusUpdates(caller).AndThen().HandleF(func(ctx context.Context, e *scheduler.Event) error {
			mu.Lock()
			defer mu.Unlock()
			st := e.GetUpdate().GetStatus()
			states = append(states, st.GetState())
			if st.GetState() == mesos.TASK_FINISHED {
				close(done)
			}
			return nil
		}),
	}
	go controller.Run(ctx,
		&mesos.FrameworkInfo{User: "root", Name: "compat"},
		caller,
		controller.WithEventHandler(handler),
		controller.WithFrameworkID(store.GetIgnoreErrors(fidStore)),
		controller.WithContextPerSubscription(true),
	)
	select {
	case <-done:
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("task did not finish; states seen: %v", states)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED}
	if fmt.Sprint(states) != fmt.Sprint(want) {
		t.Fatalf("states %v, want %v", states, want)
	}
	// Every update carried a uuid and was acknowledged: the task is
	// completed on the master once the terminal update is acked.
	c.WaitFor("task completed after acknowledgement", func(s *clustertest.State) bool {
		for _, f := range s.Frameworks {
			for _, ct := range f.CompletedTasks {
				if ct.ID == "compat-1" && ct.State == "TASK_FINISHED" {
					return true
				}
			}
		}
		return false
	})
}

func strPtr(s string) *string { return &s }
