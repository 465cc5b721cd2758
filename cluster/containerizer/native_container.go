package containerizer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/cluster/containerizer/containerinit"
)

// handshake moves the init, which has its configuration, into the
// container's cgroup once it is ready (its own start-up is not the
// container's to pay for) and lets it start the task, unless it joined by
// itself and started it.
func (c *nativeContainer) handshake(cfgW *os.File) error {
	expect := func(ok func(containerinit.Message) bool) error {
		msg, err := c.readMessage()
		switch {
		case err != nil:
			return fmt.Errorf("%w: %v", errInitGone, err)
		case msg.Error != "":
			return errors.New(msg.Error)
		case !ok(msg):
			return fmt.Errorf("container init: unexpected message %+v", msg)
		}
		return nil
	}
	var joined bool
	if err := expect(func(m containerinit.Message) bool { joined = m.Joined; return m.Ready }); err != nil {
		return err
	}
	// An init that joined the cgroup by itself starts the task without
	// waiting for Go.
	if !joined {
		if err := c.cg.add(c.pid); err != nil {
			return err
		}
		if _, err := cfgW.Write([]byte{containerinit.Go}); err != nil {
			return fmt.Errorf("start the container init: %w", err)
		}
	}
	cfgW.Close()
	return expect(func(m containerinit.Message) bool { return m.Pid > 0 })
}

// nativeContainer is a container in its own cgroup and namespaces, whose
// main process (Pid) is the container's init.
type nativeContainer struct {
	n          *Native
	id         string
	cgName     string
	cg         cgroup
	pid        int
	startTime  uint64
	cpus       float64
	memMB      float64
	adopted    bool
	exitFile   string        // where the init leaves the task's wait status
	cmd        *exec.Cmd     // nil when adopted
	status     *bufio.Reader // the init's messages; nil when adopted
	statusFile *os.File
	oom        *os.File // readable on OOM events; nil if unavailable
	cpuBase    *CPUStat // the cgroup's CFS counters before the container; nil: 0
	done       chan struct{}

	mu          sync.Mutex // held while signalling and while reaping
	reaped      bool
	entered     bool // Enter has made a command that joins the cgroup from outside the pid namespace
	oomKilled   bool
	noOOM       bool // finish read the cgroup's OOM-kill counter as 0
	exit        Exit
	destroyOnce sync.Once
	emptied     bool // destroy saw the cgroup empty: no process of the container is left
}

func (c *nativeContainer) ID() string            { return c.id }
func (c *nativeContainer) Pid() int              { return c.pid }
func (c *nativeContainer) Done() <-chan struct{} { return c.done }
func (c *nativeContainer) State() State {
	return State{ID: c.id, Pid: c.pid, StartTime: c.startTime, Cgroup: c.cgName, ExitFile: c.exitFile, CPUStatBase: c.cpuBase}
}

// exitFileName is the file in the sandbox where the init leaves the
// task's wait status.
const exitFileName = ".agora-exit-status"

// exitFromFile reads the wait status the init left. A missing, torn or
// unreadable file is an Unknown exit (never a clean one), with the error
// saying which.
func exitFromFile(path string) (Exit, error) {
	if path == "" {
		return Exit{Unknown: true}, errors.New("the container has no exit-status file")
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Exit{Unknown: true}, fmt.Errorf("the container's init left no exit status (%s is missing)", path)
	}
	if err != nil {
		return Exit{Unknown: true}, fmt.Errorf("read the container's exit status: %w", err)
	}
	text, whole := strings.CutSuffix(string(b), "\n")
	w, perr := strconv.ParseUint(text, 10, 32)
	if !whole || perr != nil {
		return Exit{Unknown: true}, fmt.Errorf("the container's exit-status file %s is torn or damaged (%q)", path, b)
	}
	ws := syscall.WaitStatus(uint32(w))
	if ws.Signaled() {
		return Exit{Signal: ws.Signal()}, nil
	}
	return Exit{Code: ws.ExitStatus()}, nil
}

