package bench

import (
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func TestCheckCrashTasks(t *testing.T) {
	rel := func(s mesos.TaskState, reason string) CrashUpdate {
		return CrashUpdate{State: s, Reason: reason, Reliable: true, Acked: true}
	}
	rec := func(s mesos.TaskState) CrashUpdate {
		return CrashUpdate{State: s, Reason: "REASON_RECONCILIATION", Reconciliation: true}
	}
	starting, running := rel(mesos.TASK_STARTING, ""), rel(mesos.TASK_RUNNING, "")
	finished, failed := rel(mesos.TASK_FINISHED, ""), rel(mesos.TASK_FAILED, "")
	lost := CrashUpdate{State: mesos.TASK_LOST, Reason: "REASON_AGENT_RESTARTED"}
	for _, c := range []struct {
		name    string
		want    mesos.TaskState
		updates []CrashUpdate
		ran     bool
		kind    string // "" for no violation
		exact   bool
	}{
		{"finished", mesos.TASK_FINISHED, []CrashUpdate{starting, running, finished}, true, "", true},
		{"failed, duplicate terminal", mesos.TASK_FAILED, []CrashUpdate{starting, running, failed, failed}, true, "", true},
		{"reconciliation runs ahead", mesos.TASK_FINISHED, []CrashUpdate{starting, rec(mesos.TASK_FINISHED), running, finished}, true, "", true},
		{"wrong state", mesos.TASK_FAILED, []CrashUpdate{starting, running, finished}, true, ViolationWrongState, false},
		{"launch failure is not a crash", mesos.TASK_FAILED, []CrashUpdate{rel(mesos.TASK_FAILED, "REASON_CONTAINER_LAUNCH_FAILED")}, false, ViolationWrongState, false},
		{"no terminal", mesos.TASK_FINISHED, []CrashUpdate{starting, running, rec(mesos.TASK_UNKNOWN)}, false, ViolationNoTerminal, false},
		{"lost then finished", mesos.TASK_FINISHED, []CrashUpdate{starting, running, lost, finished}, true, ViolationAfterTerminal, false},
		{"backwards", mesos.TASK_FINISHED, []CrashUpdate{running, starting, finished}, true, ViolationBackwards, true},
		{"revived by reconciliation", mesos.TASK_FINISHED, []CrashUpdate{starting, running, finished, rec(mesos.TASK_RUNNING)}, true, ViolationReconcile, true},
		{"reconciliation contradicts", mesos.TASK_FINISHED, []CrashUpdate{starting, running, finished, rec(mesos.TASK_FAILED)}, true, ViolationReconcile, true},
		{"unknowable, never ran", mesos.TASK_FINISHED, []CrashUpdate{starting, lost}, false, "", false},
		{"outcome lost", mesos.TASK_FINISHED, []CrashUpdate{starting, running, lost}, true, ViolationOutcomeLost, false},
		{"never ran yet finished", mesos.TASK_FINISHED, []CrashUpdate{starting, running, finished}, false, ViolationNeverRan, true},
		{"told lost, then alive", mesos.TASK_FINISHED, []CrashUpdate{starting, {State: mesos.TASK_LOST, Reason: "REASON_RECONCILIATION", Reconciliation: true}, running}, false, ViolationAfterTerminal, false},
		{"launch lost with the master", mesos.TASK_FINISHED, []CrashUpdate{rec(mesos.TASK_UNKNOWN), rec(mesos.TASK_UNKNOWN), rec(mesos.TASK_UNKNOWN)}, false, "", false},
		{"given up, yet it ran", mesos.TASK_FINISHED, []CrashUpdate{rec(mesos.TASK_UNKNOWN), rec(mesos.TASK_UNKNOWN), rec(mesos.TASK_UNKNOWN)}, true, ViolationOutcomeLost, false},
		{"an agent spoke: not given up", mesos.TASK_FINISHED, []CrashUpdate{starting, rec(mesos.TASK_UNKNOWN), rec(mesos.TASK_UNKNOWN), rec(mesos.TASK_UNKNOWN)}, false, ViolationNoTerminal, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			task := CrashTask{ID: "t", Want: c.want, Launched: true, Updates: c.updates}
			task.GaveUp = task.launchLost()
			v := CheckCrashTasks([]CrashTask{task}, func(int) bool { return c.ran })
			if c.kind == "" && len(v.Violations) > 0 {
				t.Fatalf("violations %v, want none", v.Violations)
			}
			if c.kind != "" && (len(v.Violations) == 0 || v.Violations[0].Kind != c.kind) {
				t.Fatalf("violations %v, want one of kind %q", v.Violations, c.kind)
			}
			if (v.Exact == 1) != c.exact {
				t.Fatalf("exact = %d, want %v", v.Exact, c.exact)
			}
		})
	}
}

// Tasks never launched are one violation, not one each.
func TestCheckCrashTasksFoldsUnlaunched(t *testing.T) {
	tasks := []CrashTask{{ID: "a", Want: mesos.TASK_FINISHED}, {ID: "b", Want: mesos.TASK_FINISHED}}
	v := CheckCrashTasks(tasks, nil)
	if len(v.Violations) != 1 || v.Violations[0].Kind != ViolationNotLaunched {
		t.Fatalf("violations %v, want one of kind %q", v.Violations, ViolationNotLaunched)
	}
}
