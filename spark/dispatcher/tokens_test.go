package dispatcher

import (
	"crypto/rand"
	"os"
	"path/filepath"
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
// random bytes: raw bytes ending in a newline were cut by the loader (to
// 31 bytes, refused: the key of a restarted dispatcher, and the tokens of
// its drivers, were lost).
func TestDriverTokenKeyReadsBackTheSame(t *testing.T) {
	for _, last := range []byte{'\n', '\r', ' ', 0, 0xff} {
		randRead = func(b []byte) (int, error) {
			for i := range b {
				b[i] = 'k'
			}
			b[len(b)-1] = last
			return len(b), nil
		}
		work := t.TempDir()
		first, err := LoadTokenSigner(work)
		if err != nil {
			t.Fatalf("making a key ending in %q: %v", last, err)
		}
		token, err := first.SignSubject(TokenAudience, "driver-1", time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		again, err := LoadTokenSigner(work)
		if err != nil {
			b, _ := os.ReadFile(filepath.Join(work, TokenKeyFile))
			t.Fatalf("reading back the key whose random bytes end in %q (%q): %v", last, b, err)
		}
		if sub, err := again.VerifySubject(token, TokenAudience); err != nil || sub != "driver-1" {
			t.Fatalf("the key whose random bytes end in %q read back as another key: %q, %v", last, sub, err)
		}
	}
	randRead = rand.Read
}
