package streaming

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Config describes one Streaming process.
type Config struct {
	Argv []string // the command, as SplitArgs returns it
	Dir  string   // working directory (where shipped files are)
	Env  []string // complete environment, see Environ

	// Input: each record is written as key InputSep value "\n", or just
	// value "\n" when IgnoreKey is set.
	InputSep  []byte
	IgnoreKey bool

	// Output: each stdout line is split into key and value at the
	// KeyFields-th OutputSep.
	OutputSep []byte
	KeyFields int

	// ReporterPrefix marks stderr lines that report counters and status
	// (stream.stderr.reporter.prefix); "" turns reporting off.
	ReporterPrefix string
	// Stderr receives the other stderr lines (the attempt's stderr log);
	// nil discards them. Either way the last lines are kept for errors.
	Stderr    io.Writer
	OnCounter func(group, name string, n int64)
	OnStatus  func(status string)
	// NonZeroExitFails is stream.non.zero.exit.is.failure.
	NonZeroExitFails bool
}

// Emit receives one output record. The slices are valid only during the
// call. An error stops the process.
type Emit func(key, value []byte) error

// Process is a running Streaming process. Write and Close are called from
// one goroutine; Emit runs on another.
type Process struct {
	cfg    Config
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	in     *bufio.Writer
	wg     sync.WaitGroup
	emit   Emit
	tail   tail
	events atomic.Uint64
	recIn  atomic.Int64
	recOut atomic.Int64

	mu       sync.Mutex
	emitErr  error
	readErr  error
	writeErr error
}

// Error is a failed Streaming process: its exit and the last lines of its
// stderr.
type Error struct {
	Argv   []string
	Reason string // e.g. "subprocess failed with code 1"
	Tail   string // last lines of stderr
}

func (e *Error) Error() string {
	msg := "PipeMapRed.waitOutputThreads(): " + e.Reason + " (" + strings.Join(e.Argv, " ") + ")"
	if e.Tail != "" {
		msg += "\nlast lines of stderr:\n" + e.Tail
	}
	return msg
}

// Start starts the process. It is killed (with its process group) when ctx
// is done.
func Start(ctx context.Context, cfg Config, emit Emit) (*Process, error) {
	if len(cfg.Argv) == 0 {
		return nil, errors.New("streaming: empty command")
	}
	path, err := resolve(cfg.Argv[0], cfg.Dir)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, path, cfg.Argv[1:]...)
	cmd.Args[0] = cfg.Argv[0]
	cmd.Dir = cfg.Dir
	cmd.Env = cfg.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cfg.Argv[0], err)
	}
	p := &Process{cfg: cfg, cmd: cmd, stdin: stdin, in: bufio.NewWriterSize(stdin, 64<<10), emit: emit}
	p.tail.max = 20
	p.wg.Add(2)
	go p.readStdout(stdout)
	go p.readStderr(stderr)
	return p, nil
}

// resolve finds the program: a name without a slash is looked up in the
// task's working directory first (shipped files), then on PATH.
func resolve(prog, dir string) (string, error) {
	if strings.Contains(prog, "/") {
		if !filepath.IsAbs(prog) && dir != "" {
			return filepath.Join(dir, prog), nil
		}
		return prog, nil
	}
	if dir != "" {
		if fi, err := os.Stat(filepath.Join(dir, prog)); err == nil && !fi.IsDir() {
			return filepath.Join(dir, prog), nil
		}
	}
	p, err := exec.LookPath(prog)
	if err != nil {
		return "", fmt.Errorf("streaming: program %q not found in the task directory or on PATH", prog)
	}
	return p, nil
}

// Write sends one record to the process's stdin.
func (p *Process) Write(key, value []byte) error {
	if p.writeErr != nil {
		return p.writeErr
	}
	n := len(value) + 1
	if !p.cfg.IgnoreKey {
		n += len(key) + len(p.cfg.InputSep)
	}
	var err error
	if buf := p.in.AvailableBuffer(); cap(buf) >= n {
		// The whole line at once: one copy, one call.
		if !p.cfg.IgnoreKey {
			buf = append(append(buf, key...), p.cfg.InputSep...)
		}
		buf = append(append(buf, value...), '\n')
		_, err = p.in.Write(buf)
	} else {
		if !p.cfg.IgnoreKey {
			p.in.Write(key)
			p.in.Write(p.cfg.InputSep)
		}
		p.in.Write(value)
		err = p.in.WriteByte('\n')
	}
	if err != nil {
		p.writeErr = err
		return err
	}
	p.recIn.Add(1)
	return nil
}

