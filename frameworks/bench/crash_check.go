package bench

import (
	"fmt"
	"sort"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// CrashViolation is one broken promise about one task.
type CrashViolation struct {
	Task   string `json:"task"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

func (v CrashViolation) String() string { return v.Task + ": " + v.Kind + ": " + v.Detail }

// The kinds of CrashViolation.
const (
	ViolationNotLaunched   = "not launched"
	ViolationNoTerminal    = "no terminal state"
	ViolationWrongState    = "wrong terminal state"
	ViolationAfterTerminal = "update after a terminal one"
	ViolationBackwards     = "state went backwards"
	ViolationReconcile     = "reconciliation contradicts the outcome"
	ViolationOutcomeLost   = "outcome lost"
	ViolationNeverRan      = "reported an exit the command never made"
)

// CrashVerdict is what CheckCrashTasks found: how each task ended, and every
// violation.
type CrashVerdict struct {
	Tasks int `json:"tasks"`
	// Exact tasks ended in the state their command implies.
	Exact int `json:"exact"`
	// Unknowable tasks ended lost, gone, dropped or failed for a reason
	// that says a crash hid their outcome (state/reason → count).
	Unknowable map[string]int   `json:"unknowable,omitempty"`
	Violations []CrashViolation `json:"violations,omitempty"`
}

// crashReasons are the reasons with which a task may end without the
// outcome its command implies: the crash (of the agent, the master or the
// offer) made that outcome unknowable, or the task never started.
var crashReasons = map[string]bool{
	mesos.REASON_EXECUTOR_TERMINATED.String():             true,
	mesos.REASON_AGENT_RESTARTED.String():                 true,
	mesos.REASON_AGENT_REMOVED.String():                   true,
	mesos.REASON_AGENT_UNKNOWN.String():                   true,
	mesos.REASON_TASK_UNKNOWN.String():                    true,
	mesos.REASON_EXECUTOR_REREGISTRATION_TIMEOUT.String(): true,
	mesos.REASON_EXECUTOR_REGISTRATION_TIMEOUT.String():   true,
	mesos.REASON_RECONCILIATION.String():                  true,
	mesos.REASON_INVALID_OFFERS.String():                  true,
}

// exitReasons go with an outcome the command's exit decided.
var exitReasons = map[string]bool{"": true, mesos.REASON_COMMAND_EXECUTOR_FAILED.String(): true}

// progressRank orders the non-terminal states a task passes through; the
// partition states (unreachable, unknown) are left out: a task may leave
// them in either direction.
var progressRank = map[mesos.TaskState]int{
	mesos.TASK_STAGING: 1, mesos.TASK_STARTING: 2, mesos.TASK_RUNNING: 3, mesos.TASK_KILLING: 4,
}

// CheckCrashTasks checks the records of a crash workload. ranToEnd, when not
// nil, says whether task i's command ran to its end (it leaves a marker
// just before it exits): then an exact outcome needs the command to have
// ended, and an unknowable one needs it not to have.
func CheckCrashTasks(tasks []CrashTask, ranToEnd func(i int) bool) CrashVerdict {
	v := CrashVerdict{Tasks: len(tasks)}
	var never []string
	for i := range tasks {
		if t := &tasks[i]; !t.Launched && len(t.Updates) == 0 {
			never = append(never, t.ID)
			continue
		}
		checkCrashTask(&tasks[i], ranToEnd, &v)
	}
	sort.SliceStable(v.Violations, func(i, j int) bool { return v.Violations[i].Task < v.Violations[j].Task })
	if len(never) > 0 {
		// One entry for all: they wait behind tasks that never ended.
		v.Violations = append(v.Violations, CrashViolation{Task: never[0] + "…" + never[len(never)-1], Kind: ViolationNotLaunched,
			Detail: fmt.Sprintf("%d tasks were never launched (the workload did not get that far)", len(never))})
	}
	return v
}

func checkCrashTask(t *CrashTask, ranToEnd func(int) bool, v *CrashVerdict) {
	add := func(kind, format string, args ...any) {
		v.Violations = append(v.Violations, CrashViolation{Task: t.ID, Kind: kind, Detail: fmt.Sprintf(format, args...)})
	}
	checkStream(t, add)
	out, ok := t.Outcome()
	if !ok {
		last := "no update at all"
		if n := len(t.Updates); n > 0 {
			last = "last update " + t.Updates[n-1].String()
		}
		add(ViolationNoTerminal, "want %s; %s", t.Want, last)
		return
	}
	ran, know := false, ranToEnd != nil
	if know {
		ran = ranToEnd(t.Index)
	}
	switch {
	case out.State == t.Want && (out.Reconciliation || exitReasons[out.Reason]):
		v.Exact++
		if know && !ran {
			add(ViolationNeverRan, "ended %s, but its command never reached its exit", out)
		}
	case t.GaveUp || (out.State != mesos.TASK_FINISHED && crashReasons[out.Reason]):
		if v.Unknowable == nil {
			v.Unknowable = map[string]int{}
		}
		v.Unknowable[out.State.String()+"/"+out.Reason]++
		if know && ran {
			add(ViolationOutcomeLost, "its command ran to its exit (want %s), yet it ended %s", t.Want, out)
		}
	default:
		add(ViolationWrongState, "want %s, ended %s", t.Want, out)
	}
}

// checkStream checks the order of a task's updates. The updates from the
// agents (and the master's own) come in order: once terminal, only repeats
// of that state follow, and no step back among the non-terminal states.
// Reconciliation answers give the master's latest state, so they may run
// ahead of that stream, but never contradict its terminal state, nor bring
// back to life a task whose terminal update was acknowledged, nor announce a
// terminal state the stream then does not reach.
func checkStream(t *CrashTask, add func(kind, format string, args ...any)) {
	final := -1 // index of the stream's first terminal update
	for i, u := range t.Updates {
		if !u.Reconciliation && scheduler.IsTerminal(u.State) {
			final = i
			break
		}
	}
	rank := 0
	var told *CrashUpdate // first terminal reconciliation answer
	for i := range t.Updates {
		u := &t.Updates[i]
		switch {
		case u.Reconciliation && scheduler.IsTerminal(u.State):
			if final >= 0 && u.State != t.Updates[final].State {
				add(ViolationReconcile, "the agent reported %s; the master answered %s", t.Updates[final], u)
			} else if told != nil && u.State != told.State {
				add(ViolationReconcile, "%s, then %s", told, u)
			}
			if told == nil {
				told = u
			}
		case u.Reconciliation:
			if progressRank[u.State] == 0 {
				continue // unknown or unreachable: no news
			}
			if final >= 0 && final < i && t.Updates[final].Acked {
				add(ViolationReconcile, "%s, then %s", t.Updates[final], u)
			} else if final < 0 && told != nil {
				add(ViolationReconcile, "%s, then %s", told, u)
			}
		case final >= 0 && i > final:
			if u.State != t.Updates[final].State {
				add(ViolationAfterTerminal, "%s, then %s", t.Updates[final], u)
			}
		case final < 0 && told != nil:
			add(ViolationAfterTerminal, "%s, then %s", told, u)
		default:
			if r := progressRank[u.State]; r > 0 {
				if r < rank {
					add(ViolationBackwards, "%s after a later state (update %d of %d)", u, i+1, len(t.Updates))
				}
				rank = max(rank, r)
			}
		}
	}
}
