package agent

import (
	"context"
	"errors"
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
// A launch takes one (its container gets that ID) and renames it to
// .../executors/<task> in one call; the pool is refilled in the background.
// When the task's executor directory exists already (an earlier run of the
// same task ID) or the rename fails for any other reason, the sandbox is
// made as before. The pool is emptied when the agent starts.
//
// The garbage collector adds the skeletons of finished sandboxes it
// recycles (sandboxrecycle.go), up to recycleCap in all.

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
	ready []string        // made or recycled, not taken
	taken map[string]bool // taken by a launch, not placed yet
	wake  chan struct{}
	// recyclable maps the run directories of finished sandboxes that may
	// be recycled to the uid their task ran as (-1: the agent's).
	recyclable map[string]int
}

func newSandboxPool(workDir string, log *slog.Logger) *sandboxPool {
	return &sandboxPool{dir: filepath.Join(workDir, ".sandbox-pool"), log: log,
		taken: map[string]bool{}, wake: make(chan struct{}, 1), recyclable: map[string]int{}}
}

// hasRoom reports whether the pool takes a recycled sandbox now.
func (p *sandboxPool) hasRoom() bool {
	if p.recycleCap <= 0 || p.off.Load() || !p.opened.Load() {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ready) < p.recycleCap
}

// addRecycled makes the recycled sandbox below the pool's directory, named
// id, the next one a launch takes.
func (p *sandboxPool) addRecycled(id string) {
	p.mu.Lock()
	p.ready = append(p.ready, id)
	p.mu.Unlock()
}

// containerID is the ID of a new container: one a made sandbox waits for,
// if there is one.
func (p *sandboxPool) containerID() string {
	if p == nil || p.off.Load() {
		return newUUID().String()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
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
// runs/latest and the output files exist.
func (p *sandboxPool) place(containerID, sandbox string) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	ok := p.taken[containerID]
	delete(p.taken, containerID)
	p.mu.Unlock()
	if !ok || filepath.Base(sandbox) != containerID {
		return false
	}
	entry := filepath.Join(p.dir, containerID)
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
	// The garbage collector ages sandboxes by their time: it is the
	// launch's, not the pool's.
	now := time.Now()
	_ = os.Chtimes(sandbox, now, now)
	return true
}

// run keeps the pool full until ctx ends. It starts by removing what an
// earlier agent left in it.
func (p *sandboxPool) run(ctx context.Context) {
	err := os.RemoveAll(p.dir)
	if err == nil {
		err = os.MkdirAll(p.dir, 0o755)
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
