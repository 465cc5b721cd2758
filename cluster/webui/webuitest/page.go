package webuitest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Run runs one chromedp action in the tab of ctx, bounded by a minute,
// and fails the test naming what it was doing if the action fails.
func Run[T any](t testing.TB, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// Wait waits, at most two minutes, until the JavaScript expression is
// truthy in the page, and otherwise fails the test with the page's text.
func Wait(t testing.TB, ctx context.Context, what, expr string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := chromedp.Run(wctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(115*time.Second))); err != nil {
		t.Fatalf("waiting for %s: %v; the page says:\n%s", what, err, Text(t, ctx, "body"))
	}
}

// Text is the text (innerText) of the first element sel selects.
func Text(t testing.TB, ctx context.Context, sel string) string {
	t.Helper()
	q, _ := json.Marshal(sel)
	return Run(t, ctx, "reading "+sel, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%s).innerText`, q)))
}

// Click clicks the first element sel selects once there is one (at most
// two minutes), finding and clicking it in one step in the page: a list
// the page redraws (after its change feed's event, or a poll) cannot
// replace the element between the two, as it can between chromedp.Click's
// lookup of the node and its click.
func Click(t testing.TB, ctx context.Context, what, sel string) {
	t.Helper()
	q, _ := json.Marshal(sel)
	Wait(t, ctx, what, fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e) return false; e.click(); return true; })()`, q))
}
