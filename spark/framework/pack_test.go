package framework

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	mscheduler "github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

func scalar(name string, v float64) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
}

func offer(id, agent string, cpus, mem float64, attrs ...mesos.Attribute) *mesos.Offer {
	return &mesos.Offer{ID: mesos.OfferID{Value: id}, AgentID: mesos.AgentID{Value: agent}, Hostname: agent + ".example",
		Resources: []mesos.Resource{scalar("cpus", cpus), scalar("mem", mem)}, Attributes: attrs}
}

func testScheduler(t *testing.T) *Scheduler {
	s, err := New(Config{Masters: []string{"127.0.0.1:1"}, SparkHome: "/opt/spark"})
	if err != nil {
		t.Fatal(err)
	}
	s.driverAlive = func(string) bool { return true }
	return s
}

func addApp(t *testing.T, s *Scheduler, id string, conf map[string]string) *App {
	sz, err := SizingFrom(conf)
	if err != nil {
		t.Fatal(err)
	}
	a := &App{ID: id, Name: id, DriverURL: "spark://CoarseGrainedScheduler@driver:7078", State: AppRunning, Sizing: sz, Limit: sz.Instances,
		executors: map[string]*Executor{}, failures: map[string]int{}, maxFail: 2}
	s.apps[id] = a
	s.order = append(s.order, id)
	return a
}

func argsOf(task mesos.TaskInfo) map[string]string {
	m := map[string]string{}
	args := task.Command.Arguments
	for i := 2; i+1 < len(args); i += 2 {
		m[args[i]] = args[i+1]
	}
	return m
}

// spark.cores.max bounds the cores of all of an application's executors,
// across offers; each executor is sized and commanded as asked.
func TestPackHonoursCoresMax(t *testing.T) {
	s := testScheduler(t)
	a := addApp(t, s, "app-1", map[string]string{"spark.executor.cores": "2", "spark.cores.max": "5", "spark.executor.memory": "1g"})
	l, _ := s.packLocked(offer("o1", "a1", 4, 8192))
	if len(l.tasks) != 2 {
		t.Fatalf("%d executors from an offer of 4 cpus; want 2", len(l.tasks))
	}
	for _, e := range l.execs {
		e.State = "TASK_RUNNING"
	}
	l2, refuse := s.packLocked(offer("o2", "a2", 4, 8192))
	if len(l2.tasks) != 0 {
		t.Errorf("a fifth and sixth core launched past spark.cores.max 5: %d executors", len(l2.tasks))
	}
	if want, _ := a.wants(); want {
		t.Error("the application still wants executors at 4 of 5 cores with 2 per executor")
	}
	if refuse != shortRefuse {
		t.Errorf("refuse = %v", refuse)
	}
	task := l.tasks[1]
	if got := argsOf(task); got["--executor-id"] != "1" || got["--cores"] != "2" || got["--app-id"] != "app-1" ||
		got["--driver-url"] != "spark://CoarseGrainedScheduler@driver:7078" || got["--hostname"] != "a1.example" {
		t.Errorf("executor command %v", task.Command.Arguments)
	}
	if task.Command.GetValue() != "/opt/spark/bin/spark-class" || task.Command.Arguments[1] != executorClass {
		t.Errorf("executor command %q %v", task.Command.GetValue(), task.Command.Arguments)
	}
	var cpus, mem float64
	for _, r := range task.Resources {
		switch r.Name {
		case "cpus":
			cpus += r.GetScalar().GetValue()
		case "mem":
			mem += r.GetScalar().GetValue()
		}
	}
	if cpus != 2 || mem != 1024+384 {
		t.Errorf("executor resources %g cpus %g MB; want 2, 1408", cpus, mem)
	}
	env := map[string]string{}
	for _, v := range task.Command.GetEnvironment().Variables {
		env[v.Name] = v.GetValue()
	}
	if env["SPARK_EXECUTOR_MEMORY"] != "1024m" {
		t.Errorf("environment %v; want SPARK_EXECUTOR_MEMORY=1024m", env)
	}
}

// Without spark.executor.cores an executor takes what the offer has, up
// to what spark.cores.max leaves; the requested total limits the count.
func TestPackWholeOfferAndLimit(t *testing.T) {
	s := testScheduler(t)
	a := addApp(t, s, "app-1", map[string]string{"spark.cores.max": "3"})
	l, _ := s.packLocked(offer("o1", "a1", 8, 8192))
	if len(l.tasks) != 1 || l.execs[0].CPUs != 3 {
		t.Fatalf("executors %+v; want one of 3 cpus", l.execs)
	}
	b := addApp(t, s, "app-2", map[string]string{"spark.executor.cores": "1"})
	b.Limit = 2
	l, _ = s.packLocked(offer("o2", "a2", 8, 8192))
	if len(l.tasks) != 2 {
		t.Errorf("%d executors for an application that asked for 2", len(l.tasks))
	}
	_ = a
}

