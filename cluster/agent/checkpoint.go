package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/containerizer"
)

// Checkpoint layout under WORK_DIR/meta (after Mesos's):
//
//	agent_id                                       the agent's ID
//	slaves/<agent>/frameworks/<fw>/executors/<task>/runs/<container>/
//	    task.json                                  taskRecord
//	    task.updates                               status updates and acks, one JSON per line
//
// Everything below slaves/ is kept as records of the checkpoint journal,
// WORK_DIR/meta/journal (journal.go), under these paths; the functions
// here write the files themselves only for a path no open journal holds.

func (a *Agent) agentIDFile() string { return filepath.Join(a.workDir, "meta", "agent_id") }

func (a *Agent) metaAgentDir(agentID string) string {
	return filepath.Join(a.workDir, "meta", "slaves", agentID)
}

func (a *Agent) metaRunDir(agentID string, k taskKey, containerID string) string {
	return filepath.Join(a.metaAgentDir(agentID), "frameworks", k.framework, "executors", k.task, "runs", containerID)
}

// writeFileAtomic writes data so that a crash leaves either the old or the
// new content: temporary file, rename. With durable it also fsyncs the file
// and the directory, so the content survives a machine crash too. A write
// that fails leaves no temporary file behind, and a file it created is
// removed again: a caller that refuses what the file would have recorded
// leaves the disk as it found it (the old content of a file that existed
// is either still there or replaced whole).
func writeFileAtomic(path string, data []byte, durable bool) error {
	if j := journalFor(path); j != nil {
		return j.put(path, data, durable) // journal.go
	}
	dir := filepath.Dir(path)
	if err := mkdirAllSynced(dir, durable); err != nil {
		return err
	}
	_, statErr := os.Lstat(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = ckptWrite(f, path, data)
	if err == nil && durable {
		err = ckptSync(f, path)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ckptRename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if !durable {
		return nil
	}
	if err := fsyncDir(dir); err != nil {
		if errors.Is(statErr, os.ErrNotExist) {
			os.Remove(path)
		}
		return err
	}
	return nil
}

// mkdirAllSynced makes dir and its missing parents. With durable, each
// directory it made is fsynced into its parent, so that a file checkpointed
// in it is not lost with its directory in a machine crash.
func mkdirAllSynced(dir string, durable bool) error {
	if !durable {
		return ckptMkdirAll(dir)
	}
	var made []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		made = append(made, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := ckptMkdirAll(dir); err != nil {
		return err
	}
	for _, d := range made {
		if err := fsyncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// fsyncDir makes a directory's entries durable.
func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return ckptSync(d, dir)
}

// removeCheckpoint removes the checkpoint directory dir of a launch the
// agent refused, and the directories above it, up to (not including)
// stop, that are left empty: nothing of it remains for a restarted agent
// to recover. The removal is made durable as far as the disk allows; a
// checkpoint that cannot be removed is only ever recovered as a task
// whose process is gone, which fails.
func removeCheckpoint(dir, stop string) error {
	if j := journalFor(dir); j != nil {
		return j.submit(jRemoveAll, dir, nil, true, true) // durable, as below
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	parent := filepath.Dir(dir)
	for d := parent; d != stop && strings.HasPrefix(d, stop+string(filepath.Separator)); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			break // not empty: other runs live here
		}
		parent = filepath.Dir(d)
	}
	if err := fsyncDir(parent); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// openCheckpoint opens the agent's checkpoint journal (journal.go) and
// imports into it a checkpoint in the directory layout of earlier
// versions, so that an agent upgraded in place recovers its tasks.
func (a *Agent) openCheckpoint() error {
	j, err := openJournal(journalPath(a.workDir), journalRoot(a.workDir), a.log)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if err := importLegacy(j, a.log); err != nil {
		j.close()
		return fmt.Errorf("agent: import the checkpoint directory %s into the journal: %w", j.root, err)
	}
	a.journal = j
	return nil
}

// importLegacy moves the checkpoint files below j.root on disk into j:
// each file the journal does not hold with the same content yet (a crash
// may have ended an earlier import after its commit, or in the middle of
// a file) is put, durably; then the directory is renamed aside in one
// step — so a restart never imports a file the journal has since removed
// — and deleted in the background. A torn last line of a task.updates
// file is cut, as its replay would.
//
// A rollback to a version without the journal would not see the tasks
// the journal holds: downgrading needs a drained agent.
func importLegacy(j *journal, log *slog.Logger) error {
	imported := j.root + ".imported"
	_, err := os.Lstat(j.root)
	legacy := !errors.Is(err, os.ErrNotExist)
	if _, err := os.Lstat(imported); err == nil {
		// A finished import's leftovers: removed in the background,
		// unless another import needs the name now.
		if !legacy {
			go os.RemoveAll(imported)
		} else if err := os.RemoveAll(imported); err != nil {
			return err
		}
	}
	if !legacy {
		return nil
	}
	var waits []chan error
	files := 0
	err = filepath.WalkDir(j.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") {
			return nil // directories, and temporary files of unfinished writes
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if d.Name() == "task.updates" {
			// A damaged file is imported as it is: its task's recovery
			// then fails as it did from the file, and the agent goes on.
			if _, _, good, err := parseUpdates(bufio.NewReader(bytes.NewReader(b))); err == nil {
				b = b[:good]
			}
		}
		if have, err := j.readFile(path); err == nil && bytes.Equal(have, b) {
			return nil // imported whole before a crash
		}
		rel, err := j.rel(path)
		if err != nil {
			return err
		}
		// A file larger than one record takes several, in one batch; a
		// crash that tears it leaves the file partly imported, which the
		// next import sees unequal and puts again.
		recs := fileRecords(rel, b)
		for _, r := range recs {
			r.durable = true
		}
		last := recs[len(recs)-1]
		last.done = make(chan error, 1)
		waits = append(waits, last.done)
		files++
		return j.enqueue(recs...)
	})
	for _, w := range waits {
		if werr := <-w; err == nil {
			err = werr
		}
	}
	if err != nil {
		return err
	}
	if err := os.Rename(j.root, imported); err != nil {
		return err
	}
	if err := fsyncDir(filepath.Dir(j.root)); err != nil {
		return err
	}
	go os.RemoveAll(imported)
	log.Info("imported the checkpoint directory into the checkpoint journal", "files", files)
	return nil
}

// readAgentID returns the checkpointed agent ID, or "" if there is none.
func (a *Agent) readAgentID() (string, error) {
	b, err := os.ReadFile(a.agentIDFile())
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("agent: read checkpointed agent ID: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if err := validID("agent ID", id); err != nil {
		return "", fmt.Errorf("agent: checkpointed agent ID in %s: %w (remove the file to register as a new agent)", a.agentIDFile(), err)
	}
	return id, nil
}

func (a *Agent) writeAgentID(id string) error {
	if err := writeFileAtomic(a.agentIDFile(), []byte(id+"\n"), true); err != nil {
		return fmt.Errorf("agent: checkpoint agent ID: %w", err)
	}
	return nil
}

// taskRecord is a task's task.json checkpoint.
type taskRecord struct {
	Framework   *mesos.FrameworkInfo `json:"framework"`
	Task        *mesos.TaskInfo      `json:"task"`
	ContainerID string               `json:"container_id"`
	Sandbox     string               `json:"sandbox,omitempty"`
	Launched    float64              `json:"launched"`
	// Container is the task's container for Recover: its Plan (no pid)
	// from before it starts, its State once it runs.
	Container *containerizer.State `json:"container,omitempty"`
}

func (a *Agent) checkpointTask(t *task, st *containerizer.State) error {
	if t.meta == "" {
		return nil
	}
	b, err := t.ckpt.record(t, st)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(t.meta, "task.json"), b, t.framework.GetCheckpoint())
}

// ckptHead keeps a task's taskRecord without its container, encoded: a
// task is checkpointed before its container starts and again once it
// runs, and the framework and the task are most of the record (and of
// the CPU of encoding it).
type ckptHead struct {
	containerID, sandbox string
	json                 []byte // the record up to its closing brace
}

// record is the JSON of t's taskRecord with container st, as json.Marshal
// writes it.
func (h *ckptHead) record(t *task, st *containerizer.State) ([]byte, error) {
	if h.json == nil || h.containerID != t.containerID || h.sandbox != t.sandbox {
		b, err := json.Marshal(taskRecord{
			Framework: &t.framework, Task: &t.info, ContainerID: t.containerID, Sandbox: t.sandbox,
			Launched: float64(t.launched.UnixNano()) / 1e9,
		})
		if err != nil {
			return nil, err
		}
		*h = ckptHead{containerID: t.containerID, sandbox: t.sandbox, json: b[:len(b)-1]}
	}
	if st == nil {
		return append(h.json[:len(h.json):len(h.json)], '}'), nil
	}
	c, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(h.json)+len(`,"container":}`)+len(c))
	b = append(append(append(append(b, h.json...), `,"container":`...), c...), '}')
	return b, nil
}

// recover restores the agent's ID and tasks from the checkpoint: tasks with
// unacknowledged updates are queued again, running containers are adopted,
// and tasks whose process vanished while the agent was down fail.
func (a *Agent) recover(ctx context.Context) error {
	id, err := a.readAgentID()
	if err != nil || id == "" {
		return err
	}
	a.mu.Lock()
	a.agentID = id
	a.mu.Unlock()
	runs, err := ckptGlob(filepath.Join(a.metaAgentDir(id), "frameworks", "*", "executors", "*", "runs", "*", "task.json"))
	if err != nil {
		return fmt.Errorf("agent: recover: %w", err)
	}
	sort.Strings(runs)
	recovered := 0
	for _, path := range runs {
		if err := a.recoverTask(ctx, filepath.Dir(path)); err != nil {
			a.count("slave/recovery_errors", 1)
			a.log.Error("cannot recover task; its checkpoint is left in place", "checkpoint", path, "err", err)
			continue
		}
		recovered++
	}
	executors := a.recoverExecutors(ctx, id) // executor_recover.go
	a.log.Info("recovered agent state", "agent_id", id, "task_runs", recovered, "executors", executors)
	return nil
}

func (a *Agent) recoverTask(ctx context.Context, meta string) error {
	b, err := ckptReadFile(filepath.Join(meta, "task.json"))
	if err != nil {
		return err
	}
	var rec taskRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return fmt.Errorf("decode task.json: %w", err)
	}
	if rec.Task == nil || rec.Framework == nil || rec.Framework.ID == nil {
		return errors.New("task.json lacks the task or its framework")
	}
	all, pending, err := replayUpdates(updatesFile(meta))
	if err != nil {
		return fmt.Errorf("replay task.updates: %w", err)
	}
	key := taskKey{rec.Framework.ID.Value, rec.Task.TaskID.Value}
	t := &task{
		key: key, info: *rec.Task, framework: *rec.Framework, containerID: rec.ContainerID,
		sandbox: rec.Sandbox, meta: meta, state: mesos.TASK_STAGING,
		launched: time.Unix(0, int64(rec.Launched*1e9)),
		kill:     make(chan time.Duration, 8),
	}
	for _, u := range all {
		t.statuses = append(t.statuses, *u.Status)
		t.state = u.Status.GetState()
	}
	if isTerminal(t.state) && len(pending) == 0 {
		// Acknowledged before the agent stopped; only the checkpoint was left.
		return ckptRemoveAll(meta)
	}
	var c containerizer.Container
	var adoptErr error
	if !isTerminal(t.state) && rec.Container != nil {
		c, adoptErr = a.recoverContainer(ctx, rec.Task, *rec.Container) // docker.go
		if adoptErr != nil && !errors.Is(adoptErr, containerizer.ErrGone) {
			a.log.Warn("cannot adopt task container", "task_id", key.task, "err", adoptErr)
		}
		if !rec.Framework.GetCheckpoint() || a.cfg.Recover == RecoverCleanup {
			// As in Mesos, only checkpointing frameworks' tasks survive an
			// agent restart (and none with --recover=cleanup): the others'
			// containers are destroyed, and the master reports their tasks
			// lost when the agent re-registers.
			if c != nil {
				_ = c.Signal(syscall.SIGKILL)
				<-c.Done()
			}
			a.log.Info("destroyed the container of a task whose framework does not checkpoint", "task_id", key.task)
			return ckptRemoveAll(meta)
		}
		if c != nil {
			t.done, t.pid, t.container = make(chan struct{}), c.Pid(), c
		}
	}
	a.mu.Lock()
	if _, dup := a.tasks[key]; dup {
		a.mu.Unlock()
		return fmt.Errorf("task %s of framework %s is checkpointed twice", key.task, key.framework)
	}
	a.tasks[key] = t
	a.mu.Unlock()
	a.updates.restore(key, updatesFile(meta), pending)
	switch {
	case isTerminal(t.state):
		return nil // waits for acknowledgements only
	case c == nil:
		state, opts := goneState(adoptErr)
		a.update(t, state, opts)
		return nil
	}
	a.log.Info("adopted task container", "framework_id", key.framework, "task_id", key.task, "pid", c.Pid())
	a.neverRecycle(t) // sandboxrecycle.go: this agent did not see it launched
	a.runners.Add(1)
	go func() {
		defer a.runners.Done()
		defer close(t.done)
		a.reportAdoptedRunning(t, c)
		defer a.watchHealth(a.runnerCtx, t, c)() // health.go
		a.supervise(a.runnerCtx, t, c)
	}()
	return nil
}

