// Package tlsconf is TLS for agora's HTTP servers and clients: the
// --ssl_* flags with libprocess's LIBPROCESS_SSL_* environment names as
// aliases, loading a certificate, key and CA bundle, the client side that
// verifies a server against that CA, and a small CA for tests and for
// `agora dev --secure`.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
)

// Flags are the TLS flags of a server (master, agent, a framework's API).
// Each flag's default comes from libprocess's environment variable of the
// same meaning, so a deployment configured for Mesos keeps working.
type Flags struct {
	CertFile, KeyFile, CAFile string
	// RequireCert asks every client for a certificate signed by CAFile
	// (mutual TLS; LIBPROCESS_SSL_REQUIRE_CERT).
	RequireCert bool
	// VerifyCert checks a client certificate when one is presented
	// (LIBPROCESS_SSL_VERIFY_CERT); RequireCert implies it.
	VerifyCert bool
	// Downgrade also accepts plain HTTP on the TLS port
	// (LIBPROCESS_SSL_SUPPORT_DOWNGRADE), for clients not yet configured
	// for TLS during a migration.
	Downgrade bool
	// ServerName, for a client, is the name the server's certificate is
	// verified against when the address dialed is not one it names (an
	// executor dials its agent at 127.0.0.1, and the agent's certificate
	// may name only its DNS name); "" verifies the host dialed. Only the
	// environment sets it (EnvServerName), as an agent does for its
	// executors.
	ServerName string
}

// Environment names libprocess reads; they are the flags' defaults.
const (
	EnvEnabled     = "LIBPROCESS_SSL_ENABLED"
	EnvCertFile    = "LIBPROCESS_SSL_CERT_FILE"
	EnvKeyFile     = "LIBPROCESS_SSL_KEY_FILE"
	EnvCAFile      = "LIBPROCESS_SSL_CA_FILE"
	EnvVerifyCert  = "LIBPROCESS_SSL_VERIFY_CERT"
	EnvRequireCert = "LIBPROCESS_SSL_REQUIRE_CERT"
	EnvDowngrade   = "LIBPROCESS_SSL_SUPPORT_DOWNGRADE"
	// EnvServerName is agora's, not libprocess's (whose executors do not
	// verify the agent by default): the name an executor verifies its
	// agent's certificate against (Flags.ServerName).
	EnvServerName = "AGORA_SSL_SERVER_NAME"
)

// Register adds --ssl_cert_file, --ssl_key_file, --ssl_ca_file,
// --ssl_verify_cert, --ssl_require_cert and --ssl_support_downgrade to fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.CertFile, "ssl_cert_file", os.Getenv(EnvCertFile), "PEM certificate (chain) to serve HTTPS with; with --ssl_key_file turns TLS on (env "+EnvCertFile+")")
	fs.StringVar(&f.KeyFile, "ssl_key_file", os.Getenv(EnvKeyFile), "PEM private key of --ssl_cert_file (env "+EnvKeyFile+")")
	fs.StringVar(&f.CAFile, "ssl_ca_file", os.Getenv(EnvCAFile), "PEM CA bundle: verifies client certificates, and the master's certificate for an agent (env "+EnvCAFile+"; default: the system's roots)")
	fs.BoolVar(&f.VerifyCert, "ssl_verify_cert", envBool(EnvVerifyCert), "verify a client certificate when one is presented (env "+EnvVerifyCert+")")
	fs.BoolVar(&f.RequireCert, "ssl_require_cert", envBool(EnvRequireCert), "require a client certificate signed by --ssl_ca_file (mutual TLS; env "+EnvRequireCert+")")
	fs.BoolVar(&f.Downgrade, "ssl_support_downgrade", envBool(EnvDowngrade), "also accept plain HTTP on the TLS port (env "+EnvDowngrade+")")
}

// FromEnv is the flags as libprocess's LIBPROCESS_SSL_* environment alone
// sets them: what an executor the agent launched reads (the agent puts
// LIBPROCESS_SSL_ENABLED and LIBPROCESS_SSL_CA_FILE in its environment when
// it serves TLS).
func FromEnv() Flags {
	return Flags{
		CertFile:    os.Getenv(EnvCertFile),
		KeyFile:     os.Getenv(EnvKeyFile),
		CAFile:      os.Getenv(EnvCAFile),
		VerifyCert:  envBool(EnvVerifyCert),
		RequireCert: envBool(EnvRequireCert),
		Downgrade:   envBool(EnvDowngrade),
		ServerName:  os.Getenv(EnvServerName),
	}
}

// envBool reads a libprocess boolean: "1", "true" (any case) or "yes".
func envBool(name string) bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv(name)))
	if b, err := strconv.ParseBool(v); err == nil {
		return b
	}
	return v == "yes"
}

