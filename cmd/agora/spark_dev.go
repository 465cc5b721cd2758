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
	"github.com/agora-cluster/agora/dist"
	"github.com/agora-cluster/agora/spark/dispatcher"
)

// devSpark runs the Spark dispatcher inside `agora dev` when --spark_port
// is given: a goroutine that subscribes with the dev master like any
// framework, its drivers running the installed Spark's spark-submit. It is
// off by default: the drivers need the Spark distribution (and a JVM),
// which `agora dev` does not.
type devSpark struct{ port int }

func (d *devSpark) register(fs *flag.FlagSet) {
	fs.IntVar(&d.port, "spark_port", 0, "port of the Spark dispatcher (spark-submit --master mesos://HOST:PORT --deploy-mode cluster;\nSpark's is 7077); 0 runs none. Its drivers run `agora dist install spark`, installed if missing")
}

// start starts the dispatcher, presenting cred to the master (none unless
// --secure), and returns the banner line that says where it is ("" when
// disabled).
func (d *devSpark) start(ctx context.Context, masterAddr, ip, workDir string, cred auth.Credential, logger *slog.Logger) (string, <-chan struct{}, error) {
	done := make(chan struct{})
	if d.port == 0 {
		close(done)
		return "", done, nil
	}
	spec, _ := dist.Resolve("spark")
	home, err := dist.Installer{Log: logWriter{logger}}.Install(ctx, spec)
	if err != nil {
		return "", nil, fmt.Errorf("spark dispatcher: %v (or --spark_port 0 to run none)", err)
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(d.port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("spark dispatcher: cannot listen on %s: %v (try --spark_port, or 0 to run none)", addr, err)
	}
	cfg := dispatcher.Config{
		Masters: []string{masterAddr}, Listener: ln, SparkHome: home,
		WorkDir:   filepath.Join(workDir, "spark-dispatcher"),
		Logger:    logger.With("framework", "spark-dispatcher"),
		Principal: cred.Principal, Secret: cred.Secret,
	}
	// The executors' scheduler beside it, on the same port.
	ex := startSparkExecutors(ctx, &cfg, addr, logger)
	disp, err := dispatcher.New(cfg)
	if err != nil {
		ln.Close()
		return "", nil, err
	}
	go func() {
		defer close(done)
		if err := disp.Run(ctx); err != nil {
			logger.Error("spark dispatcher stopped", "err", err)
		}
		ex.wait()
	}()
	return fmt.Sprintf("  spark       mesos://%s   (spark-submit --deploy-mode cluster ...; agora spark drivers)", disp.Addr()), done, nil
}

// logWriter turns an installer's progress lines into log records.
type logWriter struct{ l *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Info(string(bytesTrimNewline(p)))
	return len(p), nil
}

func bytesTrimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}
