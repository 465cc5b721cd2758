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
	"github.com/agora-cluster/agora/spark/framework"
)

// devSpark runs the Spark dispatcher inside `agora dev`: a goroutine that
// subscribes with the dev master like any framework, its drivers running
// the installed Spark's spark-submit. By default it runs on Spark's port
// (7077) when a Spark distribution is installed (`agora dist install
// spark`), and not at all otherwise: the drivers need the distribution and
// a JVM, which `agora dev` does not. --spark_port N runs it on N and
// installs the distribution if it is missing; 0 runs none.
type devSpark struct{ port int }

// devSparkAuto is --spark_port's default: 7077 if Spark is installed.
const (
	devSparkAuto = -1
	sparkPort    = 7077
)

func (d *devSpark) register(fs *flag.FlagSet) {
	fs.IntVar(&d.port, "spark_port", devSparkAuto, "port of the Spark dispatcher (spark-submit --master mesos://HOST:PORT --deploy-mode cluster);\n-1: Spark's 7077 when a Spark distribution is installed, else none; 0 runs none;\nanother port installs the distribution (`agora dist install spark`) if missing")
}

// installedSparkHome is the installed Spark distribution's home, or "".
func installedSparkHome() string {
	d, err := dist.Resolve("spark")
	if err != nil {
		return ""
	}
	home := filepath.Join(dist.DefaultDir(), d.Dir())
	// An install writes its manifest last; checking every jar's hash
	// (dist.Verify) would cost each `agora dev` start seconds.
	if _, err := dist.ReadManifest(home); err != nil {
		return ""
	}
	return home
}

// start starts the dispatcher, presenting cred to the master (none unless
// --secure), and returns the banner line that says where it is ("" when
// disabled).
func (d *devSpark) start(ctx context.Context, masterAddr, ip, workDir string, cred auth.Credential, svc devServiceSecurity, logger *slog.Logger) (string, <-chan struct{}, error) {
	done := make(chan struct{})
	port, home := d.port, ""
	if port == devSparkAuto {
		if home = installedSparkHome(); home == "" {
			close(done)
			return "", done, nil
		}
		port = sparkPort
	}
	if port == 0 {
		close(done)
		return "", done, nil
	}
	if home == "" {
		spec, _ := dist.Resolve("spark")
		var err error
		if home, err = (dist.Installer{Log: logWriter{logger}}).Install(ctx, spec); err != nil {
			return "", nil, fmt.Errorf("spark dispatcher: %v (or --spark_port 0 to run none)", err)
		}
	}
	// Secured as the other services are (the master's credentials and
	// certificate under --secure); the drivers call the executors'
	// scheduler with their tokens over TLS, verifying it with the
	// cluster's CA (sparkDriverAuth).
	sec, err := svc.security("spark", sparkOpenPaths...)
	if err != nil {
		return "", nil, fmt.Errorf("spark dispatcher: %w", err)
	}
	// Without the CA's file drivers cannot verify the certificate: they
	// call over plain HTTP, taken on the TLS port.
	sec.downgrade = sec.tls != nil && svc.caFile == ""
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil && d.port == devSparkAuto {
		// Spark's port is taken (by another dispatcher, say): the cluster
		// comes up without one and says so.
		close(done)
		return fmt.Sprintf("  spark       not running: %v (pick a free port with --spark_port)", err), done, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("spark dispatcher: cannot listen on %s: %v (try --spark_port, or 0 to run none)", addr, err)
	}
	cfg := dispatcher.Config{
		Masters: []string{masterAddr}, Listener: sec.listener(ln), SparkHome: home, WrapHTTP: sec.handler,
		WorkDir:   filepath.Join(workDir, "spark-dispatcher"),
		Logger:    logger.With("framework", "spark-dispatcher"),
		Principal: cred.Principal, Secret: cred.Secret,
		WebUI: sec.scheme() + "://" + advertiseAddr(ip, ln),
	}
	// The executors' scheduler beside it, on the same port.
	appAuth, dp, err := sparkDriverAuth(&cfg, sec, svc.caFile, cfg.WorkDir)
	if err != nil {
		ln.Close()
		return "", nil, fmt.Errorf("spark dispatcher: %w", err)
	}
	ex := startSparkExecutors(ctx, &cfg, addr, appAuth, logger)
	disp, err := dispatcher.New(cfg)
	if err != nil {
		ln.Close()
		return "", nil, err
	}
	dp.Store(disp)
	go func() {
		defer close(done)
		if err := disp.Run(ctx); err != nil {
			logger.Error("spark dispatcher stopped", "err", err)
		}
		ex.wait()
	}()
	if sec.guard != nil || sec.tls != nil {
		line := fmt.Sprintf("  spark       %s://%s   (agora spark submit --principal ... ; agora spark drivers)", sec.scheme(), disp.Addr())
		if sec.guard != nil && sec.tls != nil && svc.caFile != "" {
			// A client-mode driver has no token: the cluster manager
			// presents an operator's credentials over TLS (the operator's
			// secret is where devSecure writes it).
			line += fmt.Sprintf("\n              client mode: spark-submit --master mesos://%s --jars \"$(agora spark cluster-manager)\"\n"+
				"                --conf %s=operator --conf %s=%s --conf %s=%s ...",
				disp.Addr(), framework.ConfPrincipal, framework.ConfSecretFile, filepath.Join(workDir, "secure", "operator.secret"),
				framework.ConfCAFile, svc.caFile)
		}
		return line, done, nil
	}
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
