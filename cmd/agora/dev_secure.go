package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/agora-cluster/agora/cluster/auth"
)

// devSecure is `agora dev --secure`: the dev cluster asks for credentials
// everywhere (all four --authenticate_* flags), with principals and
// random secrets it generates at each start in WORK_DIR/secure.
type devSecure struct {
	on    bool
	dir   string
	agent auth.Credential // what the dev agents present to the master
	// framework is what the built-in services present: to subscribe, and
	// (DNS, Spark) to read the master's state and events.
	framework auth.Credential
}

// devPrincipals are the principals --secure generates: one for people and
// tools (the CLI, curl), one for the agents, one for frameworks.
var devPrincipals = []string{"operator", "agent", "framework"}

func (d *devSecure) register(fs *flag.FlagSet) {
	fs.BoolVar(&d.on, "secure", false, "require credentials on every endpoint (--authenticate_frameworks, _agents, _http_readonly, _http_readwrite):\n"+
		"generates principals operator, agent and framework with random secrets in WORK_DIR/secure and prints how to use them.\n"+
		"The built-in services (Hadoop, Spark, Marathon, Chronos, DNS) present principal framework; their own APIs ask for no credentials yet")
}

// apply turns the master's authentication on and writes the credentials;
// without --secure it does nothing.
func (d *devSecure) apply(mf *masterFlags) error {
	if !d.on {
		return nil
	}
	d.dir = filepath.Join(mf.workDir, "secure")
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return err
	}
	var file struct {
		Credentials []auth.Credential `json:"credentials"`
	}
	for _, p := range devPrincipals {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		secret := base64.RawURLEncoding.EncodeToString(b)
		if err := os.WriteFile(filepath.Join(d.dir, p+".secret"), []byte(secret+"\n"), 0o600); err != nil {
			return err
		}
		// The master's file holds only hashes; the secrets are in their own files.
		file.Credentials = append(file.Credentials, auth.Credential{Principal: p, Secret: auth.HashSecret(secret)})
		switch p {
		case "agent":
			d.agent = auth.Credential{Principal: p, Secret: secret}
		case "framework":
			d.framework = auth.Credential{Principal: p, Secret: secret}
		}
	}
	b, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(d.dir, "credentials.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return err
	}
	mf.http.credentials = path
	mf.http.frameworks, mf.http.agents, mf.http.readonly, mf.http.readwrite = true, true, true, true
	return nil
}

// lines are the banner's lines on how to authenticate ("" without --secure).
func (d *devSecure) lines(masterAddr string) string {
	if !d.on {
		return ""
	}
	op := filepath.Join(d.dir, "operator.secret")
	return fmt.Sprintf("  secure      every endpoint asks for credentials (%s)\n"+
		"              CLI:        agora agents --principal=operator --secret_file=%s\n"+
		"              or:         export AGORA_PRINCIPAL=operator AGORA_SECRET=$(cat %s)\n"+
		"              curl:       curl -u operator:$(cat %s) http://%s/master/state\n"+
		"              frameworks: principal 'framework', secret in %s\n"+
		"              built-in services run as 'framework' (their own APIs ask for no credentials yet)",
		filepath.Join(d.dir, "credentials.json"), op, op, op, masterAddr, filepath.Join(d.dir, "framework.secret"))
}