// Enabled reports whether the server speaks TLS: a certificate is given.
// LIBPROCESS_SSL_ENABLED without one is an error Server reports.
func (f *Flags) Enabled() bool { return f.CertFile != "" || f.KeyFile != "" || envBool(EnvEnabled) }

// Server is the server's TLS configuration, nil when TLS is off. HTTP/2
// is offered by ALPN beside HTTP/1.1. Any missing or unreadable file is
// an error naming its flag.
func (f *Flags) Server() (*tls.Config, error) {
	if !f.Enabled() {
		return nil, nil
	}
	switch {
	case f.CertFile == "" && f.KeyFile == "":
		return nil, fmt.Errorf("%s is set: TLS needs --ssl_cert_file and --ssl_key_file (or %s and %s)", EnvEnabled, EnvCertFile, EnvKeyFile)
	case f.CertFile == "":
		return nil, errors.New("--ssl_key_file needs --ssl_cert_file")
	case f.KeyFile == "":
		return nil, errors.New("--ssl_cert_file needs --ssl_key_file")
	}
	if err := readable("--ssl_cert_file", f.CertFile); err != nil {
		return nil, err
	}
	if err := readable("--ssl_key_file", f.KeyFile); err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("--ssl_cert_file %s with --ssl_key_file %s: %w", f.CertFile, f.KeyFile, err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}
	if f.RequireCert || f.VerifyCert {
		if f.CAFile == "" {
			return nil, errors.New("--ssl_require_cert and --ssl_verify_cert need --ssl_ca_file, the CA client certificates must be signed by")
		}
		pool, err := LoadCA(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--ssl_ca_file: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if f.RequireCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return cfg, nil
}

// Client is the configuration a process with these flags uses to call
// other components (an agent calling its master): the servers are
// verified against --ssl_ca_file (the system's roots without one), and
// the process's own certificate is presented, for masters that require
// one. Nil when TLS is off and no CA is given.
func (f *Flags) Client() (*tls.Config, error) {
	if !f.Enabled() && f.CAFile == "" {
		return nil, nil
	}
	cfg, err := ClientConfig(f.CAFile)
	if err != nil {
		return nil, fmt.Errorf("--ssl_ca_file: %w", err)
	}
	cfg.ServerName = f.ServerName
	if f.CertFile != "" && f.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("--ssl_cert_file %s with --ssl_key_file %s: %w", f.CertFile, f.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// ClientConfig verifies servers against the CA bundle in caFile, or the
// system's roots when caFile is "".
func ClientConfig(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pool, err := LoadCA(caFile)
	if err != nil {
		return nil, err
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// ServerNameFor is the name a client dialing host must verify the
// certificate of server configuration cfg against: "" when the
// certificate names host itself, else preferred when it names that, else
// the certificate's first DNS name that is not a wildcard; "" when there
// is no certificate to read or it names nothing usable (the client then
// verifies host, and fails saying so).
func ServerNameFor(cfg *tls.Config, host, preferred string) string {
	if cfg == nil || len(cfg.Certificates) == 0 || len(cfg.Certificates[0].Certificate) == 0 {
		return ""
	}
	leaf := cfg.Certificates[0].Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cfg.Certificates[0].Certificate[0]); err != nil {
			return ""
		}
	}
	if leaf.VerifyHostname(host) == nil {
		return ""
	}
	if preferred != "" && leaf.VerifyHostname(preferred) == nil {
		return preferred
	}
	for _, name := range leaf.DNSNames {
		if !strings.HasPrefix(name, "*") {
			return name
		}
	}
	return ""
}

// LoadCA reads a PEM bundle of CA certificates; a file holding none is an
// error.
func LoadCA(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

func readable(flag, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	return f.Close()
}

// Scheme is "https" with cfg, "http" without.
func Scheme(cfg *tls.Config) string {
	if cfg != nil {
		return "https"
	}
	return "http"
}

// processClient is what TrustProcessWide installed.
var processClient atomic.Pointer[tls.Config]

// TrustProcessWide makes the process's default HTTP transport verify
// servers against cfg's roots (and present its certificates), as
// libprocess's LIBPROCESS_SSL_CA_FILE does for a whole process: every
// client built on http.DefaultTransport, and the scheduler SDK's default
// client, then call the cluster's HTTPS endpoints. It is meant for a
// process's start, before any connection is made.
func TrustProcessWide(cfg *tls.Config) {
	if cfg == nil {
		return
	}
	processClient.Store(cfg.Clone())
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t.TLSClientConfig = cfg.Clone()
	}
}

// ProcessClient is a copy of the client TLS configuration
// TrustProcessWide installed (nil: the system's roots), for clients with
// transports of their own. It offers no ALPN protocols of its own: a
// transport adds h2 only when it speaks it.
func ProcessClient() *tls.Config {
	if cfg := processClient.Load(); cfg != nil {
		return cfg.Clone()
	}
	return nil
}
