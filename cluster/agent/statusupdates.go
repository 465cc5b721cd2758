package agent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/containerizer"
)

// statusOpts are the optional parts of a status update.
type statusOpts struct {
	fromAgent bool // SOURCE_AGENT; otherwise SOURCE_EXECUTOR
	reason    *mesos.TaskStatus_Reason
	message   string
	container containerizer.Container
	healthy   *bool // health check result (health.go)
}

// update records a new state of t and queues its status update for
// reliable delivery (recordStatus, executor_status.go, which keeps them in
// order).
func (a *Agent) update(t *task, state mesos.TaskState, o statusOpts) {
	source := mesos.SOURCE_EXECUTOR
	if o.fromAgent {
		source = mesos.SOURCE_AGENT
	}
	ts := float64(time.Now().UnixNano()) / 1e9
	status := mesos.TaskStatus{
		TaskID:     mesos.TaskID{Value: t.key.task},
		State:      state.Enum(),
		Source:     source.Enum(),
		Reason:     o.reason,
		ExecutorID: &mesos.ExecutorID{Value: t.executorID()},
		Timestamp:  &ts,
		UUID:       newUUID().bytes(),
	}
	if o.message != "" {
		status.Message = &o.message
	}
	if o.container != nil {
		pid := uint32(o.container.Pid())
		status.ContainerStatus = &mesos.ContainerStatus{
			ContainerID: &mesos.ContainerID{Value: o.container.ID()},
			ExecutorPID: &pid,
		}
	}
	status.Healthy = o.healthy
	if status.Healthy == nil && t.healthKilled.Load() {
		unhealthy := false // killed for failing its health check
		status.Healthy = &unhealthy
	}
	if _, err := a.recordStatus(t, status, false); err != nil {
		// The agent's own update: nobody would send it again, so it is
		// kept (see add).
		what := "status update held in memory until its checkpoint is written; it is sent then"
		if !t.framework.GetCheckpoint() {
			what = "status update sent without its checkpoint (the framework does not checkpoint)"
		}
		a.log.Error(what, "framework_id", t.key.framework, "task_id", t.key.task, "state", state.String(), "err", err)
	}
}

func taskMetric(s mesos.TaskState) string {
	return "slave/tasks_" + strings.ToLower(strings.TrimPrefix(s.String(), "TASK_"))
}

func updatesFile(meta string) string {
	if meta == "" {
		return ""
	}
	return filepath.Join(meta, "task.updates")
}

// sendUpdates posts a batch of status updates to the master in one call.
func (a *Agent) sendUpdates(ctx context.Context, us []*api.StatusUpdate) error {
	return a.call(ctx, &api.AgentCall{Type: api.AgentStatusUpdate, AgentID: a.ID(), Updates: us})
}

// uuid is a random RFC 4122 version-4 UUID; status updates carry its 16 raw
// bytes.
type uuid [16]byte

