package docker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/cluster/containerizer"
)

// container is one Docker container the containerizer follows.
type container struct {
	d        *Containerizer
	id       string // agora's container ID
	name     string // mesos-<id>
	dockerID string
	pid      int
	sandbox  string
	done     chan struct{}

	mu   sync.Mutex
	exit containerizer.Exit
}

var _ containerizer.Container = (*container)(nil)

func (c *container) ID() string            { return c.id }
func (c *container) Pid() int              { return c.pid }
func (c *container) Done() <-chan struct{} { return c.done }

func (c *container) State() containerizer.State {
	return containerizer.State{ID: c.id, Pid: c.pid, Docker: c.dockerID}
}

// Signal sends sig to the container's main process through the Engine
// (`docker kill --signal`). The agent's SIGTERM, then SIGKILL after the
// grace period, is what `docker stop -t grace` does.
func (c *container) Signal(sig syscall.Signal) error {
	select {
	case <-c.done:
		return containerizer.ErrExited
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), signalTimeout)
	defer cancel()
	err := c.d.client.kill(ctx, c.dockerID, signalNumber(sig))
	switch {
	case err == nil:
		return nil
	case IsNotFound(err), isStatus(err, http.StatusConflict): // gone, or not running
		return containerizer.ErrExited
	}
	return fmt.Errorf("container %s: signal %v: %w", c.name, sig, err)
}

func (c *container) Wait(ctx context.Context) (containerizer.Exit, error) {
	select {
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.exit, nil
	case <-ctx.Done():
		return containerizer.Exit{}, ctx.Err()
	}
}

// logDrainTimeout bounds the wait for the output stream to end after the
// container has stopped.
const logDrainTimeout = 10 * time.Second

