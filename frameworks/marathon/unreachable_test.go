package marathon

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/master"
)

// TestUnreachableStrategy loses the agents of three apps' instances (the
// agents stop answering; their tasks keep running) and brings them back:
//   - /replaced (inactiveAfterSeconds 1, expungeAfterSeconds 3600) gets a
//     replacement while its instance is away, and when the instance comes
//     back the replacement (the youngest) is killed;
//   - /forgotten (Marathon's default, 0 and 0) is replaced and forgotten
//     at once, and its instance is killed when it comes back;
//   - /waits ("disabled") is not replaced and runs on when its agent is
//     back.
func TestUnreachableStrategy(t *testing.T) {
	e := startEnvWith(t, func(cfg *master.Config) {
		cfg.AgentPingTimeout = 50 * time.Millisecond
		cfg.MaxAgentPingTimeouts = 3
	}, func(cfg *agent.Config) { cfg.KeepTasksOnStop = true })
	app := func(id, strategy, constraints string) string {
		return fmt.Sprintf(`{"id":%q,"cmd":"sleep 600","cpus":0.1,"mem":16,"instances":1,"unreachableStrategy":%s,"constraints":%s}`,
			id, strategy, constraints)
	}
	e.must("POST", "/v2/apps", app("/replaced", `{"inactiveAfterSeconds":1,"expungeAfterSeconds":3600}`, "[]"), http.StatusCreated, nil)
	replaced := e.waitRunning("/replaced", 1)[0]
	e.must("POST", "/v2/apps", app("/waits", `"disabled"`, fmt.Sprintf(`[["hostname","IS",%q]]`, replaced.Host)), http.StatusCreated, nil)
	e.must("POST", "/v2/apps", app("/forgotten", `{"inactiveAfterSeconds":0,"expungeAfterSeconds":0}`, "[]"), http.StatusCreated, nil)
	waits := e.waitRunning("/waits", 1)[0]
	forgotten := e.waitRunning("/forgotten", 1)[0]
	var view struct{ App AppView }
	e.must("GET", "/v2/apps/waits", "", http.StatusOK, &view)
	if s := view.App.UnreachableStrategy; s == nil || !s.Disabled {
		t.Fatalf("/waits shows unreachableStrategy %+v, want disabled", s)
	}

	// Lose the agents (at most two of the three: one is left for the
	// replacements).
	var lost []int
	for i, a := range e.c.Agents {
		if a.ID() == replaced.AgentID || a.ID() == forgotten.AgentID {
			lost = append(lost, i)
			a.Stop()
		}
	}
	e.waitFor("/replaced and /forgotten replaced", func() bool {
		r, f := e.tasks("/replaced"), e.tasks("/forgotten")
		return len(r) == 2 && running(r, replaced.ID) == 1 && len(f) == 1 && f[0].ID != forgotten.ID && f[0].State == "TASK_RUNNING"
	})
	for _, tk := range e.tasks("/replaced") {
		if tk.ID == replaced.ID && (tk.State != "TASK_UNREACHABLE" || tk.UnreachableSince == nil) {
			t.Fatalf("the away instance of /replaced: %s since %v, want TASK_UNREACHABLE", tk.State, tk.UnreachableSince)
		}
	}
	// /waits was judged in the same passes that replaced the others
	// (/replaced after a second away): it still has its one instance.
	if ws := e.tasks("/waits"); len(ws) != 1 || ws[0].ID != waits.ID || ws[0].State != "TASK_UNREACHABLE" {
		t.Fatalf("/waits (disabled) while its agent is away: %+v, want its one unreachable instance", ws)
	}
	newForgotten := e.tasks("/forgotten")[0].ID

	for _, i := range lost {
		e.c.Agents[i].Config.KeepTasksOnStop = false
		e.c.StartAgent(i, "")
	}
	e.waitFor("each app back to its one instance", func() bool {
		r, w, f := e.tasks("/replaced"), e.tasks("/waits"), e.tasks("/forgotten")
		return slices.Equal(runningIDs(r), []string{replaced.ID}) && len(r) == 1 &&
			slices.Equal(runningIDs(w), []string{waits.ID}) &&
			slices.Equal(runningIDs(f), []string{newForgotten}) && len(f) == 1
	})
	e.waitFor("the master to run the three instances only", func() bool { return e.masterRunning() == 3 })
}

