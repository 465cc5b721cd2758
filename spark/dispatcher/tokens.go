package dispatcher

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/auth"
)

// Drivers' tokens. A secured dispatcher gives each driver it launches a
// token naming its submission (auth.TokenSigner.SignSubject, audience
// TokenAudience) in EnvToken; the driver's cluster
// manager sends it to the executors' scheduler, which takes it as that
// submission's (spark/framework's Auth). The key is kept in the work directory,
// so that drivers launched before a restart keep their tokens.

// TokenAudience is the audience of drivers' tokens: a token made for
// another API does not verify at the executors' scheduler.
const TokenAudience = "spark-applications"

// EnvToken and EnvCAFile are the variables a driver's cluster manager
// (spark/jvm) reads: the token it sends as "Authorization: Bearer", and
// the PEM file of the CA that signed the scheduler's certificate (set: it
// calls the scheduler over HTTPS, trusting that CA).
const (
	EnvToken  = "AGORA_SPARK_TOKEN"
	EnvCAFile = "AGORA_SPARK_CA_FILE"
)

// TokenKeyFile is the key's file in the work directory.
const TokenKeyFile = "driver-token.key"

// DefaultDriverTokenTTL is how long a driver's token is valid: longer
// than a long job runs. A token is refused anyway once its driver is no
// longer running (spark/framework's Auth.Active), and a relaunch gets a new one.
const DefaultDriverTokenTTL = 30 * 24 * time.Hour

// LoadTokenSigner reads the work directory's key, or makes one (random,
// base64 text, mode 0600) if there is none, and returns its signer.
func LoadTokenSigner(workDir string) (*auth.TokenSigner, error) {
	path := filepath.Join(workDir, TokenKeyFile)
	key, err := auth.LoadSecretKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		// The key is text (base64 of MinSecretKey random bytes): raw
		// bytes ending in a newline would lose it to LoadSecretKey's trim,
		// and the key read back would be another one, or too short.
		raw := make([]byte, auth.MinSecretKey)
		if _, err := randRead(raw); err != nil {
			return nil, err
		}
		key = []byte(base64.RawURLEncoding.EncodeToString(raw))
		if err := os.MkdirAll(workDir, 0o700); err != nil {
			return nil, fmt.Errorf("drivers' token key: %w", err)
		}
		// O_EXCL: of two dispatchers started at once on one directory,
		// the second reads the first's key.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return LoadTokenSigner(workDir)
		}
		if err != nil {
			return nil, fmt.Errorf("drivers' token key: %w", err)
		}
		_, err = f.Write(append(key, '\n'))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("drivers' token key %s: %w", path, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("drivers' token key: %w", err)
	}
	s, err := auth.NewTokenSigner(key)
	if err != nil {
		return nil, fmt.Errorf("drivers' token key %s: %w; remove the file to have a new key made (running drivers' tokens then no longer verify: relaunch them)", path, err)
	}
	return s, nil
}

// randRead fills a new key (tests choose its bytes).
var randRead = rand.Read

// DriverActive reports whether submission id's driver is running: its
// token is good only then (spark/framework's Auth.Active).
func (d *Dispatcher) DriverActive(id string) bool {
	dr, ok := d.Get(id)
	return ok && dr.State == StateRunning
}

// driverCAFile is the name of the fetched CA file in a driver's sandbox.
const driverCAFile = ".agora-spark-ca.pem"

// driverSecurity is what a driver that runs with the executors'
// scheduler needs to call it: the environment that carries its token and
// names the CA's file, and the URI that fetches that file.
func (d *Dispatcher) driverSecurity(dr *Driver) (map[string]string, []mesos.CommandInfo_URI, error) {
	if !d.executors() {
		return nil, nil, nil
	}
	env := map[string]string{}
	var uris []mesos.CommandInfo_URI
	if ca := d.cfg.DriverCAFile; ca != "" {
		out, no := driverCAFile, false
		uris = append(uris, mesos.CommandInfo_URI{Value: ca, OutputFile: &out, Extract: &no, Cache: &no})
		env[EnvCAFile] = driverCAFile // relative: the backend reads it in its sandbox
	}
	tok, err := d.driverToken(dr)
	if err != nil {
		return nil, nil, err
	}
	if tok != "" {
		env[EnvToken] = tok
	}
	return env, uris, nil
}

// driverToken is dr's token, "" if drivers get none.
func (d *Dispatcher) driverToken(dr *Driver) (string, error) {
	if d.cfg.DriverTokens == nil {
		return "", nil
	}
	ttl := d.cfg.DriverTokenTTL
	if ttl <= 0 {
		ttl = DefaultDriverTokenTTL
	}
	return d.cfg.DriverTokens.SignSubject(TokenAudience, dr.ID, d.cfg.Now().Add(ttl))
}