func (c *nativeContainer) Wait(ctx context.Context) (Exit, error) {
	select {
	case <-c.done:
		return c.exit, nil
	case <-ctx.Done():
		return Exit{}, ctx.Err()
	}
}

// Signal sends SIGKILL to the init, which makes the kernel kill every
// process of the pid namespace; other signals go straight to every process
// in the container's cgroup but the init (a pid namespace's init ignores
// signals it has no handler for, and installing handlers would cost every
// container's init threads of its own).
func (c *nativeContainer) Signal(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reaped || (c.adopted && !c.state().alive()) {
		return ErrExited
	}
	// Until the init is reaped (launched) or while its start time matches
	// (adopted), its PID is this container's.
	if sig == syscall.SIGKILL {
		if err := syscall.Kill(c.pid, sig); err != nil && err != syscall.ESRCH {
			return fmt.Errorf("container %s: signal %v: %w", c.id, sig, err)
		}
		return nil
	}
	pids, err := c.cg.procs()
	if err != nil {
		return fmt.Errorf("container %s: signal %v: %w", c.id, sig, err)
	}
	for _, pid := range pids {
		if pid == c.pid {
			continue
		}
		if err := syscall.Kill(pid, sig); err != nil && err != syscall.ESRCH {
			return fmt.Errorf("container %s: signal %v to pid %d: %w", c.id, sig, pid, err)
		}
	}
	return nil
}

// Enter runs cmd through the init's sibling, "agora __enter", which joins
// the container's cgroup and namespaces before starting cmd's program.
func (c *nativeContainer) Enter(cmd *exec.Cmd, dir string) error {
	c.mu.Lock()
	gone := c.reaped || (c.adopted && !c.state().alive())
	if !gone {
		// "agora __enter" joins the cgroup itself but only its child
		// joins the pid namespace: the init's end does not end it.
		c.entered = true
	}
	c.mu.Unlock()
	if gone {
		return ErrExited
	}
	args := []string{"agora", containerinit.EnterCommand, strconv.Itoa(c.pid), dir}
	args = append(args, c.cg.procsFiles()...)
	args = append(args, "--", cmd.Path)
	args = append(args, cmd.Args...)
	cmd.Path, cmd.Args, cmd.Dir = c.n.cfg.InitPath, args, ""
	return nil
}

func (c *nativeContainer) state() State { return State{ID: c.id, Pid: c.pid, StartTime: c.startTime} }

func (c *nativeContainer) readMessage() (containerinit.Message, error) {
	line, err := c.status.ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return containerinit.Message{}, err
	}
	return containerinit.ParseMessage(strings.TrimSuffix(line, "\n"))
}

// supervise waits for the init to end (its status pipe closes when it
// exits), reaps it, and destroys the container.
func (c *nativeContainer) supervise() {
	var taskStatus *uint32
	for {
		m, err := c.readMessage()
		if err != nil {
			break
		}
		if m.Status != nil {
			taskStatus = m.Status
		}
	}
	c.statusFile.Close()
	c.mu.Lock()
	_ = c.cmd.Wait()
	exit := exitOf(c.cmd.ProcessState)
	if taskStatus != nil {
		ws := syscall.WaitStatus(*taskStatus)
		exit = Exit{Code: ws.ExitStatus()}
		if ws.Signaled() {
			exit = Exit{Signal: ws.Signal()}
		}
	}
	c.reaped = true
	c.mu.Unlock()
	c.finish(exit)
}

// watchAdopted polls an adopted container's init, which is not the
// agent's child and cannot be waited for.
func (c *nativeContainer) watchAdopted() {
	t := time.NewTicker(adoptPollInterval)
	defer t.Stop()
	for range t.C {
		if !c.state().alive() {
			c.mu.Lock()
			c.reaped = true
			c.mu.Unlock()
			exit, err := exitFromFile(c.exitFile)
			if err != nil {
				c.n.cfg.Logger.Warn("the exit status of an adopted container is unknown", "container_id", c.id, "err", err)
			}
			c.finish(exit)
			return
		}
	}
}

