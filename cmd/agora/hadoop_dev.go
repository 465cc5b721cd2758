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
	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/framework"
)

// devHadoop runs the Hadoop framework inside `agora dev`: a goroutine
// that subscribes with the dev master over HTTP like any framework, its
// TaskTrackers being this binary.
type devHadoop struct{ port int }

func (d *devHadoop) register(fs *flag.FlagSet) {
	fs.IntVar(&d.port, "hadoop_port", client.DefaultPort, "port of the Hadoop framework's API (`agora hadoop ...`); 0 runs no Hadoop framework")
}

// start starts the framework, presenting cred to the master (none unless
// --secure), and returns the banner line that says where it is ("" when
// disabled).
func (d *devHadoop) start(ctx context.Context, masterAddr, ip, workDir string, cred auth.Credential, svc devServiceSecurity, logger *slog.Logger) (string, <-chan struct{}, error) {
	done := make(chan struct{})
	if d.port == 0 {
		close(done)
		return "", done, nil
	}
	sec, err := svc.security("hadoop", hadoopOpenPaths...)
	if err != nil {
		return "", nil, fmt.Errorf("hadoop framework: %w", err)
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(d.port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("hadoop framework: cannot listen on %s: %v (try --hadoop_port, or 0 to run none)", addr, err)
	}
	fw, err := framework.New(framework.Config{
		Masters: []string{masterAddr}, Listener: ln,
		StateDir:  filepath.Join(workDir, "hadoop"),
		Logger:    logger.With("framework", "hadoop"),
		Principal: cred.Principal, Secret: cred.Secret,
		TLS: sec.tls, TLSDowngrade: sec.downgrade, WrapHTTP: sec.handler, ExecutorEnv: hadoopExecutorEnv(sec, svc.caFile),
	})
	if err != nil {
		ln.Close()
		return "", nil, err
	}
	go func() {
		defer close(done)
		if err := fw.Run(ctx); err != nil {
			logger.Error("hadoop framework stopped", "err", err)
		}
	}()
	return fmt.Sprintf("  hadoop      %s   (agora hadoop streaming ...; AGORA_HADOOP=%s)", fw.URL(), fw.URL()), done, nil
}
