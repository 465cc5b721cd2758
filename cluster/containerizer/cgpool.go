package containerizer

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The cgroup pool keeps a few empty cgroups in the containerizer's root
// (cgroup v1 only) so that a launch renames one to the container's ID
// instead of creating a cgroup in every controller, and a container's end
// renames it back instead of removing it. Creating and removing a memory
// cgroup is the costly part of a container's cgroup: the kernel allocates
// and later frees per-CPU state for it, while a rename only relinks a
// directory. A pooled cgroup keeps the limits of its last container, so a
// launch writes only the limits that differ; its counters are reset when
// it comes back (the CFS counters and user and system CPU times, which
// cannot be, are remembered).
//
// The container's cgroup keeps its name, <root>/<container-id>, so the
// Plan an agent checkpoints before the launch names it, and recovery and
// orphan cleanup find it as before. Idle cgroups are named
// <root>/.agora-pool-<pid>-<start>-<n>, after the agent process (its pid
// and start time) that owns them: at start-up a containerizer takes over
// or removes the idle cgroups of agents that are gone, and leaves those
// of live agents that share the root alone. cgroup v2 does not allow
// renaming a cgroup, so there the pool is off.

// poolPrefix starts the name of every idle pooled cgroup; container IDs
// may not start with it.
const poolPrefix = ".agora-pool-"

var errPoolEmpty = errors.New("cgroup pool: empty")

type cgPool struct {
	h     *v1
	root  string // the containerizer's root, "agora"
	size  int    // most idle cgroups kept
	low   int    // the filler tops the pool up to this once it has filled it
	owner string // "<pid>-<start time>" of this process
	log   *slog.Logger

	mu     sync.Mutex
	idle   []*v1Group
	closed bool

	fill chan struct{} // wakes the filler
	stop chan struct{} // closed by close
	done chan struct{} // closed when the filler has stopped
}

// newPool starts a pool of up to size idle cgroups in root. It first takes
// over (reset) or removes the idle cgroups of agents that are gone. With
// size 0 it only removes those and returns nil.
func newPool(h *v1, root string, size int, log *slog.Logger) (*cgPool, error) {
	owner, err := processOwner(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("cgroup pool: %w", err)
	}
	p := &cgPool{h: h, root: root, size: size, low: size / 2, owner: owner, log: log,
		fill: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	p.adoptLeftovers()
	if size == 0 {
		return nil, nil
	}
	go p.filler()
	p.wake()
	return p, nil
}

// processOwner names process pid by its pid and start time, which a
// reused pid does not repeat.
func processOwner(pid int) (string, error) {
	ps, err := readProcStat(pid)
	if err != nil {
		return "", err
	}
	return strconv.Itoa(pid) + "-" + strconv.FormatUint(ps.startTime, 10), nil
}

// ownerAlive reports whether the agent process that named an idle cgroup
// still runs. A name it cannot parse has no live owner.
func ownerAlive(name string) bool {
	rest, ok := strings.CutPrefix(name, poolPrefix)
	if !ok {
		return false
	}
	f := strings.SplitN(rest, "-", 3)
	if len(f) != 3 {
		return false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return false
	}
	cur, err := processOwner(pid)
	return err == nil && cur == f[0]+"-"+f[1]
}

// wake asks the filler to top the pool up.
func (p *cgPool) wake() {
	select {
	case p.fill <- struct{}{}:
	default:
	}
}

// filler creates idle cgroups off the launch path: the whole pool at
// first, later up to half of it whenever launches have taken more. It
// leaves the rest of the room to the cgroups of containers that end:
// were it to keep the pool full, those would find no room and be
// removed, and every launch would cost a create and a remove again.
func (p *cgPool) filler() {
	defer close(p.done)
	target := p.size
	for {
		select {
		case <-p.stop:
			return
		case <-p.fill:
		}
		for {
			p.mu.Lock()
			short := !p.closed && len(p.idle) < target
			name := p.nextName()
			p.mu.Unlock()
			if !short {
				break
			}
			g, err := p.h.mkdir(name)
			if err != nil {
				p.log.Warn("cannot pre-create a pooled cgroup; containers get new cgroups", "err", err)
				break
			}
			if !p.put(g) {
				_ = g.remove()
				break
			}
		}
		target = p.low
	}
}

// poolSeq numbers idle cgroups, across the containerizers of a process.
var poolSeq atomic.Uint64

// nextName is a fresh name for an idle cgroup.
func (p *cgPool) nextName() string {
	return p.root + "/" + poolPrefix + p.owner + "-" + strconv.FormatUint(poolSeq.Add(1), 10)
}

// put adds an idle cgroup to the pool unless it is closed or full.
func (p *cgPool) put(g *v1Group) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle) >= p.size {
		return false
	}
	p.idle = append(p.idle, g)
	return true
}

