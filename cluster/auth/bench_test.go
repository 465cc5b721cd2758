package auth

import (
	"net/http/httptest"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// BenchmarkCheck is the cost authentication adds to one request: parsing
// Basic credentials and verifying them, for each form of stored secret
// (bcrypt after its first success, which is cached).
func BenchmarkCheck(b *testing.B) {
	hashed, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	for _, stored := range []struct{ name, secret string }{
		{"plain", "pw"}, {"sha256", HashSecret("pw")}, {"bcrypt-cached", string(hashed)},
	} {
		creds, err := ParseCredentials([]byte(`{"credentials":[{"principal":"fw","secret":"`+stored.secret+`"}]}`), "")
		if err != nil {
			b.Fatal(err)
		}
		a, err := New(Options{Credentials: creds, Frameworks: true})
		if err != nil {
			b.Fatal(err)
		}
		req := httptest.NewRequest("POST", "/api/v1/scheduler", nil)
		req.SetBasicAuth("fw", "pw")
		b.Run(stored.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := a.Check(req, Frameworks); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
