// Package containerizer launches and supervises the processes an agent runs
// for its tasks. The agent sees a container only through the small
// Containerizer and Container interfaces below, so isolation (cgroups,
// namespaces, Docker) can be added behind them without touching the agent.
//
// Native (native.go) is the isolating implementation: each container gets
// its own cgroup (cpu shares and CFS quota, memory and pids limits; cgroup
// v1 or v2) and its own pid, mount, IPC and UTS namespaces, with the agora
// binary re-executed as the container's init (package containerinit).
// Process is the plain-process implementation: each container is a process
// group in the agent's own namespaces with no resource limits. New picks
// one from Mesos's --isolation flag.
package containerizer

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
)

// Spec describes one container to launch.
type Spec struct {
	// ID is the container ID (unique on the agent).
	ID string
	// Path is the program to run. A name without a slash is looked up in the
	// PATH of Env (or the agent's PATH if Env sets none), as execvp does.
	Path string
	// Args is the full argv, Args[0] included. Empty means []string{Path}.
	Args []string
	// Env is the complete environment, as "NAME=value" strings.
	Env []string
	// Dir is the working directory: the sandbox. It must exist.
	Dir string
	// Stdout and Stderr are files the container's output is appended to;
	// they are created if missing.
	Stdout, Stderr string
	// User, if set and the agent runs as root, is the account the container
	// runs as; Dir and the output files are handed to it. Without root the
	// container runs as the agent's user.
	User string

	// CPUs and MemMB are the container's resources (the task's cpus and
	// mem). The native containerizer enforces them (cpu shares and a CFS
	// quota, a memory limit); Process only reports them. Zero means
	// unlimited.
	CPUs  float64
	MemMB float64

	// Volumes are directories outside Dir that the task reaches through
	// links in Dir (its persistent volumes). The native containerizer
	// gives the task a /tmp of its own, so it mounts those below /tmp back
	// at their paths, as it does Dir, and mounts the read-only ones
	// read-only; Process cannot.
	Volumes []Volume

	// NoExitFile: the native containerizer's init leaves no exit-status
	// file in Dir (see State.ExitFile). For containers no restarted agent
	// adopts, such as the tasks of frameworks that do not checkpoint
	// (destroyed when the agent restarts, as in Mesos), the file and its
	// two fsyncs would be written for no one.
	NoExitFile bool
}

// Volume is one of Spec.Volumes: an absolute directory on the agent.
type Volume struct {
	Dir      string
	ReadOnly bool
}

// State is what an agent checkpoints about a running container so that a
// restarted agent can adopt it with Recover.
type State struct {
	ID string `json:"id"`
	// Pid is the main process; 0 in a Plan, before the container runs.
	Pid int `json:"pid"`
	// StartTime is the process start time in clock ticks since boot
	// (/proc/PID/stat field 22); it tells a reused PID from the original.
	StartTime uint64 `json:"start_time"`
	// Cgroup is the container's cgroup below the hierarchy's root
	// ("agora/<id>"), for containers of the native containerizer.
	Cgroup string `json:"cgroup,omitempty"`
	// Docker is the Docker Engine's ID of the container, for containers
	// of the Docker containerizer (cluster/containerizer/docker).
	Docker string `json:"docker,omitempty"`
	// ExitFile is where a native container's init leaves the task's wait
	// status, for an agent that adopts the container after a restart.
	ExitFile string `json:"exit_file,omitempty"`
	// CPUStatBase is what the counters of the container's cgroup held
	// when the container took the cgroup from the native containerizer's
	// pool: those counters cannot be reset, so usage reports what the
	// container added to them. Absent for a new cgroup.
	CPUStatBase *CPUStat `json:"cpu_stat_base,omitempty"`
}

// CPUStat holds a cgroup's CFS counters (cgroup v1's cpu.stat) and its
// user and system CPU time (cpuacct.stat), which writing cpuacct.usage
// does not reset.
type CPUStat struct {
	NrPeriods     uint64 `json:"nr_periods"`
	NrThrottled   uint64 `json:"nr_throttled"`
	ThrottledTime uint64 `json:"throttled_time"`        // nanoseconds
	UserTime      uint64 `json:"user_time,omitempty"`   // nanoseconds
	SystemTime    uint64 `json:"system_time,omitempty"` // nanoseconds
}

