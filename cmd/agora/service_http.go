package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/httplimit"
	"github.com/agora-cluster/agora/cluster/tlsconf"
	"github.com/agora-cluster/agora/hadoop/client"
)

// serviceHTTPFlags are the security flags of a built-in service's own API
// (agora marathon, chronos, dns, hadoop scheduler): Marathon's and
// Chronos's --http_credentials user:password, or a Mesos credentials file
// as the master's --credentials, asks every caller for HTTP Basic
// credentials; the master's --ssl_* flags serve the API over TLS.
type serviceHTTPFlags struct {
	credentials  string
	userPassword string
	tls          tlsconf.Flags
}

func (f *serviceHTTPFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.credentials, "credentials", "", "JSON file of the principals and secrets the API accepts (the master's --credentials format);\n"+
		"with it every request but /ping needs HTTP Basic credentials")
	fs.StringVar(&f.userPassword, "http_credentials", "", "user:password the API accepts (Marathon's and Chronos's flag); with it every request but /ping needs them")
	f.tls.Register(fs)
}

// serviceSecurity is how a service's API is served: who may call it
// (nil guard: anyone) and over TLS or not (nil: plain HTTP).
type serviceSecurity struct {
	guard *auth.ServiceGuard
	tls   *tls.Config
	// downgrade also accepts plain HTTP on the TLS port.
	downgrade bool
}

// security checks the flags and makes the service's security: realm
// names its API in the challenge, open are the paths served without
// credentials (/ping is always among them). With --ssl_ca_file the
// process also trusts that CA when it calls the master, as an agent does.
func (f *serviceHTTPFlags) security(realm string, open ...string) (serviceSecurity, error) {
	creds, err := serviceCredentials(f.credentials, f.userPassword)
	if err != nil {
		return serviceSecurity{}, err
	}
	sec, err := newServiceSecurity(creds, realm, open...)
	if err != nil {
		return serviceSecurity{}, err
	}
	if sec.tls, err = f.tls.Server(); err != nil {
		return serviceSecurity{}, err
	}
	sec.downgrade = f.tls.Downgrade
	if f.tls.CAFile != "" {
		cfg, err := f.tls.Client()
		if err != nil {
			return serviceSecurity{}, err
		}
		tlsconf.TrustProcessWide(cfg)
	}
	return sec, nil
}

// serviceCredentials are the credentials of --credentials (a file) or
// --http_credentials (user:password), not both (nil: none).
func serviceCredentials(file, userPassword string) (*auth.Credentials, error) {
	switch {
	case file != "" && userPassword != "":
		return nil, errors.New("give --credentials or --http_credentials, not both")
	case file != "":
		c, err := auth.LoadCredentials(file)
		if err != nil {
			return nil, fmt.Errorf("--credentials: %w", err)
		}
		return c, nil
	case userPassword != "":
		c, err := auth.ParseUserPassword(userPassword)
		if err != nil {
			return nil, fmt.Errorf("--http_credentials: %w", err)
		}
		return c, nil
	}
	return nil, nil
}

// newServiceSecurity guards an API with creds (none: open to anyone).
func newServiceSecurity(creds *auth.Credentials, realm string, open ...string) (serviceSecurity, error) {
	if creds == nil {
		return serviceSecurity{}, nil
	}
	g, err := auth.NewServiceGuard(auth.ServiceOptions{Credentials: creds, Realm: realm, Open: append([]string{"/ping"}, open...)})
	if err != nil {
		return serviceSecurity{}, err
	}
	return serviceSecurity{guard: g}, nil
}

// handler is h behind the guard.
func (s serviceSecurity) handler(h http.Handler) http.Handler { return s.guard.Wrap(h) }

// listener serves TLS on ln when the API speaks it.
func (s serviceSecurity) listener(ln net.Listener) net.Listener {
	return tlsconf.Listener(ln, s.tls, s.downgrade)
}

// scheme is "https" when the API speaks TLS.
func (s serviceSecurity) scheme() string { return tlsconf.Scheme(s.tls) }

