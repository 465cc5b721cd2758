package framework

import (
	"fmt"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Each node's task carries a COMMAND health check that the agent runs
// where the node runs: `agora cassandra probe --host H --port P`, a CQL
// query of system.local on the node's own address (the agent's TCP and
// HTTP checks would dial 127.0.0.1, where a node does not listen). A node
// the agent kills for failing it ends like any failed node: it is launched
// again on its volume.

// healthTimeout bounds one check; the probe gives up a little before.
const healthTimeout = 20 * time.Second

// healthCheckLocked is n's health check; nil without an agora binary or
// when the spec turns it off.
func (f *Framework) healthCheckLocked(n *Node) *mesos.HealthCheck {
	hc := f.spec.HealthCheck
	if f.cfg.Agora == "" || hc.Disabled {
		return nil
	}
	shell := true
	cmd := healthCommand(f.cfg.Agora, n.Host, n.NativePort, healthTimeout-2*time.Second)
	interval := time.Duration(hc.Interval).Seconds()
	delay, timeout := interval, healthTimeout.Seconds()
	grace, failures := time.Duration(hc.Grace).Seconds(), uint32(hc.ConsecutiveFailures)
	return &mesos.HealthCheck{Type: mesos.HealthCheck_COMMAND,
		Command:      &mesos.CommandInfo{Shell: &shell, Value: &cmd},
		DelaySeconds: &delay, IntervalSeconds: &interval, TimeoutSeconds: &timeout,
		GracePeriodSeconds: &grace, ConsecutiveFailures: &failures}
}

// healthCommand is the shell command of a node's health check: agora
// cassandra probe of host:port. Only the probe's own verdict (exit 1:
// the node does not answer) counts against the node. The same path is
// baked into every node's task, so an agora binary that is missing or
// cannot run on an agent (a different install path, an upgrade that
// swapped it, a sandbox cleaned up), or a probe that refuses its
// arguments (exit 2, from an older or newer agora), would otherwise fail
// every node's check at once and kill the whole ring: those pass, saying
// that the health was not checked on the check's stderr and, once, in
// the node's own stderr in its sandbox (an agent may keep a check's
// output nowhere).
func healthCommand(agora, host string, port uint64, timeout time.Duration) string {
	const tag = "agora cassandra health check"
	return fmt.Sprintf(`A=%s; `+
		`unchecked() { echo "%s: $1: health not checked" >&2; S="${MESOS_SANDBOX:-.}"; `+
		`[ -e "$S/.agora-health-unchecked" ] || { echo "%s: $1: health not checked" >>"$S/stderr" && : >"$S/.agora-health-unchecked"; } 2>/dev/null; exit 0; }; `+
		`[ -x "$A" ] || unchecked "$A not found or not executable on this agent"; `+
		`"$A" cassandra probe --host %s --port %d --timeout %s; rc=$?; `+
		`case $rc in 2|126|127) unchecked "$A cassandra probe could not run (exit $rc)";; esac; `+
		`exit $rc`,
		shellQuote(agora), tag, tag, shellQuote(host), port, timeout)
}
