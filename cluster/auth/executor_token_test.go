package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestExecutorTokenVerify: a token verifies only with the key that signed
// it, unaltered, with agora's HS256 header, its three claims, and before
// its expiry; each refusal says what is wrong.
func TestExecutorTokenVerify(t *testing.T) {
	key := bytes.Repeat([]byte("a"), MinSecretKey)
	s, err := NewTokenSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	claims := ExecutorClaims{FrameworkID: "f", ExecutorID: "e", ContainerID: "c"}
	token, err := s.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Verify(token); err != nil || got != claims {
		t.Fatalf("Verify(own token) = %+v, %v; want %+v", got, err, claims)
	}
	other, _ := NewTokenSigner(bytes.Repeat([]byte("b"), MinSecretKey))
	parts := strings.Split(token, ".")
	enc := base64.RawURLEncoding.EncodeToString
	// A token that says alg none, re-signed by nobody.
	none := enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	forged := parts[0] + "." + enc([]byte(`{"fid":"f","eid":"other","cid":"c"}`)) + "." + parts[2]
	expired, _ := s.Sign(ExecutorClaims{FrameworkID: "f", ExecutorID: "e", ContainerID: "c", Expires: time.Now().Add(-time.Minute).Unix()})
	noCID, _ := s.Sign(ExecutorClaims{FrameworkID: "f", ExecutorID: "e"})
	for _, tc := range []struct {
		name, token, says string
		signer            *TokenSigner
	}{
		{"another key", token, "signature", other},
		{"alg none", none, "signature", s},
		{"changed claims", forged, "signature", s},
		{"two parts", parts[0] + "." + parts[1], "three dot-separated parts", s},
		{"expired", expired, "expired", s},
		{"no container", noCID, "fid, eid and cid", s},
	} {
		_, err := tc.signer.Verify(tc.token)
		if !errors.Is(err, ErrBadToken) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("Verify(%s): %v, want ErrBadToken saying %q", tc.name, err, tc.says)
		}
	}
	if _, err := NewTokenSigner(key[:MinSecretKey-1]); err == nil {
		t.Errorf("NewTokenSigner with a %d-byte key: no error", MinSecretKey-1)
	}
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Basic abc")
	if _, ok := BearerToken(r); ok {
		t.Error("BearerToken read a Basic header")
	}
	r.Header.Set("Authorization", "Bearer "+token)
	if got, ok := BearerToken(r); !ok || got != token {
		t.Errorf("BearerToken = %q, %v", got, ok)
	}
}

// FuzzExecutorTokenVerify: no input makes Verify panic, and only the
// signer's own tokens verify.
func FuzzExecutorTokenVerify(f *testing.F) {
	s, _ := NewTokenSigner(bytes.Repeat([]byte("a"), MinSecretKey))
	tok, _ := s.Sign(ExecutorClaims{FrameworkID: "f", ExecutorID: "e", ContainerID: "c"})
	f.Add(tok)
	f.Add("a.b.c")
	f.Add("..")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := s.Verify(token)
		if err == nil && token != tok {
			// Another encoding of the same claims is possible only by
			// signing them: anything verifying must re-sign to itself.
			again, _ := s.Sign(c)
			if again != token {
				t.Fatalf("Verify accepted %q, which the signer did not make", token)
			}
		}
	})
}

// BenchmarkExecutorTokenVerify is the cost the executor API adds to each
// call under --authenticate_http_executors.
func BenchmarkExecutorTokenVerify(b *testing.B) {
	s, _ := NewTokenSigner(bytes.Repeat([]byte("a"), MinSecretKey))
	tok, _ := s.Sign(ExecutorClaims{FrameworkID: "8f0e2b1c-4a5d-4e6f-9a7b-1c2d3e4f5a6b-0000", ExecutorID: "executor-1", ContainerID: "0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e"})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := s.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
