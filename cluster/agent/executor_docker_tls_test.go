package agent

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/containerizer/docker"
	"github.com/agora-cluster/agora/cluster/tlsconf"
)

// TestDockerExecutorTLSEnvironment: on a TLS agent a Docker executor gets
// the TLS environment a native one gets, with the agent's CA bundle copied
// into its sandbox and named by its path inside the container, the name
// the agent's certificate holds, no certificate of the agent's, and its
// token. Under --ssl_require_cert it gets neither TLS nor the token, which
// its plain-HTTP calls would carry in cleartext.
func TestDockerExecutorTLSEnvironment(t *testing.T) {
	dir := t.TempDir()
	files, err := tlsconf.GenerateCA(filepath.Join(dir, "tls"), []string{"agent.example"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := auth.NewTokenSigner([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, require := range []bool{false, true} {
		serverTLS, err := (&tlsconf.Flags{CertFile: files.Cert, KeyFile: files.Key, CAFile: files.CA, RequireCert: require}).Server()
		if err != nil {
			t.Fatal(err)
		}
		a := &Agent{ln: ln, tokens: signer, cfg: Config{Hostname: "agent.example", TLS: serverTLS, TLSCAFile: files.CA,
			TLSCertFile: files.Cert, TLSKeyFile: files.Key, TLSDowngrade: require}}
		e := &executor{key: execKey{"fw", "ex"}, containerID: "c1", sandbox: t.TempDir(),
			info: mesos.ExecutorInfo{Container: &mesos.ContainerInfo{Type: mesos.ContainerInfo_DOCKER.Enum(),
				Docker: &mesos.ContainerInfo_DockerInfo{Image: "busybox"}}}}
		if require {
			// A Docker executor that could not reach the agent is refused
			// at launch, naming why: no plain HTTP, or no token on it.
			for _, c := range []struct {
				downgrade, authn bool
				want             string
			}{{false, false, "--ssl_support_downgrade"}, {true, true, "--authenticate_http_executors"}} {
				b := &Agent{ln: ln, tokens: signer, cfg: a.cfg}
				b.cfg.TLSDowngrade, b.cfg.AuthenticateHTTPExecutors = c.downgrade, c.authn
				if _, err := b.dockerExecutorTask(e); err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("--ssl_require_cert, downgrade %v, executor authentication %v: %v; want a refusal naming %s", c.downgrade, c.authn, err, c.want)
				}
			}
		}
		dt, err := a.dockerExecutorTask(e)
		if err != nil {
			t.Fatal(err)
		}
		has := func(prefix string) bool {
			return slices.ContainsFunc(dt.Env, func(kv string) bool { return strings.HasPrefix(kv, prefix) })
		}
		if require {
			if has(tlsconf.EnvEnabled) || has(auth.EnvExecutorToken+"=") {
				t.Errorf("--ssl_require_cert: env %q, want neither TLS nor the token", dt.Env)
			}
			continue
		}
		for _, want := range []string{tlsconf.EnvEnabled + "=true", tlsconf.EnvCAFile + "=" + docker.SandboxMount + "/" + dockerCAFile,
			tlsconf.EnvServerName + "=agent.example", tlsconf.EnvCertFile + "=", tlsconf.EnvKeyFile + "="} {
			if !slices.Contains(dt.Env, want) {
				t.Errorf("env %q lacks %s", dt.Env, want)
			}
		}
		if !has(auth.EnvExecutorToken + "=") {
			t.Errorf("env %q lacks the executor's token", dt.Env)
		}
		copied, err := os.ReadFile(filepath.Join(e.sandbox, dockerCAFile))
		want, _ := os.ReadFile(files.CA)
		if err != nil || string(copied) != string(want) {
			t.Errorf("the CA bundle in the sandbox: %v, %d bytes, want the agent's %d", err, len(copied), len(want))
		}
	}
}