// Constraints and the blocklist rule agents out, and their offers are
// declined for spark.mesos.rejectOfferDuration; nothing wanted is idle.
func TestPackConstraintsAndBlocklist(t *testing.T) {
	s := testScheduler(t)
	a := addApp(t, s, "app-1", map[string]string{"spark.executor.cores": "1", "spark.mesos.constraints": "zone:b",
		"spark.mesos.rejectOfferDuration": "45s"})
	l, refuse := s.packLocked(offer("o1", "a1", 4, 8192, text("zone", "a")))
	if len(l.tasks) != 0 || refuse != 45*time.Second {
		t.Errorf("an agent of zone a: %d executors, refused for %v; want none, 45s", len(l.tasks), refuse)
	}
	if a.Message == "" {
		t.Error("no message says why the agent was ruled out")
	}
	a.failures["a2"] = 2
	l, refuse = s.packLocked(offer("o2", "a2", 4, 8192, text("zone", "b")))
	if len(l.tasks) != 0 || refuse != 45*time.Second {
		t.Errorf("a blocklisted agent: %d executors, refused for %v", len(l.tasks), refuse)
	}
	a.Limit = 1
	l, _ = s.packLocked(offer("o3", "a3", 4, 8192, text("zone", "b")))
	if len(l.tasks) != 1 {
		t.Errorf("a matching agent: %d executors; want 1", len(l.tasks))
	}
	if st := a.status(); len(st.Blocklisted) != 1 || st.Blocklisted[0] != "a2" {
		t.Errorf("blocklisted %v; want [a2]", st.Blocklisted)
	}
}

// A failed executor counts against its agent (twice blocklists it); one
// killed on request or after the application ended does not.
func TestUpdateCountsFailures(t *testing.T) {
	s := testScheduler(t)
	a := addApp(t, s, "app-1", map[string]string{"spark.executor.cores": "1"})
	l, _ := s.packLocked(offer("o1", "a1", 3, 8192))
	if len(l.execs) != 3 {
		t.Fatalf("%d executors", len(l.execs))
	}
	l.execs[2].Killed = true
	for _, e := range l.execs {
		state := mesos.TASK_FAILED
		if e.Killed {
			state = mesos.TASK_KILLED
		}
		s.update(t.Context(), mesos.TaskStatus{TaskID: mesos.TaskID{Value: e.TaskID}, State: state.Enum(), AgentID: &mesos.AgentID{Value: "a1"}})
	}
	if a.failures["a1"] != 2 || !a.blocklisted("a1") {
		t.Errorf("failures %v; want a1 blocklisted after 2", a.failures)
	}
	if l, _ := s.packLocked(offer("o2", "a1", 3, 8192)); len(l.tasks) != 0 {
		t.Error("executors launched on a blocklisted agent")
	}
}

