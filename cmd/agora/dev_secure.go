package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/tlsconf"
)

// devSecure is `agora dev --secure`: the dev cluster asks for credentials
// everywhere (all four --authenticate_* flags), with principals and
// random secrets it generates at each start in WORK_DIR/secure, and
// speaks TLS, with a CA and a certificate it generates at each start in
// WORK_DIR/secure/tls.
type devSecure struct {
	on    bool
	dir   string
	tls   tlsconf.Files
	agent auth.Credential // what the dev agents present to the master
	// framework is what the built-in services present: to subscribe, and
	// (DNS, Spark) to read the master's state and events.
	framework auth.Credential
	// executorKey signs the executors' tokens; the agents ask executors
	// for them (--authenticate_http_executors).
	executorKey []byte
}

// devPrincipals are the principals --secure generates: one for people and
// tools (the CLI, curl), one for the agents, one for frameworks.
var devPrincipals = []string{"operator", "agent", "framework"}

func (d *devSecure) register(fs *flag.FlagSet) {
	fs.BoolVar(&d.on, "secure", false, "require credentials on every endpoint (--authenticate_frameworks, _agents, _http_readonly, _http_readwrite):\n"+
		"generates principals operator, agent and framework with random secrets in WORK_DIR/secure and prints how to use them;\n"+
		"the master and the agents speak HTTPS (--ssl_cert_file) with a certificate of a CA generated in WORK_DIR/secure/tls,\n"+
		"and each executor calls its agent with a token of its own (--authenticate_http_executors).\n"+
		"The built-in services (Hadoop, Spark, Storm, Marathon, Chronos, DNS, Cassandra) present principal framework;\n"+
		"the APIs of Marathon, Chronos, DNS and Hadoop ask for the same credentials and speak TLS with the same certificate")
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
	d.executorKey = make([]byte, 32)
	if _, err := rand.Read(d.executorKey); err != nil {
		return err
	}
	mf.http.credentials = path
	mf.http.frameworks, mf.http.agents, mf.http.readonly, mf.http.readwrite = true, true, true, true
	return d.applyTLS(mf)
}

// applyTLS generates the CA and the cluster's certificate, for the
// addresses the dev cluster is reached at, and turns TLS on with them.
func (d *devSecure) applyTLS(mf *masterFlags) error {
	hosts := []string{mf.ip, "127.0.0.1", "localhost"}
	if h, err := os.Hostname(); err == nil {
		hosts = append(hosts, h)
	}
	if mf.hostname != "" {
		hosts = append(hosts, mf.hostname)
	}
	files, err := tlsconf.GenerateCA(filepath.Join(d.dir, "tls"), hosts, 30*24*time.Hour)
	if err != nil {
		return fmt.Errorf("generating the TLS certificate: %w", err)
	}
	d.tls = files
	mf.http.tls = tlsconf.Flags{CertFile: files.Cert, KeyFile: files.Key, CAFile: files.CA}
	return nil
}

// lines are the banner's lines on how to authenticate ("" without --secure).
func (d *devSecure) lines(masterAddr string) string {
	if !d.on {
		return ""
	}
	op := filepath.Join(d.dir, "operator.secret")
	return fmt.Sprintf("  secure      every endpoint asks for credentials (%s)\n"+
		"              and speaks TLS: the CA that signed the certificate is %s\n"+
		"              CLI:        agora agents --principal=operator --secret_file=%s --ca_file=%s\n"+
		"              or:         export AGORA_PRINCIPAL=operator AGORA_SECRET=$(cat %s) AGORA_CA_FILE=%s\n"+
		"              curl:       curl --cacert %s -u operator:$(cat %s) %s/master/state\n"+
		"              frameworks: principal 'framework', secret in %s\n"+
		"              built-in services run as 'framework'; Marathon's, Chronos's, DNS's and Hadoop's APIs\n"+
		"              ask for the same credentials over TLS: agora apps, jobs, hadoop take the flags above,\n"+
		"              or the environment with their https:// addresses as listed (--marathon, AGORA_MARATHON ...)",
		filepath.Join(d.dir, "credentials.json"), d.tls.CA, op, d.tls.CA, op, d.tls.CA, d.tls.CA, op, masterAddr, filepath.Join(d.dir, "framework.secret"))
}
