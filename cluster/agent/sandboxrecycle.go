package agent

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"golang.org/x/sys/unix"

	"github.com/agora-cluster/agora/cluster/containerizer"
)

// Sandboxes the garbage collector recycles.
//
// Removing a finished sandbox frees its six or seven inodes, and on ext4
// the new inodes of the launches that follow then cost up to ten times
// more: the allocator walks past the inodes freed in the last minutes
// (benchmarks/RESULTS.md). So when the collector's time comes for the
// sandbox of a command task whose container provably ended with all its
// processes (the native containerizer: the init of its pid namespace
// reaped, its cgroup seen empty), the sandbox's skeleton goes back into
// the sandbox pool instead: the executor directory leaves the tree in one
// rename, is checked and reset inside the pool, and is renamed for the
// container ID the pool hands out next to a task of the same user. The
// task's own files are removed as before; stdout and stderr are
// truncated, tmp emptied. The launch that takes it gives it its task's
// owner and mode (closeSandbox) while it is still in the pool, whose
// directory only the agent may enter, and only then renames it into the
// tree (sandboxPool.place): no other local user can open its output files
// at any moment of the launch, as with a sandbox made in place.
//
// Recycling keeps the inodes of the directories and of stdout and stderr,
// so a process that holds one open (a file, or its working directory),
// such as another task of the same user that opened the finished task's
// tmp, keeps its access to them whatever their new owner and mode. The
// security boundary between tasks is the Unix user, so a recycled
// skeleton goes only to a launch whose task runs as the uid the finished
// task ran as (-1, the agent's own user, when tasks do not switch users);
// other launches get sandboxes made ahead or in place. A process holding
// one of its inodes can then reach only what it could reach anyway: the
// next task's sandbox belongs to the same user. For the same reason tmp
// is emptied rather than made anew.
//
// Nothing the task left is trusted. Each entry of the skeleton is looked
// at without following links and opened relative to its checked parent
// with O_NOFOLLOW, and must be what the agent made: a directory, or a
// regular file with a single link, on the sandbox's mount, owned by the
// agent or the task's user, without extended attributes (an ACL set by
// the task would reach the next task's files). Anything else (a symlink,
// a hard link to a file elsewhere, a fifo, a directory in place of
// stdout) and the whole sandbox is removed as before. Sandboxes of posix
// and Docker containers, whose processes may outlive them, are never
// recycled; nor those of containers an earlier agent process launched and
// this one adopted, whose whole life the agent did not see (neverRecycle,
// called by recovery). The pool lies outside the sandbox tree and is emptied when the
// agent starts, so recovery never mistakes a pooled skeleton for a live
// sandbox.

// DefaultRecycledSandboxes is how many recycled skeletons the sandbox
// pool keeps at most (with those made ahead); the collector removes the
// rest as before. A skeleton holds four directory blocks: 1,024 of them
// take about 16 MB.
const DefaultRecycledSandboxes = 1024

// maxRecyclable bounds the finished sandboxes remembered as recyclable
// until the collector gets to them (about 150 bytes each).
const maxRecyclable = 100000

// emptied is implemented by containers that can say no process of theirs
// is left (containerizer.Native's).
type emptied interface{ Emptied() bool }

// markRecyclable notes that t's sandbox may be recycled: its container,
// which has ended, was the native containerizer's and has no process left.
// Only command tasks' run directories are recycled: the sandboxes of a
// default executor's tasks lie inside the executor's.
func (a *Agent) markRecyclable(t *task, c containerizer.Container) {
	p := a.sandboxes
	if p == nil || p.recycleCap <= 0 || t.sandbox == "" || t.exec != nil {
		return
	}
	sandbox := filepath.Clean(t.sandbox)
	p.mu.Lock()
	adopted := p.adopted[sandbox]
	delete(p.adopted, sandbox)
	p.mu.Unlock()
	if adopted {
		return
	}
	if e, ok := c.(emptied); !ok || !e.Emptied() {
		return
	}
	taskUID, ok := userUID(a.taskUser(t))
	if !ok {
		return
	}
	p.mu.Lock()
	if len(p.recyclable) < maxRecyclable {
		p.recyclable[sandbox] = taskUID
	}
	p.mu.Unlock()
}

