package framework

import (
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func withPorts(o *mesos.Offer, begin, end uint64) *mesos.Offer {
	o.Resources = append(o.Resources, mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(),
		Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: begin, End: end}}}})
	return o
}

func envOf(task mesos.TaskInfo) map[string]string {
	m := map[string]string{}
	for _, v := range task.Command.GetEnvironment().GetVariables() {
		m[v.Name] = v.GetValue()
	}
	return m
}

// With spark.shuffle.service.enabled the first offer from an agent starts
// the shuffle service there (a port from the offer) and no executor; the
// executors come once it is ready, told its port; it ends with the last
// application that had executors on its agent, and one that fails is
// started again.
func TestShuffleServiceBeforeExecutors(t *testing.T) {
	s := testScheduler(t)
	a := addApp(t, s, "app-1", map[string]string{"spark.executor.cores": "1", "spark.executor.memory": "512m",
		"spark.shuffle.service.enabled": "true", "spark.dynamicAllocation.enabled": "true", "spark.dynamicAllocation.initialExecutors": "2"})
	l, refuse := s.packLocked(withPorts(offer("o1", "a1", 4, 8192), 31000, 31010))
	if len(l.tasks) != 1 || len(l.execs) != 0 || len(l.shuffle) != 1 {
		t.Fatalf("first offer: %d tasks, %d executors; want the shuffle service alone", len(l.tasks), len(l.execs))
	}
	ss := l.shuffle[0]
	task := l.tasks[0]
	if !strings.Contains(task.Command.GetValue(), "'/opt/spark/bin/spark-class' '"+shuffleClass+"'") ||
		envOf(task)["SPARK_DAEMON_JAVA_OPTS"] != "-Dspark.shuffle.service.port=31000" || ss.Port != 31000 {
		t.Fatalf("shuffle service task %q env %v", task.Command.GetValue(), envOf(task))
	}
	if ss.Dir != "/var/tmp/agora-spark-shuffle/"+ss.TaskID || envOf(task)["SPARK_LOCAL_DIRS"] != ss.Dir || !strings.Contains(task.Command.GetValue(), "rm -rf '"+ss.Dir+"'") {
		t.Errorf("shuffle service directory %q, command %q; want it made and removed", ss.Dir, task.Command.GetValue())
	}
	if refuse != shortRefuse || !strings.Contains(a.Message, "waiting for the shuffle service") {
		t.Errorf("refuse %v, message %q", refuse, a.Message)
	}
	// Starting, not yet accepting connections: nothing, and no second one.
	ss.State = "TASK_RUNNING"
	if l, _ := s.packLocked(withPorts(offer("o2", "a1", 4, 8192), 31001, 31010)); len(l.tasks) != 0 {
		t.Fatalf("launched %d tasks while the shuffle service starts", len(l.tasks))
	}
	ss.Ready = true
	l, _ = s.packLocked(withPorts(offer("o3", "a1", 4, 8192), 31001, 31010))
	if len(l.execs) != 2 || len(l.shuffle) != 0 {
		t.Fatalf("ready service: %d executors, %d shuffle services; want 2, 0", len(l.execs), len(l.shuffle))
	}
	for _, tk := range l.tasks {
		if got := envOf(tk)["SPARK_EXECUTOR_OPTS"]; got != "-Dspark.shuffle.service.port=31000" {
			t.Errorf("executor SPARK_EXECUTOR_OPTS = %q; want the service's port", got)
		}
		if got := envOf(tk)["SPARK_LOCAL_DIRS"]; got != ss.Dir {
			t.Errorf("executor SPARK_LOCAL_DIRS = %q; want the service's directory %q", got, ss.Dir)
		}
	}
	// A second application that has no executors on a1 does not keep it.
	addApp(t, s, "app-2", map[string]string{"spark.shuffle.service.enabled": "true"})
	s.apps["app-2"].Limit = 0
	a.State = AppEnded
	kill := s.unneededShuffleLocked()
	if len(kill) != 1 || kill[0][0] != ss.TaskID || !ss.Killed {
		t.Fatalf("kills %v; want the shuffle service %s", kill, ss.TaskID)
	}
	if again := s.unneededShuffleLocked(); len(again) != 0 {
		t.Errorf("killed twice: %v", again)
	}
	s.shuffleUpdateLocked(mesos.TaskStatus{TaskID: mesos.TaskID{Value: ss.TaskID}, State: mesos.TASK_KILLED.Enum()})
	if len(s.ShuffleServices()) != 0 {
		t.Errorf("shuffle services after the kill: %+v", s.ShuffleServices())
	}

	// One that fails is forgotten: the next offer starts another.
	s.apps["app-2"].Limit = 1
	l, _ = s.packLocked(withPorts(offer("o4", "a2", 4, 8192), 31500, 31510))
	if len(l.shuffle) != 1 {
		t.Fatalf("no shuffle service for app-2 on a2: %+v", l)
	}
	s.shuffleUpdateLocked(mesos.TaskStatus{TaskID: mesos.TaskID{Value: l.shuffle[0].TaskID}, State: mesos.TASK_FAILED.Enum()})
	l, _ = s.packLocked(withPorts(offer("o5", "a2", 4, 8192), 31600, 31610))
	if len(l.shuffle) != 1 || l.shuffle[0].Port != 31600 {
		t.Fatalf("after a failure: %+v; want a new shuffle service on 31600", l.shuffle)
	}
	// An offer without a port starts none and launches no executor.
	if l, _ := s.packLocked(offer("o6", "a3", 4, 8192)); len(l.tasks) != 0 {
		t.Errorf("offer without ports: %d tasks", len(l.tasks))
	}
}

// Agents on one host share its shuffle service, as Spark expects: the
// second agent's executors wait for the first's service and use its port.
func TestShuffleServiceSharedByAHost(t *testing.T) {
	s := testScheduler(t)
	addApp(t, s, "app-1", map[string]string{"spark.shuffle.service.enabled": "true", "spark.executor.cores": "1", "spark.cores.max": "2"})
	o1 := withPorts(offer("o1", "a1", 4, 8192), 31000, 31010)
	o2 := withPorts(offer("o2", "a2", 4, 8192), 31000, 31010)
	o2.Hostname = o1.Hostname
	l1, _ := s.packLocked(o1)
	if l2, _ := s.packLocked(o2); len(l1.shuffle) != 1 || len(l2.tasks) != 0 {
		t.Fatalf("launches %+v then %+v; want one shuffle service for the host, nothing while it starts", l1.tasks, l2.tasks)
	}
	l1.shuffle[0].State, l1.shuffle[0].Ready = "TASK_RUNNING", true
	o3 := withPorts(offer("o3", "a2", 1, 8192), 31000, 31010)
	o3.Hostname = o1.Hostname
	l2, _ := s.packLocked(o3)
	if len(l2.execs) != 1 || len(l2.shuffle) != 0 || envOf(l2.tasks[0])["SPARK_EXECUTOR_OPTS"] != "-Dspark.shuffle.service.port=31000" {
		t.Fatalf("second agent: %+v; want an executor using the host's service on 31000", l2.tasks)
	}
}

func TestShuffleServiceSetting(t *testing.T) {
	if _, err := SizingFrom(map[string]string{"spark.shuffle.service.enabled": "yes please"}); err == nil ||
		!strings.Contains(err.Error(), "spark.shuffle.service.enabled") {
		t.Errorf("err = %v; want it to name spark.shuffle.service.enabled", err)
	}
}