// Exit is how a container ended.
type Exit struct {
	// Code is the exit status when Signal is 0.
	Code int
	// Signal is the signal that terminated the main process, if any.
	Signal syscall.Signal
	// Unknown is set when the status could not be observed: the container
	// was adopted after an agent restart and the process is not the agent's
	// child.
	Unknown bool
	// Limitation is set when the container was killed because it exceeded
	// a resource limit (the kernel's OOM killer, for memory).
	Limitation *Limitation
}

// Limitation says which resource limit a container ran into, as Mesos's
// ContainerLimitation does.
type Limitation struct {
	// Resource is the resource's name: "mem".
	Resource string
	// Message is for people: "Memory limit exceeded: Requested: 64MB
	// Maximum Used: 64MB".
	Message string
}

// Success reports a clean exit with status 0.
func (e Exit) Success() bool {
	return !e.Unknown && e.Signal == 0 && e.Code == 0 && e.Limitation == nil
}

// String words the exit the way Mesos's command executor does:
// "exited with status 3", "terminated with signal Killed".
func (e Exit) String() string {
	switch {
	case e.Unknown:
		return "exited with an unknown status"
	case e.Signal != 0:
		return "terminated with signal " + SignalName(e.Signal)
	}
	return fmt.Sprintf("exited with status %d", e.Code)
}

// SignalName gives a signal's description as strsignal(3) writes it
// ("Terminated", "Killed"), which is what Mesos puts in task messages.
func SignalName(s syscall.Signal) string {
	name := s.String()
	if name == "" {
		return fmt.Sprintf("signal %d", int(s))
	}
	return strings.ToUpper(name[:1]) + name[1:]
}

// Container is one launched (or adopted) container.
type Container interface {
	// ID is the container ID.
	ID() string
	// Pid is the main process; it leads the container's process group.
	Pid() int
	// Signal sends sig to every process of the container.
	Signal(sig syscall.Signal) error
	// Done is closed once the main process has ended and the rest of the
	// container has been killed.
	Done() <-chan struct{}
	// Wait blocks until Done or ctx ends and returns how the container ended.
	Wait(ctx context.Context) (Exit, error)
	// State is what to checkpoint so that Recover can adopt the container.
	State() State
}

// Enterer is a Container that can run further commands inside itself: in
// its namespaces, seeing its mounts, in its cgroup. Health checks use it.
type Enterer interface {
	// Enter rewrites cmd (Path and Args as exec.Command sets them) so that
	// it runs inside the container, in dir, with cmd's environment.
	Enter(cmd *exec.Cmd, dir string) error
}

// Containerizer launches containers.
type Containerizer interface {
	// Plan is the State of the container Launch(spec) starts, as far as
	// it is known before the container exists (Pid is 0): an agent
	// checkpoints it before the launch, so that a restarted agent can find
	// the container even if it was killed while launching it. Only spec's
	// ID and Dir matter.
	Plan(spec Spec) State
	// Launch starts a container. An error means nothing was started.
	Launch(ctx context.Context, spec Spec) (Container, error)
	// Recover adopts a container that an earlier agent process launched,
	// from its State after the launch or from its Plan. A container that
	// ended while no agent watched it is returned already Done, with its
	// exit status when the containerizer kept it. Recover returns ErrGone
	// if the container is no longer running and its exit is unknown, and
	// ErrNeverStarted (which is also ErrGone) if it provably never ran.
	Recover(ctx context.Context, st State) (Container, error)
}

var (
	// ErrGone is returned by Recover for a container that no longer runs.
	ErrGone = errors.New("container is no longer running")
	// ErrNeverStarted is returned by Recover, from a container's Plan,
	// for a container whose program never started: the agent stopped
	// before it did. errors.Is(ErrNeverStarted, ErrGone) holds.
	ErrNeverStarted = fmt.Errorf("%w: it never started", ErrGone)
	// ErrExited is returned by Signal once the container has ended.
	ErrExited = errors.New("container has exited")
)