func newUUID() uuid {
	var u uuid
	_, _ = rand.Read(u[:]) // never fails (crypto/rand)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

func (u uuid) bytes() []byte { return append([]byte(nil), u[:]...) }

func (u uuid) String() string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// updateManager is the agent's status update manager: one ordered queue
// per task, of which only the head is in flight. The head is (re)sent when
// the agent is registered, with backoff from retry up to retryMax, until
// the master relays its acknowledgement; then the next update goes out.
// Queues are checkpointed (append-only files of updates and acks) so a
// restarted agent resends what was not acknowledged.
type updateManager struct {
	retry, retryMax time.Duration
	send            func(context.Context, []*api.StatusUpdate) error
	log             *slog.Logger
	wake            chan struct{}

	mu      sync.Mutex
	online  bool
	streams map[taskKey]*updateStream
}

type updateStream struct {
	file      string // checkpoint; "" keeps the stream in memory only
	durable   bool   // fsync the checkpoint (the framework checkpoints)
	abandoned bool   // nobody will acknowledge: send each update once, then drop it
	pending   []*api.StatusUpdate
	next      time.Time // when the head is due; zero: now
	backoff   time.Duration
	inflight  bool
	// resend is a resendNow that came while the head was in flight: the
	// head is due again as soon as that send ends, not after the backoff.
	resend bool
	// The last unrecorded updates of pending are the agent's own, held in
	// memory until their checkpoint is written (see add); they are not
	// sent. Their checkpoint is retried at recordNext.
	unrecorded    int
	recordNext    time.Time
	recordBackoff time.Duration

	wmu sync.Mutex // orders the stream's checkpoint writes; taken before mu, never under it
}

func newUpdateManager(retry, retryMax time.Duration, send func(context.Context, []*api.StatusUpdate) error, log *slog.Logger) *updateManager {
	return &updateManager{
		retry: retry, retryMax: retryMax, send: send, log: log,
		wake:    make(chan struct{}, 1),
		streams: map[taskKey]*updateStream{},
	}
}

func (m *updateManager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// checkpointRecord is one line of a task.updates file.
type checkpointRecord struct {
	Update *api.StatusUpdate `json:"update,omitempty"`
	Ack    []byte            `json:"ack,omitempty"`
}

// appendRecord appends rec to file. With durable, the file is fsynced (the
// framework asked for checkpointing, so updates must survive a machine
// crash); otherwise the write survives a crash of the agent process, which
// is what the agent's own recovery needs. An append that fails is undone:
// the file is cut back to its last whole record (or removed, if this
// append created it), so the next append does not follow a fragment.
func appendRecord(file string, rec checkpointRecord, durable bool) error {
	if file == "" {
		return nil
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if j := journalFor(file); j != nil {
		return j.append(file, append(line, '\n'), durable) // journal.go
	}
	_, statErr := os.Stat(file)
	created := errors.Is(statErr, os.ErrNotExist)
	if err := mkdirAllSynced(filepath.Dir(file), durable); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	var size int64
	if st, err := f.Stat(); err == nil {
		size = st.Size()
	}
	err = ckptWrite(f, file, append(line, '\n'))
	if err == nil && durable {
		err = ckptSync(f, file)
	}
	if err == nil && durable && created {
		err = fsyncDir(filepath.Dir(file)) // the new file's entry
	}
	if err != nil {
		if uerr := undoAppend(f, file, size, created); uerr != nil {
			err = errors.Join(err, fmt.Errorf("undo the partial record: %w", uerr))
		}
		return err
	}
	return f.Close()
}

// undoAppend cuts file back to size after a failed append, or removes it
// if the append created it, and closes f.
func undoAppend(f *os.File, file string, size int64, created bool) error {
	if created {
		f.Close()
		if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	err := f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// The agent's own updates and the disk.
//
// Mesos promises at-least-once delivery of status updates: an update the
// master has seen is redelivered, across agent restarts, until it is
// acknowledged. What a restarted agent redelivers is what its checkpoint
// holds, so for a checkpointing framework the master must never see an
// update the checkpoint does not: after a crash the agent would not know
// it, and would tell a different story (a task reported FINISHED is
// recovered from an older record as RUNNING, finds its process gone and
// fails). An executor's update that cannot be checkpointed is refused
// (503), and the executor sends it again. The agent's own updates
// (TASK_FAILED when an executor exits, TASK_KILLED, ...) have no sender to
// retry them, and dropping one would lose the task's end. So such an
// update is kept in memory, behind the task's recorded updates, and is not
// sent: the update manager retries its checkpoint (and anything that
// appends to the task's file writes it first, keeping the order) and
// forwards it once it is on disk. Should the agent crash before that, the
// master has seen nothing the checkpoint lacks, and recovery derives the
// task's end again from what is on disk. Frameworks that do not checkpoint
// get no such promise (their tasks die with the agent): their updates are
// sent whether or not the record was written.

// Backoff of the checkpoint retries of updates held in memory.
const (
	recordRetry    = 500 * time.Millisecond
	recordRetryMax = 10 * time.Second
)

// add queues u behind the task's earlier updates, checkpointing it first
// (after any earlier update still waiting for the disk). When the
// checkpoint fails and required is set (an executor's update: its sender
// retries) u is not queued and the error says so. Otherwise (the agent's
// own update, which nobody would send again) u is queued all the same and
// the error is returned for the log: for a checkpointing framework it is
// held until its checkpoint is written (see above), for others it is sent
// without one.
func (m *updateManager) add(key taskKey, file string, durable, required bool, u *api.StatusUpdate) error {
	m.mu.Lock()
	s := m.streams[key]
	if s == nil {
		s = &updateStream{file: file, durable: durable, backoff: m.retry}
		m.streams[key] = s
	}
	m.mu.Unlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	err := m.flush(key, s)
	if err == nil {
		err = appendRecord(file, checkpointRecord{Update: u}, durable)
	}
	if err != nil {
		err = fmt.Errorf("checkpoint the status update of task %s: %w", key.task, err)
		if required {
			return err
		}
	}
	m.mu.Lock()
	s.pending = append(s.pending, u)
	if err != nil && durable && s.file != "" {
		if s.unrecorded == 0 {
			s.recordNext, s.recordBackoff = time.Now().Add(recordRetry), recordRetry
		}
		s.unrecorded++
	}
	m.mu.Unlock()
	m.poke()
	return err
}

// flush checkpoints the updates of s that wait for the disk, oldest
// first; s.wmu is held.
func (m *updateManager) flush(key taskKey, s *updateStream) error {
	for {
		m.mu.Lock()
		if s.unrecorded == 0 || s.file == "" {
			s.unrecorded = 0
			m.mu.Unlock()
			return nil
		}
		u := s.pending[len(s.pending)-s.unrecorded]
		file, durable := s.file, s.durable
		m.mu.Unlock()
		if err := appendRecord(file, checkpointRecord{Update: u}, durable); err != nil {
			m.mu.Lock()
			s.recordNext = time.Now().Add(s.recordBackoff)
			s.recordBackoff = min(2*s.recordBackoff, recordRetryMax)
			m.mu.Unlock()
			return fmt.Errorf("an earlier update of task %s is not checkpointed yet: %w", key.task, err)
		}
		m.mu.Lock()
		s.unrecorded--
		s.recordBackoff = recordRetry
		m.mu.Unlock()
		m.log.Info("checkpointed a status update held in memory; it is sent now", "framework_id", key.framework,
			"task_id", key.task, "state", u.Status.GetState().String())
		m.poke()
	}
}

// recordHeld retries the checkpoint of the updates held in memory whose
// retry is due, and returns when the next one is.
func (m *updateManager) recordHeld(now time.Time) (next time.Time) {
	type held struct {
		key taskKey
		s   *updateStream
	}
	var due []held
	m.mu.Lock()
	for key, s := range m.streams {
		if s.unrecorded == 0 {
			continue
		}
		if s.recordNext.After(now) {
			if next.IsZero() || s.recordNext.Before(next) {
				next = s.recordNext
			}
			continue
		}
		due = append(due, held{key, s})
	}
	m.mu.Unlock()
	for _, h := range due {
		h.s.wmu.Lock()
		if err := m.flush(h.key, h.s); err != nil {
			m.log.Warn("status update still held in memory: its checkpoint fails", "task_id", h.key.task, "err", err)
		}
		h.s.wmu.Unlock()
		m.mu.Lock()
		if h.s.unrecorded > 0 && (next.IsZero() || h.s.recordNext.Before(next)) {
			next = h.s.recordNext
		}
		m.mu.Unlock()
	}
	return next
}

// restore installs a stream recovered from its checkpoint.
func (m *updateManager) restore(key taskKey, file string, pending []*api.StatusUpdate) {
	if len(pending) == 0 {
		return
	}
	m.mu.Lock()
	m.streams[key] = &updateStream{file: file, durable: true, pending: pending, backoff: m.retry}
	m.mu.Unlock()
	m.poke()
}

// ack handles an acknowledgement. It reports whether it matched the head
// update and whether the task's stream is now finished (terminal update
// acknowledged, nothing left). The acknowledgement is checkpointed before
// it takes effect: when that fails nothing changes (the head stays
// pending and is sent again, to be acknowledged again) and the error
// says so.
func (m *updateManager) ack(key taskKey, id []byte) (matched, finished bool, err error) {
	m.mu.Lock()
	s := m.streams[key]
	m.mu.Unlock()
	if s == nil {
		return false, false, nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	m.mu.Lock()
	if m.streams[key] != s || len(s.pending) == s.unrecorded || !bytes.Equal(s.pending[0].Status.UUID, id) {
		m.mu.Unlock()
		return false, false, nil
	}
	head := s.pending[0]
	finished = len(s.pending) == 1 && isTerminal(head.Status.GetState())
	file, durable := s.file, s.durable
	m.mu.Unlock()
	if !finished {
		// A finished stream needs no record: its checkpoint goes with
		// the task (forget).
		if err := appendRecord(file, checkpointRecord{Ack: id}, durable); err != nil {
			return false, false, fmt.Errorf("checkpoint the acknowledgement of task %s: %w", key.task, err)
		}
	}
	m.mu.Lock()
	s.pending = s.pending[1:]
	s.next, s.backoff = time.Time{}, m.retry
	if finished {
		delete(m.streams, key)
	}
	m.mu.Unlock()
	m.poke()
	return true, finished, nil
}

// head is the task's oldest unacknowledged update, if any, and how many
// of the task's newest updates are held in memory, not yet checkpointed
// (which the master must not hear of yet; see add).
func (m *updateManager) head(key taskKey) (head *mesos.TaskStatus, held int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.streams[key]
	if s == nil {
		return nil, 0
	}
	if len(s.pending) > s.unrecorded {
		head = s.pending[0].Status
	}
	return head, s.unrecorded
}

// setOnline starts (true: everything pending is due now, or as soon as
// its send in flight, begun before, ends) or pauses sending.
func (m *updateManager) setOnline(on bool) {
	m.mu.Lock()
	m.online = on
	if on {
		for _, s := range m.streams {
			s.next, s.backoff = time.Time{}, m.retry
			s.resend = s.inflight
		}
	}
	m.mu.Unlock()
	m.poke()
}

// resendNow makes the task's head update due now (or, if it is being
// sent, as soon as that send ends: the master asks when the copy in
// flight may already have gone nowhere); it reports whether the task had
// one.
func (m *updateManager) resendNow(key taskKey) bool {
	m.mu.Lock()
	s := m.streams[key]
	ok := s != nil && len(s.pending) > 0
	if ok {
		s.next = time.Time{}
		s.resend = s.inflight
	}
	m.mu.Unlock()
	m.poke()
	return ok
}

// abandon stops waiting for acknowledgements of a task's updates (its
// framework is gone): what is pending is sent once more, then dropped.
func (m *updateManager) abandon(key taskKey) {
	m.mu.Lock()
	if s := m.streams[key]; s != nil {
		// Nothing is recorded any more, so nothing waits for the disk.
		s.abandoned, s.file, s.unrecorded = true, "", 0
	}
	m.mu.Unlock()
	m.poke()
}

// dropAll forgets every stream (the agent's identity was refused).
func (m *updateManager) dropAll() {
	m.mu.Lock()
	m.streams = map[taskKey]*updateStream{}
	m.mu.Unlock()
}

type outgoing struct {
	key    taskKey
	stream *updateStream // the stream sent from: a task's may be replaced meanwhile
	u      api.StatusUpdate
}

// due collects the heads to send now and the time the next one is due.
func (m *updateManager) due(now time.Time) (out []outgoing, next time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.online {
		return nil, time.Time{}
	}
	for key, s := range m.streams {
		if len(s.pending) == s.unrecorded || s.inflight {
			continue // nothing recorded to send (see add)
		}
		if s.next.After(now) {
			if next.IsZero() || s.next.Before(next) {
				next = s.next
			}
			continue
		}
		u := *s.pending[0]
		latest := s.pending[len(s.pending)-1-s.unrecorded].Status.GetState()
		u.LatestState = &latest
		out = append(out, outgoing{key, s, u})
		s.inflight = true
	}
	return out, next
}

// sent schedules the retry of a head that was just sent.
func (m *updateManager) sent(o outgoing, at time.Time, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.streams[o.key]
	if s == nil || s != o.stream {
		return // the task's stream ended (or a new one began) meanwhile
	}
	s.inflight = false
	resend := s.resend
	s.resend = false
	if len(s.pending) == 0 || !bytes.Equal(s.pending[0].Status.UUID, o.u.Status.UUID) {
		return // acknowledged meanwhile; the new head is due
	}
	if s.abandoned {
		if s.pending = s.pending[1:]; len(s.pending) == 0 {
			delete(m.streams, o.key)
		}
		return
	}
	if resend {
		s.next = time.Time{} // asked for again while it was on its way
		return
	}
	s.next = at.Add(s.backoff)
	s.backoff = min(2*s.backoff, m.retryMax)
}

// run sends due updates until ctx ends. Up to maxSendsInFlight calls
// are in flight at once: heads that fall due while a call is on its way
// (another task's) go in the next without waiting for its answer. A
// task's own updates keep their order: only its head is ever sent, and
// not again while a copy is in flight.
func (m *updateManager) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	slots := make(chan struct{}, maxSendsInFlight)
	var sends sync.WaitGroup
	defer sends.Wait()
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		held := m.recordHeld(time.Now())
		out, next := m.due(time.Now())
		if !held.IsZero() && (next.IsZero() || held.Before(next)) {
			next = held
		}
		if len(out) > 0 {
			sends.Add(1)
			go func() {
				defer func() {
					<-slots
					sends.Done()
					m.poke() // acks may have made more heads due
				}()
				m.sendAll(ctx, out)
			}()
			continue
		}
		<-slots
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		case <-timer.C:
		}
	}
}

// sendAll sends out in calls of at most maxUpdateBatch updates and
// schedules each head's retry.
func (m *updateManager) sendAll(ctx context.Context, out []outgoing) {
	for len(out) > 0 {
		batch := out[:min(len(out), maxUpdateBatch)]
		out = out[len(batch):]
		us := make([]*api.StatusUpdate, len(batch))
		for i := range batch {
			us[i] = &batch[i].u
		}
		at := time.Now()
		err := m.send(ctx, us)
		if err != nil && ctx.Err() == nil {
			m.log.Warn("status updates not delivered; will retry", "updates", len(us), "first_task_id", batch[0].key.task, "err", err)
		}
		for _, o := range batch {
			m.sent(o, at, err)
		}
		m.poke() // a head made due again need not wait for the other batches
	}
}

// maxSendsInFlight bounds the agent's status update calls in flight.
const maxSendsInFlight = 2

// maxUpdateBatch bounds the updates sent in one call.
const maxUpdateBatch = 512

// replayUpdates reads a task.updates checkpoint: every update in order and
// the ones not yet acknowledged. A torn tail — the last record cut short by
// a crash mid-write (no newline yet), or a last line that does not parse —
// is cut off the file (and the cut fsynced), so the next append starts on
// a record boundary instead of being glued to the fragment, which would
// make a second replay lose it and everything after. A bad record with
// good ones after it is not a torn write but damage: that is an error,
// and the file is left as it is.
func replayUpdates(file string) (all, pending []*api.StatusUpdate, err error) {
	if j := journalFor(file); j != nil {
		b, err := j.readFile(file)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
		all, pending, good, err := parseUpdates(bufio.NewReader(bytes.NewReader(b)))
		if err == nil && good != int64(len(b)) {
			// The journal holds whole records only (each checksummed);
			// what was imported from a file had its torn tail cut first.
			err = errors.New("a partial record")
		}
		if err != nil {
			return nil, nil, fmt.Errorf("replay %s: %w", file, err)
		}
		return all, pending, nil
	}
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	all, pending, good, err := parseUpdates(bufio.NewReaderSize(f, 64<<10))
	if err != nil {
		return nil, nil, fmt.Errorf("replay %s: %w", file, err)
	}
	if err := truncateTail(f, good); err != nil {
		return nil, nil, fmt.Errorf("replay %s: cut the torn tail: %w", file, err)
	}
	return all, pending, nil
}

// parseUpdates reads task.updates records: every update in order, the
// ones not yet acknowledged, and the end of the last whole, readable
// record (what follows it is a torn tail).
func parseUpdates(r *bufio.Reader) (all, pending []*api.StatusUpdate, good int64, err error) {
	bad := int64(-1) // offset of an unreadable whole line, if any
	for {
		line, rerr := readLine(r, api.MaxRecordSize)
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return nil, nil, 0, rerr
		}
		if len(line) == 0 {
			break
		}
		if line[len(line)-1] != '\n' {
			break // torn: the last write, cut short
		}
		var rec checkpointRecord
		if json.Unmarshal(line, &rec) != nil {
			if bad < 0 {
				bad = good
			}
			good += int64(len(line))
			continue
		}
		if bad >= 0 {
			return nil, nil, 0, fmt.Errorf("the record at byte %d is unreadable and records follow it: the file is damaged", bad)
		}
		good += int64(len(line))
		switch {
		case rec.Update != nil && rec.Update.Status != nil:
			all = append(all, rec.Update)
			pending = append(pending, rec.Update)
		case rec.Ack != nil:
			if len(pending) > 0 && bytes.Equal(pending[0].Status.UUID, rec.Ack) {
				pending = pending[1:]
			}
		}
	}
	if bad >= 0 {
		good = bad // the unreadable lines were the last: a torn tail too
	}
	return all, pending, good, nil
}

// readLine reads up to and including the next newline, or to the end of
// the input. A line longer than max is an error (no record is that long),
// and is never read whole into memory.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > max {
			return nil, fmt.Errorf("a line longer than %d bytes: not a checkpoint record", max)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return line, err
	}
}

// truncateTail cuts f at size if it is longer, and makes the cut durable.
func truncateTail(f *os.File, size int64) error {
	st, err := f.Stat()
	if err != nil || st.Size() <= size {
		return err
	}
	if err := f.Truncate(size); err != nil {
		return err
	}
	return f.Sync()
}
