package tlsconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzServerFiles: whatever the files --ssl_cert_file, --ssl_key_file and
// --ssl_ca_file name hold, Server and Client do not panic, and a refusal
// names the flag at fault; a configuration they accept has a
// certificate.
func FuzzServerFiles(f *testing.F) {
	dir := f.TempDir()
	files, err := GenerateCA(filepath.Join(dir, "seed"), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	cert, key, ca := read(files.Cert), read(files.Key), read(files.CA)
	f.Add(cert, key, ca, true)
	f.Add(cert, key, []byte("not a CA"), true)
	f.Add(key, cert, ca, false)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), key, ca, false)
	f.Add([]byte{}, []byte{}, []byte{}, true)
	f.Fuzz(func(t *testing.T, cert, key, ca []byte, require bool) {
		d := t.TempDir()
		fl := Flags{CertFile: filepath.Join(d, "cert.pem"), KeyFile: filepath.Join(d, "key.pem"), CAFile: filepath.Join(d, "ca.pem"), RequireCert: require}
		for p, b := range map[string][]byte{fl.CertFile: cert, fl.KeyFile: key, fl.CAFile: ca} {
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		cfg, err := fl.Server()
		switch {
		case err != nil && !strings.Contains(err.Error(), "--ssl_"):
			t.Fatalf("Server: %v, which names no flag", err)
		case err == nil && len(cfg.Certificates) != 1:
			t.Fatalf("Server accepted files without a certificate: %+v", cfg)
		}
		if _, err := fl.Client(); err != nil && !strings.Contains(err.Error(), "--ssl_") {
			t.Fatalf("Client: %v, which names no flag", err)
		}
	})
}