// take renames an idle cgroup to name (<root>/<container-id>) and gives
// it limits l. errPoolEmpty means there was none; any other error means
// the idle cgroup could not be used (it is removed) and name is not there.
func (p *cgPool) take(name string, l limits) (*v1Group, error) {
	p.mu.Lock()
	var g *v1Group
	if n := len(p.idle); n > 0 {
		g, p.idle = p.idle[n-1], p.idle[:n-1]
	}
	low := len(p.idle) < p.low
	p.mu.Unlock()
	if low {
		p.wake()
	}
	if g == nil {
		return nil, errPoolEmpty
	}
	if err := g.rename(name); err != nil {
		_ = g.remove()
		return nil, err
	}
	// removeAbandoned tells a launch in progress from an abandoned cgroup
	// by the age of its directory, which a rename keeps.
	now := []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}}
	_ = unix.UtimesNanoAt(unix.AT_FDCWD, g.dir(g.h.subsystems[0]), now, 0)
	if err := g.set(l); err != nil {
		_ = g.remove()
		return nil, fmt.Errorf("cgroups: limit pooled cgroup %s: %w", name, err)
	}
	return g, nil
}

// release gives the cgroup of a container that has ended, and holds no
// process, back to the pool: its CFS quota lifted (the next container's
// init starts without one), its CPU and memory counters reset, renamed to
// an idle name. It reports false, and leaves g as it was or partly reset,
// if the pool is closed or full, the cgroup's OOM-kill counter (which
// cannot be reset) is not 0, or a step fails: the caller then removes g.
// noOOM says the caller has just read that counter as 0.
func (p *cgPool) release(g *v1Group, noOOM bool) bool {
	p.mu.Lock()
	full := p.closed || len(p.idle) >= p.size
	name := p.nextName()
	p.mu.Unlock()
	if full || (!noOOM && g.oomKills() > 0) {
		return false
	}
	// From here the cgroup is idle's. g, which the ended container still
	// holds, is retired before its limits are read, so a late limit
	// update of that container can neither reach the cgroup the next
	// container gets nor land unseen by idle.held.
	idle := &v1Group{h: g.h, name: g.name}
	g.handFilesTo(idle)
	idle.held, idle.heldKnown, idle.base = g.snapshot()
	if err := idle.reset(); err != nil {
		p.log.Debug("cannot reset a container's cgroup for reuse; removing it", "cgroup", g.name, "err", err)
		idle.retire()
		return false
	}
	if err := idle.rename(name); err != nil {
		p.log.Debug("cannot return a container's cgroup to the pool; removing it", "cgroup", g.name, "err", err)
		idle.retire()
		return false
	}
	if !p.put(idle) {
		_ = idle.remove()
	}
	return true
}

// close stops the filler and removes the idle cgroups; later releases
// remove their cgroups. Containers are not touched.
func (p *cgPool) close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	var errs []error
	for _, g := range idle {
		errs = append(errs, g.remove())
	}
	return errors.Join(errs...)
}

// idleNames lists the pool's idle cgroups (for tests and diagnostics).
func (p *cgPool) idleNames() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, g := range p.idle {
		out = append(out, strings.TrimPrefix(g.name, "/"))
	}
	return out
}

// adoptLeftovers deals with the idle cgroups in the root whose agent is
// gone (killed before it could remove them): each one that is complete
// (in every controller) and empty is reset and taken into this pool while
// there is room; the others are removed.
func (p *cgPool) adoptLeftovers() {
	names := map[string]int{}
	for _, s := range p.h.subsystems {
		ents, err := os.ReadDir(filepath.Join(p.h.mount, string(s.Name()), p.root))
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.IsDir() && strings.HasPrefix(e.Name(), poolPrefix) {
				names[e.Name()]++
			}
		}
	}
	for base, controllers := range names {
		if ownerAlive(base) {
			continue
		}
		g := &v1Group{h: p.h, name: "/" + p.root + "/" + base}
		if controllers == len(p.h.subsystems) && p.adopt(g) {
			continue
		}
		if err := g.remove(); err != nil {
			p.log.Warn("cannot remove an idle pooled cgroup left by an earlier agent", "cgroup", g.name, "err", err)
		}
	}
}

// adopt resets an idle cgroup of a gone agent fully and takes it in.
func (p *cgPool) adopt(g *v1Group) bool {
	if pids, err := g.procs(); err != nil || len(pids) > 0 || g.oomKills() > 0 {
		return false
	}
	p.mu.Lock()
	full := len(p.idle) >= p.size
	name := p.nextName()
	p.mu.Unlock()
	if full || g.set(limits{}) != nil || g.reset() != nil {
		return false
	}
	idle := &v1Group{h: g.h, name: g.name}
	g.handFilesTo(idle)
	idle.held, idle.heldKnown, idle.base = g.snapshot()
	if idle.rename(name) != nil {
		idle.retire()
		return false
	}
	if !p.put(idle) {
		_ = idle.remove()
	}
	return true
}

// isPoolName reports whether a cgroup in the root is an idle pooled one.
func isPoolName(name string) bool { return strings.HasPrefix(name, poolPrefix) }
