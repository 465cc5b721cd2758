package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Sandboxes made ahead of launches.
//
// A command task's sandbox (Mesos's path, .../executors/<task>/runs/<container>,
// with runs/latest and the stdout and stderr files) costs six new inodes.
// On ext4 a new inode is expensive right after others were deleted (the
// allocator skips recently deleted ones, and the garbage collector deletes
// sandboxes all the time), and a burst of launches pays it in its latency.
// So the agent keeps a few sandboxes ready below WORK_DIR/.sandbox-pool,
// each named by the container ID it was made for:
//
//	<container>/runs/<container>/{stdout,stderr}
//	<container>/runs/latest -> <container>
//
// A launch takes one (its container gets that ID), gives it its task's
// owner and mode (closeSandbox) while it is still in the pool, and renames
// it to .../executors/<task> in one call; the pool is refilled in the
// background.
// When the task's executor directory exists already (an earlier run of the
// same task ID) or the rename fails for any other reason, the sandbox is
// made as before. The pool is emptied when the agent starts, and its
// directory is the agent's alone (0700): the output files made ahead are
// 0644, and a local user who could open one before its launch would read
// that task's output through the open file.
//
// The garbage collector adds the skeletons of finished sandboxes it
// recycles (sandboxrecycle.go), up to recycleCap in all, kept by the uid
// of the task each came from: a launch gets a recycled skeleton only if
// its task runs as that uid, and one made ahead otherwise.

const sandboxPoolSize = 64

type sandboxPool struct {
	dir string
	log *slog.Logger

	off    atomic.Bool // the pool does not work here (another file system, ...)
	opened atomic.Bool // run has emptied the pool left by an earlier agent

	// recycleCap is the most sandboxes the pool holds with recycled ones
	// (0: none recycled).
	recycleCap int

	mu    sync.Mutex
	ready []string        // made ahead, not taken
	taken map[string]bool // taken by a launch, not placed yet
	wake  chan struct{}
	// recycled holds the recycled skeletons not taken, by the uid of the
	// task each came from (-1: the agent's own user); nRecycled counts
	// them, and reserved the ones being reset, which count against the
	// cap already.
	recycled            map[int][]string
	nRecycled, reserved int
	// recyclable maps the run directories of finished sandboxes that may
	// be recycled to the uid their task ran as (-1: the agent's).
	recyclable map[string]int
	// adopted holds the sandboxes of containers an earlier agent process
	// launched (checkpoint.go), which are never recycled.
	adopted map[string]bool
	// placed, set by tests only (under mu), is called with the executor
	// directory of each sandbox place moved into the tree, right after
	// the rename made it reachable, while the launch waits.
	placed func(execDir string)
	// stale holds skeletons left in the pool's directory that could not
	// be removed when they failed a check (true: a finished sandbox the
	// collector counts once removed) or were evicted; the collector tries
	// again.
	stale map[string]bool
}

func newSandboxPool(workDir string, log *slog.Logger) *sandboxPool {
	return &sandboxPool{dir: filepath.Join(workDir, ".sandbox-pool"), log: log,
		taken: map[string]bool{}, wake: make(chan struct{}, 1), recycled: map[int][]string{},
		recyclable: map[string]int{}, adopted: map[string]bool{}, stale: map[string]bool{}}
}

// reserve takes a place in the pool for a sandbox of a task that ran as
// uid, about to be recycled, if the pool takes one now; the caller ends
// the reservation with addRecycled or unreserve. Checking the cap and
// taking the place are one step, so concurrent collections cannot
// overshoot it. When the pool is full, the user with the most skeletons,
// if it has more than uid, gives up its oldest, which the caller removes
// (evicted): skeletons kept for a user who launches nothing any more
// would otherwise hold the pool's places for good.
func (p *sandboxPool) reserve(uid int) (evicted string, ok bool) {
	if p.recycleCap <= 0 || p.off.Load() || !p.opened.Load() {
		return "", false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ready)+p.nRecycled+p.reserved < p.recycleCap {
		p.reserved++
		return "", true
	}
	var ids []string
	victim := 0
	for u, them := range p.recycled {
		if len(them) > max(len(ids), len(p.recycled[uid])) {
			victim, ids = u, them
		}
	}
	if len(ids) == 0 {
		return "", false
	}
	evicted = ids[0]
	if len(ids) == 1 {
		delete(p.recycled, victim)
	} else {
		p.recycled[victim] = ids[1:]
	}
	p.nRecycled--
	p.reserved++
	return evicted, true
}

func (p *sandboxPool) unreserve() {
	p.mu.Lock()
	p.reserved--
	p.mu.Unlock()
}

// addRecycled makes the recycled sandbox below the pool's directory, named
// id, the next one a launch of a task running as uid takes; it ends the
// reservation. It reports false, adding nothing, once the pool is off:
// no launch would take it, and the caller removes it.
func (p *sandboxPool) addRecycled(id string, uid int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reserved--
	if p.off.Load() {
		return false
	}
	p.recycled[uid] = append(p.recycled[uid], id)
	p.nRecycled++
	return true
}

