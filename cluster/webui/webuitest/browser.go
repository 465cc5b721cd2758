// Package webuitest starts a real headless Chromium for tests of the web UI.
// Both the UI's own tests (against fixture JSON) and end-to-end tests
// (against a real master) use it.
package webuitest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// EnvChromium names an environment variable that, when set, is the path of
// the browser to use instead of searching PATH.
const EnvChromium = "AGORA_CHROMIUM"

// browserNames are searched in PATH in this order.
var browserNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// maxLife bounds a browser's life so a hung page fails the test instead of
// hanging it until go test's own timeout.
const maxLife = 2 * time.Minute

// FindChromium returns the path of a Chromium or Chrome binary: $AGORA_CHROMIUM
// if set, else the first of chromium, chromium-browser, google-chrome and
// google-chrome-stable found in PATH.
func FindChromium() (string, error) {
	if p := os.Getenv(EnvChromium); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("$%s=%q: %w", EnvChromium, p, err)
		}
		return path, nil
	}
	for _, name := range browserNames {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("no Chromium found in PATH (looked for %s)", strings.Join(browserNames, ", "))
}

// NewBrowser starts headless Chromium and returns a chromedp context for one
// tab. It fails the test, with a note to run `make deps`, when no browser is
// installed; it never skips. The browser stops when the test ends, and the
// test fails if a page threw an uncaught JavaScript exception or called
// console.error. Derive per-step timeouts from the returned context with
// context.WithTimeout; do not put a timeout on the first chromedp.Run.
func NewBrowser(t testing.TB) context.Context {
	t.Helper()
	path, err := FindChromium()
	if err != nil {
		t.Fatalf("webuitest: %v. The web UI tests need a real browser: run `make deps` "+
			"(or scripts/install-chromium.sh, which installs the Debian package chromium), "+
			"or set $%s to a Chromium binary", err, EnvChromium)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root, where the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	life, stop := context.WithTimeout(context.Background(), maxLife)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(life, opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)

	var mu sync.Mutex
	var problems []string
	// Listen starts the browser and the tab.
	err = chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg = "uncaught exception: " + d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += ": " + d.Exception.Description
			}
			msg += fmt.Sprintf(" (%s:%d:%d)", d.URL, d.LineNumber, d.ColumnNumber)
		case *runtime.EventConsoleAPICalled:
			if ev.Type != runtime.ConsoleAPICalledTypeError {
				return
			}
			var parts []string
			for _, a := range ev.Args {
				if a.Description != "" {
					parts = append(parts, a.Description)
				} else {
					parts = append(parts, strings.Trim(string(a.Value), `"`))
				}
			}
			msg = "console.error: " + strings.Join(parts, " ")
		default:
			return
		}
		mu.Lock()
		problems = append(problems, msg)
		mu.Unlock()
	})
	if err != nil {
		cancelTab()
		cancelAlloc()
		stop()
		t.Fatalf("webuitest: starting %s: %v", path, err)
	}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		stop()
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Errorf("webuitest: the page logged a JavaScript error: %s", p)
		}
	})
	return ctx
}
