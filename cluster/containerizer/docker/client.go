package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultSocket is where the Docker Engine listens (Mesos's --docker_socket).
const DefaultSocket = "/var/run/docker.sock"

// maxAPIVersion is the newest Engine API version this client speaks; an
// older engine is spoken to in its own version (down to minAPIVersion).
const (
	maxAPIVersion = "1.41"
	minAPIVersion = "1.30" // wait?condition=not-running
)

// callTimeout bounds the Engine API calls that do not stream.
const callTimeout = 2 * time.Minute

// Client talks to the Docker Engine API over its unix socket, in JSON.
// It covers what the containerizer needs and no more.
type Client struct {
	socket  string
	version string
	hc      *http.Client
}

// APIError is an error answer from the Engine.
type APIError struct {
	Op      string // "create container mesos-…"
	Status  int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("docker: %s: %s (HTTP %d)", e.Op, e.Message, e.Status)
}

// IsNotFound reports whether err is the Engine's 404.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

func isStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

// NewClient connects to the Engine at socket (default DefaultSocket) and
// settles on an API version both sides speak.
func NewClient(ctx context.Context, socket string) (*Client, error) {
	if socket == "" {
		socket = DefaultSocket
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	c := &Client{socket: socket, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", socket)
		},
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}}}
	var v struct {
		Version       string
		APIVersion    string `json:"ApiVersion"`
		MinAPIVersion string `json:"MinAPIVersion"`
	}
	if err := c.call(ctx, http.MethodGet, "/version", nil, nil, &v); err != nil {
		return nil, fmt.Errorf("docker: the Docker Engine at %s does not answer: %w", socket, err)
	}
	switch {
	case v.APIVersion == "":
		return nil, fmt.Errorf("docker: the Engine at %s did not report its API version", socket)
	case versionLess(v.APIVersion, minAPIVersion):
		return nil, fmt.Errorf("docker: the Engine at %s speaks API %s (Docker %s); agora needs %s or newer", socket, v.APIVersion, v.Version, minAPIVersion)
	case versionLess(v.APIVersion, maxAPIVersion):
		c.version = v.APIVersion
	default:
		c.version = maxAPIVersion
	}
	return c, nil
}