// containerID is the ID of a new container whose task runs as uid (-1:
// the agent's user): that of a sandbox recycled from a task of the same
// uid, or else of one made ahead, if there is one.
func (p *sandboxPool) containerID(uid int) string {
	if p == nil || p.off.Load() {
		return newUUID().String()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ids := p.recycled[uid]; len(ids) > 0 {
		id := ids[len(ids)-1]
		if len(ids) == 1 {
			delete(p.recycled, uid)
		} else {
			p.recycled[uid] = ids[:len(ids)-1]
		}
		p.nRecycled--
		p.taken[id] = true
		return id
	}
	if n := len(p.ready); n > 0 {
		id := p.ready[n-1]
		p.ready = p.ready[:n-1]
		p.taken[id] = true
		select {
		case p.wake <- struct{}{}:
		default:
		}
		return id
	}
	return newUUID().String()
}

// place moves the sandbox made for containerID to sandbox (its
// runs/<container> directory); it reports whether it did. Then sandbox,
// runs/latest and the output files exist, and sandbox belongs to owner
// (closeSandbox; nil: it stays the agent's, mode 0755).
//
// Everything the sandbox needs is done while it is still below the pool's
// directory, which only the agent may enter: its owner and mode, and its
// time. The rename that makes it reachable in the tree comes last, so no
// other local user can open its output files at any moment between (a
// file opened then would stay open, and its reader would see the task's
// output). The launch costs the same calls as before, in this order.
func (p *sandboxPool) place(containerID, sandbox string, owner *sandboxOwner) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	ok := p.taken[containerID]
	delete(p.taken, containerID)
	placed := p.placed
	p.mu.Unlock()
	if !ok || filepath.Base(sandbox) != containerID {
		return false
	}
	entry := filepath.Join(p.dir, containerID)
	run := filepath.Join(entry, "runs", containerID)
	if err := owner.close(run); err != nil { // sandbox_owner.go
		p.log.Warn("cannot hand a pooled sandbox to its task's user; making it in place", "sandbox", sandbox, "err", err)
		go os.RemoveAll(entry)
		return false
	}
	// The garbage collector ages sandboxes by their time: it is the
	// launch's, not the pool's.
	now := time.Now()
	_ = os.Chtimes(run, now, now)
	execDir := filepath.Dir(filepath.Dir(sandbox))
	err := os.Rename(entry, execDir)
	if errors.Is(err, os.ErrNotExist) {
		// The first task of its framework: make executors/ once.
		if err = os.MkdirAll(filepath.Dir(execDir), 0o755); err == nil {
			err = os.Rename(entry, execDir)
		}
	}
	if err != nil {
		if !errors.Is(err, os.ErrExist) && !errors.Is(err, syscall.ENOTEMPTY) {
			p.log.Warn("cannot move a sandbox made ahead into place; sandboxes are made in place from now on", "sandbox", sandbox, "err", err)
			p.off.Store(true)
		}
		go os.RemoveAll(entry)
		return false
	}
	if placed != nil {
		placed(execDir)
	}
	return true
}

// drop removes the sandbox made for containerID, which a launch took but
// does not place (it failed before).
func (p *sandboxPool) drop(containerID string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	ok := p.taken[containerID]
	delete(p.taken, containerID)
	p.mu.Unlock()
	if ok {
		go os.RemoveAll(filepath.Join(p.dir, containerID))
	}
}

// run keeps the pool full until ctx ends. It starts by removing what an
// earlier agent left in it.
func (p *sandboxPool) run(ctx context.Context) {
	err := os.RemoveAll(p.dir)
	if err == nil {
		err = makePrivateDir(p.dir)
	}
	if err != nil {
		p.log.Warn("cannot empty the sandbox pool; launches make their sandboxes in place", "dir", p.dir, "err", err)
		p.off.Store(true)
		return
	}
	p.opened.Store(true)
	for !p.off.Load() {
		p.mu.Lock()
		missing := sandboxPoolSize - len(p.ready)
		p.mu.Unlock()
		for ; missing > 0 && ctx.Err() == nil; missing-- {
			id := newUUID().String()
			if err := makePooledSandbox(filepath.Join(p.dir, id), id); err != nil {
				p.log.Warn("cannot make a sandbox ahead; launches make their sandboxes in place", "err", err)
				p.off.Store(true)
				return
			}
			p.mu.Lock()
			p.ready = append(p.ready, id)
			p.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		}
	}
}

// makePrivateDir makes dir, which must not exist, as a directory only the
// agent's user may enter, whatever the umask, and checks that it is one.
func makePrivateDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(dir, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: dir, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR || st.Mode&0o777 != 0o700 || int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s: mode %o, owner %d: not a directory of the agent's alone", dir, st.Mode, st.Uid)
	}
	return nil
}

// makePooledSandbox makes one sandbox of the pool with plain system
// calls: the pool's directory exists, so each directory is one mkdir (no
// stat of its parents first), and the output files are created and closed
// without an os.File (which would stat them and try to register them with
// the runtime's poller).
func makePooledSandbox(entry, id string) error {
	runs := filepath.Join(entry, "runs")
	run := filepath.Join(runs, id)
	for _, dir := range []string{entry, runs, run} {
		if err := syscall.Mkdir(dir, 0o755); err != nil {
			return &os.PathError{Op: "mkdir", Path: dir, Err: err}
		}
	}
	for _, name := range []string{"stdout", "stderr"} {
		path := filepath.Join(run, name)
		fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, 0o644)
		if err != nil {
			return &os.PathError{Op: "open", Path: path, Err: err}
		}
		syscall.Close(fd)
	}
	return os.Symlink(id, filepath.Join(runs, "latest"))
}