// describe is what the start-up line says of the API's security.
func (s serviceSecurity) describe() string {
	var parts []string
	if s.guard != nil {
		parts = append(parts, "asks for credentials")
	}
	if s.tls != nil {
		parts = append(parts, "speaks TLS")
	}
	if parts == nil {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// serviceAPI is a built-in service's API as a client command calls it
// (agora apps, jobs, hadoop ...): its address, and the credentials and CA
// the command presents and trusts. Unlike the master's, the address alone
// decides the scheme: https:// or --ca_file given on the command line;
// AGORA_CA_FILE (the master's CA) only verifies an https:// address, so
// exporting it for a TLS master leaves a plain service reachable.
type serviceAPI struct {
	addr string
	opts clientOptions
	// set are the flags given on the command line (not defaulted from
	// the environment).
	set map[string]bool
	fs  *flag.FlagSet
	// conn is the client, made once for the command and shared by the
	// copies of the value; nil in a serviceAPI made without register.
	conn *serviceConn
}

// serviceConn is a command's one client of a service's API: the same
// transport (its TLS sessions and idle connections) serves every request.
type serviceConn struct {
	once sync.Once
	c    *http.Client
	// hint explains a 401: credentials that were not sent, and why.
	hint string
	err  error
}

// register adds the address flag name and --principal, --secret_file
// and --ca_file to fs.
func (a *serviceAPI) register(fs *flag.FlagSet, name, value, usage string) {
	fs.StringVar(&a.addr, name, value, usage)
	a.opts.registerCredential(fs)
	fs.StringVar(&a.opts.caFile, "ca_file", "", "PEM file of the CA that signed the API's certificate: call a host:port over HTTPS and verify it;\n"+
		"an https:// address without it is verified against AGORA_CA_FILE, else the system's roots")
	a.fs = fs
	a.conn = &serviceConn{}
}

// String is the address, for messages.
func (a serviceAPI) String() string { return a.addr }

// given reports whether flag name was on the command line.
func (a serviceAPI) given(name string) bool {
	if a.set[name] {
		return true
	}
	found := false
	if a.fs != nil {
		a.fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	}
	return found
}

// base is the API's URL: a host:port is called over HTTPS only when
// --ca_file is given.
func (a serviceAPI) base() string {
	b := strings.TrimRight(a.addr, "/")
	if strings.Contains(b, "://") {
		return b
	}
	if a.opts.caFile != "" {
		return "https://" + b
	}
	return "http://" + b
}

// client is the command's HTTP client of the API, made on first use.
func (a serviceAPI) client() (*http.Client, string, error) {
	if a.conn == nil {
		c := &serviceConn{}
		c.c, c.hint, c.err = a.newClient()
		return c.c, c.hint, c.err
	}
	a.conn.once.Do(func() { a.conn.c, a.conn.hint, a.conn.err = a.newClient() })
	return a.conn.c, a.conn.hint, a.conn.err
}

// newClient makes the HTTP client that presents the credentials and
// verifies the API's certificate; bad credential or CA flags are an
// error naming the flag. Credentials from the environment are meant for
// the cluster the user set up: they go only where they cannot be read on
// the way, and one missing half is no error until the API asks (hint
// then says what to pass). Credentials given as flags to a plain http://
// address off this host are refused. The same rule holds for the
// redirects the client follows, and more (auth.SameOrigin): a redirect
// that leaves the address (another host or port, or HTTP for HTTPS) and
// this host's loopback is refused with the reason rather than sent with
// the credentials.
func (a serviceAPI) newClient() (*http.Client, string, error) {
	base := a.base()
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, "", fmt.Errorf("%q is not an address: want host:port or http(s)://host:port", a.addr)
	}
	fromFlags := a.given("principal") || a.given("secret_file")
	cred, err := a.opts.credential()
	hint := ""
	switch {
	case err != nil && fromFlags:
		return nil, "", err
	case err != nil:
		cred, hint = auth.Credential{}, fmt.Sprintf("\n\nAGORA_PRINCIPAL=%s is set without its secret (AGORA_SECRET or --secret_file), so no credentials were sent.", a.opts.principal)
	case cred.Principal != "" && u.Scheme == "http" && !loopbackHost(u.Hostname()):
		if fromFlags {
			return nil, "", fmt.Errorf("refusing to send the credentials of %s over plain HTTP to %s: call it at https://%s (with --ca_file if its certificate is not signed by a known CA)", cred.Principal, base, u.Host)
		}
		cred, hint = auth.Credential{}, fmt.Sprintf("\n\nThe credentials of AGORA_PRINCIPAL=%s were not sent: %s is plain HTTP off this host; call it at https://%s.", cred.Principal, base, u.Host)
	}
	caFile := a.opts.caFile
	if caFile == "" && u.Scheme == "https" {
		caFile = os.Getenv("AGORA_CA_FILE")
	}
	var cfg *tls.Config
	if caFile != "" && u.Scheme == "https" {
		if cfg, err = tlsconf.ClientConfig(caFile); err != nil {
			if a.opts.caFile == "" {
				return nil, "", fmt.Errorf("AGORA_CA_FILE: %w", err)
			}
			return nil, "", fmt.Errorf("--ca_file: %w", err)
		}
	}
	c := stateClient(cred, cfg, auth.SameOrigin).HTTP
	if c == nil {
		c = &http.Client{}
	}
	c.Timeout = 0 // the caller's context bounds each request
	return c, hint, nil
}

// loopbackHost reports whether host names this machine's loopback.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// do sends req (its URL under base) and explains a certificate that does
// not verify.
func (a serviceAPI) do(req *http.Request) (*http.Response, error) {
	c, _, err := a.client()
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if verr := tlsconf.VerifyError(a.base(), err); verr != nil {
		return nil, fmt.Errorf("%w\n\nPass the CA that signed its certificate: --ca_file=FILE (or set AGORA_CA_FILE)", verr)
	}
	return resp, err
}

// unauthorizedHint is added to a 401's message: what to pass, and why
// credentials from the environment were not sent.
func (a serviceAPI) unauthorizedHint() string {
	_, hint, _ := a.client()
	return hint + "\n\nThe API asks for credentials: pass --principal=NAME --secret_file=FILE (or set AGORA_PRINCIPAL and AGORA_SECRET)."
}

// hadoopClient is the Hadoop framework's client for api; each request is
// bounded as the client's default one is.
func hadoopClient(api serviceAPI) (*client.Client, error) {
	h, _, err := api.client()
	if err != nil {
		return nil, err
	}
	bounded := *h
	bounded.Timeout = 30 * time.Second
	return &client.Client{Base: api.base(), HTTP: &bounded}, nil
}

// devServiceSecurity is what `agora dev` secures its built-in services'
// APIs with: the master's credentials when it asks for them on its HTTP
// endpoints (as under --secure), and its certificate when it speaks TLS.
// The zero value secures nothing.
type devServiceSecurity struct {
	creds *auth.Credentials
	tls   *tls.Config
	// caFile is the CA that signed the certificate, for the services'
	// executors that call back (Hadoop's TaskTrackers); certFile and
	// keyFile are the certificate's files, for the banner's hints.
	caFile, certFile, keyFile string
	// credsFile is the file creds came from, for the banner's hints.
	credsFile string
}

// newDevServiceSecurity reads the master's flags, once they are checked.
func newDevServiceSecurity(f *httpFlags) (devServiceSecurity, error) {
	d := devServiceSecurity{tls: f.serverTLS}
	if d.tls != nil {
		d.caFile, d.certFile, d.keyFile = f.tls.CAFile, f.tls.CertFile, f.tls.KeyFile
	}
	if f.credentials != "" && (f.readonly || f.readwrite) {
		creds, err := auth.LoadCredentials(f.credentials)
		if err != nil {
			return devServiceSecurity{}, fmt.Errorf("--credentials: %w", err)
		}
		d.creds, d.credsFile = creds, f.credentials
	}
	return d, nil
}

// security is one service's: realm names its API, open are the paths
// served without credentials besides /ping.
func (d devServiceSecurity) security(realm string, open ...string) (serviceSecurity, error) {
	sec, err := newServiceSecurity(d.creds, realm, open...)
	if err != nil {
		return serviceSecurity{}, err
	}
	sec.tls = d.tls
	return sec, nil
}

// serveService serves a service framework's API (handler) on ln, secured
// by sec, while run runs the framework until ctx ends; then it shuts the
// server down, closing what is still open after 5 s (event streams stay
// open until their clients go), and returns run's error with the
// server's.
func serveService(ctx context.Context, name string, handler http.Handler, run func(context.Context) error, ln net.Listener, sec serviceSecurity) error {
	srv := &http.Server{Handler: sec.handler(handler), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- httplimit.Serve(srv, sec.listener(ln), httplimit.Config{Name: name}) }()
	runErr := run(ctx)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return errors.Join(runErr, err)
	}
	return runErr
}
