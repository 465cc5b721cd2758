package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/tlsconf"
	"github.com/agora-cluster/agora/frameworks/scheduler"
	"github.com/agora-cluster/agora/frameworks/state"
)

// defaultMasterAddr is where client commands look for the master when
// neither --master nor AGORA_MASTER says otherwise.
const defaultMasterAddr = "127.0.0.1:5050"

// masterAddrDefault is the master's address from AGORA_MASTER or the
// default, for a --master flag.
func masterAddrDefault() string {
	if m := os.Getenv("AGORA_MASTER"); m != "" {
		return m
	}
	return defaultMasterAddr
}

// clientOptions are the flags client commands share.
type clientOptions struct {
	master  string
	json    bool
	verbose bool
	// principal and secretFile are the credentials sent to a master that
	// asks for them (--authenticate_*), from flags or the environment.
	principal, secretFile string
	cred                  auth.Credential // resolved by parse
	// caFile is the CA that signed the master's certificate (--ca_file,
	// AGORA_CA_FILE); tls, resolved by parse, verifies the master with it,
	// and with it "host:port" masters are called over HTTPS.
	caFile string
	tls    *tls.Config
}

// newClientFlags makes a flag set for a client command whose --help shows
// usage, what the command does and an example, then the flags. It
// registers --master; withJSON adds --json.
func newClientFlags(name, usage, about, example string, o *clientOptions, withJSON bool) *flag.FlagSet {
	fs := flag.NewFlagSet("agora "+name, flag.ContinueOnError)
	fs.StringVar(&o.master, "master", masterAddrDefault(), "master to talk to: host:port, http://host:port, or zk://host1:2181,host2:2181/path for the leader ZooKeeper names (env AGORA_MASTER)")
	o.registerCredential(fs)
	fs.StringVar(&o.caFile, "ca_file", os.Getenv("AGORA_CA_FILE"), "PEM file of the CA that signed the master's certificate: call it over HTTPS and verify it (env AGORA_CA_FILE);\n"+
		"an https:// --master without it is verified against the system's roots")
	if withJSON {
		fs.BoolVar(&o.json, "json", false, "print JSON instead of a table")
	}
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: agora %s %s\n\n%s\n\nExample:\n  %s\n\nFlags:\n", name, usage, about, example)
		fs.PrintDefaults()
	}
	return fs
}

// registerCredential adds --principal and --secret_file (defaults from
// AGORA_PRINCIPAL and AGORA_SECRET), for the client commands and the
// frameworks' commands alike; credential reads them.
func (o *clientOptions) registerCredential(fs *flag.FlagSet) {
	fs.StringVar(&o.principal, "principal", os.Getenv("AGORA_PRINCIPAL"), "principal to authenticate as, to a master with --authenticate_* on (env AGORA_PRINCIPAL)")
	fs.StringVar(&o.secretFile, "secret_file", "", "file holding the principal's secret (or env AGORA_SECRET, the secret itself)")
}

// credential is the principal and secret to present: --principal with
// --secret_file, or AGORA_PRINCIPAL with AGORA_SECRET; none when no
// principal is given. A principal without a secret (or the reverse) is
// an error saying what is missing.
func (o *clientOptions) credential() (auth.Credential, error) {
	secret := os.Getenv("AGORA_SECRET")
	if o.secretFile != "" {
		b, err := os.ReadFile(o.secretFile)
		if err != nil {
			return auth.Credential{}, fmt.Errorf("--secret_file: %w", err)
		}
		if secret = strings.TrimRight(string(b), "\r\n"); secret == "" {
			return auth.Credential{}, fmt.Errorf("--secret_file %s is empty", o.secretFile)
		}
	}
	switch {
	case o.principal == "" && o.secretFile != "":
		return auth.Credential{}, errors.New("--secret_file needs --principal (or AGORA_PRINCIPAL)")
	case o.principal == "":
		return auth.Credential{}, nil
	case secret == "":
		return auth.Credential{}, fmt.Errorf("--principal=%s needs its secret: --secret_file=FILE or AGORA_SECRET", o.principal)
	}
	return auth.Credential{Principal: o.principal, Secret: secret}, nil
}

// parse parses a client command's args, then its credentials; done is
// true when the command should exit with code (2 for a bad flag or
// unusable credentials).
func (o *clientOptions) parse(fs *flag.FlagSet, args []string) (code int, done bool) {
	if code, done := parseFlags(fs, args); done {
		return code, done
	}
	cred, err := o.credential()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", fs.Name(), err)
		return 2, true
	}
	o.cred = cred
	if o.caFile != "" {
		if o.tls, err = tlsconf.ClientConfig(o.caFile); err != nil {
			fmt.Fprintf(os.Stderr, "%s: --ca_file: %v\n", fs.Name(), err)
			return 2, true
		}
	}
	return 0, false
}

// state is the client for the master's and agents' endpoints.
func (o *clientOptions) state() state.Client { return stateClient(o.cred, o.tls, auth.LeaderRedirect) }

