package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/containerizer"
)

// Health checks of TaskInfo.health_check, for the tasks the agent runs
// itself (command-executor tasks and the default executor's tasks), with
// the semantics of Mesos's HealthChecker (src/checks/health_checker.cpp):
//
//   - checking starts delay_seconds after the task runs and repeats every
//     interval_seconds; a check taking longer than timeout_seconds fails;
//   - failures within grace_period_seconds of the launch are ignored until
//     a check has succeeded once;
//   - the first success, and the first success after failures, send a
//     TASK_RUNNING update with healthy=true; every failure that counts sends
//     one with healthy=false (both with REASON_TASK_HEALTH_CHECK_STATUS_UPDATED);
//   - after consecutive_failures failures in a row the task is killed (under
//     its kill policy); its terminal update carries healthy=false.
//
// COMMAND checks run the command (through /bin/sh -c when shell is set) in
// the task's sandbox with the task's environment; HTTP checks GET
// scheme://127.0.0.1:port/path and count 200-399 as healthy (redirects
// followed, certificates not verified, as Mesos's curl -L -k); TCP checks
// connect to 127.0.0.1:port.

// probe runs one check; nil means healthy.
type probe func(ctx context.Context) error

// watchHealth starts checking t's health if its TaskInfo asks for it and
// returns a function that stops the checks (and waits for them).
func (a *Agent) watchHealth(ctx context.Context, t *task, c containerizer.Container) (stop func()) {
	hc := t.info.HealthCheck
	if hc == nil {
		return func() {}
	}
	log := a.log.With("framework_id", t.key.framework, "task_id", t.key.task)
	check, err := a.healthProbe(t, c, hc)
	if err != nil {
		log.Warn("not health checking the task: its health check is invalid", "err", err)
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.checkHealth(ctx, t, c, hc, check)
	}()
	return func() { cancel(); <-done }
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// checkHealth is the check loop of one task.
func (a *Agent) checkHealth(ctx context.Context, t *task, c containerizer.Container, hc *mesos.HealthCheck, check probe) {
	var (
		start        = time.Now()
		delay        = seconds(hc.GetDelaySeconds())
		interval     = seconds(hc.GetIntervalSeconds())
		timeout      = seconds(hc.GetTimeoutSeconds())
		grace        = seconds(hc.GetGracePeriodSeconds())
		maxFailures  = int(hc.GetConsecutiveFailures())
		initializing = true
		failures     = 0
		log          = a.log.With("framework_id", t.key.framework, "task_id", t.key.task)
	)
	sleep := func(d time.Duration) bool {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		}
	}
	report := func(healthy bool) {
		if t.killRequested.Load() {
			return // a kill began while the check ran
		}
		a.update(t, mesos.TASK_RUNNING, statusOpts{container: c, healthy: &healthy,
			reason: mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED.Enum()})
	}
	if !sleep(delay) {
		return
	}
	for {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := check(cctx)
		if err != nil && cctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("timed out after %s", timeout)
		}
		cancel()
		if ctx.Err() != nil || t.killRequested.Load() {
			return // stopped, or the task is being killed: its checks end
		}
		switch {
		case err == nil:
			if initializing || failures > 0 {
				log.Info("task is healthy", "check", hc.GetType().String())
				report(true)
			}
			initializing, failures = false, 0
		case initializing && grace > 0 && time.Since(start) <= grace:
			log.Info("ignoring a failed health check: the task is in its grace period", "err", err)
		default:
			failures++
			log.Warn("health check failed", "check", hc.GetType().String(), "consecutive_failures", failures, "err", err)
			if failures >= maxFailures {
				t.healthKilled.Store(true)
			}
			report(false)
			if failures >= maxFailures {
				log.Warn("killing the task: it failed its health check too often", "consecutive_failures", failures)
				t.requestKill(-1)
				return
			}
		}
		if !sleep(interval) {
			return
		}
	}
}

// healthProbe builds the check a HealthCheck describes.
func (a *Agent) healthProbe(t *task, c containerizer.Container, hc *mesos.HealthCheck) (probe, error) {
	typ := hc.GetType()
	if typ == mesos.HealthCheck_UNKNOWN {
		// Before Mesos 1.2 the type was implied by the field that was set.
		switch {
		case hc.Command != nil:
			typ = mesos.HealthCheck_COMMAND
		case hc.HTTP != nil:
			typ = mesos.HealthCheck_HTTP
		case hc.TCP != nil:
			typ = mesos.HealthCheck_TCP
		}
	}
	switch typ {
	case mesos.HealthCheck_COMMAND:
		if hc.Command == nil {
			return nil, errors.New("COMMAND health check without 'command'")
		}
		return a.commandProbe(t, c, hc.Command)
	case mesos.HealthCheck_HTTP:
		if hc.HTTP == nil || hc.HTTP.Port == 0 || hc.HTTP.Port > 65535 {
			return nil, errors.New("HTTP health check without a valid 'http.port'")
		}
		return httpProbe(hc.HTTP)
	case mesos.HealthCheck_TCP:
		if hc.TCP == nil || hc.TCP.Port == 0 || hc.TCP.Port > 65535 {
			return nil, errors.New("TCP health check without a valid 'tcp.port'")
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(hc.TCP.Port)))
		return func(ctx context.Context) error {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return err
			}
			return conn.Close()
		}, nil
	}
	return nil, fmt.Errorf("health check type %s is not supported", hc.GetType())
}

// commandProbe runs the check command like the task's own command: in its
// sandbox, with its environment plus the check's, and, where the
// containerizer can enter the task's container (native isolation), inside
// it as Mesos does: in its namespaces, seeing its private /tmp, charged to
// its cgroup.
func (a *Agent) commandProbe(t *task, ctr containerizer.Container, cmd *mesos.CommandInfo) (probe, error) {
	path, args, err := commandArgv(cmd, "health check's shell command is empty", "health check's command value is empty") // tasks.go
	if err != nil {
		return nil, err
	}
	spec, err := a.commandSpec(t)
	if err != nil {
		return nil, err
	}
	env := spec.Env
	for _, v := range cmd.GetEnvironment().GetVariables() {
		env = append(env, v.Name+"="+v.GetValue())
	}
	env = dedupEnv(env)
	if !strings.Contains(path, "/") {
		if p, err := exec.LookPath(path); err == nil {
			path = p
		}
	}
	return func(ctx context.Context) error {
		c := exec.CommandContext(ctx, path, args[1:]...)
		c.Args = args
		c.Env = env
		c.Dir = t.sandbox
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
		c.WaitDelay = time.Second
		if e, ok := ctr.(containerizer.Enterer); ok {
			if err := e.Enter(c, t.sandbox); err != nil {
				return fmt.Errorf("command %q: %w", cmd.GetValue(), err)
			}
		}
		if err := c.Run(); err != nil {
			return fmt.Errorf("command %q: %w", cmd.GetValue(), err)
		}
		return nil
	}, nil
}

// httpProbe GETs the check's URL on loopback.
func httpProbe(h *mesos.HealthCheck_HTTPCheckInfo) (probe, error) {
	scheme := h.GetScheme()
	if scheme == "" {
		scheme = "http"
	}
	if scheme != "http" && scheme != "https" {
		return nil, fmt.Errorf("HTTP health check scheme %q is neither http nor https", scheme)
	}
	path := h.GetPath()
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := scheme + "://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(int(h.Port))) + path
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // as curl -k
		DisableKeepAlives: true,
	}}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}, nil
}
