package webuitest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
)

// NavigateWithCredentials opens url in the tab of ctx answering the
// browser's HTTP Basic prompts with user and password, as a person
// would, and waits (at most a minute) until the JavaScript expression
// ready is truthy. It returns how many prompts were answered: a page
// behind credentials whose own API calls reuse the answer asks once.
func NavigateWithCredentials(t testing.TB, ctx context.Context, url, user, password, ready string) int {
	t.Helper()
	var prompts atomic.Int32
	if err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *fetch.EventAuthRequired:
			prompts.Add(1)
			go chromedp.Run(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := cdp.Call(ctx, tg, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: ev.RequestID,
					AuthChallengeResponse: &fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseProvideCredentials, Username: user, Password: password}})
				return err
			}))
		case *fetch.EventRequestPaused:
			go chromedp.Run(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := cdp.Call(ctx, tg, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
				return err
			}))
		}
	}); err != nil {
		t.Fatal(err)
	}
	handle := true
	step, stop := context.WithTimeout(ctx, 60*time.Second)
	defer stop()
	if err := chromedp.Do(step,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, fetch.Enable, fetch.EnableParams{HandleAuthRequests: &handle})
			return err
		}),
		chromedp.Navigate(url),
		chromedp.Poll[chromedp.Void](ready, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(55*time.Second)),
	); err != nil {
		t.Fatalf("opening %s with credentials: %v (prompts answered: %d)", url, err, prompts.Load())
	}
	return int(prompts.Load())
}