// stateClient reads the master's (and agents') endpoints with cred,
// over HTTPS verified with tlsConfig when it is set. The credentials go
// with every request, and with the redirects redirect allows: for the
// master, auth.LeaderRedirect lets them follow a standby's redirect to
// the leader over HTTPS or on this host, never over plain HTTP to
// another host.
func stateClient(cred auth.Credential, tlsConfig *tls.Config, redirect auth.RedirectPolicy) state.Client {
	if cred.Principal == "" && tlsConfig == nil {
		return state.Client{}
	}
	var rt http.RoundTripper = http.DefaultTransport
	if t, ok := rt.(*http.Transport); ok && tlsConfig != nil {
		t = t.Clone()
		t.TLSClientConfig = tlsConfig.Clone() // its HTTP/2 set-up adds h2 to it
		rt = t
	}
	if cred.Principal != "" {
		rt = &auth.Transport{Base: rt, Credential: cred, Redirect: redirect}
	}
	return state.Client{HTTP: &http.Client{Timeout: 10 * time.Second, Transport: rt}, HTTPS: tlsConfig != nil}
}

// parseFlags parses a command's args; done is true when the command should
// exit with code: 0 after --help, 2 after a bad flag.
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	return 0, false
}

// clientLogger logs a client command's diagnostics to stderr, or nowhere
// unless verbose.
func clientLogger(verbose bool) *slog.Logger {
	if !verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// masterFailure prints why a client command could not talk to the master
// and returns exit code 1. Connection failures read
// "cannot reach master at X: ...".
func masterFailure(cmd, master string, err error) int {
	if verr := tlsconf.VerifyError(master, err); verr != nil {
		fmt.Fprintf(os.Stderr, "agora %s: %v\n\nPass the CA that signed the master's certificate: --ca_file=FILE (or set AGORA_CA_FILE).\n", cmd, verr)
		return 1
	}
	if hint := masterCredentialsHint(master, err); hint != "" {
		fmt.Fprintf(os.Stderr, "agora %s: %v%s\n", cmd, err, hint)
		return 1
	}
	if unreachable(err) {
		fmt.Fprintf(os.Stderr, "agora %s: cannot reach master at %s: %v\n", cmd, master, rootCause(err))
		return 1
	}
	fmt.Fprintf(os.Stderr, "agora %s: %v\n", cmd, err)
	return 1
}

// masterCredentialsHint is what a command adds to its message when the
// master refused err with a 401: the flags that carry credentials, since
// the master's own answer names only its server-side flag. It is "" for
// any other error, so a command may append it to every failure. master
// may be "" where the message already names it.
func masterCredentialsHint(master string, err error) string {
	if !unauthorized(err) {
		return ""
	}
	who := "The master"
	if master != "" {
		who += " at " + master
	}
	return "\n\n" + who + " asks for credentials: pass --principal=NAME --secret_file=FILE\n" +
		"(or set AGORA_PRINCIPAL and AGORA_SECRET) with a principal from its --credentials file."
}

// unreachable reports errors that mean nothing answered at all.
func unreachable(err error) bool {
	var ue *state.UnreachableError
	if errors.As(err, &ue) {
		return true
	}
	var ce *scheduler.ConnectError
	if errors.As(err, &ce) {
		var ne net.Error
		var oe *net.OpError
		var urle *url.Error
		return errors.As(ce.Err, &ne) || errors.As(ce.Err, &oe) || errors.As(ce.Err, &urle)
	}
	return false
}

// unauthorized reports a 401: no credentials, or wrong ones.
func unauthorized(err error) bool {
	var se *state.StatusError
	var ae *scheduler.APIError
	var ce *scheduler.ConnectError
	if errors.As(err, &ce) && ce.Err != nil {
		err = ce.Err
	}
	return (errors.As(err, &se) && se.Code == http.StatusUnauthorized) ||
		(errors.As(err, &ae) && ae.Code == http.StatusUnauthorized)
}

// rootCause strips wrappers that only repeat the address.
func rootCause(err error) error {
	var ue *state.UnreachableError
	if errors.As(err, &ue) {
		return ue.Err
	}
	var urle *url.Error
	if errors.As(err, &urle) {
		return urle.Err
	}
	return err
}

// envFlag collects repeated --env K=V flags.
type envFlag map[string]string

func (e envFlag) String() string {
	var parts []string
	for k, v := range e {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func (e envFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not of the form NAME=VALUE", s)
	}
	e[k] = v
	return nil
}

// libprocess's LIBPROCESS_SSL_CA_FILE makes every client in a Mesos
// process (a framework, an agent) trust that CA; so it does in every
// agora command: the services' --master may then be an https:// master
// signed by it. An unusable file stops the command before it starts.
func init() {
	path := os.Getenv(tlsconf.EnvCAFile)
	if path == "" {
		return
	}
	cfg, err := tlsconf.ClientConfig(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "agora: %s: %v\n", tlsconf.EnvCAFile, err)
		os.Exit(2)
	}
	tlsconf.TrustProcessWide(cfg)
}
