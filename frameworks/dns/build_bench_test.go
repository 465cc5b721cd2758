package dns

import (
	"net"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/master"
)

// BenchmarkBuild10000 is the cost of building the records of 10,000
// running tasks whole, which each (re)subscription pays.
func BenchmarkBuild10000(b *testing.B) {
	cfg := testConfig(deadMaster)
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	v := fakeView("app", 10000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		build(&cfg, v, nil, nil)
	}
}

// BenchmarkEventInPlace10000 is the cost of one task's health flipping
// among 10,000 running tasks of one app, which every such event pays: its
// records leave and come back, in place.
func BenchmarkEventInPlace10000(b *testing.B) {
	cfg := testConfig(deadMaster)
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	v := fakeView("app", 10000)
	rs := build(&cfg, v, nil, net.IPv4(127, 0, 0, 1))
	running := mesos.TASK_RUNNING
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		healthy := i%2 == 1
		ev := &master.Event{Type: master.Event_TASK_UPDATED, TaskUpdated: &master.Event_TaskUpdated{
			FrameworkID: mesos.FrameworkID{Value: "f1"}, State: &running,
			Status: mesos.TaskStatus{TaskID: mesos.TaskID{Value: "app.5000"}, State: &running, Healthy: &healthy}}}
		rs.apply(&cfg, v, v.applyEvent(ev), nil, net.IPv4(127, 0, 0, 1))
	}
}