// An executor that fails because its driver died without ending the
// application ends the application: no replacements are launched.
func TestDriverGoneEndsApplication(t *testing.T) {
	s := testScheduler(t)
	s.driverAlive = func(string) bool { return false }
	a := addApp(t, s, "app-1", map[string]string{"spark.executor.cores": "1"})
	l, _ := s.packLocked(offer("o1", "a1", 1, 8192))
	s.update(t.Context(), mesos.TaskStatus{TaskID: mesos.TaskID{Value: l.execs[0].TaskID}, State: mesos.TASK_FAILED.Enum()})
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, _ := s.App("app-1")
		if st.State == AppEnded && strings.Contains(st.Message, "is gone") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("application %+v; want ENDED, its driver gone", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	l, _ = s.packLocked(offer("o2", "a2", 4, 8192))
	s.mu.Unlock()
	if len(l.tasks) != 0 {
		t.Errorf("%d executors launched for an application whose driver is gone", len(l.tasks))
	}
	_ = a
}

// spark.executor.uri fetches a Spark archive into the sandbox and runs
// the executor from it; spark.mesos.executor.home replaces the home.
func TestExecutorCommandFromURIAndHome(t *testing.T) {
	s := testScheduler(t)
	addApp(t, s, "app-1", map[string]string{"spark.executor.cores": "1", "spark.executor.uri": "http://h/spark-3.5.9.tgz",
		"spark.mesos.uris": "http://h/a.txt", "spark.executorEnv.COLOR": "blue", "spark.executor.extraJavaOptions": "-Dx=1"})
	addApp(t, s, "app-2", map[string]string{"spark.executor.cores": "1", "spark.mesos.executor.home": "/srv/spark"})
	l, _ := s.packLocked(offer("o1", "a1", 2, 8192))
	if len(l.tasks) != 2 {
		t.Fatalf("%d executors", len(l.tasks))
	}
	c := l.tasks[0].Command
	if !c.GetShell() || !strings.HasPrefix(c.GetValue(), "cd spark-*/ && exec ./bin/spark-class 'org.apache.spark.executor.CoarseGrainedExecutorBackend'") {
		t.Errorf("command from the archive: %q", c.GetValue())
	}
	if len(c.URIs) != 2 || c.URIs[0].Value != "http://h/a.txt" || c.URIs[1].Value != "http://h/spark-3.5.9.tgz" || !c.URIs[1].GetExtract() {
		t.Errorf("URIs %+v", c.URIs)
	}
	env := map[string]string{}
	for _, v := range c.GetEnvironment().Variables {
		env[v.Name] = v.GetValue()
	}
	if env["COLOR"] != "blue" || env["SPARK_EXECUTOR_OPTS"] != "-Dx=1" {
		t.Errorf("environment %v", env)
	}
	if v := l.tasks[1].Command.GetValue(); v != "/srv/spark/bin/spark-class" {
		t.Errorf("command with spark.mesos.executor.home: %q", v)
	}
}

// With preferred hosts from Spark, an application passes over offers from
// other hosts for spark.locality.wait (declining them no longer than the
// wait has left), takes a preferred host without an executor before one
// with, and after the wait, or once the hosts are gone, takes any offer.
func TestPackLocality(t *testing.T) {
	s := testScheduler(t)
	now := time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)
	s.cfg.Now = func() time.Time { return now }
	a := addApp(t, s, "app-1", map[string]string{"spark.executor.cores": "1", "spark.locality.wait": "4s"})
	if code, err := s.setLimit("app-1", 3, map[string]int{"A1.example": 5, "a2.example": 2}); err != nil {
		t.Fatal(code, err)
	}
	run := func(l launch) {
		for _, e := range l.execs {
			e.State = "TASK_RUNNING"
		}
	}

	l, refuse := s.packLocked(offer("o1", "a3", 4, 8192))
	if len(l.tasks) != 0 || refuse != 4*time.Second {
		t.Fatalf("an offer from a host no task prefers: %d executors, declined for %v; want none, 4s", len(l.tasks), refuse)
	}
	if !strings.Contains(a.Message, "a1.example, a2.example") || !strings.Contains(a.Message, "spark.locality.wait") {
		t.Errorf("message %q does not say the application waits for its hosts", a.Message)
	}
	l, _ = s.packLocked(offer("o2", "a1", 4, 8192))
	if len(l.execs) != 1 || l.execs[0].Hostname != "a1.example" {
		t.Fatalf("an offer from a preferred host: %+v; want one executor there (one per offer and application in turn, then covered)", l.execs)
	}
	run(l)

	// a1 has an executor, a2 not yet: a2 comes first while the wait lasts.
	now = now.Add(time.Second)
	if l, refuse = s.packLocked(offer("o3", "a1", 4, 8192)); len(l.tasks) != 0 || refuse != 3*time.Second {
		t.Errorf("a covered preferred host while another has no executor: %d executors, declined for %v; want none, 3s", len(l.tasks), refuse)
	}
	l, _ = s.packLocked(offer("o4", "a2", 4, 8192))
	if len(l.execs) != 2 {
		t.Fatalf("the preferred host without an executor: %d executors; want 2 (the first covers it, then every preferred host will do)", len(l.execs))
	}
	run(l)
	s.setLimit("app-1", 4, map[string]int{"a1.example": 5, "a2.example": 2})
	if l, _ = s.packLocked(offer("o5", "a3", 4, 8192)); len(l.tasks) != 0 {
		t.Errorf("every preferred host covered, within the wait: %d executors on another host; want none", len(l.tasks))
	}
	if l, _ = s.packLocked(offer("o6", "a1", 4, 8192)); len(l.execs) != 1 {
		t.Fatalf("every preferred host covered: %d executors on a preferred one; want 1", len(l.execs))
	}
	run(l)

	// Hosts dropping out do not start the wait again.
	now = now.Add(3500 * time.Millisecond)
	s.setLimit("app-1", 4, map[string]int{"a1.example": 1})
	if ok, _ := a.localityAllows("a3.example", now); !ok {
		t.Errorf("4.5s after the hosts were named (wait 4s), a host dropped out: another host still waits")
	}

	// A new host starts the wait again; once it is over any host will do.
	s.setLimit("app-1", 5, map[string]int{"a4.example": 1})
	now = now.Add(3900 * time.Millisecond)
	if l, refuse = s.packLocked(offer("o7", "a3", 4, 8192)); len(l.tasks) != 0 || refuse != minRefuse {
		t.Errorf("new hosts, 0.1s into a new wait: %d executors, declined for %v; want none, %v", len(l.tasks), refuse, minRefuse)
	}
	now = now.Add(200 * time.Millisecond)
	if l, _ = s.packLocked(offer("o8", "a3", 4, 8192)); len(l.execs) != 1 {
		t.Errorf("after the wait: %d executors from another host; want 1", len(l.execs))
	}
	run(l)
	s.setLimit("app-1", 6, nil)
	if l, _ = s.packLocked(offer("o9", "a5", 4, 8192)); len(l.execs) != 1 {
		t.Errorf("no preferred hosts: %d executors; want 1", len(l.execs))
	}

	// spark.locality.wait=0 never waits.
	b := addApp(t, s, "app-2", map[string]string{"spark.executor.cores": "1", "spark.locality.wait": "0"})
	s.setLimit("app-2", 1, map[string]int{"a1.example": 1})
	if l, _ = s.packLocked(offer("o10", "a3", 4, 8192)); len(l.execs) == 0 || l.execs[len(l.execs)-1].TaskID != "app-2-0" {
		t.Errorf("spark.locality.wait=0: %+v; want app-2's executor on a3", l.execs)
	}
	_ = b
}