func (p *Process) readStdout(r io.Reader) {
	defer p.wg.Done()
	br := bufio.NewReaderSize(r, 256<<10)
	var long []byte
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long[:0], line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) > 0 {
			line = bytes.TrimSuffix(line, []byte{'\n'})
			line = bytes.TrimSuffix(line, []byte{'\r'})
			k, v := SplitKeyValue(line, p.cfg.OutputSep, p.cfg.KeyFields)
			p.recOut.Add(1)
			p.events.Add(1)
			if eerr := p.emit(k, v); eerr != nil {
				p.mu.Lock()
				p.emitErr = eerr
				p.mu.Unlock()
				p.kill()
				io.Copy(io.Discard, br)
				return
			}
		}
		if err != nil {
			if err != io.EOF && !errors.Is(err, os.ErrClosed) {
				p.mu.Lock()
				p.readErr = err
				p.mu.Unlock()
			}
			return
		}
	}
}

func (p *Process) readStderr(r io.Reader) {
	defer p.wg.Done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	prefix := p.cfg.ReporterPrefix
	for sc.Scan() {
		line := sc.Text()
		p.events.Add(1)
		if prefix != "" && strings.HasPrefix(line, prefix) {
			if p.report(strings.TrimPrefix(line, prefix)) {
				continue
			}
		}
		p.tail.add(line)
		if p.cfg.Stderr != nil {
			io.WriteString(p.cfg.Stderr, line+"\n")
		}
	}
	io.Copy(io.Discard, r) // a line over 1 MiB: drain the rest
}

// report handles "counter:G,C,N" and "status:MSG"; it returns false for
// lines that are not well-formed reports, which then go to the log as
// Hadoop logs them.
func (p *Process) report(rest string) bool {
	switch {
	case strings.HasPrefix(rest, "counter:"):
		cols := strings.Split(strings.TrimSpace(strings.TrimPrefix(rest, "counter:")), ",")
		if len(cols) != 3 {
			return false
		}
		n, err := strconv.ParseInt(strings.TrimSpace(cols[2]), 10, 64)
		if err != nil {
			return false
		}
		if p.cfg.OnCounter != nil {
			p.cfg.OnCounter(cols[0], cols[1], n)
		}
		return true
	case strings.HasPrefix(rest, "status:"):
		if p.cfg.OnStatus != nil {
			p.cfg.OnStatus(strings.TrimSpace(strings.TrimPrefix(rest, "status:")))
		}
		return true
	}
	return false
}

func (p *Process) kill() {
	if p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// Activity counts the lines the process has written to stdout and stderr;
// it changes while the process makes progress.
func (p *Process) Activity() uint64 { return p.events.Load() }

// Records returns how many records went in and came out so far.
func (p *Process) Records() (in, out int64) { return p.recIn.Load(), p.recOut.Load() }

// StderrTail returns the last lines the process wrote to stderr.
func (p *Process) StderrTail() string { return p.tail.String() }

// Close ends the input, waits for the process to exit and its output to be
// read, and reports how it ended: nil, an *Error for a failed process, or
// the error Emit returned.
func (p *Process) Close() error {
	werr := p.writeErr
	if werr == nil {
		werr = p.in.Flush()
	}
	cerr := p.stdin.Close()
	if werr == nil && cerr != nil && !errors.Is(cerr, os.ErrClosed) {
		werr = cerr
	}
	p.wg.Wait()
	waitErr := p.cmd.Wait()
	p.mu.Lock()
	emitErr, readErr := p.emitErr, p.readErr
	p.mu.Unlock()
	if emitErr != nil {
		return emitErr
	}
	fail := func(reason string) error {
		return &Error{Argv: p.cfg.Argv, Reason: reason, Tail: p.tail.String()}
	}
	var exit *exec.ExitError
	if errors.As(waitErr, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fail(fmt.Sprintf("subprocess killed by signal %d (%v)", ws.Signal(), ws.Signal()))
		}
		if p.cfg.NonZeroExitFails || werr != nil {
			return fail(fmt.Sprintf("subprocess failed with code %d", exit.ExitCode()))
		}
	} else if waitErr != nil {
		return fail(fmt.Sprintf("subprocess failed: %v", waitErr))
	}
	if werr != nil {
		return fail(fmt.Sprintf("Broken pipe: the subprocess exited before reading all its input (%v)", werr))
	}
	if readErr != nil {
		return fail(fmt.Sprintf("reading subprocess output: %v", readErr))
	}
	return nil
}

// tail keeps the last max lines.
type tail struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (t *tail) add(line string) {
	if len(line) > 1024 {
		line = line[:1024] + "..."
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
