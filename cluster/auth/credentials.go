// Package auth authenticates the callers of agora's HTTP surfaces: the
// principals and secrets of a credentials file in Mesos's format, HTTP
// Basic checked against them, and the authenticated principal carried in
// the request's context for the handlers (and, later, authorization).
package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"
)

// Credential is one principal and its secret, as in Mesos's credentials
// file. In a file the master reads, the secret may be given hashed
// ("sha256:<64 hex digits>" or a bcrypt hash, "$2a$..." / "$2b$..." /
// "$2y$...") or read from a file of its own (secret_file, relative to the
// credentials file), so that no secret needs to be written in the clear.
type Credential struct {
	Principal  string `json:"principal"`
	Secret     string `json:"secret,omitempty"`
	SecretFile string `json:"secret_file,omitempty"`
}

// Credentials are the principals a master or agent accepts (--credentials).
// They are safe for concurrent use.
type Credentials struct {
	secrets map[string]secret
}

// secret is how one principal's secret is checked.
type secret struct {
	sum    [sha256.Size]byte // SHA-256 of the secret (plain and sha256: forms)
	bcrypt []byte            // or its bcrypt hash
	// verified holds the SHA-256 of the last secret that matched the
	// bcrypt hash, so that a client sending the same credentials on every
	// call does not pay bcrypt's deliberate cost each time.
	verified *atomic.Pointer[[sha256.Size]byte]
}

// credentialsFile is Mesos's JSON form: {"credentials": [...]}.
type credentialsFile struct {
	Credentials *[]Credential `json:"credentials"`
}

// LoadCredentials reads a credentials file: Mesos's JSON form, or its
// older text form of one "principal secret" pair per line. Every problem
// is an error naming the file and where in it: a missing file, malformed
// JSON (with its line), an unknown field, a duplicate principal, an empty
// principal or secret, an unreadable secret_file, a malformed hash.
func LoadCredentials(path string) (*Credentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credentials file: %w", err)
	}
	c, err := ParseCredentials(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("credentials file %s: %w", path, err)
	}
	return c, nil
}

// ParseCredentials parses a credentials file's contents; dir is where
// relative secret_file paths are found.
func ParseCredentials(data []byte, dir string) (*Credentials, error) {
	list, err := parseList(data)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, errors.New("no credentials: give at least one {\"principal\": ..., \"secret\": ...}")
	}
	c := &Credentials{secrets: make(map[string]secret, len(list))}
	for i, cred := range list {
		where := fmt.Sprintf("credential %d", i+1)
		if cred.Principal == "" {
			return nil, fmt.Errorf("%s: empty principal", where)
		}
		where = fmt.Sprintf("credential %d (principal %q)", i+1, cred.Principal)
		if _, dup := c.secrets[cred.Principal]; dup {
			return nil, fmt.Errorf("%s: duplicate principal", where)
		}
		value, err := cred.secret(dir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		s, err := parseSecret(value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		c.secrets[cred.Principal] = s
	}
	return c, nil
}

// parseList decodes the JSON form, or the text form when the data does
// not start with '{'.
func parseList(data []byte) ([]Credential, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("the file is empty")
	}
	if trimmed[0] != '{' {
		return parseText(string(data))
	}
	var f credentialsFile
	if err := decodeStrict(data, &f); err != nil {
		return nil, err
	}
	if f.Credentials == nil {
		return nil, errors.New(`no "credentials" list: the file is {"credentials": [{"principal": ..., "secret": ...}]}`)
	}
	return *f.Credentials, nil
}

// parseText reads Mesos's text form: "principal secret" per line.
func parseText(s string) ([]Credential, error) {
	var list []Credential
	for n, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: want \"principal secret\" (or a JSON file starting with '{'), got %d fields", n+1, len(fields))
		}
		list = append(list, Credential{Principal: fields[0], Secret: fields[1]})
	}
	return list, nil
}

// decodeStrict decodes one JSON value into v, refusing unknown fields and
// trailing data; errors name the line and, for a wrong type, the field.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			return fmt.Errorf("line %d: unexpected data after the JSON object", lineAt(data, dec.InputOffset()))
		}
		return nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("line %d: malformed JSON: %v", lineAt(data, syn.Offset), syn)
	case errors.As(err, &typ):
		return fmt.Errorf("line %d: field %q must be a %s, not a %s", lineAt(data, typ.Offset), typ.Field, typ.Type, typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("line %d: malformed JSON: unexpected end of file", lineAt(data, int64(len(data))))
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		// The decoder names the field; principal, secret and secret_file are all there is.
		return fmt.Errorf("line %d: %s (known: principal, secret, secret_file)", lineAt(data, dec.InputOffset()), strings.TrimPrefix(err.Error(), "json: "))
	}
	return fmt.Errorf("malformed JSON: %w", err)
}