// neverRecycle notes that t's sandbox, used by a container an earlier
// agent process launched, is not to be recycled but removed as before:
// that process saw its launch, this one did not, and while no agent
// watched a process of it may have gone where the agent cannot tell.
func (a *Agent) neverRecycle(t *task) {
	p := a.sandboxes
	if p == nil || p.recycleCap <= 0 || t.sandbox == "" || t.exec != nil {
		return
	}
	p.mu.Lock()
	p.adopted[filepath.Clean(t.sandbox)] = true
	p.mu.Unlock()
}

// launchUID is the uid a command runs as, which decides the recycled
// sandboxes its launch may take: -1 for the agent's own user, and
// noRecycled when recycling is off or the user is unknown (the launch
// fails then anyway).
func (a *Agent) launchUID(cmd *mesos.CommandInfo, fw *mesos.FrameworkInfo) int {
	if a.sandboxes == nil || a.sandboxes.recycleCap <= 0 {
		return noRecycled
	}
	uid, ok := userUID(a.commandUser(cmd, fw))
	if !ok {
		return noRecycled
	}
	return uid
}

// noRecycled is a uid no recycled skeleton is kept for.
const noRecycled = -2

// userUID is the uid of the user named name; -1 for "" (the agent's own).
// Launches ask on the agent's event loop, so answers are kept for a
// minute: a slow name service (NSS, LDAP) costs one lookup per user a
// minute, not one per launch.
func userUID(name string) (int, bool) {
	if name == "" {
		return -1, true
	}
	uidCache.Lock()
	e, hit := uidCache.m[name]
	uidCache.Unlock()
	if hit && time.Since(e.at) < uidCacheTTL {
		return e.uid, e.ok
	}
	e = uidEntry{at: time.Now()}
	if u, err := user.Lookup(name); err == nil {
		uid, err := strconv.Atoi(u.Uid)
		e.uid, e.ok = uid, err == nil && uid >= 0
	}
	uidCache.Lock()
	if uidCache.m == nil || len(uidCache.m) >= 4096 {
		uidCache.m = map[string]uidEntry{}
	}
	uidCache.m[name] = e
	uidCache.Unlock()
	return e.uid, e.ok
}

const uidCacheTTL = time.Minute

type uidEntry struct {
	uid int
	ok  bool
	at  time.Time
}

var uidCache struct {
	sync.Mutex
	m map[string]uidEntry
}

// recycleOutcome is what recycleSandbox did with a finished sandbox.
type recycleOutcome int

const (
	notRecycled      recycleOutcome = iota // left in place: the caller removes it
	recycledIntoPool                       // a skeleton in the pool now
	removedInstead                         // it failed a check, or the pool is off: removed
	removalFailed                          // as removedInstead, but its removal failed (tried again by removeStale)
)

// recycleSandbox hands the finished sandbox run (a runs/<container>
// directory the collector found due) back to the sandbox pool.
func (a *Agent) recycleSandbox(run string) recycleOutcome {
	p := a.sandboxes
	if p == nil {
		return notRecycled
	}
	p.mu.Lock()
	taskUID, ok := p.recyclable[run]
	delete(p.recyclable, run)
	p.mu.Unlock()
	if !ok {
		return notRecycled
	}
	evicted, ok := p.reserve(taskUID)
	if !ok {
		return notRecycled
	}
	if evicted != "" {
		p.removeStaged(filepath.Join(p.dir, evicted), false)
	}
	reserved := true
	defer func() {
		if reserved {
			p.unreserve()
		}
	}()
	runs := filepath.Dir(run)
	execDir := filepath.Dir(runs)
	// Only an executor directory with this one run: the others' sandboxes
	// are not this collection's.
	if names, err := readDirNames(runs); err != nil || len(names) != 2 ||
		!(names[0] == "latest" || names[1] == "latest") {
		return notRecycled
	}
	id := newUUID().String()
	staged := filepath.Join(p.dir, id)
	key := taskKey{framework: filepath.Base(filepath.Dir(filepath.Dir(execDir))), task: filepath.Base(execDir)}
	// A new task of the same ID makes its sandbox in the same executor
	// directory once it is registered: the rename happens under the lock
	// that registers tasks, and not if one is.
	a.mu.Lock()
	_, live := a.tasks[key]
	if !live {
		_, live = a.executors[execKey{key.framework, key.task}]
	}
	var err error
	if !live {
		err = os.Rename(execDir, staged)
	}
	a.mu.Unlock()
	if live || err != nil {
		return notRecycled
	}
	err = resetSkeleton(staged, filepath.Base(run), id, taskUID)
	if err == nil {
		reserved = false // addRecycled ends the reservation
		if p.addRecycled(id, taskUID) {
			return recycledIntoPool
		}
		err = errors.New("the sandbox pool is off")
	}
	a.log.Warn("a finished sandbox cannot be recycled; removing it", "sandbox", run, "err", err)
	return p.removeStaged(staged, true)
}

