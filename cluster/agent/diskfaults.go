package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
)

// DiskOp is one step of writing a checkpoint, at which DiskFaults can make
// the write fail.
type DiskOp string

// The steps of a checkpoint write.
const (
	DiskMkdir  DiskOp = "mkdir"  // making a checkpoint directory
	DiskWrite  DiskOp = "write"  // writing a file's bytes (a record, or a whole file)
	DiskFsync  DiskOp = "fsync"  // fsyncing a file or a directory
	DiskRename DiskOp = "rename" // renaming a new file over the old one
)

// ErrInjected is the error of a checkpoint step DiskFaults refused.
var ErrInjected = errors.New("checkpoint write failed (injected fault)")

// DiskFaults makes the agent's checkpoint writes below one directory fail
// or hang on command, as registry.Faulty does for the master's registry:
// tests check with it that a refused write leaves the agent's state and
// its disk as they were, and is refused or retried, and that a slow disk
// holds up nothing but what waits for it. A refused write step writes
// half its bytes first, as a disk that fills up mid-write does. Reads
// always go through.
type DiskFaults struct {
	dir string

	mu      sync.Mutex
	rules   []diskRule
	refused int
	crashes []crashRule
}

type diskRule struct {
	op    DiskOp
	match string    // a substring of the path; "" matches every path
	times int       // how many more steps to refuse; < 0: until Heal
	hold  *diskHold // set: the step is held, not refused (Block)
}

// diskHold is a step Block holds until it is released.
type diskHold struct {
	held, released chan struct{}
	heldOnce       sync.Once
	releaseOnce    sync.Once
}

func (h *diskHold) release() { h.releaseOnce.Do(func() { close(h.released) }) }

var (
	faultsMu sync.Mutex
	faults   []*DiskFaults
	anyFault atomic.Bool // fast path: no DiskFaults installed
)

// InjectDiskFaults installs faults for the checkpoint writes below dir (an
// agent's work directory) and returns them with the function that removes
// them again (and releases the steps they hold).
func InjectDiskFaults(dir string) (f *DiskFaults, remove func()) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	f = &DiskFaults{dir: abs}
	faultsMu.Lock()
	faults = append(faults, f)
	anyFault.Store(true)
	faultsMu.Unlock()
	return f, func() {
		f.Heal() // no step stays held once the faults are gone
		faultsMu.Lock()
		defer faultsMu.Unlock()
		for i, g := range faults {
			if g == f {
				faults = append(faults[:i:i], faults[i+1:]...)
				break
			}
		}
		anyFault.Store(len(faults) > 0)
	}
}

// Fail refuses the next times steps op on a path containing match (every
// such step until Heal when times < 0).
func (f *DiskFaults) Fail(op DiskOp, match string, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, diskRule{op: op, match: match, times: times})
}

// Block holds the next step op on a path containing match until release
// is called, as a hung disk or a slow fsync would; then the step goes
// through. held is closed once a step is held.
func (f *DiskFaults) Block(op DiskOp, match string) (held <-chan struct{}, release func()) {
	h := &diskHold{held: make(chan struct{}), released: make(chan struct{})}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, diskRule{op: op, match: match, times: 1, hold: h})
	return h.held, h.release
}

// Heal lets every step through again, those held by Block too.
func (f *DiskFaults) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.rules {
		if r.hold != nil {
			r.hold.release()
		}
	}
	f.rules = nil
	f.crashes = nil
}

// Refused counts the steps refused so far.
func (f *DiskFaults) Refused() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

// refuse says whether step op on path is refused, or else held (hold).
func (f *DiskFaults) refuse(op DiskOp, path string) (refused bool, hold *diskHold) {
	if path != f.dir && !strings.HasPrefix(path, f.dir+string(filepath.Separator)) {
		return false, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.rules {
		r := &f.rules[i]
		if r.op != op || r.times == 0 || !strings.Contains(path, r.match) {
			continue
		}
		if r.times > 0 {
			r.times--
		}
		if r.hold != nil {
			return false, r.hold
		}
		f.refused++
		return true, nil
	}
	return false, nil
}

// diskFault is the error an installed DiskFaults gives step op on path,
// or nil; a held step waits here until it is released.
func diskFault(op DiskOp, path string) error {
	if !anyFault.Load() {
		return nil
	}
	faultsMu.Lock()
	fs := append([]*DiskFaults(nil), faults...)
	faultsMu.Unlock()
	for _, f := range fs {
		refused, hold := f.refuse(op, path)
		if hold != nil {
			hold.heldOnce.Do(func() { close(hold.held) })
			<-hold.released
		}
		if refused {
			return &os.PathError{Op: string(op), Path: path, Err: ErrInjected}
		}
	}
	return nil
}

// The checkpoint's file system calls, each of which a DiskFaults can fail.

func ckptMkdirAll(dir string) error {
	if err := diskFault(DiskMkdir, dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o755)
}

// ckptWrite writes b to f (the file at path); a refused write writes half
// of b first.
func ckptWrite(f *os.File, path string, b []byte) error {
	if err := diskFault(DiskWrite, path); err != nil {
		_, _ = f.Write(b[:len(b)/2])
		return err
	}
	_, err := f.Write(b)
	return err
}

func ckptSync(f *os.File, path string) error {
	if err := diskFault(DiskFsync, path); err != nil {
		return err
	}
	return f.Sync()
}

func ckptRename(from, to string) error {
	if err := diskFault(DiskRename, to); err != nil {
		return err
	}
	return os.Rename(from, to)
}

// CrashPoint names a moment of a launch at which DiskFaults can make the
// agent die, as kill -9 would: between two steps that a real crash may
// separate, where no checkpoint write fails that a test could hook.
type CrashPoint string

// The crash points of a launch.
const (
	// CrashBeforeContainerStart: the launch is checkpointed and
	// TASK_STARTING sent; the container is not created yet.
	CrashBeforeContainerStart CrashPoint = "before-container-start"
	// CrashAfterContainerStart: the container runs (a custom executor's,
	// or a command task's or a task group's); the agent has not yet
	// checkpointed its pid.
	CrashAfterContainerStart CrashPoint = "after-container-start"
)

type crashRule struct {
	point CrashPoint
	match string
	crash func()
}

// CrashAt calls crash when the agent reaches point for a checkpoint
// directory (of a task or an executor run) containing match, once. crash
// is expected not to return (a test's agent process kills itself with
// SIGKILL); if it does, the agent goes on.
func (f *DiskFaults) CrashAt(point CrashPoint, match string, crash func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.crashes = append(f.crashes, crashRule{point: point, match: match, crash: crash})
}

// reached calls the crash of the first rule for point and dir, which it
// removes.
func (f *DiskFaults) reached(point CrashPoint, dir string) {
	if dir != f.dir && !strings.HasPrefix(dir, f.dir+string(filepath.Separator)) {
		return
	}
	f.mu.Lock()
	var crash func()
	for i, r := range f.crashes {
		if r.point == point && strings.Contains(dir, r.match) {
			crash = r.crash
			f.crashes = append(f.crashes[:i:i], f.crashes[i+1:]...)
			break
		}
	}
	f.mu.Unlock()
	if crash != nil {
		crash()
	}
}

// crashPoint lets an installed DiskFaults crash the agent at point of the
// launch whose checkpoint directory is dir.
func crashPoint(point CrashPoint, dir string) {
	if !anyFault.Load() || dir == "" {
		return
	}
	faultsMu.Lock()
	fs := append([]*DiskFaults(nil), faults...)
	faultsMu.Unlock()
	for _, f := range fs {
		f.reached(point, dir)
	}
}
