package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agora-cluster/agora/cluster/zk"
)

// UnreachableError means the master or agent at Addr could not be reached
// at all (as opposed to answering with an error).
type UnreachableError struct {
	Addr string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach %s: %v", e.Addr, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// StatusError is an answer other than 200 (401 when the master asks for
// credentials, for one): the status and the start of its body.
type StatusError struct {
	URL     string
	Code    int
	Status  string
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("GET %s: %s: %s", e.URL, e.Status, e.Message)
}

// Client fetches state documents. The zero value uses a client with a 10s
// timeout. Redirects to the leading master are followed.
type Client struct {
	HTTP *http.Client
	// HTTPS calls addresses given without a scheme ("host:port", and the
	// leader a zk:// URL names) over HTTPS; HTTP's Transport then verifies
	// their certificates.
	HTTPS bool
}

var defaultHTTP = &http.Client{Timeout: 10 * time.Second}

// BaseURL turns "host:port" or "http://host:port[/]" into "http://host:port".
func BaseURL(addr string) (string, error) {
	a := strings.TrimSpace(addr)
	if a == "" {
		return "", errors.New("address is empty")
	}
	if !strings.Contains(a, "://") {
		a = "http://" + a
	}
	u, err := url.Parse(a)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", addr, err)
	}
	if u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("address %q: want host:port or http://host:port", addr)
	}
	return u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/"), nil
}

// Master fetches GET /master/state from the master at addr.
func (c Client) Master(ctx context.Context, addr string) (*Master, error) {
	var m Master
	if err := c.Get(ctx, addr, "/master/state", &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Agent looks an agent up by ID through GET /master/slaves?slave_id=.
func (c Client) Agent(ctx context.Context, master, agentID string) (*Agent, error) {
	var s Slaves
	if err := c.Get(ctx, master, "/master/slaves?slave_id="+url.QueryEscape(agentID), &s); err != nil {
		return nil, err
	}
	for _, a := range s.Slaves {
		if a.ID == agentID {
			return &a, nil
		}
	}
	return nil, fmt.Errorf("agent %s: not registered with master %s", agentID, master)
}

// AgentState fetches an agent's GET /state; endpoint is its host:port.
func (c Client) AgentState(ctx context.Context, endpoint string) (*AgentState, error) {
	var s AgentState
	if err := c.Get(ctx, endpoint, "/state", &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Get fetches addr+path and decodes its JSON body into v; a zk:// addr
// means the master ZooKeeper names as the leader. Connection
// failures are *UnreachableError; non-200 answers name the status.
func (c Client) Get(ctx context.Context, addr, path string, v any) error {
	if zk.IsURL(addr) {
		u, err := zk.ParseURL(addr)
		if err != nil {
			return err
		}
		if addr, err = zk.LeaderAddress(ctx, u, 10*time.Second); err != nil {
			return &UnreachableError{Addr: u.String(), Err: err}
		}
	}
	if c.HTTPS && !strings.Contains(addr, "://") {
		addr = "https://" + strings.TrimSpace(addr)
	}
	base, err := BaseURL(addr)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	req.Header.Set("Accept", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("GET %s%s: %w", base, path, ctx.Err())
		}
		var ne net.Error
		var ue *url.Error
		if errors.As(err, &ne) || errors.As(err, &ue) {
			return &UnreachableError{Addr: addr, Err: unwrapURL(err)}
		}
		return fmt.Errorf("GET %s%s: %w", base, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return &StatusError{URL: base + path, Code: resp.StatusCode, Status: resp.Status, Message: strings.TrimSpace(string(b))}
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s%s: decode: %w", base, path, err)
	}
	return nil
}

// unwrapURL drops the "Get \"url\":" prefix of a *url.Error for messages.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
