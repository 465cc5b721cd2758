package auth

import (
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Subject tokens: a service hands a process it launches (a Spark driver)
// a token of its own, signed with the service's key as executor tokens
// are, naming what the process was launched for (its subject, e.g. a
// submission ID) and which API it is for (its audience). The process
// sends it as "Authorization: Bearer <token>"; the API then knows which
// subject's calls these are. A subject token never verifies as an
// executor token (it has no fid, eid or cid) nor the reverse (no aud).

// SubjectClaims are what a subject token vouches for, under JWT's names.
type SubjectClaims struct {
	Audience string `json:"aud"`
	Subject  string `json:"sub"`
	// Expires is when the token stops being valid (Unix seconds).
	Expires int64 `json:"exp"`
}

// SignSubject makes the token for subject sub of API aud, valid until
// expires.
func (s *TokenSigner) SignSubject(aud, sub string, expires time.Time) (string, error) {
	if aud == "" || sub == "" {
		return "", fmt.Errorf("a subject token needs an audience and a subject (got %q, %q)", aud, sub)
	}
	payload, err := json.Marshal(SubjectClaims{Audience: aud, Subject: sub, Expires: expires.Unix()})
	if err != nil {
		return "", err
	}
	unsigned := b64.EncodeToString([]byte(jwtHeader)) + "." + b64.EncodeToString(payload)
	return unsigned + "." + b64.EncodeToString(s.mac(unsigned)), nil
}

// VerifySubject checks token's signature, header, audience (aud) and
// expiry and returns the subject it names.
func (s *TokenSigner) VerifySubject(token, aud string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("%w: not a JSON Web Token (want three dot-separated parts, got %d)", ErrBadToken, len(parts))
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, s.mac(parts[0]+"."+parts[1])) {
		return "", fmt.Errorf("%w: the signature does not match this service's key", ErrBadToken)
	}
	header, err := b64.DecodeString(parts[0])
	if err != nil || string(header) != jwtHeader {
		return "", fmt.Errorf("%w: header %q, want %s", ErrBadToken, header, jwtHeader)
	}
	payload, err := b64.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("%w: payload: %v", ErrBadToken, err)
	}
	var c SubjectClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", fmt.Errorf("%w: payload: %v", ErrBadToken, err)
	}
	switch {
	case c.Audience != aud:
		return "", fmt.Errorf("%w: audience %q, want %q", ErrBadToken, c.Audience, aud)
	case c.Subject == "":
		return "", fmt.Errorf("%w: the claim sub is required", ErrBadToken)
	case c.Expires == 0:
		return "", fmt.Errorf("%w: the claim exp is required", ErrBadToken)
	case !s.now().Before(time.Unix(c.Expires, 0)):
		return "", fmt.Errorf("%w: expired at %s", ErrBadToken, time.Unix(c.Expires, 0).UTC().Format(time.RFC3339))
	}
	return c.Subject, nil
}