// goneState is the terminal update of a recovered task whose container
// could not be adopted (err from Recover): dropped (TASK_LOST for
// frameworks that are not partition-aware, which the master translates)
// if it provably never started, as Mesos drops a task launched during an
// agent restart; failed otherwise, its outcome being unknown.
func goneState(err error) (mesos.TaskState, statusOpts) {
	if errors.Is(err, containerizer.ErrNeverStarted) {
		return mesos.TASK_DROPPED, statusOpts{fromAgent: true, reason: mesos.REASON_AGENT_RESTARTED.Enum(),
			message: "Task never started: the agent stopped while launching its container"}
	}
	return mesos.TASK_FAILED, statusOpts{fromAgent: true, reason: mesos.REASON_EXECUTOR_TERMINATED.Enum(),
		message: "Task process is gone: it ended or was never started while the agent was down"}
}

// reportAdoptedRunning sends TASK_RUNNING for an adopted task that runs
// but was not reported running: the agent stopped between the start of
// its container and that update.
func (a *Agent) reportAdoptedRunning(t *task, c containerizer.Container) {
	a.mu.Lock()
	state := t.state
	a.mu.Unlock()
	if state != mesos.TASK_STAGING && state != mesos.TASK_STARTING {
		return
	}
	select {
	case <-c.Done():
		return // it ended: its terminal update follows
	default:
	}
	a.update(t, mesos.TASK_RUNNING, statusOpts{container: c})
}

