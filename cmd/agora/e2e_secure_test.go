package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/tlsconf"
)

// TestSecureDevAndClientCredentials: `agora dev --secure` asks for
// credentials and speaks only TLS, with a certificate of a CA it
// generated; the CLI without credentials exits 1 telling which flags to
// pass, without the CA exits 1 naming the master and the verification
// failure, and with both (flags or environment) lists the agent and runs
// a task.
func TestSecureDevAndClientCredentials(t *testing.T) {
	work := t.TempDir()
	// The built-in services are TestSecureDevRunsServices's.
	_, master := startBound(t, "dev", "--secure", "--port=0", "--work_dir", work,
		"--hadoop_port=0", "--marathon_port=0", "--chronos_port=0", "--dns_port=0", "--spark_port", "0")
	secretFile := filepath.Join(work, "secure", "operator.secret")
	secret, err := os.ReadFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(work, "secure", "tls", "ca.pem")
	if fi, err := os.Stat(filepath.Join(work, "secure", "tls", "key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the generated TLS key: %v, want mode 0600", err)
	}
	client := tlsClient(t, caFile)
	if resp, err := client.Get("https://" + master + "/master/state"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusUnauthorized || resp.ProtoMajor != 2 {
		t.Fatalf("GET /master/state over TLS without credentials: %s %s, want 401 over HTTP/2 (ALPN)", resp.Proto, resp.Status)
	}
	if resp, err := http.Get("http://" + master + "/master/state"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("GET /master/state in plain HTTP: %s, want the TLS server's 400", resp.Status)
		}
	}
	// Without the CA, the CLI refuses the certificate, naming the master.
	_, stderr, code := runClient(t, "https://"+master, "agents", "--principal=operator", "--secret_file="+secretFile)
	if code != 1 || !strings.Contains(stderr, "https://"+master) || !strings.Contains(stderr, "certificate signed by unknown authority") ||
		!strings.Contains(stderr, "--ca_file=FILE") {
		t.Fatalf("agora agents without the CA: exit %d, stderr %q; want 1, the master, the verification failure and --ca_file", code, stderr)
	}
	t.Setenv("AGORA_CA_FILE", caFile)
	_, stderr, code = runClient(t, master, "agents")
	if code != 1 || !strings.Contains(stderr, "401") || !strings.Contains(stderr, "--principal=NAME --secret_file=FILE") {
		t.Fatalf("agora agents without credentials: exit %d, stderr %q; want 1 and the flags to pass", code, stderr)
	}
	_, stderr, code = runClient(t, master, "agents", "--principal=operator", "--secret_file="+secretFile+".missing")
	if code != 2 || !strings.Contains(stderr, "--secret_file") {
		t.Errorf("agora agents with a missing secret file: exit %d, stderr %q; want 2 naming --secret_file", code, stderr)
	}
	_, stderr, code = runClient(t, master, "agents", "--ca_file="+secretFile)
	if code != 2 || !strings.Contains(stderr, "--ca_file") || !strings.Contains(stderr, "holds no PEM certificate") {
		t.Errorf("agora agents with a --ca_file that is no CA: exit %d, stderr %q; want 2 naming --ca_file", code, stderr)
	}
	// The agent presented its generated credential over TLS: the master lists it.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, stderr, code := runClient(t, master, "agents", "--principal=operator", "--secret_file="+secretFile, "--ca_file="+caFile)
		if code != 0 {
			t.Fatalf("agora agents --principal --secret_file: exit %d: %s", code, stderr)
		}
		if strings.Contains(out, "true") { // its ACTIVE column
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agora agents lists no active agent within 60 s: %s", out)
		}
	}
	t.Setenv("AGORA_PRINCIPAL", "operator")
	t.Setenv("AGORA_SECRET", strings.TrimSpace(string(secret)))
	out, stderr, code := runClient(t, master, "run", "--", "echo", "authenticated-hello")
	if code != 0 || !strings.Contains(out, "authenticated-hello") {
		t.Fatalf("agora run with AGORA_PRINCIPAL/AGORA_SECRET: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}

// tlsClient verifies servers with the CA in caFile.
func tlsClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	cfg, err := tlsconf.ClientConfig(caFile)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// TestMasterRefusesBadCredentials: a bad credentials file, or an
// authenticate flag without one, stops the master at start with exit 2
// and a message naming the flag and the problem.
func TestMasterRefusesBadCredentials(t *testing.T) {
	dir := t.TempDir()
	dup := filepath.Join(dir, "dup.json")
	if err := os.WriteFile(dup, []byte(`{"credentials": [{"principal": "a", "secret": "1"},`+"\n"+`{"principal": "a", "secret": "2"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.json")
	if err := os.WriteFile(broken, []byte("{\"credentials\": [\n{\"principal\": \"a\",, }]}"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		says []string
	}{
		{[]string{"--authenticate_agents"}, []string{"--authenticate_agents needs --credentials"}},
		{[]string{"--credentials=" + filepath.Join(dir, "absent.json")}, []string{"--credentials", "absent.json", "no such file"}},
		{[]string{"--credentials=" + dup, "--authenticate_http_readonly"}, []string{"--credentials", `principal "a"`, "duplicate principal"}},
		{[]string{"--credentials=" + broken}, []string{"--credentials", "line 2", "malformed JSON"}},
	} {
		_, stderr, code := runClient(t, "127.0.0.1:1", append([]string{"master", "--port=0", "--work_dir=" + filepath.Join(dir, "master")}, tc.args...)...)
		if code != 2 {
			t.Errorf("agora master %q: exit %d, want 2 (stderr %q)", tc.args, code, stderr)
		}
		for _, s := range tc.says {
			if !strings.Contains(stderr, s) {
				t.Errorf("agora master %q: stderr %q does not say %q", tc.args, stderr, s)
			}
		}
	}
}

// TestSecureDevRunsServices: under `agora dev --secure` the built-in
// services present the generated 'framework' credential: Hadoop, Marathon
// and Chronos subscribe as it, an app deployed over Marathon's API runs,
// and the DNS server, reading the master with the same credential, names
// its instance. Their own APIs speak TLS with the cluster's certificate
// and ask for its credentials: a refused request changes nothing, /ping
// stays open, and the CLI's service commands work with --principal,
// --secret_file and --ca_file. (The Spark dispatcher's is
// TestDevRunsSparkDispatcher.)
func TestSecureDevRunsServices(t *testing.T) {
	// Out of /tmp, which isolated tasks have their own of: the Hadoop
	// framework stages its TaskTracker binary here, and the job's data.
	work, err := os.MkdirTemp("/var/tmp", "agora-secure-dev-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	// Five distinct free ports: each listener stays open until all are
	// chosen (one closed at once could be handed out again: it was, and
	// two services were given the same port).
	var held []net.Listener
	freePort := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
		_, port, _ := net.SplitHostPort(l.Addr().String())
		return port
	}
	hadoopPort, marathonPort, chronosPort, dnsPort, dnsHTTPPort := freePort(), freePort(), freePort(), freePort(), freePort()
	for _, l := range held {
		l.Close()
	}
	_, master := startBound(t, "dev", "--secure", "--port=0", "--ip=127.0.0.1", "--work_dir", work, "--hadoop_port", hadoopPort,
		"--marathon_port", marathonPort, "--chronos_port", chronosPort, "--dns_port", dnsPort, "--dns_http_port", dnsHTTPPort, "--spark_port", "0")
	secret, err := os.ReadFile(filepath.Join(work, "secure", "operator.secret"))
	if err != nil {
		t.Fatal(err)
	}
	operator := auth.Credential{Principal: "operator", Secret: strings.TrimSpace(string(secret))}
	client := tlsClient(t, filepath.Join(work, "secure", "tls", "ca.pem")) // the master's and the services' TLS
	get := func(url string, cred auth.Credential, v any) error {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		cred.Apply(req)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(v)
	}
	poll := func(what string, limit time.Duration, cond func() error) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for {
			err := cond()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s within %s: %v", what, limit, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// The frameworks subscribed as 'framework' (the master checked it).
	poll("Hadoop, marathon and chronos subscribed as principal 'framework'", 60*time.Second, func() error {
		var fs struct {
			Frameworks []struct {
				Name, Principal string
				Active          bool
			}
		}
		if err := get("https://"+master+"/master/frameworks", operator, &fs); err != nil {
			return err
		}
		active := map[string]bool{}
		for _, f := range fs.Frameworks {
			active[f.Name] = f.Active && f.Principal == "framework"
		}
		if !active["Hadoop"] || !active["marathon"] || !active["chronos"] {
			return fmt.Errorf("frameworks %+v", fs.Frameworks)
		}
		return nil
	})
	// Their own APIs ask for the cluster's credentials, over TLS with its certificate.
	chronosURL, marathonURL := "https://127.0.0.1:"+chronosPort, "https://127.0.0.1:"+marathonPort
	var jobs []any
	if err := get(chronosURL+"/v1/scheduler/jobs", operator, &jobs); err != nil {
		t.Fatalf("Chronos's API under --secure with the operator's credentials: %v", err)
	}
	app := `{"id":"/secure-app","cmd":"sleep 600","cpus":0.1,"mem":32,"instances":1}`
	post := func(cred auth.Credential) (int, string, http.Header) {
		req, _ := http.NewRequest(http.MethodPost, marathonURL+"/v2/apps", strings.NewReader(app))
		req.Header.Set("Content-Type", "application/json")
		cred.Apply(req)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST /v2/apps: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	for _, c := range []struct {
		name string
		cred auth.Credential
		want string
	}{
		{"without credentials", auth.Credential{}, "authentication required"},
		{"with a wrong secret", auth.Credential{Principal: "operator", Secret: "guess"}, `invalid credentials for principal "operator"`},
	} {
		code, body, h := post(c.cred)
		if code != http.StatusUnauthorized || !strings.Contains(body, c.want) || h.Get("WWW-Authenticate") != `Basic realm="marathon"` {
			t.Fatalf("POST /v2/apps %s: %d %q (WWW-Authenticate %q); want 401 saying %q", c.name, code, body, h.Get("WWW-Authenticate"), c.want)
		}
	}
	var apps struct{ Apps []struct{ ID string } }
	if err := get(marathonURL+"/v2/apps", operator, &apps); err != nil || len(apps.Apps) != 0 {
		t.Fatalf("apps after the refused POSTs: %+v, %v; want none", apps.Apps, err)
	}
	if resp, err := client.Get(marathonURL + "/ping"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /ping without credentials: %s, want 200 (open for load balancers)", resp.Status)
	}
	if resp, err := http.Get("http://127.0.0.1:" + marathonPort + "/ping"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET /ping in plain HTTP: %s, want the TLS server's 400", resp.Status)
		}
	}
	if code, body, _ := post(operator); code != http.StatusCreated {
		t.Fatalf("POST /v2/apps with the operator's credentials: %d %s, want 201 Created", code, body)
	}
	poll("the app's instance RUNNING", 60*time.Second, func() error {
		var ts struct {
			Tasks []struct{ AppID, State string }
		}
		if err := get(marathonURL+"/v2/tasks", operator, &ts); err != nil {
			return err
		}
		for _, task := range ts.Tasks {
			if task.AppID == "/secure-app" && task.State == "TASK_RUNNING" {
				return nil
			}
		}
		return fmt.Errorf("tasks %+v", ts.Tasks)
	})
	// The master's UI links to the services' pages over HTTPS.
	var fws struct {
		Frameworks []struct {
			Name     string
			WebuiURL string `json:"webui_url"`
		}
	}
	if err := get("https://"+master+"/master/frameworks", operator, &fws); err != nil {
		t.Fatal(err)
	}
	for _, f := range fws.Frameworks {
		if f.Name == "marathon" || f.Name == "chronos" || f.Name == "Hadoop" {
			if !strings.HasPrefix(f.WebuiURL, "https://") {
				t.Errorf("framework %s's webui_url %q, want https://", f.Name, f.WebuiURL)
			}
		}
	}
	testSecureServiceCLI(t, work, marathonPort, chronosPort, hadoopPort)
	poll("the DNS server names the app's instance", 60*time.Second, func() error {
		q := new(dns.Msg)
		q.SetQuestion("_secure-app._tcp.marathon.agora.", dns.TypeSRV)
		c := &dns.Client{Timeout: 2 * time.Second}
		r, _, err := c.Exchange(q, "127.0.0.1:"+dnsPort)
		if err != nil {
			return err
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			return fmt.Errorf("answer %s with %d records", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		return nil
	})
	// The DNS server's config does not show the secret it reads the master with.
	var cfg struct {
		MesosAuthentication string `json:"mesosAuthentication"`
		MesosCredentials    struct{ Principal, Secret string }
	}
	if err := get("https://127.0.0.1:"+dnsHTTPPort+"/v1/config", auth.Credential{}, &cfg); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("the DNS API's /v1/config without credentials: %v, want 401", err)
	}
	if err := get("https://127.0.0.1:"+dnsHTTPPort+"/v1/config", operator, &cfg); err != nil {
		t.Fatal(err)
	}
	var version map[string]string
	if err := get("https://127.0.0.1:"+dnsHTTPPort+"/v1/version", auth.Credential{}, &version); err != nil {
		t.Errorf("the DNS API's /v1/version, its health check, without credentials: %v", err)
	}
	fwSecret, _ := os.ReadFile(filepath.Join(work, "secure", "framework.secret"))
	if cfg.MesosAuthentication != "basic" || cfg.MesosCredentials.Principal != "framework" ||
		strings.Contains(cfg.MesosCredentials.Secret, strings.TrimSpace(string(fwSecret))) {
		t.Errorf("/v1/config: %+v; want basic, principal 'framework', the secret hidden", cfg)
	}
}

// testSecureServiceCLI: the CLI's service commands against the services
// of a secure dev cluster in work: without the CA they name the
// certificate failure and --ca_file, without credentials the flags to
// pass, and with both they work.
func testSecureServiceCLI(t *testing.T, work, marathonPort, chronosPort, hadoopPort string) {
	t.Helper()
	t.Setenv("AGORA_PRINCIPAL", "")
	t.Setenv("AGORA_SECRET", "")
	t.Setenv("AGORA_CA_FILE", "")
	secretFile := filepath.Join(work, "secure", "operator.secret")
	caFile := filepath.Join(work, "secure", "tls", "ca.pem")
	marathon, chronos, hadoop := "--marathon=127.0.0.1:"+marathonPort, "--chronos=127.0.0.1:"+chronosPort, "--hadoop=127.0.0.1:"+hadoopPort
	_, stderr, code := runClient(t, "", "apps", "--marathon=https://127.0.0.1:"+marathonPort, "--principal=operator", "--secret_file="+secretFile)
	if code != 1 || !strings.Contains(stderr, "certificate signed by unknown authority") || !strings.Contains(stderr, "--ca_file=FILE") {
		t.Errorf("agora apps without the CA: exit %d, %q; want 1 naming the certificate failure and --ca_file", code, stderr)
	}
	for _, args := range [][]string{{"apps", marathon}, {"jobs", "list", chronos}, {"hadoop", "jobs", hadoop}} {
		_, stderr, code := runClient(t, "", append(args, "--ca_file="+caFile)...)
		if code != 1 || !strings.Contains(stderr, "401") || !strings.Contains(stderr, "--principal=NAME --secret_file=FILE") {
			t.Errorf("agora %v without credentials: exit %d, %q; want 1, the 401 and the flags to pass", args, code, stderr)
		}
	}
	out, stderr, code := runClient(t, "", "apps", marathon, "--ca_file="+caFile, "--principal=operator", "--secret_file="+secretFile)
	if code != 0 || !strings.Contains(out, "/secure-app") {
		t.Errorf("agora apps with credentials and the CA: exit %d, stdout %q, stderr %q; want /secure-app listed", code, out, stderr)
	}
	t.Setenv("AGORA_PRINCIPAL", "operator")
	secret, _ := os.ReadFile(secretFile)
	t.Setenv("AGORA_SECRET", strings.TrimSpace(string(secret)))
	t.Setenv("AGORA_CA_FILE", caFile)
	// The environment the banner gives, with the https:// addresses it
	// lists: AGORA_CA_FILE verifies them, it does not make a host:port
	// HTTPS.
	httpsMarathon, httpsChronos, httpsHadoop := "--marathon=https://127.0.0.1:"+marathonPort, "--chronos=https://127.0.0.1:"+chronosPort, "--hadoop=https://127.0.0.1:"+hadoopPort
	for _, args := range [][]string{{"jobs", "list", httpsChronos}, {"hadoop", "jobs", httpsHadoop}, {"app", "show", "/secure-app", httpsMarathon}} {
		if _, stderr, code := runClient(t, "", args...); code != 0 {
			t.Errorf("agora %v with AGORA_PRINCIPAL, AGORA_SECRET and AGORA_CA_FILE: exit %d, %q", args, code, stderr)
		}
	}
	// A Hadoop job runs: its TaskTracker calls the framework's umbilical
	// over HTTPS, trusting the CA it was given.
	if _, stderr, code := runClient(t, "", "hadoop", "teragen", "1000", filepath.Join(work, "tera-in"), "--maps", "1", httpsHadoop); code != 0 {
		t.Errorf("agora hadoop teragen on the secure framework: exit %d, %q", code, stderr)
	}
}

// TestServicesRefuseIncompleteCredentials: `agora marathon`, `chronos`
// and `dns` take --principal and --secret_file as the CLI does; a
// principal without its secret, or an unreadable secret file, exits 2
// naming the flag before anything starts.
func TestServicesRefuseIncompleteCredentials(t *testing.T) {
	t.Setenv("AGORA_PRINCIPAL", "")
	t.Setenv("AGORA_SECRET", "")
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.secret")
	commands := map[string]func(context.Context, []string, io.Writer) int{
		"marathon": marathonCommand, "chronos": chronosCommand, "dns": dnsCommand,
	}
	for name, run := range commands {
		base := []string{"--work_dir", filepath.Join(dir, name), "--http_port", "0"}
		if name == "dns" {
			base = []string{"--port", "0", "--http_port", "0"}
		}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--principal", "framework"}, "--principal=framework needs its secret: --secret_file=FILE or AGORA_SECRET"},
			{[]string{"--principal", "framework", "--secret_file", missing}, "--secret_file"},
			{[]string{"--secret_file", missing}, "--secret_file"},
		} {
			var out bytes.Buffer
			if code := run(context.Background(), append(base, c.args...), &out); code != 2 || !strings.Contains(out.String(), c.want) {
				t.Errorf("agora %s %v: exit %d, %q; want 2 and %q", name, c.args, code, out.String(), c.want)
			}
		}
	}
}

// TestMasterAndAgentMutualTLS: a master with --ssl_* and
// --ssl_require_cert serves only clients presenting a certificate of its
// CA; an agent configured by libprocess's LIBPROCESS_SSL_* environment
// presents its own, verifies the master's and registers; bad TLS flags
// stop the master at start with exit 2 naming the flag.
func TestMasterAndAgentMutualTLS(t *testing.T) {
	dir := t.TempDir()
	files, err := tlsconf.GenerateCA(filepath.Join(dir, "tls"), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--ssl_cert_file=" + files.Cert}, "--ssl_cert_file needs --ssl_key_file"},
		{[]string{"--ssl_cert_file=" + files.Cert, "--ssl_key_file=" + filepath.Join(dir, "absent.pem")}, "--ssl_key_file: open"},
		{[]string{"--ssl_cert_file=" + files.Cert, "--ssl_key_file=" + files.Key, "--ssl_require_cert"}, "need --ssl_ca_file"},
	} {
		_, stderr, code := runClient(t, "127.0.0.1:1", append([]string{"master", "--port=0", "--work_dir=" + filepath.Join(dir, "bad")}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.says) {
			t.Errorf("agora master %q: exit %d, stderr %q; want 2 saying %q", tc.args, code, stderr, tc.says)
		}
	}

	_, master := startBound(t, "master", "--port=0", "--work_dir="+filepath.Join(dir, "master"), "--ssl_cert_file="+files.Cert,
		"--ssl_key_file="+files.Key, "--ssl_ca_file="+files.CA, "--ssl_require_cert")
	t.Setenv(tlsconf.EnvCertFile, files.Cert)
	t.Setenv(tlsconf.EnvKeyFile, files.Key)
	t.Setenv(tlsconf.EnvCAFile, files.CA)
	t.Setenv(tlsconf.EnvRequireCert, "true")
	_, agentAddr := startBound(t, "agent", "--master="+master, "--port=0", "--work_dir="+filepath.Join(dir, "agent"),
		"--resources=cpus:1;mem:256;disk:256", "--switch_user=false")

	// A client with the CA but no certificate of its own is refused.
	if resp, err := tlsClient(t, files.CA).Get("https://" + master + "/master/state"); err == nil {
		resp.Body.Close()
		t.Fatalf("GET /master/state without a client certificate: %s, want the handshake refused", resp.Status)
	}
	withCert := tlsconf.Flags{CertFile: files.Cert, KeyFile: files.Key, CAFile: files.CA}
	cfg, err := withCert.Client()
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	var agentID string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var s masterState
		resp, err := client.Get("https://" + master + "/master/state")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&s)
			resp.Body.Close()
			if resp.ProtoMajor != 2 {
				t.Fatalf("GET /master/state over TLS: %s, want HTTP/2 by ALPN", resp.Proto)
			}
		}
		if err == nil && len(s.Slaves) == 1 {
			agentID = s.Slaves[0].ID
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not register over mutual TLS within 60 s: %v, %+v", err, s)
		}
	}
	// The agent serves TLS too.
	resp, err := client.Get("https://" + agentAddr + "/state")
	if err != nil {
		t.Fatalf("GET the agent's /state over TLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the agent's /state over TLS: %s", resp.Status)
	}
	// The master relays it over TLS, presenting its certificate to the
	// agent that requires one (no plain HTTP is accepted on either side).
	resp, err = client.Get("https://" + master + "/agent/" + agentID + "/state")
	if err != nil {
		t.Fatalf("GET the agent's /state through the master: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), agentID) {
		t.Fatalf("GET the agent's /state through the master: %s %.300q", resp.Status, body)
	}
}

// TestAgentRefusesBadSecurityFlags: executor authentication without a
// key, a key too short, and malformed --acls stop the agent at start with
// exit 2 and a message naming the flag.
func TestAgentRefusesBadSecurityFlags(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.key")
	if err := os.WriteFile(short, []byte("0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--authenticate_http_executors"}, "--authenticate_http_executors needs --jwt_secret_key"},
		{[]string{"--jwt_secret_key=" + short}, "has 10 bytes, want at least 32"},
		{[]string{"--executor_secret_key=" + filepath.Join(dir, "absent.key")}, "--jwt_secret_key: open"},
		{[]string{"--acls={\"access_sandboxes\": [{\"principals\": {\"type\": \"ANY\"}}]}"}, `--acls: access_sandboxes[0]: missing "users"`},
	} {
		_, stderr, code := runClient(t, "127.0.0.1:1", append([]string{"agent", "--port=0", "--master=127.0.0.1:1", "--work_dir=" + filepath.Join(dir, "agent")}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.says) {
			t.Errorf("agora agent %q: exit %d, stderr %q; want 2 saying %q", tc.args, code, stderr, tc.says)
		}
	}
}
