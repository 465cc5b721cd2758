// Package client is the Go client of agora's Spark dispatcher
// (spark/dispatcher): Spark's REST submission protocol (create, status,
// kill, as spark-submit speaks it) and the dispatcher's own listing of its
// drivers. It holds the protocol's wire types, which the dispatcher
// serves.
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
)

// DefaultPort is the dispatcher's port, as Spark's.
const DefaultPort = 7077

// Client talks to one dispatcher.
type Client struct {
	base string
	http *http.Client
}

// New makes a client of the dispatcher at addr: host:port,
// mesos://host:port (as spark-submit is given it) or http://host:port.
func New(addr string) (*Client, error) {
	a := strings.TrimSpace(addr)
	if a == "" {
		return nil, errors.New("spark dispatcher: no address given")
	}
	a = strings.TrimPrefix(a, "mesos://")
	if !strings.Contains(a, "://") {
		a = "http://" + a
	}
	u, err := url.Parse(a)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("spark dispatcher address %q: not host:port", addr)
	}
	return &Client{base: u.Scheme + "://" + u.Host, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// NewWithHTTP is New with the HTTP client that calls the dispatcher: one
// that presents credentials and verifies its certificate, for a
// dispatcher that asks for them (--credentials) or serves TLS.
func NewWithHTTP(addr string, h *http.Client) (*Client, error) {
	c, err := New(addr)
	if err != nil {
		return nil, err
	}
	if h != nil {
		c.http = h
	}
	return c, nil
}

// ErrUnauthorized is in the error of a request the dispatcher refused
// for want of valid credentials (401).
var ErrUnauthorized = errors.New("the dispatcher asks for credentials")

// ResponseError is a protocol response that did not succeed: an
// ErrorResponse, or a status or kill the dispatcher refused.
type ResponseError struct {
	Code     int // HTTP status
	Response Response
}

func (e *ResponseError) Error() string {
	msg := e.Response.Message
	if msg == "" && e.Response.DriverState != "" {
		msg = "driver state " + e.Response.DriverState
	}
	if msg == "" {
		msg = http.StatusText(e.Code)
	}
	return fmt.Sprintf("spark dispatcher: %s", msg)
}

// Create submits a driver; it returns the submission ID.
func (c *Client) Create(ctx context.Context, req CreateSubmissionRequest) (string, error) {
	req.Action = "CreateSubmissionRequest"
	if req.ClientSparkVersion == "" {
		req.ClientSparkVersion = SparkVersion
	}
	b, _ := json.Marshal(req)
	r, err := c.protocol(ctx, http.MethodPost, "/v1/submissions/create", b)
	if err != nil {
		return "", err
	}
	return r.SubmissionID, nil
}

// Status is a submission's driverState and message (success=false, e.g.
// NOT_FOUND, is a *ResponseError holding the response).
func (c *Client) Status(ctx context.Context, id string) (Response, error) {
	return c.protocol(ctx, http.MethodGet, "/v1/submissions/status/"+url.PathEscape(id), nil)
}

// Kill kills a submission's driver; the response's message says what was
// done.
func (c *Client) Kill(ctx context.Context, id string) (Response, error) {
	return c.protocol(ctx, http.MethodPost, "/v1/submissions/kill/"+url.PathEscape(id), nil)
}

// Drivers lists every submission the dispatcher keeps, oldest first.
func (c *Client) Drivers(ctx context.Context) ([]Driver, error) {
	var out []Driver
	return out, c.getJSON(ctx, "/drivers", &out)
}

// Driver is one submission with everything the dispatcher knows of it.
func (c *Client) Driver(ctx context.Context, id string) (Driver, error) {
	var out Driver
	return out, c.getJSON(ctx, "/drivers/"+url.PathEscape(id), &out)
}

func (c *Client) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("spark dispatcher at %s is not reachable: %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("spark dispatcher at %s: %w", c.base, err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return resp.StatusCode, b, fmt.Errorf("spark dispatcher at %s: %s %s: %w: %s", c.base, method, path, ErrUnauthorized, strings.TrimSpace(string(b)))
	}
	return resp.StatusCode, b, nil
}

func (c *Client) protocol(ctx context.Context, method, path string, body []byte) (Response, error) {
	code, b, err := c.do(ctx, method, path, body)
	if err != nil {
		return Response{}, err
	}
	var r Response
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("spark dispatcher at %s: %s %s answered %d without a protocol message: %.200s", c.base, method, path, code, b)
	}
	if code != http.StatusOK || !r.Success {
		return r, &ResponseError{Code: code, Response: r}
	}
	return r, nil
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	code, b, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		var r Response
		if json.Unmarshal(b, &r) == nil && r.Message != "" {
			return &ResponseError{Code: code, Response: r}
		}
		return fmt.Errorf("spark dispatcher at %s: GET %s: %d %.200s", c.base, path, code, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("spark dispatcher at %s: GET %s: %w", c.base, path, err)
	}
	return nil
}
