package auth

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// A subject token verifies only with its signer's key, for its audience
// and before its expiry; executor tokens and subject tokens are not taken
// for each other; each refusal says what is wrong.
func TestSubjectTokenVerify(t *testing.T) {
	s, err := NewTokenSigner(bytes.Repeat([]byte("a"), MinSecretKey))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewTokenSigner(bytes.Repeat([]byte("b"), MinSecretKey))
	token, err := s.SignSubject("spark", "driver-1", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if sub, err := s.VerifySubject(token, "spark"); err != nil || sub != "driver-1" {
		t.Fatalf("VerifySubject(own token) = %q, %v; want driver-1", sub, err)
	}
	expired, _ := s.SignSubject("spark", "driver-1", time.Now().Add(-time.Minute))
	executor, _ := s.Sign(ExecutorClaims{FrameworkID: "f", ExecutorID: "e", ContainerID: "c"})
	parts := strings.Split(token, ".")
	for _, tc := range []struct{ name, token, aud, says string }{
		{"another key's", func() string { t, _ := other.SignSubject("spark", "driver-1", time.Now().Add(time.Hour)); return t }(), "spark", "signature"},
		{"another audience's", token, "hadoop", `audience "spark", want "hadoop"`},
		{"expired", expired, "spark", "expired"},
		{"an executor token", executor, "spark", "audience"},
		{"a payload swapped in", parts[0] + "." + strings.Split(expired, ".")[1] + "." + parts[2], "spark", "signature"},
		{"not a JWT", "abc", "spark", "three"},
	} {
		if sub, err := s.VerifySubject(tc.token, tc.aud); err == nil || !errors.Is(err, ErrBadToken) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: VerifySubject = %q, %v; want an ErrBadToken saying %q", tc.name, sub, err, tc.says)
		}
	}
	if _, err := s.Verify(token); err == nil {
		t.Error("a subject token verified as an executor token")
	}
	if _, err := s.SignSubject("", "x", time.Now()); err == nil {
		t.Error("signed a token without an audience")
	}
}