// lineAt is the 1-based line of byte offset off in data.
func lineAt(data []byte, off int64) int {
	off = min(max(off, 0), int64(len(data)))
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// secret returns the credential's secret, read from its secret_file if it
// names one (relative to dir). Exactly one of the two must be given.
func (c Credential) secret(dir string) (string, error) {
	switch {
	case c.Secret != "" && c.SecretFile != "":
		return "", errors.New(`give "secret" or "secret_file", not both`)
	case c.SecretFile != "":
		path := c.SecretFile
		if !filepath.IsAbs(path) && dir != "" {
			path = filepath.Join(dir, path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("secret_file: %w", err)
		}
		s := strings.TrimRight(string(b), "\r\n")
		if s == "" {
			return "", fmt.Errorf("secret_file %s is empty", path)
		}
		return s, nil
	case c.Secret == "":
		return "", errors.New(`empty secret: give "secret" or "secret_file"`)
	}
	return c.Secret, nil
}

// sha256Prefix marks a secret given as its SHA-256, in hex.
const sha256Prefix = "sha256:"

// parseSecret turns a secret as written in a credentials file into its
// check: a hash (sha256:..., bcrypt) or the plain secret.
func parseSecret(v string) (secret, error) {
	switch {
	case strings.HasPrefix(v, sha256Prefix):
		sum, err := hex.DecodeString(strings.TrimPrefix(v, sha256Prefix))
		if err != nil || len(sum) != sha256.Size {
			return secret{}, fmt.Errorf("secret %q...: a sha256: secret is followed by 64 hex digits (sha256sum of the secret)", sha256Prefix)
		}
		var s secret
		copy(s.sum[:], sum)
		return s, nil
	case strings.HasPrefix(v, "$2a$") || strings.HasPrefix(v, "$2b$") || strings.HasPrefix(v, "$2y$"):
		if _, err := bcrypt.Cost([]byte(v)); err != nil {
			return secret{}, fmt.Errorf("bcrypt secret: %w", err)
		}
		return secret{bcrypt: []byte(v), verified: new(atomic.Pointer[[sha256.Size]byte])}, nil
	}
	return secret{sum: sha256.Sum256([]byte(v))}, nil
}

// HashSecret is the "sha256:..." form of a secret, for a credentials file
// that should not hold it in the clear.
func HashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return sha256Prefix + hex.EncodeToString(sum[:])
}

// Verify reports whether secret is principal's. The comparison takes the
// same time whatever the secret, and for an unknown principal as for a
// known one (both compare SHA-256 sums).
func (c *Credentials) Verify(principal, value string) bool {
	if c == nil {
		return false
	}
	sum := sha256.Sum256([]byte(value))
	s, ok := c.secrets[principal]
	if s.bcrypt == nil {
		match := subtle.ConstantTimeCompare(sum[:], s.sum[:]) == 1
		return ok && match
	}
	if last := s.verified.Load(); last != nil && subtle.ConstantTimeCompare(sum[:], last[:]) == 1 {
		return true
	}
	if bcrypt.CompareHashAndPassword(s.bcrypt, []byte(value)) != nil {
		return false
	}
	s.verified.Store(&sum)
	return true
}

// Principals lists the principals, for messages and tests.
func (c *Credentials) Principals() []string {
	var out []string
	for p := range c.secrets {
		out = append(out, p)
	}
	return out
}

// LoadCredential reads a single credential, as the agent's --credential
// flag (and the CLI's and the SDK's) give it: a JSON object {"principal":
// ..., "secret": ...} (or "secret_file"), or one "principal secret" line.
// The secret is sent to the master, so it must be the secret itself, not
// a hash of it.
func LoadCredential(path string) (Credential, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Credential{}, fmt.Errorf("credential file: %w", err)
	}
	c, err := parseCredential(data, filepath.Dir(path))
	if err != nil {
		return Credential{}, fmt.Errorf("credential file %s: %w", path, err)
	}
	return c, nil
}

func parseCredential(data []byte, dir string) (Credential, error) {
	trimmed := bytes.TrimSpace(data)
	var c Credential
	switch {
	case len(trimmed) == 0:
		return Credential{}, errors.New("the file is empty")
	case trimmed[0] == '{':
		if err := decodeStrict(data, &c); err != nil {
			return Credential{}, err
		}
	default:
		list, err := parseText(string(data))
		if err != nil {
			return Credential{}, err
		}
		if len(list) != 1 {
			return Credential{}, fmt.Errorf("%d credentials: an agent or client presents exactly one", len(list))
		}
		c = list[0]
	}
	if c.Principal == "" {
		return Credential{}, errors.New("empty principal")
	}
	value, err := c.secret(dir)
	if err != nil {
		return Credential{}, err
	}
	return Credential{Principal: c.Principal, Secret: value}, nil
}
