package framework

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/spark/dispatcher"
)

// TokenAudience is the audience of the tokens drivers present to the
// API, EnvToken the variable that carries a driver's token
// (spark/dispatcher gives them).
const (
	TokenAudience = dispatcher.TokenAudience
	EnvToken      = dispatcher.EnvToken
)

// ConfPrincipal, ConfSecretFile and ConfCAFile are the Spark settings
// with which a driver that has no token (client mode) presents an
// operator's credentials: the cluster manager (spark/jvm) reads them, else
// AGORA_PRINCIPAL and AGORA_SECRET, and sends HTTP Basic over HTTPS only,
// trusting ConfCAFile, else AGORA_SPARK_CA_FILE, else (only with
// credentials) AGORA_CA_FILE. The API sees neither the secret nor its
// file's name (the cluster manager leaves the secret file's setting and
// those whose key or value spark.redaction.regex matches out of a
// registration).
const (
	ConfPrincipal  = "spark.agora.principal"
	ConfSecretFile = "spark.agora.secret.file"
	ConfCAFile     = "spark.agora.ssl.ca_file"
)

// Auth asks every call of the API for a driver's token or an operator's
// HTTP Basic credentials. A token names the submission its driver was
// launched for: an application registered with it belongs to that
// submission, and only that submission's token (or an operator) may act
// on it or see it.
type Auth struct {
	// Tokens verifies drivers' tokens (the dispatcher's key).
	Tokens *auth.TokenSigner
	// Credentials are the operators' principals and secrets (the
	// dispatcher's --credentials or --http_credentials); nil: none.
	Credentials *auth.Credentials
	// Active, if set, reports whether a submission's driver is still
	// running: a token of one that ended is refused though not expired.
	Active func(submission string) bool
}

type submissionKey struct{}

// submissionOf is the submission whose token authenticated ctx's request
// ("" for an operator or an API without Auth).
func submissionOf(ctx context.Context) string {
	s, _ := ctx.Value(submissionKey{}).(string)
	return s
}

// guard is next behind s.cfg.Auth: 401 without a valid token or
// credentials, 403 for a submission's token on another's application.
func (s *Scheduler) guard(next http.Handler) http.Handler {
	a := s.cfg.Auth
	if a == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if principal, secret, ok := r.BasicAuth(); ok {
			if a.Credentials == nil || !a.Credentials.Verify(principal, secret) {
				refuse(w, fmt.Sprintf("invalid credentials for principal %q", principal))
				return
			}
			next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), principal)))
			return
		}
		token, ok := auth.BearerToken(r)
		if !ok {
			refuse(w, "authentication required: a driver's token ("+EnvToken+", sent as Authorization: Bearer) or an operator's HTTP Basic credentials"+
				" (a client-mode spark-submit: --conf "+ConfPrincipal+"=NAME --conf "+ConfSecretFile+"=FILE, or AGORA_PRINCIPAL and AGORA_SECRET;"+
				" with "+ConfCAFile+"=FILE for the CA that signed this API's certificate, else AGORA_SPARK_CA_FILE,"+
				" else, with credentials, AGORA_CA_FILE)")
			return
		}
		if a.Tokens == nil {
			refuse(w, "this API takes no tokens: give an operator's HTTP Basic credentials")
			return
		}
		sub, err := a.Tokens.VerifySubject(token, TokenAudience)
		if err != nil {
			refuse(w, err.Error())
			return
		}
		if a.Active != nil && !a.Active(sub) {
			refuse(w, fmt.Sprintf("the token of submission %s: its driver is not running", sub))
			return
		}
		if id := appInPath(r.URL.Path); id != "" {
			if owner, ok := s.owner(id); ok && owner != sub {
				reply(w, http.StatusForbidden, fmt.Errorf("application %s belongs to another submission than %s, whose token this is", id, sub), nil)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), submissionKey{}, sub)))
	})
}

func refuse(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="spark", Basic realm="spark"`)
	reply(w, http.StatusUnauthorized, fmt.Errorf("%s", msg), nil)
}

// appInPath is the application ID of an /v1/applications/{id}... path.
func appInPath(p string) string {
	rest, ok := strings.CutPrefix(p, "/v1/applications/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}

// owner is the submission application id was registered by ("" for an
// operator's or an open API's registration); ok is false for an unknown
// application.
func (s *Scheduler) owner(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[id]
	if !ok {
		return "", false
	}
	return a.owner, true
}