// watch waits for the container to stop, lets its output drain, records
// how it ended, removes it and closes done.
func (c *container) watch(logsDone <-chan struct{}) {
	exit, ok := c.waitExit()
	if !ok {
		return // the containerizer was closed: leave the container be
	}
	select {
	case <-logsDone:
	case <-time.After(logDrainTimeout):
		c.d.log.Warn("container output did not end after the container stopped", "name", c.name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if cj, err := c.d.client.inspect(ctx, c.dockerID); err == nil && cj.State.OOMKilled {
		exit.Limitation = &containerizer.Limitation{Resource: "mem", Message: "Memory limit exceeded: the container was killed by the OOM killer"}
	}
	if err := c.d.client.remove(ctx, c.dockerID); err != nil {
		c.d.log.Error("remove container", "name", c.name, "err", err)
	}
	if c.sandbox != "" {
		_ = os.Remove(filepath.Join(c.sandbox, logPositionFile))
	}
	c.mu.Lock()
	c.exit = exit
	c.mu.Unlock()
	c.d.untrack(c)
	close(c.done)
}

// waitExit blocks until the container is not running. The wait call is
// retried if the connection to the Engine breaks (say, the Engine
// restarts); a container removed behind the agent's back has an unknown
// exit. It returns false if the containerizer was closed meanwhile.
func (c *container) waitExit() (containerizer.Exit, bool) {
	backoff := 100 * time.Millisecond
	for {
		code, err := c.d.client.wait(c.d.ctx, c.dockerID)
		if c.d.ctx.Err() != nil {
			return containerizer.Exit{}, false
		}
		if err == nil {
			return containerizer.Exit{Code: code}, true
		}
		if IsNotFound(err) {
			return containerizer.Exit{Unknown: true}, true
		}
		ctx, cancel := context.WithTimeout(c.d.ctx, callTimeout)
		cj, ierr := c.d.client.inspect(ctx, c.dockerID)
		cancel()
		switch {
		case IsNotFound(ierr):
			return containerizer.Exit{Unknown: true}, true
		case ierr == nil && !cj.State.Running:
			return containerizer.Exit{Code: cj.State.ExitCode}, true
		}
		c.d.log.Warn("waiting for container failed; retrying", "name", c.name, "err", err)
		select {
		case <-time.After(backoff):
		case <-c.d.ctx.Done():
			return containerizer.Exit{}, false
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// logPositionFile, in the sandbox, holds the Engine's timestamp of the
// last output line copied there, so that an agent that adopts the
// container after a restart continues right after it.
const logPositionFile = ".docker_logs_position"

// positionSaveInterval is how often the position is saved while output
// flows: an agent killed outright may copy up to this much output twice.
const positionSaveInterval = time.Second

// followLogs copies the container's output (`docker logs --follow
// --timestamps`, as Mesos's Docker executor streams it) written after
// since into the sandbox's stdout and stderr, until the container stops
// or the containerizer is closed.
func (c *container) followLogs(since time.Time) {
	if c.sandbox == "" {
		c.d.log.Warn("container has no sandbox label; its output is not copied", "name", c.name)
		return
	}
	stdout, err := os.OpenFile(filepath.Join(c.sandbox, "stdout"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		c.d.log.Warn("open the sandbox's stdout", "name", c.name, "err", err)
		return
	}
	defer stdout.Close()
	stderr, err := os.OpenFile(filepath.Join(c.sandbox, "stderr"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		c.d.log.Warn("open the sandbox's stderr", "name", c.name, "err", err)
		return
	}
	defer stderr.Close()
	rc, err := c.d.client.logs(c.d.ctx, c.dockerID, since)
	if err != nil {
		if c.d.ctx.Err() == nil {
			fmt.Fprintf(stderr, "agora: cannot read the output of container %s: %v (the Docker log driver must support reading, as json-file and local do)\n", c.name, err)
			c.d.log.Warn("follow container output", "name", c.name, "err", err)
		}
		return
	}
	pos := &logPosition{path: filepath.Join(c.sandbox, logPositionFile), last: since}
	err = demuxTimestamped(rc, stdout, stderr, since, pos.advance)
	pos.save()
	if err != nil && c.d.ctx.Err() == nil {
		c.d.log.Warn("container output stream broke", "name", c.name, "err", err)
	}
}

// readLogPosition is where the copy of the output stopped: the saved
// position, or else the time the sandbox's output files last changed.
func (c *container) readLogPosition() time.Time {
	if c.sandbox == "" {
		return time.Time{}
	}
	if b, err := os.ReadFile(filepath.Join(c.sandbox, logPositionFile)); err == nil {
		if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b))); err == nil {
			return t
		}
	}
	var last time.Time
	for _, f := range []string{"stdout", "stderr"} {
		if fi, err := os.Stat(filepath.Join(c.sandbox, f)); err == nil && fi.ModTime().After(last) {
			last = fi.ModTime()
		}
	}
	return last
}

// logPosition tracks and saves the timestamp of the last line copied.
type logPosition struct {
	path  string
	last  time.Time
	saved time.Time // when it was last saved
	dirty bool
}

func (p *logPosition) advance(t time.Time) {
	p.last, p.dirty = t, true
	if time.Since(p.saved) >= positionSaveInterval {
		p.save()
	}
}

func (p *logPosition) save() {
	if !p.dirty {
		return
	}
	tmp := p.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(p.last.Format(time.RFC3339Nano)+"\n"), 0o644); err == nil {
		_ = os.Rename(tmp, p.path)
	}
	p.saved, p.dirty = time.Now(), false
}

// maxFrame bounds an output frame held in memory; the Engine sends one
// line (up to 16 KiB) per frame.
const maxFrame = 1 << 20

// demuxTimestamped copies the Engine's multiplexed output stream into
// stdout and stderr until it ends. Frames are an 8-byte header (stream 1
// stdout, 2 stderr, then a big-endian length) and a line that starts
// with its RFC 3339 timestamp and a space. Lines stamped at or before
// skipUntil are dropped; the rest are written without the stamp and
// their stamps reported to seen.
func demuxTimestamped(r io.ReadCloser, stdout, stderr io.Writer, skipUntil time.Time, seen func(time.Time)) error {
	defer r.Close()
	var hdr [8]byte
	buf := make([]byte, 0, 32<<10)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		n := int64(binary.BigEndian.Uint32(hdr[4:]))
		var w io.Writer
		switch hdr[0] {
		case 1:
			w = stdout
		case 2:
			w = stderr
		default: // stdin echo or unknown: skip
			w = io.Discard
		}
		if n > maxFrame {
			if _, err := io.CopyN(w, r, n); err != nil {
				return err
			}
			continue
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		line := buf
		var ts time.Time
		if sp := bytes.IndexByte(buf, ' '); sp > 0 {
			if t, err := time.Parse(time.RFC3339Nano, string(buf[:sp])); err == nil {
				if !skipUntil.IsZero() && !t.After(skipUntil) {
					continue
				}
				line, ts = buf[sp+1:], t
			}
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
		if !ts.IsZero() {
			seen(ts)
		}
	}
}
