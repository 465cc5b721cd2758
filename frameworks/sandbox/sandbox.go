// Package sandbox reads files from task sandboxes through an agent's
// /files/read endpoint (the Mesos files API), the way `mesos tail` and the
// web UI do: it finds a task's sandbox directory in the agent's /state and
// copies a file such as stdout to a writer as the file grows.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/agora-cluster/agora/frameworks/state"
)

// ErrNotFound means the agent does not (yet) have the file or sandbox.
var ErrNotFound = errors.New("sandbox: not found")

// Locate returns the sandbox directory of executorID (for a command task,
// its task ID) of frameworkID on the agent at endpoint (host:port),
// waiting up to wait for the agent to report it. It returns ErrNotFound
// (wrapped) if the agent never does.
func Locate(ctx context.Context, c state.Client, endpoint, frameworkID, executorID string, wait time.Duration) (string, error) {
	deadline := time.Now().Add(wait)
	for {
		s, err := c.AgentState(ctx, endpoint)
		if err != nil {
			return "", fmt.Errorf("sandbox of executor %s: %w", executorID, err)
		}
		if dir, ok := s.Sandbox(frameworkID, executorID); ok {
			return dir, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("sandbox of executor %s of framework %s on agent %s: %w", executorID, frameworkID, endpoint, ErrNotFound)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Follower copies one sandbox file to W as it grows, by reading it with
// offsets from the agent's /files/read. It is not safe for concurrent use.
type Follower struct {
	Agent string // host:port of the agent
	Path  string // absolute path on the agent, e.g. sandbox + "/stdout"
	W     io.Writer
	HTTP  *http.Client // nil: a client with a 10s timeout

	offset int64
}

// chunk is how much one /files/read asks for.
const chunk = 64 << 10

// Offset is how many bytes have been copied so far.
func (f *Follower) Offset() int64 { return f.offset }

// Poll copies everything the file holds beyond what was copied before and
// returns how many bytes it copied. A file the agent does not have (yet)
// gives ErrNotFound.
func (f *Follower) Poll(ctx context.Context) (int64, error) {
	var total int64
	for {
		data, err := f.read(ctx)
		if err != nil {
			return total, err
		}
		if len(data) == 0 {
			return total, nil
		}
		if _, err := f.W.Write(data); err != nil {
			return total, fmt.Errorf("copy %s: %w", f.Path, err)
		}
		f.offset += int64(len(data))
		total += int64(len(data))
		if len(data) < chunk {
			return total, nil
		}
	}
}

// Follow polls every interval until ctx ends, then returns ctx's error.
// Missing files are waited for; other errors end Follow.
func (f *Follower) Follow(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := f.Poll(ctx); err != nil && !errors.Is(err, ErrNotFound) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// readAnswer is the body of GET /files/read.
type readAnswer struct {
	Data   string `json:"data"`
	Offset int64  `json:"offset"`
}

func (f *Follower) read(ctx context.Context) ([]byte, error) {
	base, err := state.BaseURL(f.Agent)
	if err != nil {
		return nil, err
	}
	q := url.Values{"path": {f.Path}, "offset": {strconv.FormatInt(f.offset, 10)}, "length": {strconv.Itoa(chunk)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/files/read?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Path, err)
	}
	hc := f.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read %s from agent %s: %w", f.Path, f.Agent, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("read %s from agent %s: %w", f.Path, f.Agent, ErrNotFound)
	default:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("read %s from agent %s: %s: %s", f.Path, f.Agent, resp.Status, b)
	}
	var a readAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return nil, fmt.Errorf("read %s from agent %s: decode: %w", f.Path, f.Agent, err)
	}
	if a.Offset != f.offset {
		return nil, fmt.Errorf("read %s from agent %s: asked for offset %d, got %d", f.Path, f.Agent, f.offset, a.Offset)
	}
	return []byte(a.Data), nil
}