// resetIdentity handles the master's refusal of the agent's ID: kill every
// task, forget them and the ID, so the agent registers as a new one. The
// sandboxes stay.
func (a *Agent) resetIdentity(ctx context.Context) {
	killed, ok := a.killAndWait(ctx, "", mesos.REASON_EXECUTOR_TERMINATED, "The agent registers anew") // tasks.go
	if !ok {
		return
	}
	a.mu.Lock()
	old := a.agentID
	for _, t := range a.tasks {
		a.retire(t)
	}
	a.agentID = ""
	a.mu.Unlock()
	a.updates.dropAll()
	if err := os.Remove(a.agentIDFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		a.log.Error("remove checkpointed agent ID", "err", err)
	}
	if old != "" {
		if err := ckptRemoveAll(a.metaAgentDir(old)); err != nil {
			a.log.Error("remove checkpoint of the refused agent ID", "err", err)
		}
	}
	a.log.Warn("forgot the agent ID the master refused; registering as a new agent", "old_agent_id", old, "tasks_killed", killed)
}

// forgetCheckpoint ends --recover=cleanup: with every old task and
// executor destroyed, the checkpoint goes, so that the next start
// registers as a new agent (Mesos removes its "latest" link).
func (a *Agent) forgetCheckpoint() error {
	id := a.ID()
	if id != "" {
		if err := ckptRemoveAll(a.metaAgentDir(id)); err != nil {
			return fmt.Errorf("agent: --recover=cleanup: %w", err)
		}
	}
	if err := os.Remove(a.agentIDFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("agent: --recover=cleanup: %w", err)
	}
	a.log.Warn("--recover=cleanup: destroyed the tasks and executors of the previous agent and removed its checkpoint; exiting", "agent_id", id)
	return nil
}