// recorder records the calls the scheduler makes to the master.
type recorder struct {
	mu         sync.Mutex
	launched   []string // offer IDs
	declined   map[string]time.Duration
	suppressed int
}

func (r *recorder) Launch(_ context.Context, ids []mesos.OfferID, _ []mesos.TaskInfo, _ *mesos.Filters) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		r.launched = append(r.launched, id.Value)
	}
	return nil
}

func (r *recorder) Decline(_ context.Context, ids []mesos.OfferID, refuse time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		r.declined[id.Value] = refuse
	}
	return nil
}

func (r *recorder) Suppress(context.Context, ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.suppressed++
	return nil
}

func (r *recorder) Revive(context.Context, ...string) error                           { return nil }
func (r *recorder) Kill(context.Context, string, string) error                        { return nil }
func (r *recorder) Reconcile(context.Context, []mscheduler.Call_Reconcile_Task) error { return nil }
func (r *recorder) Master() *mesos.MasterInfo                                         { return nil }

// A round of offers: what fits is launched; with an application still
// wanting executors the rest is declined briefly (for want of room) or
// for what is left of a locality wait, and offers are not suppressed;
// with nothing wanted the rest is declined for an hour and offers are
// suppressed.
func TestOffersDeclineAndSuppress(t *testing.T) {
	s := testScheduler(t)
	now := time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)
	s.cfg.Now = func() time.Time { return now }
	r := &recorder{declined: map[string]time.Duration{}}
	s.sched = r
	a := addApp(t, s, "app-1", map[string]string{"spark.executor.cores": "2", "spark.executor.memory": "1g"})
	a.Limit = 2
	ctx := context.Background()

	s.offers(ctx, []mesos.Offer{*offer("o1", "a1", 2, 8192), *offer("o2", "a2", 1, 8192)})
	if !slices.Equal(r.launched, []string{"o1"}) || r.declined["o2"] != shortRefuse || r.suppressed != 0 {
		t.Errorf("an application short of an executor: launched %v, declined %v, suppressed %d; want o1, o2 for %v, none",
			r.launched, r.declined, r.suppressed, shortRefuse)
	}

	s.setLimit("app-1", 2, map[string]int{"a9.example": 1})
	s.offers(ctx, []mesos.Offer{*offer("o3", "a2", 4, 8192)})
	if r.declined["o3"] != 3*time.Second || r.suppressed != 0 {
		t.Errorf("an application waiting for its preferred host: declined %v, suppressed %d; want o3 for 3s, none", r.declined, r.suppressed)
	}

	s.setLimit("app-1", 1, nil)
	s.offers(ctx, []mesos.Offer{*offer("o4", "a2", 4, 8192)})
	if r.declined["o4"] != idleRefuse || r.suppressed != 1 || len(r.launched) != 1 {
		t.Errorf("nothing wanted: launched %v, declined %v, suppressed %d; want nothing more launched, o4 for %v, suppressed once",
			r.launched, r.declined, r.suppressed, idleRefuse)
	}
}