// TestUnreachableDeleteAndScaleDown changes apps whose instances' agents
// are lost (the master drops kills for their tasks): each change's
// deployment ends, and the instances are killed when the agents are back.
//   - /shrinks (still waited for) is scaled to 0: its unreachable instance
//     is expunged at once;
//   - /idle (inactive after 1 s, already replaced) is scaled to 0: the
//     replacement is killed and the inactive instance holds nothing up;
//   - /gone (inactive after 1 s) is deleted.
func TestUnreachableDeleteAndScaleDown(t *testing.T) {
	e := startEnvWith(t, func(cfg *master.Config) {
		cfg.AgentPingTimeout = 50 * time.Millisecond
		cfg.MaxAgentPingTimeouts = 3
	}, func(cfg *agent.Config) { cfg.KeepTasksOnStop = true })
	app := func(id, strategy, constraints string) string {
		return fmt.Sprintf(`{"id":%q,"cmd":"sleep 600","cpus":0.1,"mem":16,"instances":1,"unreachableStrategy":%s,"constraints":%s}`,
			id, strategy, constraints)
	}
	replaced := `{"inactiveAfterSeconds":1,"expungeAfterSeconds":3600}`
	e.must("POST", "/v2/apps", app("/gone", replaced, "[]"), http.StatusCreated, nil)
	gone := e.waitRunning("/gone", 1)[0]
	e.must("POST", "/v2/apps", app("/idle", replaced, fmt.Sprintf(`[["hostname","UNLIKE",%q]]`, gone.Host)), http.StatusCreated, nil)
	e.must("POST", "/v2/apps", app("/shrinks", `{"inactiveAfterSeconds":3600,"expungeAfterSeconds":3600}`,
		fmt.Sprintf(`[["hostname","IS",%q]]`, gone.Host)), http.StatusCreated, nil)
	idle := e.waitRunning("/idle", 1)[0]
	e.waitRunning("/shrinks", 1)

	var lost []int
	for i, a := range e.c.Agents {
		if a.ID() == gone.AgentID || a.ID() == idle.AgentID {
			lost = append(lost, i)
			a.Stop()
		}
	}
	e.waitFor("/gone and /idle replaced, /shrinks unreachable", func() bool {
		g, i, s := e.tasks("/gone"), e.tasks("/idle"), e.tasks("/shrinks")
		return len(g) == 2 && running(g, gone.ID) == 1 && len(i) == 2 && running(i, idle.ID) == 1 &&
			len(s) == 1 && s[0].State == "TASK_UNREACHABLE"
	})

	// settled waits for a change's deployment to succeed.
	settled := func(what string, c Change) {
		t.Helper()
		e.waitFor(what+"'s deployment to succeed", func() bool {
			for _, r := range e.history() {
				if r.ID == c.DeploymentID {
					return r.Status == DeploymentSuccess
				}
			}
			return false
		})
	}
	var c Change
	e.must("PUT", "/v2/apps/shrinks", `{"instances":0}`, http.StatusOK, &c)
	settled("scaling /shrinks to 0", c)
	if ts := e.tasks("/shrinks"); len(ts) != 0 {
		t.Fatalf("/shrinks scaled to 0 has instances %+v, want its unreachable one expunged", ts)
	}
	e.must("PUT", "/v2/apps/idle", `{"instances":0}`, http.StatusOK, &c)
	settled("scaling /idle to 0", c)
	if ts := e.tasks("/idle"); len(ts) != 1 || ts[0].ID != idle.ID {
		t.Fatalf("/idle scaled to 0 has instances %+v, want only its inactive one", ts)
	}
	e.must("DELETE", "/v2/apps/gone", "", http.StatusOK, &c)
	settled("deleting /gone", c)
	e.must("GET", "/v2/apps/gone", "", http.StatusNotFound, nil)

	for _, i := range lost {
		e.c.Agents[i].Config.KeepTasksOnStop = false
		e.c.StartAgent(i, "")
	}
	e.waitFor("the instances that came back killed", func() bool {
		return e.masterRunning() == 0 && len(e.tasks("/idle")) == 0
	})
}

// running counts the instances of ts that run, other than except.
func running(ts []Task, except string) int {
	n := 0
	for _, t := range ts {
		if t.ID != except && t.State == "TASK_RUNNING" {
			n++
		}
	}
	return n
}

// runningIDs lists the IDs of the instances of ts that run.
func runningIDs(ts []Task) []string {
	var out []string
	for _, t := range ts {
		if t.State == "TASK_RUNNING" {
			out = append(out, t.ID)
		}
	}
	slices.Sort(out)
	return out
}
