package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/fetcher"
)

// newDefaultFetcher is the fetcher of an agent configured without one:
// Mesos's defaults, with the cache in WORK_DIR/fetcher-cache.
func newDefaultFetcher(workDir string, log *slog.Logger) (*fetcher.Fetcher, error) {
	f, err := fetcher.New(fetcher.Config{
		CacheDir:  filepath.Join(workDir, "fetcher-cache"),
		CacheSize: fetcher.DefaultCacheSize,
		Logger:    log,
	})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return f, nil
}

// fetchURIs fetches the task's CommandInfo.uris into its sandbox before
// it starts. A kill request or the agent's shutdown during the fetch ends
// it early and returns nil: the request is left for the caller's check
// that follows (TASK_KILLED, not a failed fetch).
func (a *Agent) fetchURIs(ctx context.Context, t *task) error {
	uris := t.info.GetCommand().GetURIs()
	if len(uris) == 0 {
		return nil
	}
	user := a.taskUser(t) // tasks.go
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.fetchInto(fctx, t.sandbox, user, uris) }()
	select {
	case err := <-done:
		if err != nil && ctx.Err() != nil {
			return nil
		}
		return err
	case grace := <-t.kill:
		cancel()
		<-done
		t.requestKill(grace)
		return nil
	case <-ctx.Done():
		<-done
		return nil
	}
}

// fetchInto fetches uris into sandbox, writing the fetcher's account of
// each step to the sandbox's stderr (as Mesos's fetcher does). user, if
// set, owns the fetched files. Custom executors' URIs are fetched with it
// too.
func (a *Agent) fetchInto(ctx context.Context, sandbox, user string, uris []mesos.CommandInfo_URI) error {
	logf, err := os.OpenFile(filepath.Join(sandbox, "stderr"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open the sandbox's stderr: %w", err)
	}
	defer logf.Close()
	err = a.cfg.Fetcher.Fetch(ctx, fetcher.Request{Sandbox: sandbox, URIs: uris, User: user, Log: logf})
	if err != nil {
		a.count("containerizer/fetcher/task_fetches_failed", 1)
		return err
	}
	a.count("containerizer/fetcher/task_fetches_succeeded", 1)
	return nil
}
