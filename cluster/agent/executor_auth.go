package agent

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"

	executorpb "github.com/mesos/mesos-go/api/v1/lib/executor"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/tlsconf"
)

// What an executor needs to reach its agent safely, and how the agent
// knows the executor calling is the one it says: with TLS on, the
// executor's environment turns TLS on and names the CA (libprocess's
// LIBPROCESS_SSL_*), and with a secret key every executor gets a token
// of its own (auth.ExecutorClaims) that the executor API asks for under
// --authenticate_http_executors.

// executorTokens checks the executor authentication settings of cfg.
func executorTokens(cfg Config) (*auth.TokenSigner, error) {
	if len(cfg.ExecutorSecretKey) == 0 {
		if cfg.AuthenticateHTTPExecutors {
			return nil, errors.New("agent: --authenticate_http_executors needs --jwt_secret_key (the file of the key executors' tokens are signed with)")
		}
		return nil, nil
	}
	s, err := auth.NewTokenSigner(cfg.ExecutorSecretKey)
	if err != nil {
		return nil, fmt.Errorf("agent: --jwt_secret_key: %w", err)
	}
	return s, nil
}

// executorTLSEnv is the environment that makes a native executor call the
// agent over TLS, verifying it with the agent's CA; none when the agent
// serves plain HTTP.
func (a *Agent) executorTLSEnv() []string {
	return a.executorTLSEnvAt(a.executorEndpoint(), a.cfg.TLSCAFile, true)
}

// executorTLSEnvAt is executorTLSEnv for an executor that dials the agent
// at endpoint and sees the agent's CA bundle at caFile; certOK says
// whether it may be given the agent's own certificate and key to present
// (an executor in a Docker container is not: they are not in its view).
//
// Executors verify the agent's certificate, unlike libprocess's, which
// verify nothing unless LIBPROCESS_SSL_VERIFY_CERT is set: they send
// their token on every call, and the agent gives them all that
// verification needs, the CA and (EnvServerName) the name its certificate
// holds when it does not name the address they dial.
func (a *Agent) executorTLSEnvAt(endpoint, caFile string, certOK bool) []string {
	if a.cfg.TLS == nil {
		return nil
	}
	env := []string{tlsconf.EnvEnabled + "=true"}
	if caFile != "" {
		env = append(env, tlsconf.EnvCAFile+"="+caFile)
	}
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		host = endpoint
	}
	if name := tlsconf.ServerNameFor(a.cfg.TLS, host, a.cfg.Hostname); name != "" {
		env = append(env, tlsconf.EnvServerName+"="+name)
	}
	switch {
	case !a.requiresClientCert() || !certOK:
		// The agent asks executors for no certificate: they do not get
		// the paths of its own (inherited from a LIBPROCESS_SSL_*
		// environment), whose key a task's user may not even read.
		env = append(env, tlsconf.EnvCertFile+"=", tlsconf.EnvKeyFile+"=")
	case a.cfg.TLSCertFile != "" && a.cfg.TLSKeyFile != "":
		// --ssl_require_cert with the certificate given as flags: the
		// executor presents the agent's, as it would have inherited it
		// from a LIBPROCESS_SSL_* environment.
		env = append(env, tlsconf.EnvCertFile+"="+a.cfg.TLSCertFile, tlsconf.EnvKeyFile+"="+a.cfg.TLSKeyFile)
	}
	return env
}

// requiresClientCert reports whether the agent serves TLS and asks every
// client for a certificate (--ssl_require_cert).
func (a *Agent) requiresClientCert() bool {
	return a.cfg.TLS != nil && (a.cfg.TLS.ClientAuth == tls.RequireAndVerifyClientCert || a.cfg.TLS.ClientAuth == tls.RequireAnyClientCert)
}

// executorTokenEnv is MESOS_EXECUTOR_AUTHENTICATION_TOKEN for e: a token
// naming e's framework, executor and container. None without a key.
func (a *Agent) executorTokenEnv(e *executor) []string {
	if a.tokens == nil {
		return nil
	}
	token, err := a.tokens.Sign(auth.ExecutorClaims{FrameworkID: e.key.framework, ExecutorID: e.key.executor, ContainerID: e.containerID})
	if err != nil {
		a.log.Error("cannot sign the executor's token", "framework_id", e.key.framework, "executor_id", e.key.executor, "err", err)
		return nil
	}
	return []string{auth.EnvExecutorToken + "=" + token}
}

// authenticateExecutor checks the token of an executor API request under
// --authenticate_http_executors, before its body is read: a request
// without a valid one is answered 401 and nil is returned. Without the
// flag every request passes, with no claims.
func (a *Agent) authenticateExecutor(w http.ResponseWriter, r *http.Request) (claims *auth.ExecutorClaims, ok bool) {
	if !a.cfg.AuthenticateHTTPExecutors {
		return nil, true
	}
	token, found := auth.BearerToken(r)
	if !found {
		a.count("slave/executor_authentication_failures", 1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="agora-executor"`)
		http.Error(w, "authentication required: --authenticate_http_executors is on; send the executor's token (MESOS_EXECUTOR_AUTHENTICATION_TOKEN) as 'Authorization: Bearer <token>'", http.StatusUnauthorized)
		return nil, false
	}
	c, err := a.tokens.Verify(token)
	if err != nil {
		a.count("slave/executor_authentication_failures", 1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="agora-executor", error="invalid_token"`)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return nil, false
	}
	return &c, true
}

// authorizeExecutorCall: a token acts only for the executor it names, and
// only while that executor runs in the container it names (a token of an
// executor's earlier run is refused). A mismatch is a 403 naming both.
func (a *Agent) authorizeExecutorCall(c *auth.ExecutorClaims, call *executorpb.Call) *httpError {
	if c == nil {
		return nil
	}
	fid, eid := call.FrameworkID.Value, call.ExecutorID.Value
	if c.FrameworkID != fid || c.ExecutorID != eid {
		a.count("slave/executor_authorization_failures", 1)
		return &httpError{http.StatusForbidden, fmt.Sprintf("the token is executor %s of framework %s's: it cannot act for executor %s of framework %s", c.ExecutorID, c.FrameworkID, eid, fid)}
	}
	a.mu.Lock()
	e := a.executors[execKey{fid, eid}]
	container := ""
	if e != nil {
		container = e.containerID
	}
	a.mu.Unlock()
	if e != nil && container != c.ContainerID {
		a.count("slave/executor_authorization_failures", 1)
		return &httpError{http.StatusForbidden, fmt.Sprintf("the token is for container %s of executor %s, which now runs in container %s", c.ContainerID, eid, container)}
	}
	return nil
}
