package marathon

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/dist/pip"
)

// pyClient is Marathon's Python client library (PyPI's marathon,
// thefactory/marathon-python) and everything it imports, pinned: pure
// wheels, imported from their zips with python3 -S, so that what the
// machine's Python has installed plays no part.
var pyClient = []pip.Pin{
	{Req: "marathon==0.13.0", File: "marathon-0.13.0-py2.py3-none-any.whl", SHA256: "6c6321444c3a55252109874ec70dd0db53f4c802527d14f271452213f8d24222"},
	{Req: "requests-toolbelt==1.0.0", File: "requests_toolbelt-1.0.0-py2.py3-none-any.whl", SHA256: "cccfdd665f0a24fcf4726e690f65639d272bb0637b9b92dfd91a5568ccf6bd06"},
	{Req: "requests==2.32.3", File: "requests-2.32.3-py3-none-any.whl", SHA256: "70761cfe03c773ceb22aa2f671b4757976145175cdfca038c02654d061d6dcc6"},
	{Req: "urllib3==2.2.3", File: "urllib3-2.2.3-py3-none-any.whl", SHA256: "ca899ca043dcb1bafa3e262d73aa25c465bfb49e0bd9dd5d59f1d0acba2f8fac"},
	{Req: "idna==3.10", File: "idna-3.10-py3-none-any.whl", SHA256: "946d195a0d259cbba61165e88e65941f16e9b36ea6ddb97f00452bae8b1287d3"},
	{Req: "certifi==2024.8.30", File: "certifi-2024.8.30-py3-none-any.whl", SHA256: "922820b53db7a7257ffbda3f597266d435245903d80737e34f8a45ff3e3230d8"},
	// Its pure wheel, not this machine's compiled one (which cannot be
	// imported from a zip).
	{Req: "charset-normalizer==3.4.0", File: "charset_normalizer-3.4.0-py3-none-any.whl", SHA256: "fe9f97feb71aa9896b81973a7bbada8c49501dc73e58a10fcef6663af95e5079",
		Args: []string{"--only-binary", ":all:", "--platform", "any", "--implementation", "py", "--python-version", "3.8", "--abi", "none"}},
}

// pyClientPath downloads the pinned client once (into the pip cache) and
// returns the PYTHONPATH that imports it.
func pyClientPath(t *testing.T) string {
	t.Helper()
	tier.Need(t, tier.Python, tier.PythonErr())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	files, err := pip.Download(ctx, pip.Config{Log: os.Stderr}, pyClient...)
	if err != nil {
		t.Fatalf("Marathon's Python client: %v", err)
	}
	return strings.Join(files, string(os.PathListSeparator))
}

// python runs python3 -S (no site packages) with the client importable.
func python(t *testing.T, ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "python3", append([]string{"-S"}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+path, "PYTHONDONTWRITEBYTECODE=1", "TMPDIR="+t.TempDir())
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// The pinned client and what it imports load from the cache alone (make
// test-deps runs this to download them).
func TestPythonClientPins(t *testing.T) {
	path := pyClientPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := python(t, ctx, path, "-c", "import marathon, requests; print(requests.__file__)").CombinedOutput()
	if err != nil {
		t.Fatalf("import marathon: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "requests-2.32.3-py3-none-any.whl") {
		t.Fatalf("requests was not imported from its pinned wheel: %s", out)
	}
}

// TestPythonClientLifecycle drives agora's Marathon with Marathon's Python
// client library as it is published: create an app, scale it to three,
// kill an instance, restart it and delete it, each step awaited through
// the client; what the client saw is checked against agora's own API and
// the master.
func TestPythonClientLifecycle(t *testing.T) {
	path := pyClientPath(t)
	e := startEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := python(t, ctx, path, filepath.Join("testdata", "pyclient.py"), e.url, "/pyapp")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var seen struct {
		Created struct {
			ID, Cmd   string
			Instances int
		}
		First     []string
		Scale     map[string]any
		Scaled    []string
		Instances int
		Info      string
		Queue     int
		Embedded  int
		Killed    string
		Replaced  []string
		Restart   map[string]any
		Restarted []string
		Delete    map[string]any
		Gone      bool
		Apps      []string
		Error     string
	}
	if jerr := json.Unmarshal(out, &seen); err != nil || jerr != nil {
		t.Fatalf("pyclient.py: %v (%v)\nstdout: %s\nstderr: %s", err, jerr, out, stderr.String())
	}
	t.Logf("the client saw: %s\n%s", out, stderr.String())
	if seen.Created.ID != "/pyapp" || seen.Created.Cmd != "sleep 600" || seen.Created.Instances != 1 {
		t.Errorf("create_app returned %+v", seen.Created)
	}
	if len(seen.First) != 1 || len(seen.Scaled) != 3 || !slices.Contains(seen.Scaled, seen.First[0]) || seen.Instances != 3 {
		t.Fatalf("scale 1→3: first %v, then %v, instances %d; want the first kept among three", seen.First, seen.Scaled, seen.Instances)
	}
	for what, c := range map[string]map[string]any{"scale_app": seen.Scale, "restart_app": seen.Restart, "delete_app": seen.Delete} {
		if id, _ := c["deploymentId"].(string); id == "" || c["version"] == nil {
			t.Errorf("%s returned %v; want deploymentId and version", what, c)
		}
	}
	if seen.Info != "marathon" || seen.Queue != 0 || seen.Embedded != 3 {
		t.Errorf("get_info name %q, list_queue %d entries, get_app(embed_tasks) %d tasks; want marathon, 0, 3", seen.Info, seen.Queue, seen.Embedded)
	}
	if seen.Killed != seen.Scaled[0] || len(seen.Replaced) != 3 || slices.Contains(seen.Replaced, seen.Killed) {
		t.Errorf("kill_task of %s returned %s; then %v; want it replaced", seen.Scaled[0], seen.Killed, seen.Replaced)
	}
	if len(seen.Restarted) != 3 || slices.ContainsFunc(seen.Restarted, func(id string) bool { return slices.Contains(seen.Replaced, id) }) {
		t.Errorf("restart: %v after %v; want three new instances", seen.Restarted, seen.Replaced)
	}
	if !seen.Gone || slices.Contains(seen.Apps, "/pyapp") {
		t.Errorf("after delete_app the client lists %v", seen.Apps)
	}
	// agora's own view agrees: each deployment the client started
	// succeeded, the app is gone and its tasks with it.
	done := map[string]string{}
	for _, d := range e.history() {
		done[d.ID] = d.Status
	}
	for what, c := range map[string]map[string]any{"scale_app": seen.Scale, "restart_app": seen.Restart, "delete_app": seen.Delete} {
		if id, _ := c["deploymentId"].(string); done[id] != "success" {
			t.Errorf("%s's deployment %s is %q in /v2/deployments?embed=history, want success", what, id, done[id])
		}
	}
	var nf struct{ Message string }
	e.must("GET", "/v2/apps/pyapp", "", http.StatusNotFound, &nf)
	e.waitFor("the master to run no task", func() bool { return e.masterRunning() == 0 })
}
