// Package multilang speaks Storm's multilang protocol with one component
// subprocess: JSON messages, each followed by a line "end", over the
// process's stdin and stdout. The parent sends the setup (conf, context,
// pidDir) and reads the pid; then tuples, task ids and spout commands go
// down, and emit, ack, fail, sync, log, error and metrics come up.
package multilang

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Message is a command from a component.
type Message struct {
	Command string `json:"command"`
	// ID is a spout emit's message ID, or the tuple ID of ack and fail.
	ID      any    `json:"id,omitempty"`
	Stream  string `json:"stream,omitempty"`
	Tuple   []any  `json:"tuple,omitempty"`
	Anchors []any  `json:"anchors,omitempty"`
	// Task is the target of a direct emit.
	Task *int `json:"task,omitempty"`
	// NeedTaskIDs is false when the component does not read the task
	// ids of an emit (absent means true).
	NeedTaskIDs *bool           `json:"need_task_ids,omitempty"`
	Msg         string          `json:"msg,omitempty"`
	Level       int             `json:"level,omitempty"`
	Name        string          `json:"name,omitempty"`
	Params      json.RawMessage `json:"params,omitempty"`
	PID         int             `json:"pid,omitempty"`
}

// WantsTaskIDs says whether an emit is answered with its target tasks:
// a non-direct emit that did not turn need_task_ids off.
func (m *Message) WantsTaskIDs() bool {
	return m.Task == nil && (m.NeedTaskIDs == nil || *m.NeedTaskIDs)
}

// Commands is every command a component may send.
var Commands = []string{"emit", "ack", "fail", "sync", "log", "error", "metrics"}

// The commands a spout is sent, as Storm's ShellSpout sends them: next,
// ack and fail of a message ID, and activate and deactivate when its
// topology's status changes. The spout answers each with sync.
const (
	SpoutNext       = "next"
	SpoutAck        = "ack"
	SpoutFail       = "fail"
	SpoutActivate   = "activate"
	SpoutDeactivate = "deactivate"
)

// Tuple is a tuple as a bolt reads it.
type Tuple struct {
	ID     string `json:"id"`
	Comp   string `json:"comp"`
	Stream string `json:"stream"`
	Task   int    `json:"task"`
	Values []any  `json:"tuple"`
}

// Setup is the handshake's first message.
type Setup struct {
	Conf    map[string]any `json:"conf"`
	Context Context        `json:"context"`
	PIDDir  string         `json:"pidDir"`
}

// Context is the topology context a component sees, as Storm's
// ShellProcess writes it.
type Context struct {
	TaskID          int                 `json:"taskid"`
	ComponentID     string              `json:"componentid"`
	TaskToComponent map[string]string   `json:"task->component"`
	StreamToFields  map[string][]string `json:"stream->outputfields,omitempty"`
}

// Proc is a running component.
type Proc struct {
	// Name says which component and script this is, in errors.
	Name string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	wmu  sync.Mutex
	done chan struct{}
	err  error
}

// Start runs command in dir and does the handshake. stderr gets the
// process's stderr (nil: discarded).
func Start(ctx context.Context, name, dir string, command []string, setup Setup, stderr io.Writer) (*Proc, error) {
	if len(command) == 0 {
		return nil, fmt.Errorf("%s: empty command", name)
	}
	cmd := exec.CommandContext(ctx, command[0], command[1:]...)
	cmd.Dir = dir
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start %q: %w", name, command, err)
	}
	p := &Proc{Name: name, cmd: cmd, in: in, out: bufio.NewReaderSize(out, 64<<10), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := p.Send(setup); err != nil {
		p.Kill()
		return nil, fmt.Errorf("%s: handshake: %w", name, err)
	}
	raw, err := p.readRaw()
	if err != nil {
		p.Kill()
		return nil, fmt.Errorf("%w, before the handshake's pid", err)
	}
	var hello struct{ PID int }
	if err := json.Unmarshal(raw, &hello); err != nil || hello.PID == 0 {
		p.Kill()
		return nil, fmt.Errorf("%s: handshake: want {\"pid\": N}, got %s", name, clip(raw))
	}
	return p, nil
}

// PID is the process's ID.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Send writes one message.
func (p *Proc) Send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if _, err := p.in.Write(append(b, "\nend\n"...)); err != nil {
		if errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrClosed) {
			// Its input is closed: the component ended (killed, say),
			// or is ending and its exit is seen a moment later. That
			// is its end, which the caller handles (a restart), not a
			// failed write — unless it goes on running without input.
			select {
			case <-p.done:
				return fmt.Errorf("%s: write: %w (%v)", p.Name, ErrEnded, p.exitErr(err))
			case <-time.After(endGrace):
			}
		}
		return fmt.Errorf("%s: write: %w", p.Name, p.exitErr(err))
	}
	return nil
}

// endGrace is how long Send waits for a component whose input is closed
// to exit.
const endGrace = 5 * time.Second

// ErrEnded is the error of Read once the component's output ended.
var ErrEnded = errors.New("the component ended")

// Read reads one command. A message that is not JSON, or names no known
// command, is an error naming the component.
func (p *Proc) Read() (Message, error) {
	raw, err := p.readRaw()
	if err != nil {
		return Message{}, err
	}
	var m Message
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("%s: bad multilang message %s: %v", p.Name, clip(raw), err)
	}
	for _, c := range Commands {
		if m.Command == c {
			return m, nil
		}
	}
	return m, fmt.Errorf("%s: unknown multilang command %q in %s (known: %s)", p.Name, m.Command, clip(raw), strings.Join(Commands, ", "))
}

func (p *Proc) readRaw() ([]byte, error) {
	var msg []byte
	for {
		line, err := p.out.ReadBytes('\n')
		if err != nil {
			<-p.done
			return nil, fmt.Errorf("%s: %w (%v)", p.Name, ErrEnded, p.exitErr(err))
		}
		if bytes.Equal(line, []byte("end\n")) {
			return bytes.TrimSpace(msg), nil
		}
		msg = append(msg, line...)
	}
}

func (p *Proc) exitErr(err error) error {
	select {
	case <-p.done:
		if p.err != nil {
			return p.err
		}
		return errors.New("exited")
	default:
		return err
	}
}

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Kill ends the process and waits for it.
func (p *Proc) Kill() {
	p.in.Close()
	p.cmd.Process.Kill()
	<-p.done
}

func clip(b []byte) string {
	if len(b) > 200 {
		return fmt.Sprintf("%q...", b[:200])
	}
	return fmt.Sprintf("%q", b)
}

// TempPIDDir makes a pid directory: storm.py writes a file named by its
// pid there after the handshake.
func TempPIDDir() (string, error) { return os.MkdirTemp("", "agora-multilang-pids-") }
