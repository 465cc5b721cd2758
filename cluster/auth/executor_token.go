package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

// Executor authentication, as Mesos's agent does it with --jwt_secret_key
// and --authenticate_http_executors: before an executor starts, the agent
// signs a JSON Web Token (HS256) naming the executor's framework, executor
// and container, and hands it over in MESOS_EXECUTOR_AUTHENTICATION_TOKEN;
// the executor sends it as "Authorization: Bearer <token>". A token is
// valid only for calls of the executor it names, and only while that
// executor's container is the one it names: a token outlives neither the
// container it was made for, nor an optional "exp" set by the signer.

// EnvExecutorToken is the variable that carries an executor's token.
const EnvExecutorToken = "MESOS_EXECUTOR_AUTHENTICATION_TOKEN"

// ExecutorClaims are what a token vouches for, under Mesos's claim names.
type ExecutorClaims struct {
	FrameworkID string `json:"fid"`
	ExecutorID  string `json:"eid"`
	ContainerID string `json:"cid"`
	// Expires, if not zero, is when the token stops being valid (Unix
	// seconds, JWT's "exp").
	Expires int64 `json:"exp,omitempty"`
}

// MinSecretKey is the shortest key accepted: HS256 is only as strong as
// its key.
const MinSecretKey = 32

// TokenSigner signs and verifies executor tokens with one secret key. It
// is safe for concurrent use.
type TokenSigner struct {
	key []byte
	now func() time.Time
}

// NewTokenSigner checks key (at least MinSecretKey bytes).
func NewTokenSigner(key []byte) (*TokenSigner, error) {
	if len(key) < MinSecretKey {
		return nil, fmt.Errorf("the secret key has %d bytes, want at least %d (e.g. head -c 32 /dev/urandom | base64 > key)", len(key), MinSecretKey)
	}
	return &TokenSigner{key: append([]byte(nil), key...), now: time.Now}, nil
}

// LoadSecretKey reads a key file (--jwt_secret_key): its bytes, without
// trailing line endings (\r and \n), as agents have always read it, so
// that an upgraded agent keeps its key and its executors' tokens still
// verify. A key of raw random bytes may itself end in one of them and
// lose it: keep keys as text (base64).
func LoadSecretKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return []byte(strings.TrimRight(string(b), "\r\n")), nil
}

// jwtHeader is the only header agora makes and accepts: HS256, so that a
// token cannot choose its own algorithm ("none", or a public-key one).
const jwtHeader = `{"alg":"HS256","typ":"JWT"}`

// b64 is JWT's encoding; strict, so that a signature has one spelling
// only (a token cannot be altered and still verify).
var b64 = base64.RawURLEncoding.Strict()

// Sign makes the token for c.
func (s *TokenSigner) Sign(c ExecutorClaims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	unsigned := b64.EncodeToString([]byte(jwtHeader)) + "." + b64.EncodeToString(payload)
	return unsigned + "." + b64.EncodeToString(s.mac(unsigned)), nil
}

func (s *TokenSigner) mac(unsigned string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(unsigned))
	return m.Sum(nil)
}

// ErrBadToken is why a token is refused; the error wrapping it says what
// is wrong.
var ErrBadToken = errors.New("invalid executor token")

// Verify checks token's signature, header and expiry and returns its
// claims.
func (s *TokenSigner) Verify(token string) (ExecutorClaims, error) {
	var c ExecutorClaims
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return c, fmt.Errorf("%w: not a JSON Web Token (want three dot-separated parts, got %d)", ErrBadToken, len(parts))
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, s.mac(parts[0]+"."+parts[1])) {
		return c, fmt.Errorf("%w: the signature does not match this agent's key (--jwt_secret_key)", ErrBadToken)
	}
	header, err := b64.DecodeString(parts[0])
	if err != nil || string(header) != jwtHeader {
		return c, fmt.Errorf("%w: header %q, want %s", ErrBadToken, header, jwtHeader)
	}
	payload, err := b64.DecodeString(parts[1])
	if err != nil {
		return c, fmt.Errorf("%w: payload: %v", ErrBadToken, err)
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return ExecutorClaims{}, fmt.Errorf("%w: payload: %v", ErrBadToken, err)
	}
	if c.FrameworkID == "" || c.ExecutorID == "" || c.ContainerID == "" {
		return ExecutorClaims{}, fmt.Errorf("%w: the claims fid, eid and cid are required", ErrBadToken)
	}
	if c.Expires != 0 && !s.now().Before(time.Unix(c.Expires, 0)) {
		return ExecutorClaims{}, fmt.Errorf("%w: expired at %s", ErrBadToken, time.Unix(c.Expires, 0).UTC().Format(time.RFC3339))
	}
	return c, nil
}

// BearerToken is the token of r's "Authorization: Bearer" header; ok is
// false when r has none.
func BearerToken(r *http.Request) (token string, ok bool) {
	scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
