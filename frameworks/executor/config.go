package executor

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/tlsconf"
)

// Config configures a Driver. FromEnv fills it from the environment the
// agent gives every executor; tests and embedders may build it by hand.
type Config struct {
	// FrameworkID and ExecutorID identify the executor (MESOS_FRAMEWORK_ID,
	// MESOS_EXECUTOR_ID).
	FrameworkID, ExecutorID string
	// Directory is the sandbox on the host (MESOS_DIRECTORY); Sandbox is
	// the sandbox as the executor sees it (MESOS_SANDBOX).
	Directory, Sandbox string
	// AgentEndpoint is the agent's host:port (MESOS_AGENT_ENDPOINT).
	AgentEndpoint string
	// Checkpoint is set when the framework checkpoints (MESOS_CHECKPOINT):
	// the executor then survives an agent restart by re-subscribing for up
	// to RecoveryTimeout. Without it the executor exits when its
	// subscription breaks, as Mesos expects.
	Checkpoint bool
	// ShutdownGracePeriod is the time the agent allows between SHUTDOWN and
	// destroying the executor (MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD).
	ShutdownGracePeriod time.Duration
	// RecoveryTimeout bounds re-subscribing after a disconnection
	// (MESOS_RECOVERY_TIMEOUT, checkpointing only); the first subscription
	// is retried for at least InitialTimeout.
	RecoveryTimeout time.Duration
	// SubscriptionBackoffMax caps the delay between subscription attempts
	// (MESOS_SUBSCRIPTION_BACKOFF_MAX); 0 means 2s.
	SubscriptionBackoffMax time.Duration
	// InitialTimeout bounds the attempts of the first subscription; 0
	// means 15s.
	InitialTimeout time.Duration

	// TLS, if set, is how the agent's certificate is verified (and the
	// executor's own presented, to an agent that requires one): the calls
	// go over HTTPS. FromEnv sets it when the agent serves TLS
	// (LIBPROCESS_SSL_ENABLED, LIBPROCESS_SSL_CA_FILE).
	TLS *tls.Config
	// AuthenticationToken is sent as "Authorization: Bearer" on every
	// call (MESOS_EXECUTOR_AUTHENTICATION_TOKEN), for an agent running
	// with --authenticate_http_executors.
	AuthenticationToken string

	// Codec is the wire encoding; the zero value means protobuf.
	Codec api.Codec
	// HTTPClient sends the calls other than SUBSCRIBE; nil means a default
	// client with a 10s timeout.
	HTTPClient *http.Client
	// Logger receives the driver's diagnostics; nil discards them.
	Logger *slog.Logger
}

// FromEnv reads the configuration from the MESOS_* environment variables
// the agent sets (Mesos's executor environment), and libprocess's
// LIBPROCESS_SSL_* for an agent that serves TLS. Once read, the
// executor's own secrets leave the process's environment: its token
// (MESOS_EXECUTOR_AUTHENTICATION_TOKEN) and the paths of the certificate
// and key it presents (LIBPROCESS_SSL_CERT_FILE, _KEY_FILE), so the
// tasks it starts do not inherit them and cannot act as the executor.
func FromEnv() (Config, error) {
	var (
		cfg  Config
		errs []error
	)
	required := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is not set", name))
		}
		return v
	}
	duration := func(name string, need bool) time.Duration {
		v := os.Getenv(name)
		if v == "" {
			if need {
				errs = append(errs, fmt.Errorf("%s is not set", name))
			}
			return 0
		}
		d, err := ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return d
	}
	cfg.FrameworkID = required("MESOS_FRAMEWORK_ID")
	cfg.ExecutorID = required("MESOS_EXECUTOR_ID")
	cfg.Directory = required("MESOS_DIRECTORY")
	cfg.Sandbox = os.Getenv("MESOS_SANDBOX")
	if cfg.Sandbox == "" {
		cfg.Sandbox = cfg.Directory
	}
	cfg.AgentEndpoint = required("MESOS_AGENT_ENDPOINT")
	if v := os.Getenv("MESOS_CHECKPOINT"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("MESOS_CHECKPOINT: %w", err))
		}
		cfg.Checkpoint = b
	}
	cfg.ShutdownGracePeriod = duration("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", false)
	if cfg.Checkpoint {
		cfg.RecoveryTimeout = duration("MESOS_RECOVERY_TIMEOUT", true)
		cfg.SubscriptionBackoffMax = duration("MESOS_SUBSCRIPTION_BACKOFF_MAX", true)
	}
	cfg.AuthenticationToken = os.Getenv("MESOS_EXECUTOR_AUTHENTICATION_TOKEN")
	if tf := tlsconf.FromEnv(); tf.Enabled() {
		tc, err := tf.Client()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (or %s, %s): %w", tlsconf.EnvCAFile, tlsconf.EnvCertFile, tlsconf.EnvKeyFile, err))
		}
		verify, err := verifyAgent()
		if err != nil {
			errs = append(errs, err)
		}
		if tc != nil && !verify {
			tc.InsecureSkipVerify = true
		}
		cfg.TLS = tc
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("executor: environment: %w", err)
	}
	for _, k := range []string{"MESOS_EXECUTOR_AUTHENTICATION_TOKEN", tlsconf.EnvCertFile, tlsconf.EnvKeyFile} {
		os.Unsetenv(k)
	}
	return cfg, nil
}

// verifyAgent reports whether the executor verifies its agent's
// certificate, from libprocess's LIBPROCESS_SSL_VERIFY_CERT and
// LIBPROCESS_SSL_REQUIRE_CERT as its executors read them: set to false,
// VERIFY_CERT lets the executor take any certificate the agent presents;
// REQUIRE_CERT set to true verifies it whatever VERIFY_CERT says, as
// libprocess's requirement of the peer's certificate implies its check.
// Unlike libprocess, whose executors verify nothing unless told to, an
// executor here verifies its agent when neither is set. A value that is
// not a boolean is an error naming the variable.
func verifyAgent() (bool, error) {
	read := func(name string) (value, set bool, err error) {
		v, ok := os.LookupEnv(name)
		v = strings.ToLower(strings.TrimSpace(v))
		if !ok || v == "" {
			return false, false, nil
		}
		switch v {
		case "1", "true", "yes":
			return true, true, nil
		case "0", "false", "no":
			return false, true, nil
		}
		return false, false, fmt.Errorf("%s=%q: want true or false", name, v)
	}
	verify, verifySet, err1 := read(tlsconf.EnvVerifyCert)
	require, _, err2 := read(tlsconf.EnvRequireCert)
	if err := errors.Join(err1, err2); err != nil {
		return true, err
	}
	return require || verify || !verifySet, nil
}

// ParseDuration reads a duration written the way Mesos writes them:
// a number and one of the units ns, us, ms, secs, mins, hrs, days, weeks
// ("5secs", "15mins", "2.5secs"). Go's own units ("5s", "1m30s") are
// accepted too.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		name string
		d    time.Duration
	}{
		{"weeks", 7 * 24 * time.Hour}, {"days", 24 * time.Hour}, {"hrs", time.Hour}, {"mins", time.Minute},
		{"secs", time.Second}, {"ms", time.Millisecond}, {"us", time.Microsecond}, {"ns", time.Nanosecond},
	}
	for _, u := range units {
		num, ok := strings.CutSuffix(s, u.name)
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || f < 0 {
			break
		}
		return time.Duration(f * float64(u.d)), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, nil
	}
	return 0, fmt.Errorf("%q is not a duration (want a number and ns, us, ms, secs, mins, hrs, days or weeks)", s)
}
