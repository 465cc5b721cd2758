package scheduler

import (
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func TestReconcilerBacksOffUntilEveryTaskIsHeardFrom(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := Backoff{Min: time.Second, Max: 4 * time.Second, Factor: 2}
	r := NewReconciler(map[string]string{"t1": "a1", "t2": ""}, t0, b)

	tasks, next := r.Due(t0)
	if len(tasks) != 2 || tasks[0].TaskID.Value != "t1" || tasks[0].AgentID.GetValue() != "a1" || tasks[1].AgentID != nil {
		t.Fatalf("first round = %+v", tasks)
	}
	if want := t0.Add(time.Second); next.Sub(want).Abs() > time.Millisecond {
		t.Errorf("next = %v, want %v", next, want)
	}
	if tasks, _ := r.Due(t0.Add(500 * time.Millisecond)); tasks != nil {
		t.Errorf("reconciled again before the backoff passed: %+v", tasks)
	}

	r.Observe(mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t1"}})
	tasks, next = r.Due(t0.Add(time.Second))
	if len(tasks) != 1 || tasks[0].TaskID.Value != "t2" {
		t.Fatalf("second round = %+v, want only t2", tasks)
	}
	if want := t0.Add(3 * time.Second); next.Sub(want).Abs() > time.Millisecond {
		t.Errorf("second backoff: next = %v, want %v", next, want)
	}

	r.Observe(mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t2"}})
	if !r.Done() {
		t.Error("not done after every task was heard from")
	}
	if tasks, _ := r.Due(t0.Add(time.Hour)); tasks != nil {
		t.Errorf("done reconciler still asks for %+v", tasks)
	}
}
