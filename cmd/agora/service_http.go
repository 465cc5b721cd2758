package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
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
	var creds *auth.Credentials
	var err error
	switch {
	case f.credentials != "" && f.userPassword != "":
		return serviceSecurity{}, errors.New("give --credentials or --http_credentials, not both")
	case f.credentials != "":
		if creds, err = auth.LoadCredentials(f.credentials); err != nil {
			return serviceSecurity{}, fmt.Errorf("--credentials: %w", err)
		}
	case f.userPassword != "":
		if creds, err = auth.ParseUserPassword(f.userPassword); err != nil {
			return serviceSecurity{}, fmt.Errorf("--http_credentials: %w", err)
		}
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
// the command presents and trusts, as it does for the master.
type serviceAPI struct {
	addr string
	opts clientOptions
}

// register adds the address flag name and --principal, --secret_file
// and --ca_file to fs.
func (a *serviceAPI) register(fs *flag.FlagSet, name, value, usage string) {
	fs.StringVar(&a.addr, name, value, usage)
	a.opts.registerCredential(fs)
	fs.StringVar(&a.opts.caFile, "ca_file", os.Getenv("AGORA_CA_FILE"), "PEM file of the CA that signed the API's certificate: call it over HTTPS and verify it (env AGORA_CA_FILE)")
}

// String is the address, for messages.
func (a serviceAPI) String() string { return a.addr }

// base is the API's URL: a host:port is called over HTTPS when a CA is
// given, as the master is.
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

// client is the HTTP client that presents the credentials and verifies
// the API's certificate; bad credential or CA flags are an error naming
// the flag.
func (a serviceAPI) client(timeout time.Duration) (*http.Client, error) {
	cred, err := a.opts.credential()
	if err != nil {
		return nil, err
	}
	var cfg *tls.Config
	if a.opts.caFile != "" {
		if cfg, err = tlsconf.ClientConfig(a.opts.caFile); err != nil {
			return nil, fmt.Errorf("--ca_file: %w", err)
		}
	}
	c := stateClient(cred, cfg).HTTP
	if c == nil {
		c = &http.Client{}
	}
	c.Timeout = timeout
	return c, nil
}

// do sends req (its URL under base) and explains a certificate that does
// not verify.
func (a serviceAPI) do(req *http.Request) (*http.Response, error) {
	c, err := a.client(0) // the caller's context bounds the request
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if verr := tlsconf.VerifyError(a.base(), err); verr != nil {
		return nil, fmt.Errorf("%w\n\nPass the CA that signed its certificate: --ca_file=FILE (or set AGORA_CA_FILE)", verr)
	}
	return resp, err
}

// unauthorizedHint is added to a 401's message.
const unauthorizedHint = "\n\nThe API asks for credentials: pass --principal=NAME --secret_file=FILE (or set AGORA_PRINCIPAL and AGORA_SECRET)."

// hadoopClient is the Hadoop framework's client for api; each request is
// bounded as the client's default one is.
func hadoopClient(api serviceAPI) (*client.Client, error) {
	h, err := api.client(30 * time.Second)
	if err != nil {
		return nil, err
	}
	return &client.Client{Base: api.base(), HTTP: h}, nil
}

// devServiceSecurity is what `agora dev` secures its built-in services'
// APIs with: the master's credentials when it asks for them on its HTTP
// endpoints (as under --secure), and its certificate when it speaks TLS.
// The zero value secures nothing.
type devServiceSecurity struct {
	creds *auth.Credentials
	tls   *tls.Config
	// caFile is the CA that signed the certificate, for the services'
	// executors that call back (Hadoop's TaskTrackers).
	caFile string
}

// newDevServiceSecurity reads the master's flags, once they are checked.
func newDevServiceSecurity(f *httpFlags) (devServiceSecurity, error) {
	d := devServiceSecurity{tls: f.serverTLS}
	if d.tls != nil {
		d.caFile = f.tls.CAFile
	}
	if f.credentials != "" && (f.readonly || f.readwrite) {
		creds, err := auth.LoadCredentials(f.credentials)
		if err != nil {
			return devServiceSecurity{}, fmt.Errorf("--credentials: %w", err)
		}
		d.creds = creds
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
