// Package docker is agora's Docker containerizer: it runs tasks (and the
// custom executors) whose ContainerInfo is DOCKER through the Docker
// Engine API (spoken directly over the Engine's unix socket, in JSON), the
// way Mesos's Docker containerizer does:
//
//   - the container is named "mesos-<container ID>" and labelled with its
//     container ID, sandbox and owning agent, so a restarted agent finds it;
//   - the sandbox is bind-mounted at /mnt/mesos/sandbox (MESOS_SANDBOX) and
//     the container's stdout and stderr are streamed (`docker logs
//     --follow`, as Mesos's Docker executor does) into the sandbox's
//     stdout and stderr files;
//   - cpus become CPU shares and a CFS quota, mem the memory limit (an
//     executor's container is updated as its tasks come and go); the
//     network is HOST (the default), BRIDGE, NONE or a USER network, with
//     port mappings from the task's ports resources; volumes and a set of
//     `docker run` parameters are supported;
//   - images are never pulled: an image missing on the agent fails the task
//     with a message naming it (no registry is configured);
//   - a container that ends is removed; Signal maps the agent's
//     SIGTERM-then-SIGKILL kill onto `docker kill`, as `docker stop -t
//     grace` does.
package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/cluster/containerizer"
)

// Config configures a Containerizer.
type Config struct {
	// Socket is the Docker Engine's unix socket (default DefaultSocket;
	// Mesos's --docker_socket).
	Socket string
	// DisableCFSQuota leaves out the CFS quota, so cpus only weigh CPU
	// shares (Mesos's --cgroups_enable_cfs=false).
	DisableCFSQuota bool
	// KeepOrphans makes RemoveOrphans a no-op (Mesos's
	// --no-docker_kill_orphans).
	KeepOrphans bool
	// Logger receives the containerizer's logs (default slog.Default()).
	Logger *slog.Logger
}

// Containerizer runs Docker tasks. It is safe for concurrent use, and one
// Containerizer may serve several agents (each with its own Owner).
type Containerizer struct {
	cfg    Config
	client *Client
	log    *slog.Logger

	// ctx bounds the streams that follow containers (output, wait); Close
	// cancels it and waits for the followers.
	ctx       context.Context
	cancel    context.CancelFunc
	followers sync.WaitGroup

	mu   sync.Mutex
	live map[string]*container // by container ID, until they end
}

var errClosed = errors.New("docker: the containerizer is closed")

// ErrImageNotFound is wrapped by Launch's error when the image is not on
// the agent.
var ErrImageNotFound = errors.New("image not found locally")

// New connects to the Docker Engine. It fails when the Engine does not
// answer, so an agent asked to run Docker tasks says so at start.
func New(ctx context.Context, cfg Config) (*Containerizer, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c, err := NewClient(ctx, cfg.Socket)
	if err != nil {
		return nil, err
	}
	d := &Containerizer{cfg: cfg, client: c, log: cfg.Logger.With("component", "docker"), live: map[string]*container{}}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d, nil
}

// Close stops following containers and leaves them as they are (running
// ones keep running, ended ones are not removed), as an agent that stops
// with its tasks kept does; a later Containerizer adopts them with
// Recover. Containers it followed never become Done.
func (d *Containerizer) Close() {
	d.cancel()
	d.mu.Lock() // no follow is between its check and followers.Add
	d.live = map[string]*container{}
	d.mu.Unlock()
	d.followers.Wait()
	d.client.Close()
}

// Client is the containerizer's Engine API client.
func (d *Containerizer) Client() *Client { return d.client }

// Name is the Docker container name of a container ID.
func Name(containerID string) string { return NamePrefix + containerID }

// Validate checks t as Launch would, without touching the Engine.
func (d *Containerizer) Validate(t Task) error {
	_, err := createConfig(t, !d.cfg.DisableCFSQuota)
	return err
}

