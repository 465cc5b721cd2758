package marathon

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/agora-cluster/agora/cluster/webui/webuitest"
)

// TestUIShowsAppsAndDeploymentsLive opens /ui/ in headless Chromium with
// its slow poll all but off: the app, a deployment held up by a readiness
// check (with the check's result, which the page follows while a
// deployment is in progress) and the deployment's end in the history all
// appear without a reload.
func TestUIShowsAppsAndDeploymentsLive(t *testing.T) {
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Fatal("needs busybox httpd for the instances' endpoint: make test-deps installs busybox-static")
	}
	e := startEnv(t)
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	if err := os.WriteFile(ready, []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.must("POST", "/v2/apps", readyApp(dir, 2), http.StatusCreated, nil)
	e.waitRunning("/api", 2)

	b := webuitest.NewBrowser(t)
	webuitest.Run(t, b, "opening the UI", chromedp.Navigate(e.url+"/ui/?poll=600"))
	webuitest.Wait(t, b, "the app with its 2 instances", `document.querySelector('#apps tr[data-app-id="/api"][data-running="2"]') !== null`)
	webuitest.Wait(t, b, "the event stream", `document.body.dataset.live === 'true'`)
	if row := webuitest.Text(t, b, `#apps tr[data-app-id="/api"]`); !strings.Contains(row, "2 / 2") || !strings.Contains(row, "Running") {
		t.Fatalf("app row %q, want 2 / 2 and Running", row)
	}

	if err := os.Remove(ready); err != nil {
		t.Fatal(err)
	}
	var c Change
	e.must("POST", "/v2/apps/api/restart", "", http.StatusOK, &c)
	webuitest.Wait(t, b, "the deployment with a not-ready instance", fmt.Sprintf(
		`(() => { const r = document.querySelector('#deployments tr[data-deployment-id=%q]'); return r !== null && r.innerText.includes('not ready') && r.innerText.includes('HTTP 404'); })()`, c.DeploymentID))
	if row := webuitest.Text(t, b, `#apps tr[data-app-id="/api"]`); !strings.Contains(row, "Deploying") {
		t.Fatalf("app row during the restart %q, want Deploying", row)
	}

	if err := os.WriteFile(ready, []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	webuitest.Wait(t, b, "the deployment's success in the history", fmt.Sprintf(
		`document.querySelector('#history tr[data-deployment-id=%q][data-status="success"]') !== null`, c.DeploymentID))
	webuitest.Wait(t, b, "no deployment left in progress", `document.querySelectorAll('#deployments tbody tr').length === 0`)
}
