package webuitest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// EnvScreenshots names the directory Screenshot saves into
// (scripts/webui-screenshots.sh sets it to docs/screenshots).
const EnvScreenshots = "AGORA_WEBUI_SCREENSHOTS"

// Screenshot saves a full-page screenshot of the tab of ctx as name.png:
// into $AGORA_WEBUI_SCREENSHOTS when set, else into the test's temp dir.
func Screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv(EnvScreenshots)
	if dir == "" {
		dir = t.TempDir()
	}
	png := Run(t, ctx, "taking a screenshot", chromedp.FullScreenshot(100))
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