// APIVersion is the Engine API version in use.
func (c *Client) APIVersion() string { return c.version }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func versionLess(a, b string) bool {
	pa, pb := strings.SplitN(a, ".", 2), strings.SplitN(b, ".", 2)
	for i := 0; i < 2; i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func (c *Client) url(path string, q url.Values) string {
	u := "http://docker"
	if c.version != "" {
		u += "/v" + c.version
	}
	u += path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// request sends a call and returns the response of a 2xx answer; other
// answers become an *APIError.
func (c *Client) request(ctx context.Context, method, path string, q url.Values, body io.Reader, contentType string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusSwitchingProtocols || resp.StatusCode == http.StatusNotModified {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var m struct{ Message string }
	if json.Unmarshal(b, &m) != nil || m.Message == "" {
		m.Message = strings.TrimSpace(string(b))
	}
	return nil, &APIError{Op: method + " " + path, Status: resp.StatusCode, Message: m.Message}
}

// call sends in as JSON (if not nil) and decodes the answer into out (if
// not nil), within callTimeout.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := c.request(ctx, method, path, q, body, ct, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("docker: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// ImportImage creates image ref ("name:tag") from a root file system tar,
// as `docker import` does; changes are Dockerfile instructions such as
// `CMD ["sh"]`.
func (c *Client) ImportImage(ctx context.Context, ref string, rootfs io.Reader, changes ...string) error {
	repo, tag := ref, "latest"
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		repo, tag = ref[:i], ref[i+1:]
	}
	q := url.Values{"fromSrc": {"-"}, "repo": {repo}, "tag": {tag}}
	for _, ch := range changes {
		q.Add("changes", ch)
	}
	resp, err := c.request(ctx, http.MethodPost, "/images/create", q, rootfs, "application/x-tar", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Progress is a stream of JSON messages; a failure comes as one of them.
	dec := json.NewDecoder(resp.Body)
	for {
		var m struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("docker: import %s: %w", ref, err)
		}
		if m.Error != "" {
			return fmt.Errorf("docker: import %s: %s", ref, m.Error)
		}
	}
}

// RemoveImage removes image ref (forcefully: containers using it must be gone).
func (c *Client) RemoveImage(ctx context.Context, ref string) error {
	return c.call(ctx, http.MethodDelete, "/images/"+ref, url.Values{"force": {"1"}}, nil, nil)
}

// ImageExists reports whether image ref is present locally.
func (c *Client) ImageExists(ctx context.Context, ref string) (bool, error) {
	err := c.call(ctx, http.MethodGet, "/images/"+ref+"/json", nil, nil, nil)
	if IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// ContainerExists reports whether a container with this name or ID exists.
func (c *Client) ContainerExists(ctx context.Context, nameOrID string) (bool, error) {
	_, err := c.inspect(ctx, nameOrID)
	if IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// containerJSON is the part of GET /containers/{id}/json the containerizer reads.
type containerJSON struct {
	ID    string `json:"Id"`
	Name  string
	State struct {
		Status     string // "created" until it is started
		Running    bool
		Pid        int
		ExitCode   int
		OOMKilled  bool
		Error      string
		FinishedAt string
	}
	Config struct {
		Labels map[string]string
	}
	HostConfig struct {
		Memory     int64
		MemorySwap int64
		CPUShares  int64 `json:"CpuShares"`
	}
	NetworkSettings struct {
		IPAddress string
		Networks  map[string]struct {
			IPAddress string
		}
	}
}

// ContainerStatus is what InspectContainer reports.
type ContainerStatus struct {
	ID        string
	Running   bool
	Pid       int
	ExitCode  int
	OOMKilled bool
	Labels    map[string]string
	// Memory (bytes) and CPUShares are the container's limits.
	Memory, CPUShares int64
}

// InspectContainer describes the container with this name or ID; a
// missing container gives an error for which IsNotFound holds.
func (c *Client) InspectContainer(ctx context.Context, nameOrID string) (*ContainerStatus, error) {
	cj, err := c.inspect(ctx, nameOrID)
	if err != nil {
		return nil, err
	}
	return &ContainerStatus{ID: cj.ID, Running: cj.State.Running, Pid: cj.State.Pid, ExitCode: cj.State.ExitCode,
		OOMKilled: cj.State.OOMKilled, Labels: cj.Config.Labels, Memory: cj.HostConfig.Memory, CPUShares: cj.HostConfig.CPUShares}, nil
}

func (c *Client) inspect(ctx context.Context, nameOrID string) (*containerJSON, error) {
	var cj containerJSON
	if err := c.call(ctx, http.MethodGet, "/containers/"+nameOrID+"/json", nil, nil, &cj); err != nil {
		return nil, err
	}
	return &cj, nil
}

// containerSummary is one entry of GET /containers/json.
type containerSummary struct {
	ID     string `json:"Id"`
	Names  []string
	Labels map[string]string
	State  string
}

// list returns all containers (running or not) carrying label "k=v".
func (c *Client) list(ctx context.Context, label string) ([]containerSummary, error) {
	f, _ := json.Marshal(map[string][]string{"label": {label}})
	var out []containerSummary
	err := c.call(ctx, http.MethodGet, "/containers/json", url.Values{"all": {"1"}, "filters": {string(f)}}, nil, &out)
	return out, err
}

// RemoveLabelled force-removes every container carrying label ("k=v")
// and returns how many it removed.
func (c *Client) RemoveLabelled(ctx context.Context, label string) (int, error) {
	list, err := c.list(ctx, label)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, s := range list {
		if err := c.remove(ctx, s.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func (c *Client) remove(ctx context.Context, id string) error {
	err := c.call(ctx, http.MethodDelete, "/containers/"+id, url.Values{"force": {"1"}, "v": {"1"}}, nil, nil)
	var ae *APIError
	switch {
	case IsNotFound(err):
		return nil
	case errors.As(err, &ae) && ae.Status == http.StatusConflict && strings.Contains(ae.Message, "already in progress"):
		return nil // someone else removes it
	}
	return err
}

func (c *Client) kill(ctx context.Context, id string, signal int) error {
	return c.call(ctx, http.MethodPost, "/containers/"+id+"/kill", url.Values{"signal": {strconv.Itoa(signal)}}, nil, nil)
}

// wait blocks until the container is not running and returns its exit code.
func (c *Client) wait(ctx context.Context, id string) (int, error) {
	resp, err := c.request(ctx, http.MethodPost, "/containers/"+id+"/wait", url.Values{"condition": {"not-running"}}, nil, "", nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var w struct {
		StatusCode int
		Error      *struct{ Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
		return 0, fmt.Errorf("docker: wait for %s: %w", id, err)
	}
	if w.Error != nil && w.Error.Message != "" {
		return w.StatusCode, fmt.Errorf("docker: wait for %s: %s", id, w.Error.Message)
	}
	return w.StatusCode, nil
}

// logs streams the container's output (stdout and stderr, multiplexed,
// each line stamped with its time) written after since, following it
// while the container runs.
func (c *Client) logs(ctx context.Context, id string, since time.Time) (io.ReadCloser, error) {
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "follow": {"1"}, "timestamps": {"1"}}
	if !since.IsZero() {
		q.Set("since", fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()))
	}
	resp, err := c.request(ctx, http.MethodGet, "/containers/"+id+"/logs", q, nil, "", nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
