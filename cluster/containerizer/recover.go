package containerizer

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// adoptPollInterval is how often an adopted container is checked; it is
// not the agent's child, so its exit cannot be waited for.
const adoptPollInterval = 500 * time.Millisecond

// Plan is the State of the container Launch(spec) starts, before it
// exists: only its ID. A plain process cannot be found without its pid,
// so Recover cannot adopt a container from its Plan.
func (Process) Plan(spec Spec) State { return State{ID: spec.ID} }

// Recover adopts a container left running by an earlier agent process. Its
// exit status cannot be observed (it is not our child), so Wait reports
// Exit{Unknown: true}.
func (Process) Recover(ctx context.Context, st State) (Container, error) {
	if st.Pid == 0 {
		return nil, fmt.Errorf("container %s: %w, or never started: its pid was not checkpointed, and a plain process cannot be found without it", st.ID, ErrGone)
	}
	if !st.alive() {
		return nil, fmt.Errorf("container %s (pid %d): %w", st.ID, st.Pid, ErrGone)
	}
	c := &adopted{st: st, done: make(chan struct{})}
	go c.watch()
	return c, nil
}

// adopted is a container whose main process is not the agent's child.
type adopted struct {
	st   State
	done chan struct{}
	once sync.Once
}

func (c *adopted) ID() string            { return c.st.ID }
func (c *adopted) Pid() int              { return c.st.Pid }
func (c *adopted) Done() <-chan struct{} { return c.done }
func (c *adopted) State() State          { return c.st }

func (c *adopted) Signal(sig syscall.Signal) error {
	if !c.st.alive() {
		c.finish()
		return ErrExited
	}
	if err := syscall.Kill(-c.st.Pid, sig); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("container %s: signal %v: %w", c.st.ID, sig, err)
	}
	return nil
}

func (c *adopted) Wait(ctx context.Context) (Exit, error) {
	select {
	case <-c.done:
		return Exit{Unknown: true}, nil
	case <-ctx.Done():
		return Exit{}, ctx.Err()
	}
}

func (c *adopted) watch() {
	t := time.NewTicker(adoptPollInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if !c.st.alive() {
				c.finish()
				return
			}
		}
	}
}

// finish kills what is left of the group (members started after the
// leader, so a reused group ID is never hit) and marks the container done.
func (c *adopted) finish() {
	c.once.Do(func() {
		awaitGroupGone(c.st.Pid, c.st.StartTime)
		close(c.done)
	})
}

// ended is a container that ended while no agent watched it, and whose
// cgroup is gone: only its exit status is left.
type ended struct {
	st   State
	exit Exit
	done chan struct{}
}

func endedContainer(st State, exit Exit) *ended {
	c := &ended{st: st, exit: exit, done: make(chan struct{})}
	close(c.done)
	return c
}

func (c *ended) ID() string                         { return c.st.ID }
func (c *ended) Pid() int                           { return c.st.Pid }
func (c *ended) Done() <-chan struct{}              { return c.done }
func (c *ended) State() State                       { return c.st }
func (c *ended) Signal(syscall.Signal) error        { return ErrExited }
func (c *ended) Wait(context.Context) (Exit, error) { return c.exit, nil }

// alive reports whether st's main process still runs: same PID, same start
// time, not a zombie.
func (st State) alive() bool {
	ps, err := readProcStat(st.Pid)
	return err == nil && !ps.zombie() && ps.startTime == st.StartTime && st.StartTime != 0
}

// procStat holds the fields of /proc/PID/stat the containerizer needs.
type procStat struct {
	state     byte
	pgrp      int
	startTime uint64
}

func (ps procStat) zombie() bool { return ps.state == 'Z' || ps.state == 'X' }

// readProcStat reads /proc/PID/stat. Every launch reads its process's, so
// it is read with plain system calls (os.ReadFile would also stat the file
// and probe it for the runtime's poller).
func readProcStat(pid int) (procStat, error) {
	b, err := readCgroupFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) may hold spaces and parentheses; the
	// fields after it start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), f[2] field 5 (pgrp), f[19] field 22 (starttime).
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	pgrp, err1 := strconv.Atoi(f[2])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return procStat{state: f[0][0], pgrp: pgrp, startTime: start}, nil
}

// groupMembers lists live processes of process group pgid started no
// earlier than minStart.
func groupMembers(pgid int, minStart uint64) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ps, err := readProcStat(pid)
		if err == nil && ps.pgrp == pgid && !ps.zombie() && ps.startTime >= minStart {
			out = append(out, pid)
		}
	}
	return out
}