// removeStaged removes a skeleton in the pool's directory that does not
// join the pool (counted: a finished sandbox of the tree). One that cannot
// be removed now is tried again at the next collection.
func (p *sandboxPool) removeStaged(staged string, counted bool) recycleOutcome {
	if err := os.RemoveAll(staged); err != nil {
		p.log.Warn("sandbox garbage collection failed; trying again at the next collection", "dir", staged, "err", err)
		p.mu.Lock()
		p.stale[staged] = counted
		p.mu.Unlock()
		return removalFailed
	}
	return removedInstead
}

// removeStale tries again to remove the skeletons removeStaged could not,
// and returns how many finished sandboxes it removed.
func (p *sandboxPool) removeStale() int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	stale := p.stale
	p.stale = map[string]bool{}
	p.mu.Unlock()
	removed := 0
	for dir, counted := range stale {
		if p.removeStaged(dir, counted) == removedInstead && counted {
			removed++
		}
	}
	return removed
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// skeleton checks and resets the entries of one recycled sandbox.
type skeleton struct {
	path     string // the executor directory, moved into the pool
	mnt      uint64 // its mount: no entry may be on another
	uid, gid int    // the agent's: what every entry is given back to
	taskUID  int    // the task's user, or -1
}

// resetSkeleton turns the executor directory at entry, moved into the
// pool, with its run directory runs/<oldID>, into a pooled sandbox for
// container newID: everything but the skeleton removed, stdout and stderr
// truncated, tmp emptied, modes and owners as the pool makes them,
// runs/<newID> and runs/latest -> newID. An error means entry is not a
// skeleton the pool can trust; the caller removes it.
func resetSkeleton(entry, oldID, newID string, taskUID int) error {
	s := &skeleton{path: entry, uid: os.Geteuid(), gid: os.Getegid(), taskUID: taskUID}
	top, err := unix.Open(entry, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: entry, Err: err}
	}
	defer unix.Close(top)
	var sx unix.Statx_t
	if err := unix.Statx(top, "", unix.AT_EMPTY_PATH, unix.STATX_BASIC_STATS|unix.STATX_MNT_ID, &sx); err != nil {
		return &os.PathError{Op: "statx", Path: entry, Err: err}
	}
	s.mnt = sx.Mnt_id
	if err := s.reset(top, ".", &sx, true, 0o755); err != nil {
		return err
	}
	if err := s.keepOnly(top, ".", "runs"); err != nil {
		return err
	}
	runs, err := s.open(top, ".", "runs", true, 0o755)
	if err != nil {
		return err
	}
	defer unix.Close(runs)
	if err := s.keepOnly(runs, "runs", oldID); err != nil { // latest goes too
		return err
	}
	run, err := s.open(runs, "runs", oldID, true, 0o755)
	if err != nil {
		return err
	}
	defer unix.Close(run)
	rel := filepath.Join("runs", oldID)
	if err := s.keepOnly(run, rel, "stdout", "stderr", "tmp"); err != nil {
		return err
	}
	for _, name := range []string{"stdout", "stderr"} {
		fd, err := s.open(run, rel, name, false, 0o644)
		if err != nil {
			return err
		}
		err = unix.Ftruncate(fd, 0)
		unix.Close(fd)
		if err != nil {
			return s.errorf(filepath.Join(rel, name), "truncate: %v", err)
		}
	}
	tmp, err := s.open(run, rel, "tmp", true, 0o755)
	switch {
	case errors.Is(err, unix.ENOENT): // a posix launch makes none
	case err != nil:
		return err
	default:
		err = s.keepOnly(tmp, filepath.Join(rel, "tmp"))
		unix.Close(tmp)
		if err != nil {
			return err
		}
	}
	if err := unix.Renameat(runs, oldID, runs, newID); err != nil {
		return s.errorf(rel, "rename to %s: %v", newID, err)
	}
	if err := unix.Symlinkat(newID, runs, "latest"); err != nil {
		return s.errorf("runs/latest", "%v", err)
	}
	return nil
}

