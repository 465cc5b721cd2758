package dns

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/agora-cluster/agora/cluster/webui/webuitest"
)

// TestUIShowsRecords opens /ui/ in headless Chromium: the tasks' records
// show, the filter narrows them, and a task that leaves the records
// leaves the page.
func TestUIShowsRecords(t *testing.T) {
	r := serve(t, testConfig(deadMaster))
	r.load(t, fakeView("web", 2))
	b := webuitest.NewBrowser(t)
	webuitest.Run(t, b, "opening the UI", chromedp.Navigate(r.http+"/ui/?poll=0.2"))
	webuitest.Wait(t, b, "web's A record", `document.querySelector('#records tr[data-name="web.marathon.agora."][data-rtype="A"]') !== null`)
	webuitest.Wait(t, b, "web's SRV records", `document.querySelectorAll('#records tr[data-name="_web._tcp.marathon.agora."][data-rtype="SRV"]').length === 2`)
	webuitest.Run(t, b, "filtering", chromedp.Evaluate[chromedp.Void](
		`(() => { const f = document.getElementById('filter'); f.value = '10.0.0.2'; f.dispatchEvent(new Event('input')); })()`))
	webuitest.Wait(t, b, "only web.1's records", `(() => { const ts = Array.from(document.querySelectorAll('#records tbody tr'), r => r.dataset.task); return ts.length > 0 && ts.every(t => t === 'web.1'); })()`)

	r.load(t, fakeView("web", 1))
	webuitest.Run(t, b, "clearing the filter", chromedp.Evaluate[chromedp.Void](
		`(() => { const f = document.getElementById('filter'); f.value = ''; f.dispatchEvent(new Event('input')); })()`))
	webuitest.Wait(t, b, "web.1 to leave", `document.querySelectorAll('#records tr[data-task="web.1"]').length === 0 &&
		document.querySelectorAll('#records tr[data-task="web.0"]').length > 0`)
}
