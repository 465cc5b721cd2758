package framework_test

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/tlsconf"
	"github.com/agora-cluster/agora/spark/framework"
	"github.com/agora-cluster/agora/spark/sparktest"
)

// A client-mode spark-submit against a secured scheduler (HTTPS only, an
// operator's Basic credentials, as a secured dispatcher serves it): with
// spark.agora.principal, spark.agora.secret.file and
// spark.agora.ssl.ca_file the real SparkPi registers, gets its executor
// and prints π. Without credentials it fails with the scheduler's 401,
// which says what to pass; a secret file that is not there, or a secret
// in the settings themselves, fails it at start naming the setting (and
// the file); a driver that calls over plain
// HTTP, or does not trust the certificate, is told to give the CA (or
// which CA setting it trusted); AGORA_PRINCIPAL, AGORA_SECRET and
// AGORA_CA_FILE are read as the agora commands read them (here a wrong
// secret: the 401 names the principal). Against an open scheduler
// (plain HTTP) exported credentials fail the driver, which says where
// they came from and to unset them, while AGORA_CA_FILE alone changes
// nothing. The refused drivers register nothing, and no output shows
// the secret or its Basic encoding.
func TestClientModeOnSecuredScheduler(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real Spark; not in -short")
	}
	dir := t.TempDir()
	files, err := tlsconf.GenerateCA(filepath.Join(dir, "tls"), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	flags := tlsconf.Flags{CertFile: files.Cert, KeyFile: files.Key}
	serverTLS, err := flags.Server()
	if err != nil {
		t.Fatal(err)
	}
	creds, err := auth.ParseUserPassword("operator:op-s3cret")
	if err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(dir, "operator.secret")
	if err := os.WriteFile(secretFile, []byte("op-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newSparkEnvWith(t, nil, func(c *framework.Config) {
		c.Listener = tls.NewListener(c.Listener, serverTLS)
		c.Auth = &framework.Auth{Credentials: creds}
	})
	pi := []string{"spark.executor.cores=1", "spark.executor.memory=512m", "spark.cores.max=1"}
	ca := framework.ConfCAFile + "=" + files.CA
	other, err := tlsconf.GenerateCA(filepath.Join(dir, "other"), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	// outs are every spark-submit's output, none of which may show a secret.
	var outs []string
	refused := func(on *sparkEnv, what string, env, conf []string, want ...string) {
		t.Helper()
		out, err := on.submitEnv(env, append(append([]string{}, pi...), conf...), sparktest.PiClass, "2")
		outs = append(outs, out)
		if err == nil {
			t.Errorf("spark-submit %s succeeded; want it to fail:\n%s", what, lastLines(out, 40))
			return
		}
		if i := strings.Index(out, "Exception in thread"); i >= 0 {
			line, _, _ := strings.Cut(out[i:], "\n")
			t.Logf("spark-submit %s: %s", what, line)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("spark-submit %s: the output does not say %q:\n%s", what, w, lastLines(out, 40))
			}
		}
		if strings.Contains(out, "Could not find CoarseGrainedScheduler") {
			t.Errorf("spark-submit %s: the driver stopped its backend twice, burying the reason:\n%s", what, lastLines(out, 40))
		}
		if apps := on.s.Apps(); len(apps) != 0 {
			t.Errorf("spark-submit %s registered %+v; want nothing", what, apps)
		}
	}
	// Go answers plain HTTP on a TLS port with an HTTP/1.0 400, which
	// Java's client reads as a 400 or fails to read: either way the hint.
	refused(e, "over plain HTTP", nil, nil, "HTTPS only: give "+framework.ConfCAFile+"=FILE")
	operator := []string{framework.ConfPrincipal + "=operator", framework.ConfSecretFile + "=" + secretFile}
	refused(e, "with credentials but not the CA", nil, operator,
		"the JVM's trusted roots do not verify the scheduler's certificate: give "+framework.ConfCAFile+"=FILE")
	// As a dispatcher's driver is given it; the hint names where the CA came from.
	refused(e, "with another CA in AGORA_SPARK_CA_FILE", []string{"AGORA_SPARK_CA_FILE=" + other.CA}, operator,
		"is AGORA_SPARK_CA_FILE="+other.CA+" the CA that signed the scheduler's certificate?")
	refused(e, "without credentials", nil, []string{ca},
		"401: authentication required", framework.ConfPrincipal+"=NAME", framework.ConfSecretFile+"=FILE")
	missing := filepath.Join(dir, "no-such.secret")
	refused(e, "with a missing secret file (the principal from AGORA_PRINCIPAL)", []string{"AGORA_PRINCIPAL=operator"},
		[]string{ca, framework.ConfSecretFile + "=" + missing},
		framework.ConfSecretFile+" "+missing+": no such file")
	refused(e, "with the secret in its settings", nil,
		[]string{ca, framework.ConfPrincipal + "=operator", "spark.agora.secret=op-s3cret"},
		"spark.agora.secret: the secret is not taken from Spark's configuration", framework.ConfSecretFile+"=FILE")
	refused(e, "with a wrong secret from the environment",
		[]string{"AGORA_PRINCIPAL=operator", "AGORA_SECRET=wrong", "AGORA_CA_FILE=" + files.CA}, nil,
		"401: invalid credentials for principal", "operator")

	// An open scheduler on the same cluster: credentials exported for a
	// secured one are not sent to it over plain HTTP, and the driver says
	// where they came from.
	// What it reads is recorded: plain HTTP, but for the refused
	// driver's TLS handshake.
	var received recorded
	open := e.withScheduler(func(c *framework.Config) { c.Listener = recordingListener{c.Listener, &received} })
	refused(open, "to an open scheduler with AGORA_PRINCIPAL and AGORA_SECRET",
		[]string{"AGORA_PRINCIPAL=operator", "AGORA_SECRET=op-s3cret", "AGORA_CA_FILE=" + files.CA}, nil,
		"the credentials of AGORA_PRINCIPAL and AGORA_SECRET are sent over HTTPS only: for an open scheduler unset them")
	// AGORA_CA_FILE alone (the master's CA) makes nothing HTTPS. The
	// registration leaves out the settings whose key or value
	// spark.redaction.regex matches.
	redaction := []string{"spark.redaction.regex=(?i)secret|password|token|access[.]?key|hidden",
		"spark.myapp.hidden=1", "spark.myapp.access.key=1", "spark.myapp.opts=-Dmyapp.password=pw-in-a-value",
		"spark.executor.extraJavaOptions=-Dmyapp.token.file=/dev/null"}
	out, err := open.submitEnv([]string{"AGORA_CA_FILE=" + files.CA}, append(append([]string{}, pi...), redaction...), sparktest.PiClass, "2")
	outs = append(outs, out)
	if err != nil || !regexp.MustCompile(`Pi is roughly 3\.1\d*`).MatchString(out) ||
		!strings.Contains(out, "with agora's Spark scheduler at http://") {
		t.Errorf("spark-submit to an open scheduler with AGORA_CA_FILE: %v; want π over plain HTTP:\n%s", err, lastLines(out, 60))
	}
	got := received.String()
	if !strings.Contains(got, `"spark.executor.cores":"1"`) {
		t.Errorf("the open scheduler read no registration with spark.executor.cores:\n%s", got)
	}
	// Executors start with it: kept, though its value matches.
	if !strings.Contains(got, `"spark.executor.extraJavaOptions"`) {
		t.Errorf("the open scheduler was not sent spark.executor.extraJavaOptions, which executors start with:\n%s", got)
	}
	for _, w := range []string{"spark.myapp.hidden", "spark.myapp.access.key", "spark.myapp.opts", "pw-in-a-value", "Authorization"} {
		if strings.Contains(got, w) {
			t.Errorf("the open scheduler was sent %q:\n%s", w, got)
		}
	}

	out, err = e.submit(append(append([]string{}, pi...), ca,
		framework.ConfPrincipal+"=operator", framework.ConfSecretFile+"="+secretFile), sparktest.PiClass, "4")
	outs = append(outs, out)
	if err != nil || !regexp.MustCompile(`Pi is roughly 3\.1\d*`).MatchString(out) {
		t.Fatalf("spark-submit with the operator's credentials: %v; want Pi is roughly 3.1...:\n%s", err, lastLines(out, 60))
	}
	m := appIDRe.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "with agora's Spark scheduler at https://") {
		t.Fatalf("the driver did not register over HTTPS:\n%s", lastLines(out, 60))
	}
	st, ok := e.s.App(m[1])
	if !ok || st.State != framework.AppEnded || len(st.Executors) != 1 || st.Submission != "" {
		t.Fatalf("application %s = %+v; want ENDED with its one executor, registered by the operator", m[1], st)
	}
	if tasks := e.executorTasks(m[1]); len(tasks) != 1 {
		t.Errorf("the master's tasks of %s: %+v; want its one executor", m[1], tasks)
	}
	for _, secret := range []string{"op-s3cret", base64.StdEncoding.EncodeToString([]byte("operator:op-s3cret")),
		base64.StdEncoding.EncodeToString([]byte("operator:wrong"))} {
		for _, out := range outs {
			if strings.Contains(out, secret) {
				t.Errorf("a driver's output shows %q:\n%s", secret, out)
			}
		}
	}
}

// recorded is what a recordingListener's connections read.
type recorded struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorded) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// recordingListener records all its connections read.
type recordingListener struct {
	net.Listener
	r *recorded
}

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return recordingConn{c, l.r}, nil
}

type recordingConn struct {
	net.Conn
	r *recorded
}

func (c recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.r.mu.Lock()
	c.r.buf.Write(p[:n])
	c.r.mu.Unlock()
	return n, err
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
