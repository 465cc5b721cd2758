package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agora-cluster/agora/hadoop/job"
)

// Client talks to the framework's REST API.
type Client struct {
	// Base is http://host:port of the scheduler.
	Base string
	// HTTP sends requests; nil means a client with a 30s timeout.
	HTTP *http.Client
}

// New returns a client for addr, "host:port" or "http://host:port".
func New(addr string) *Client {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return &Client{Base: strings.TrimSuffix(addr, "/")}
}

// APIError is an error answer of the API.
type APIError struct {
	Code  int
	Reply ErrorReply
}

func (e *APIError) Error() string { return e.Reply.Error }

// UnreachableError means nothing answered at the address.
type UnreachableError struct {
	Base string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the Hadoop framework at %s: %v (is `agora dev` or `agora hadoop scheduler` running? set --hadoop or AGORA_HADOOP)", e.Base, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

var defaultHTTP = &http.Client{Timeout: 30 * time.Second}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	h := c.HTTP
	if h == nil {
		h = defaultHTTP
	}
	resp, err := h.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &UnreachableError{Base: c.Base, Err: unwrapURL(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		e := &APIError{Code: resp.StatusCode}
		if json.Unmarshal(b, &e.Reply) != nil || e.Reply.Error == "" {
			e.Reply = ErrorReply{Error: fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b))), Kind: "internal"}
		}
		switch e.Reply.Kind {
		case "refused":
			return &job.RefusedError{Problems: e.Reply.Problems}
		case "usage":
			return fmt.Errorf("%w: %s", job.ErrUsage, strings.TrimPrefix(e.Reply.Error, job.ErrUsage.Error()+": "))
		}
		return e
	}
	if s, ok := out.(*string); ok {
		b, err := io.ReadAll(resp.Body)
		*s = string(b)
		return err
	}
	if out == nil {
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// IsNotFound reports whether err is the API saying there is no such job
// or attempt.
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == http.StatusNotFound
}

// Submit submits a job. A refused submission returns a *job.RefusedError
// (errors.Is(err, job.ErrRefused)); a bad command line an error wrapping
// job.ErrUsage.
func (c *Client) Submit(ctx context.Context, r SubmitRequest) (JobInfo, error) {
	var j JobInfo
	err := c.do(ctx, http.MethodPost, "/api/v1/jobs", r, &j)
	return j, err
}

// Jobs lists the jobs the framework knows, running and finished.
func (c *Client) Jobs(ctx context.Context) ([]JobInfo, error) {
	var js []JobInfo
	err := c.do(ctx, http.MethodGet, "/api/v1/jobs", nil, &js)
	return js, err
}

// Job returns one job, with its tasks if tasks is set.
func (c *Client) Job(ctx context.Context, id string, tasks bool) (JobDetail, error) {
	var j JobDetail
	path := "/api/v1/jobs/" + url.PathEscape(id)
	if tasks {
		path += "?tasks=1"
	}
	err := c.do(ctx, http.MethodGet, path, nil, &j)
	return j, err
}

// Kill kills a job.
func (c *Client) Kill(ctx context.Context, id string) (JobInfo, error) {
	var j JobInfo
	err := c.do(ctx, http.MethodPost, "/api/v1/jobs/"+url.PathEscape(id)+"/kill", nil, &j)
	return j, err
}

// Log returns an attempt's stderr.
func (c *Client) Log(ctx context.Context, attempt string) (string, error) {
	var s string
	err := c.do(ctx, http.MethodGet, "/api/v1/attempts/"+url.PathEscape(attempt)+"/log", nil, &s)
	return s, err
}

// Trackers lists the TaskTracker executors.
func (c *Client) Trackers(ctx context.Context) ([]TrackerInfo, error) {
	var ts []TrackerInfo
	err := c.do(ctx, http.MethodGet, "/api/v1/trackers", nil, &ts)
	return ts, err
}

// Info describes the framework.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var i Info
	err := c.do(ctx, http.MethodGet, "/api/v1/info", nil, &i)
	return i, err
}

// Wait polls a job every interval until it ends or ctx does, calling
// onChange (if set) whenever its state, task counts or progress change.
// Brief losses of the scheduler (a restart) are waited out.
func (c *Client) Wait(ctx context.Context, id string, every time.Duration, onChange func(JobInfo)) (JobInfo, error) {
	var last JobInfo
	first := true
	var unreachableSince time.Time
	for {
		d, err := c.Job(ctx, id, false)
		switch {
		case err == nil:
			unreachableSince = time.Time{}
			j := d.JobInfo
			if onChange != nil && (first || changed(last, j)) {
				onChange(j)
			}
			first, last = false, j
			if j.Done() {
				return j, nil
			}
		case ctx.Err() != nil:
			return last, ctx.Err()
		default:
			var ue *UnreachableError
			if !errors.As(err, &ue) {
				return last, err
			}
			if unreachableSince.IsZero() {
				unreachableSince = time.Now()
			} else if time.Since(unreachableSince) > 2*time.Minute {
				return last, err
			}
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(every):
		}
	}
}

func changed(a, b JobInfo) bool {
	return a.State != b.State || a.Maps != b.Maps || a.Reduces != b.Reduces ||
		int(a.MapProgress*100) != int(b.MapProgress*100) || int(a.ReduceProgress*100) != int(b.ReduceProgress*100)
}