// finish records how the container ended, tears it down and marks it done.
func (c *nativeContainer) finish(exit Exit) {
	oomKilled := c.cg.oomKills() > 0
	var peak uint64
	if oomKilled {
		peak = c.cg.peakMemory() // before destroy resets it
	}
	c.mu.Lock()
	c.noOOM = !oomKilled
	c.mu.Unlock()
	c.destroy()
	c.mu.Lock()
	oomKilled = oomKilled || c.oomKilled
	memMB := c.memMB
	c.mu.Unlock()
	if oomKilled {
		exit.Limitation = &Limitation{
			Resource: "mem",
			Message: fmt.Sprintf("Memory limit exceeded: Requested: %dMB Maximum Used: %dMB",
				int64(math.Round(memMB)), int64(math.Round(float64(peak)/(1<<20)))),
		}
	}
	c.exit = exit
	close(c.done)
}

// Emptied reports whether the container has ended with no process of it
// left: its init, the pid namespace's first process, has been reaped (the
// kernel ends every other process of the namespace before that) and its
// cgroup was seen empty, or was never entered from outside the namespace,
// so nothing that ran in it (a command entered into it included) can
// still touch its sandbox. The agent recycles only such sandboxes.
func (c *nativeContainer) Emptied() bool {
	select {
	case <-c.done:
	default:
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.emptied && c.reaped
}

// destroy kills every process left in the cgroup and hands the cgroup
// back to the pool, or removes it.
func (c *nativeContainer) destroy() {
	c.destroyOnce.Do(func() {
		if c.oom != nil {
			c.oom.Close()
		}
		log := c.n.cfg.Logger
		c.mu.Lock()
		// The init is the first process of the container's pid namespace:
		// before it can be reaped the kernel has ended, and released,
		// every other process of the namespace, so once this agent has
		// reaped it the cgroup holds none of them. Only a command entered
		// from outside the namespace (Enter) can be left, and an adopted
		// container may have been entered by the agent before. Reading
		// every controller's cgroup.procs (a pid list the kernel builds
		// for each open) is spared the common case.
		empty := c.reaped && !c.adopted && !c.entered
		c.mu.Unlock()
		// Nor can anything an outsider put in it, which the pids
		// controller counts (one read of a kept file).
		if g, ok := c.cg.(interface{ pidsCurrent() (uint64, bool) }); ok && empty {
			if n, known := g.pidsCurrent(); known && n > 0 {
				empty = false
			}
		}
		if !empty {
			if err := killCgroup(c.cg); err != nil {
				log.Error("cannot kill the processes of a container", "container_id", c.id, "cgroup", c.cgName, "err", err)
				if g, ok := c.cg.(*v1Group); ok {
					g.retire() // the cgroup stays; its group object goes
				}
				return
			}
		}
		c.mu.Lock()
		noOOM := c.noOOM && !c.oomKilled
		c.emptied = true
		c.mu.Unlock()
		if g, ok := c.cg.(*v1Group); ok && c.n.pool != nil && c.n.pool.release(g, noOOM) {
			return
		}
		if err := removeCgroup(c.cg); err != nil {
			log.Error("cannot remove a container's cgroup", "container_id", c.id, "cgroup", c.cgName, "err", err)
		}
	})
}

// watchOOM kills the whole container when the kernel's OOM killer acts in
// it (on any of its processes, not just the main one), as Mesos does on a
// memory limitation.
func (c *nativeContainer) watchOOM() {
	f, err := c.cg.oomEvents()
	if err != nil {
		c.n.cfg.Logger.Warn("no OOM notifications for a container; limits are still enforced", "container_id", c.id, "err", err)
		return
	}
	c.oom = f
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := f.Read(buf); err != nil {
				return // closed by destroy
			}
			// The notification may come before the kill is counted.
			killed := false
			for i := 0; i < 20 && !killed; i++ {
				if killed = c.cg.oomKills() > 0; !killed {
					time.Sleep(5 * time.Millisecond)
				}
			}
			if !killed {
				continue
			}
			c.mu.Lock()
			c.oomKilled = true
			if !c.reaped {
				_ = syscall.Kill(c.pid, syscall.SIGKILL)
			}
			c.mu.Unlock()
		}
	}()
}