// Launch creates and starts t's container. An error means no container
// is left behind.
func (d *Containerizer) Launch(ctx context.Context, t Task) (containerizer.Container, error) {
	if d.ctx.Err() != nil {
		return nil, errClosed
	}
	body, err := createConfig(t, !d.cfg.DisableCFSQuota)
	if err != nil {
		return nil, err
	}
	name := Name(t.ContainerID)
	ok, err := d.client.ImageExists(ctx, body.Image)
	if err != nil {
		return nil, fmt.Errorf("look up image %s: %w", body.Image, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: image %s not found locally; build or load it on the agent (no registry is configured)", ErrImageNotFound, body.Image)
	}
	if t.Container.GetDocker().GetForcePullImage() {
		note(t.Sandbox, "agora: force_pull_image is set, but images are never pulled (no registry is configured); using the local image "+body.Image)
	}
	if err := makeBindSources(body.HostConfig.Mounts); err != nil {
		return nil, err
	}
	c := &container{d: d, id: t.ContainerID, name: name, sandbox: t.Sandbox, done: make(chan struct{})}
	var created struct {
		ID string `json:"Id"`
	}
	q := url.Values{"name": {name}}
	err = d.client.call(ctx, "POST", "/containers/create", q, body, &created)
	if isStatus(err, http.StatusConflict) {
		// A container of this name is left from an interrupted launch of
		// this very container ID: it never ran for the agent, replace it.
		d.log.Warn("replacing a leftover container", "name", name)
		if rerr := d.client.remove(ctx, name); rerr == nil {
			err = d.client.call(ctx, "POST", "/containers/create", q, body, &created)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create container %s from image %s: %w", name, body.Image, err)
	}
	c.dockerID = created.ID
	if err := d.client.call(ctx, "POST", "/containers/"+c.dockerID+"/start", nil, nil, nil); err != nil {
		if rerr := d.client.remove(context.WithoutCancel(ctx), c.dockerID); rerr != nil {
			d.log.Error("remove a container that failed to start", "name", name, "err", rerr)
		}
		return nil, fmt.Errorf("start container %s: %w", name, err)
	}
	if cj, err := d.client.inspect(ctx, c.dockerID); err == nil {
		c.pid = cj.State.Pid
	}
	d.follow(c, time.Time{})
	return c, nil
}

// makeBindSources creates the missing host directories of bind mounts, as
// `docker run -v` (and so Mesos's Docker containerizer) does: a bind
// mount of the Engine API refuses a source that does not exist.
func makeBindSources(ms []mount) error {
	for _, m := range ms {
		if m.Type != "bind" {
			continue
		}
		if _, err := os.Stat(m.Source); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(m.Source, 0o755); err != nil {
				return fmt.Errorf("create the host directory of volume %s: %w", m.Target, err)
			}
		}
	}
	return nil
}

// follow starts following c: its output from since on into the sandbox,
// and its end.
func (d *Containerizer) follow(c *container, since time.Time) {
	d.mu.Lock()
	if d.ctx.Err() != nil { // closed meanwhile: leave the container be
		d.mu.Unlock()
		return
	}
	d.live[c.id] = c
	d.followers.Add(2)
	d.mu.Unlock()
	logsDone := make(chan struct{})
	go func() {
		defer d.followers.Done()
		defer close(logsDone)
		c.followLogs(since)
	}()
	go func() {
		defer d.followers.Done()
		c.watch(logsDone)
	}()
}

func (d *Containerizer) untrack(c *container) {
	d.mu.Lock()
	if d.live[c.id] == c {
		delete(d.live, c.id)
	}
	d.mu.Unlock()
}

// Plan is the State of t's container before Launch creates it: its ID,
// by which Recover finds the container's name.
func (d *Containerizer) Plan(t Task) containerizer.State {
	return containerizer.State{ID: t.ContainerID}
}

// Recover adopts the container of st (its State after the launch, or its
// Plan), launched by an earlier agent process (or still followed by this
// containerizer). It returns containerizer.ErrGone if the container no
// longer exists, and containerizer.ErrNeverStarted, removing it, if it was
// created but never started (the agent stopped in between). A container
// that ended while the agent was down is returned already Done, with its
// exit status.
func (d *Containerizer) Recover(ctx context.Context, st containerizer.State) (containerizer.Container, error) {
	if d.ctx.Err() != nil {
		return nil, errClosed
	}
	d.mu.Lock()
	c := d.live[st.ID]
	d.mu.Unlock()
	if c != nil {
		return c, nil
	}
	ref := st.Docker
	if ref == "" {
		ref = Name(st.ID)
	}
	cj, err := d.client.inspect(ctx, ref)
	if IsNotFound(err) {
		return nil, fmt.Errorf("docker container %s: %w", ref, containerizer.ErrGone)
	}
	if err != nil {
		return nil, fmt.Errorf("inspect docker container %s: %w", ref, err)
	}
	if cj.Config.Labels[LabelContainerID] != st.ID {
		return nil, fmt.Errorf("docker container %s is not container %s: %w", ref, st.ID, containerizer.ErrGone)
	}
	if cj.State.Status == "created" {
		// Waiting for it would report a clean exit for a program that never
		// ran.
		if err := d.client.remove(ctx, cj.ID); err != nil {
			return nil, fmt.Errorf("remove docker container %s, created but never started: %w", ref, err)
		}
		return nil, fmt.Errorf("docker container %s: %w: the agent stopped before it started the container", ref, containerizer.ErrNeverStarted)
	}
	c = &container{d: d, id: st.ID, name: Name(st.ID), dockerID: cj.ID, pid: cj.State.Pid,
		sandbox: cj.Config.Labels[LabelSandbox], done: make(chan struct{})}
	d.follow(c, c.readLogPosition())
	return c, nil
}

// RemoveOrphans removes the containers of owner (an agent's work
// directory) that keep does not claim: after a restart, containers the
// agent no longer knows. It returns the names it removed.
func (d *Containerizer) RemoveOrphans(ctx context.Context, owner string, keep func(containerID string) bool) ([]string, error) {
	if owner == "" {
		return nil, errors.New("docker: RemoveOrphans needs the owner")
	}
	if d.cfg.KeepOrphans {
		return nil, nil
	}
	list, err := d.client.list(ctx, LabelOwner+"="+owner)
	if err != nil {
		return nil, fmt.Errorf("list the agent's docker containers: %w", err)
	}
	var removed []string
	var errs []error
	for _, s := range list {
		name := ""
		if len(s.Names) > 0 {
			name = strings.TrimPrefix(s.Names[0], "/")
		}
		id := s.Labels[LabelContainerID]
		if !strings.HasPrefix(name, NamePrefix) || keep(id) {
			continue
		}
		if err := d.client.remove(ctx, s.ID); err != nil {
			errs = append(errs, fmt.Errorf("remove orphaned container %s: %w", name, err))
			continue
		}
		d.log.Info("removed orphaned container", "name", name, "state", s.State)
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}

// note appends a line to the sandbox's stderr, for the task's owner.
func note(sandbox, line string) {
	f, err := os.OpenFile(filepath.Join(sandbox, "stderr"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}

// signalTimeout bounds a kill call to the Engine.
const signalTimeout = 30 * time.Second

// signalNumber is how a signal is named to the Engine.
func signalNumber(s syscall.Signal) int { return int(s) }