func (s *skeleton) errorf(rel, format string, args ...any) error {
	return fmt.Errorf("%s: %s", filepath.Join(s.path, rel), fmt.Sprintf(format, args...))
}

// open opens name in the directory parent as the directory or regular
// file the skeleton needs there, and resets it to the agent's ownership
// and mode. It never follows a link, and opens nothing (a fifo, a
// device) before it knows it is of the right kind; ENOENT comes back as
// is.
func (s *skeleton) open(parent int, dirRel, name string, dir bool, mode uint32) (int, error) {
	rel := filepath.Join(dirRel, name)
	var st unix.Stat_t
	if err := unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return -1, err
		}
		return -1, s.errorf(rel, "%v", err)
	}
	want, kind := uint32(unix.S_IFREG), "a regular file"
	flags := unix.O_WRONLY | unix.O_NONBLOCK | unix.O_NOCTTY
	if dir {
		want, kind = unix.S_IFDIR, "a directory"
		flags = unix.O_RDONLY | unix.O_DIRECTORY
	}
	if st.Mode&unix.S_IFMT != want {
		return -1, s.errorf(rel, "is not %s (mode %o)", kind, st.Mode)
	}
	fd, err := unix.Openat(parent, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, s.errorf(rel, "open: %v", err)
	}
	var sx unix.Statx_t
	err = unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_BASIC_STATS|unix.STATX_MNT_ID, &sx)
	if err == nil && sx.Ino != st.Ino {
		err = errors.New("replaced while it was opened")
	}
	if err == nil {
		err = s.reset(fd, rel, &sx, dir, mode)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// reset checks the opened entry fd (statx sx) and gives it back to the
// agent with mode.
func (s *skeleton) reset(fd int, name string, sx *unix.Statx_t, dir bool, mode uint32) error {
	switch {
	case !dir && sx.Nlink != 1:
		return s.errorf(name, "has %d links: a task may have linked it to a file elsewhere", sx.Nlink)
	case sx.Mask&unix.STATX_MNT_ID != 0 && sx.Mnt_id != s.mnt:
		return s.errorf(name, "is on another mount")
	case int(sx.Uid) != s.uid && int(sx.Uid) != s.taskUID:
		return s.errorf(name, "is owned by uid %d, neither the agent's nor the task's", sx.Uid)
	}
	if n, err := unix.Flistxattr(fd, nil); err != nil && !errors.Is(err, unix.ENOTSUP) {
		return s.errorf(name, "list extended attributes: %v", err)
	} else if n > 0 {
		return s.errorf(name, "has extended attributes")
	}
	if err := unix.Fchown(fd, s.uid, s.gid); err != nil {
		return s.errorf(name, "chown: %v", err)
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return s.errorf(name, "chmod: %v", err)
	}
	return nil
}

// keepOnly removes every entry of the directory dir (rel in the
// skeleton) but keep, without following links.
func (s *skeleton) keepOnly(dir int, rel string, keep ...string) error {
	names, err := dirNames(dir)
	if err != nil {
		return s.errorf(rel, "list: %v", err)
	}
next:
	for _, name := range names {
		for _, k := range keep {
			if name == k {
				continue next
			}
		}
		if err := removeAt(dir, name); err != nil {
			return s.errorf(filepath.Join(rel, name), "remove: %v", err)
		}
	}
	return nil
}

// dirNames lists the directory open at fd (from its start).
func dirNames(fd int) ([]string, error) {
	dup, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), ".")
	defer f.Close()
	return f.Readdirnames(-1)
}

// removeAt removes name from the directory open at parent, with all it
// holds if it is a directory; it follows no link.
func removeAt(parent int, name string) error {
	err := unix.Unlinkat(parent, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	fd, oerr := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if oerr != nil {
		return err
	}
	names, err := dirNames(fd)
	for _, n := range names {
		if err == nil {
			err = removeAt(fd, n)
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	return unix.Unlinkat(parent, name, unix.AT_REMOVEDIR)
}
