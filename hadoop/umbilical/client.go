package umbilical

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/agora-cluster/agora/hadoop/jobtracker"
)

// ErrAttemptGone is the scheduler saying the attempt no longer runs (it
// was killed, or its job ended): the attempt should stop.
var ErrAttemptGone = errors.New("the scheduler no longer runs this attempt")

// Client is an attempt's side of the umbilical: it asks the scheduler at
// JobTracker (http://host:port) on behalf of the Mesos task Task. It
// implements the asking half of tasktracker.Reporter and
// tasktracker.MapOutputs.
type Client struct {
	JobTracker string
	Task       string
	// Token is the tracker's (TaskToken), sent with every request.
	Token string
	HTTP  *http.Client // nil: a client without an overall timeout
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// retry runs one request until it gets an answer, backing off while the
// scheduler is unreachable (it may be restarting), until ctx ends.
func (c *Client) retry(ctx context.Context, do func(ctx context.Context) error) error {
	wait := 100 * time.Millisecond
	for {
		err := do(ctx)
		if err == nil || errors.Is(err, ErrAttemptGone) || ctx.Err() != nil {
			if ctx.Err() != nil && err != nil {
				return ctx.Err()
			}
			return err
		}
		var perm *statusError
		if errors.As(err, &perm) && perm.code < 500 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return fmt.Sprintf("scheduler answered %d: %s", e.code, e.msg) }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.JobTracker, "/")+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		SetToken(req, c.Token)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusGone {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return ErrAttemptGone
	}
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &statusError{code: resp.StatusCode, msg: strings.TrimSpace(string(b))}
	}
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// CanCommit asks whether the attempt may commit its output.
func (c *Client) CanCommit(ctx context.Context) (bool, error) {
	var r CommitReply
	err := c.retry(ctx, func(ctx context.Context) error {
		return c.do(ctx, http.MethodPost, CommitPath, CommitRequest{Task: c.Task}, &r)
	})
	if errors.Is(err, ErrAttemptGone) {
		return false, nil
	}
	return r.Commit, err
}

// Completions returns map completion events from seq from on, waiting
// until there is at least one.
func (c *Client) Completions(ctx context.Context, from int) ([]jobtracker.MapCompletion, error) {
	q := url.Values{"task": {c.Task}, "from": {strconv.Itoa(from)}}
	for {
		var evs []jobtracker.MapCompletion
		err := c.retry(ctx, func(ctx context.Context) error {
			return c.do(ctx, http.MethodGet, CompletionsPath+"?"+q.Encode(), nil, &evs)
		})
		if err != nil {
			return nil, err
		}
		if len(evs) > 0 {
			return evs, nil
		}
	}
}

// FetchFailed reports that a map's output could not be fetched.
func (c *Client) FetchFailed(ctx context.Context, mapIndex int) error {
	return c.retry(ctx, func(ctx context.Context) error {
		return c.do(ctx, http.MethodPost, FetchFailedPath, FetchFailure{Task: c.Task, Map: mapIndex}, nil)
	})
}
