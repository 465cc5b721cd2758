package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/frameworks/marathon"
)

// devMarathon runs the Marathon-compatible services framework inside
// `agora dev`, its REST API on Marathon's port (8080) unless --marathon_port
// says otherwise. It needs nothing installed, so it is on by default; when
// the default port is taken the cluster comes up without it and says so.
type devMarathon struct {
	port     int
	explicit bool // --marathon_port was given: a port in use is an error
}

func (d *devMarathon) register(fs *flag.FlagSet) {
	fs.IntVar(&d.port, "marathon_port", 8080, "port of the Marathon-compatible services API (/v2/apps, /v2/tasks, /v2/queue, /v2/events);\n0 runs none")
}

// start starts the framework and returns the banner line that says where
// its API is ("" when disabled), a warning ("" when none) and a channel
// closed once it has stopped.
func (d *devMarathon) start(ctx context.Context, fs *flag.FlagSet, masterAddr, ip, workDir string, cred auth.Credential, svc devServiceSecurity, logger *slog.Logger) (line, warning string, done <-chan struct{}, err error) {
	fs.Visit(func(f *flag.Flag) { d.explicit = d.explicit || f.Name == "marathon_port" })
	stopped := make(chan struct{})
	if d.port == 0 {
		close(stopped)
		return "", "", stopped, nil
	}
	sec, err := svc.security("marathon")
	if err != nil {
		close(stopped)
		return "", "", nil, fmt.Errorf("marathon: %w", err)
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(d.port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		close(stopped)
		if d.explicit {
			return "", "", nil, fmt.Errorf("marathon: cannot listen on %s: %v (try another --marathon_port, or 0 to run none)", addr, err)
		}
		return "", fmt.Sprintf("the services API (Marathon) is not running: %v; pick a free port with --marathon_port", err), stopped, nil
	}
	cfg := marathon.Config{
		Masters:     []string{masterAddr},
		WorkDir:     filepath.Join(workDir, "marathon"),
		HTTPAddress: ln.Addr().String(),
		Logger:      logger.With("framework", "marathon"),
		Principal:   cred.Principal,
		Secret:      cred.Secret,
		HTTPS:       sec.tls != nil,
	}
	go func() {
		defer close(stopped)
		if err := serveMarathon(ctx, cfg, ln, sec); err != nil && ctx.Err() == nil {
			logger.Error("the services framework (Marathon) stopped", "err", err)
		}
	}()
	return fmt.Sprintf("  marathon    %s://%s/v2/apps   (Marathon's REST API: curl -X POST -d @app.json ...; apps and deployments at /ui/)", sec.scheme(), cfg.HTTPAddress), "", stopped, nil
}
