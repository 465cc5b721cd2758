package dispatcher

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// A secured dispatcher's driver gets a token naming its submission (and
// the CA, fetched into its sandbox), only when it runs with the executors'
// scheduler; the key lives in the work directory, 0600, and is the same
// after a restart, so the token still verifies.
func TestDriverToken(t *testing.T) {
	work := t.TempDir()
	signer, err := LoadTokenSigner(work)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(work, TokenKeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v; want mode 0600", st, err)
	}
	d := testDispatcher(t, t.TempDir())
	d.cfg.DriverTokens, d.cfg.DriverCAFile = signer, "/etc/agora/ca.pem"
	req, _, err := ParseCreate([]byte(createJSON))
	if err != nil {
		t.Fatal(err)
	}
	dr, _ := d.newDriver(req)
	dr.TaskID = dr.ID
	var uris []mesos.CommandInfo_URI
	envOf := func() map[string]string {
		task, err := d.buildTask(dr, mesos.AgentID{Value: "a1"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		env := map[string]string{}
		for _, v := range task.Command.Environment.Variables {
			env[v.Name] = v.GetValue()
		}
		uris = task.Command.URIs
		return env
	}
	if env := envOf(); env[EnvToken] != "" || env[EnvCAFile] != "" || len(uris) != 1 {
		t.Errorf("a driver in local[N] got a token or the CA: %v %v", env, uris)
	}
	d.cfg.ExecutorMaster, d.cfg.ClusterManagerJar = "mesos://10.0.0.1:7077", "/cache/agora-spark.jar"
	env := envOf()
	if env[EnvCAFile] != driverCAFile || len(uris) != 2 || uris[1].Value != "/etc/agora/ca.pem" || uris[1].GetOutputFile() != driverCAFile {
		t.Errorf("%s = %q, URIs %v; want the CA file fetched into the sandbox as %s", EnvCAFile, env[EnvCAFile], uris, driverCAFile)
	}
	again, err := LoadTokenSigner(work)
	if err != nil {
		t.Fatal(err)
	}
	if sub, err := again.VerifySubject(env[EnvToken], TokenAudience); err != nil || sub != dr.ID {
		t.Errorf("the driver's token after a restart: %q, %v; want %s", sub, err, dr.ID)
	}
}

// A key file that is too short is an error naming it, and is left as it is.
func TestDriverTokenKeyTooShort(t *testing.T) {
	work := t.TempDir()
	path := filepath.Join(work, TokenKeyFile)
	if err := os.WriteFile(path, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTokenSigner(work); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadTokenSigner with a 5-byte key: %v; want an error naming %s", err, path)
	}
	if b, _ := os.ReadFile(path); string(b) != "short" {
		t.Errorf("the key file became %q", b)
	}
}

// The key a dispatcher makes reads back as the same key, whatever its
// random bytes: a key of raw bytes ending in a newline was cut by the
// loader (to 31 bytes, refused, or to another key, so that drivers' tokens
// no longer verified after a restart). 600 keys: 1 in 128 raw keys ended so.
func TestDriverTokenKeyReadsBackTheSame(t *testing.T) {
	root := t.TempDir()
	for i := 0; i < 600; i++ {
		work := filepath.Join(root, strconv.Itoa(i))
		first, err := LoadTokenSigner(work)
		if err != nil {
			t.Fatalf("making key %d: %v", i, err)
		}
		token, err := first.SignSubject(TokenAudience, "driver-1", time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		again, err := LoadTokenSigner(work)
		if err != nil {
			b, _ := os.ReadFile(filepath.Join(work, TokenKeyFile))
			t.Fatalf("reading key %d back (%q): %v", i, b, err)
		}
		if sub, err := again.VerifySubject(token, TokenAudience); err != nil || sub != "driver-1" {
			t.Fatalf("key %d read back is another key: %q, %v", i, sub, err)
		}
	}
}
