package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"strconv"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/httplimit"
	"github.com/agora-cluster/agora/cluster/tlsconf"
)

// httpFlags are the browser-, profiling- and authentication-facing flags
// the master and the agent share (api.HTTPOptions).
type httpFlags struct {
	corsOrigins string
	pprof       bool
	// Authentication (Mesos's names): the accepted credentials and which
	// requests need them; frameworks and agents are the master's only.
	credentials         string
	readonly, readwrite bool
	frameworks, agents  bool
	// tls is --ssl_* (and libprocess's LIBPROCESS_SSL_*): HTTPS on the
	// server's port; serverTLS is what options made of it (nil: plain).
	tls       tlsconf.Flags
	serverTLS *tls.Config
	// limits are --http_max_connections and the other bounds of what a
	// client can hold of the server (httplimit).
	limits httplimit.Config
}

func (f *httpFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.corsOrigins, "cors_allowed_origins", "", "comma-separated origins (e.g. https://dash.example.com) whose web pages may read\n"+
		"the JSON endpoints and sandbox files cross-origin, by CORS or JSONP (default: none, same-origin only)")
	fs.BoolVar(&f.pprof, "enable_pprof", false, "serve Go's runtime profiles under /debug/pprof/ (off by default: they expose the process)")
	fs.StringVar(&f.credentials, "credentials", "", "JSON file of accepted principals and secrets, {\"credentials\":[{\"principal\":\"ops\",\"secret\":\"...\"}]};\n"+
		"a secret may be \"sha256:HEX\" or a bcrypt hash, or come from \"secret_file\". Needed by the --authenticate_* flags")
	fs.BoolVar(&f.readonly, "authenticate_http_readonly", false, "require HTTP Basic credentials for the endpoints that read (/state, /metrics/snapshot, /files/..., the web UI); /health and /version stay open")
	f.tls.Register(fs)
	fs.IntVar(&f.limits.MaxConnections, "http_max_connections", 0, "connections the HTTP server keeps open at once; past it a new one gets 503 with Retry-After\n"+
		"(0: the open-file limit less 1024; -1: no limit). An HTTP/2 connection counts once, whatever it carries")
	fs.DurationVar(&f.limits.ReadHeaderTimeout, "http_read_header_timeout", httplimit.DefaultReadHeaderTimeout, "time a client has to send a request's headers (slowloris); streams are not cut by it")
	fs.DurationVar(&f.limits.IdleTimeout, "http_idle_timeout", httplimit.DefaultIdleTimeout, "time a kept-alive connection may stay idle between requests")
	fs.IntVar(&f.limits.MaxHeaderBytes, "http_max_header_bytes", httplimit.DefaultMaxHeaderBytes, "size bound of a request's headers; larger ones get 431")
	fs.BoolVar(&f.readwrite, "authenticate_http_readwrite", false, "require HTTP Basic credentials for the operator API (/api/v1) and the endpoints that change something (/reserve, /quota, /weights, /maintenance/schedule, /teardown...)")
}

// registerMaster adds the master's own authentication flags.
func (f *httpFlags) registerMaster(fs *flag.FlagSet) {
	fs.BoolVar(&f.frameworks, "authenticate_frameworks", false, "require credentials of frameworks on the scheduler API (/api/v1/scheduler); a framework's FrameworkInfo.principal must be the one it authenticated as")
	fs.BoolVar(&f.frameworks, "authenticate_http_frameworks", false, "the same as --authenticate_frameworks (Mesos's name for the HTTP scheduler API)")
	fs.BoolVar(&f.agents, "authenticate_agents", false, "require credentials of agents registering (agents present theirs with --credential)")
}

// registerAgent adds the agent's name for --credentials.
func (f *httpFlags) registerAgent(fs *flag.FlagSet) {
	fs.StringVar(&f.credentials, "http_credentials", "", "the same as --credentials (Mesos's agent flag name)")
}

func (f *httpFlags) options() (api.HTTPOptions, error) {
	if err := f.setLimits(); err != nil {
		return api.HTTPOptions{}, err
	}
	origins, err := api.ParseOrigins(f.corsOrigins)
	if err != nil {
		return api.HTTPOptions{}, fmt.Errorf("--cors_allowed_origins: %w", err)
	}
	opts := auth.Options{Frameworks: f.frameworks, Agents: f.agents, HTTPReadOnly: f.readonly, HTTPReadWrite: f.readwrite}
	if f.credentials != "" {
		if opts.Credentials, err = auth.LoadCredentials(f.credentials); err != nil {
			return api.HTTPOptions{}, fmt.Errorf("--credentials: %w", err)
		}
	}
	authn, err := auth.New(opts)
	if err != nil {
		return api.HTTPOptions{}, err
	}
	if f.serverTLS, err = f.tls.Server(); err != nil {
		return api.HTTPOptions{}, err
	}
	return api.HTTPOptions{CORSAllowedOrigins: origins, EnablePprof: f.pprof, Auth: authn}, nil
}

// flags are the values reported by /flags and /state.
func (f *httpFlags) flags(m map[string]string) {
	m["cors_allowed_origins"] = f.corsOrigins
	m["enable_pprof"] = strconv.FormatBool(f.pprof)
	m["credentials"] = f.credentials
	m["authenticate_http_readonly"] = strconv.FormatBool(f.readonly)
	m["authenticate_http_readwrite"] = strconv.FormatBool(f.readwrite)
	m["authenticate_frameworks"] = strconv.FormatBool(f.frameworks)
	m["authenticate_agents"] = strconv.FormatBool(f.agents)
	m["ssl_cert_file"] = f.tls.CertFile
	m["ssl_key_file"] = f.tls.KeyFile
	m["ssl_ca_file"] = f.tls.CAFile
	m["ssl_require_cert"] = strconv.FormatBool(f.tls.RequireCert)
	m["ssl_verify_cert"] = strconv.FormatBool(f.tls.VerifyCert)
	m["ssl_support_downgrade"] = strconv.FormatBool(f.tls.Downgrade)
}

// loadCredential reads --credential, the one credential an agent presents
// to the master; "" presents none.
func loadCredential(path string) (auth.Credential, error) {
	if path == "" {
		return auth.Credential{}, nil
	}
	c, err := auth.LoadCredential(path)
	if err != nil {
		return auth.Credential{}, fmt.Errorf("--credential: %w", err)
	}
	return c, nil
}

// setLimits checks the --http_* bounds and makes them the process's
// (httplimit.Set), for every server it starts.
func (f *httpFlags) setLimits() error {
	l := f.limits
	switch {
	case l.MaxConnections < -1:
		return fmt.Errorf("--http_max_connections=%d: give a positive number, 0 for the default or -1 for no limit", l.MaxConnections)
	case l.ReadHeaderTimeout <= 0:
		return fmt.Errorf("--http_read_header_timeout=%v: must be positive", l.ReadHeaderTimeout)
	case l.IdleTimeout <= 0:
		return fmt.Errorf("--http_idle_timeout=%v: must be positive", l.IdleTimeout)
	case l.MaxHeaderBytes < 1024:
		return fmt.Errorf("--http_max_header_bytes=%d: must be at least 1024", l.MaxHeaderBytes)
	}
	httplimit.Set(l)
	return nil
}
