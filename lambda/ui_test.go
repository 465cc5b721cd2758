package lambda_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/agora-cluster/agora/cluster/webui/webuitest"
	pageviews "github.com/agora-cluster/agora/examples/lambda-pageviews"
	"github.com/agora-cluster/agora/lambda"
	"github.com/agora-cluster/agora/lambda/pipeline"
	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/serve"
	"github.com/agora-cluster/agora/lambda/view"
)

// TestUIShowsThePipeline opens the page of a pipeline on the embedded
// defaults (`agora lambda up`: the in-process broker, the native layers,
// no JVM) in headless Chromium. It shows the spec's views, the batch
// generation made at start, then without a reload the events sent since
// (some not matching the schema: dead letters), and a batch run's new
// generation; the query form answers as /v1/query does.
func TestUIShowsThePipeline(t *testing.T) {
	spec, err := plan.Parse(pageviews.Spec)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Start(pipeline.Config{Spec: spec, Dir: t.TempDir(), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("the pipeline did not stop within a minute")
		}
	})
	base := "http://" + p.Query

	b := webuitest.NewBrowser(t)
	webuitest.Run(t, b, "opening the page", chromedp.Navigate(base+"/?poll=0.2"))
	webuitest.Wait(t, b, "the page loaded", `document.body.dataset.loaded === 'pipeline' && document.querySelectorAll('#generations tr[data-generation]').length === 1`)
	var o lambda.Overview
	getJSON(t, base+"/v1/pipeline", &o)
	listed := webuitest.Run(t, b, "reading the views", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#views tr[data-view]')].map((r) => r.dataset.view + ' ' + r.cells[1].innerText + ' ' + r.cells[4].innerText)`))
	var want []string
	for _, v := range o.Views {
		want = append(want, v.Name+" "+v.Type+" "+v.Bucket)
	}
	if len(want) != len(spec.Views) || want[0] != "views count 1h" || !reflect.DeepEqual(listed, want) {
		t.Errorf("the page lists the views %q, want the API's %q (the spec's %d, the first views count 1h)", listed, want, len(spec.Views))
	}

	// Events sent now show without a reload: in the speed layer (all of
	// them, past the batch watermark) and the ingester (the dead letters
	// apart).
	webuitest.Run(t, b, "marking the page", chromedp.Evaluate[bool](`window.notReloaded = true`))
	// Enough events for the batch layer to take a whole segment of
	// partition 0 (its watermark is aligned to view.Segment offsets), in
	// two hours of page /p0 and /p1; two of them are dead letters.
	var events []string
	for i := range view.Segment + 4 {
		events = append(events, fmt.Sprintf(`{"ts":%d,"url":"/p%d","user":"u%d","bytes":%d}`, 1796450400000+int64(i%2)*3600000, i%3, i%7, i))
	}
	bad := []string{`{"ts":"soon","url":"/p0"}`, `not json`}
	events = slices.Insert(events, 100, bad...)
	good := len(events) - len(bad)
	send(t, p.Brokers, spec.Input.Topic, events)
	webuitest.Wait(t, b, "the events in the speed layer and the ingester, without a reload", fmt.Sprintf(`window.notReloaded === true
		&& document.getElementById('speed-since').innerText === '%d' && document.getElementById('ingest-appended').innerText === '%d'
		&& document.getElementById('ingest-dead').dataset.count === '%d'`, len(events), good, len(bad)))
	var st pipeline.Status
	getJSON(t, base+"/v1/status", &st)
	if st.Ingest.Appended != int64(good) || st.Ingest.DeadLetter != int64(len(bad)) {
		t.Errorf("/v1/status says %d appended and %d dead letters, want %d and %d", st.Ingest.Appended, st.Ingest.DeadLetter, good, len(bad))
	}
	if text := webuitest.Text(t, b, "#speed-fresh"); !strings.HasSuffix(text, "ago") {
		t.Errorf("the speed layer's freshness reads %q, want how long ago it last advanced", text)
	}

	// A batch run is a new generation holding every event sent.
	resp, err := http.Post(base+"/v1/batch", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/batch: %s", resp.Status)
	}
	webuitest.Wait(t, b, "the second generation, without a reload", fmt.Sprintf(`window.notReloaded === true
		&& document.querySelector('#generations tbody tr').dataset.generation === '2'
		&& document.querySelector('#generations tbody tr').dataset.events === '%d'
		&& document.getElementById('speed-since').innerText === '%d'`, view.Segment, len(events)-view.Segment))
	getJSON(t, base+"/v1/pipeline", &o)
	shown := webuitest.Run(t, b, "reading the generations", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#generations tr[data-generation]')].map((r) => r.dataset.generation + ' ' + r.dataset.events + ' ' + r.querySelector('td.watermark code').innerText)`))
	var gens []string
	for _, g := range o.Generations {
		gens = append(gens, fmt.Sprintf("%d %d %s", g.Number, g.Events, offsets(g.Watermark)))
	}
	if !reflect.DeepEqual(shown, gens) {
		t.Errorf("the page's generations %q, want the API's %q", shown, gens)
	}

	// The query form: the views of /p0, as /v1/query answers.
	webuitest.Click(t, b, "choosing the view", `#views tr[data-view="views"] button`)
	webuitest.Run(t, b, "typing the key", chromedp.SendKeys(chromedp.CSS(`#query-keys input[data-key="url"]`), "/p0"))
	webuitest.Run(t, b, "querying", chromedp.Click(chromedp.CSS(`#query-form button[type="submit"]`)))
	webuitest.Wait(t, b, "the answer", `document.getElementById('query-result').dataset.answered === 'view=views&key=%2Fp0'`)
	var a serve.Answer
	getJSON(t, base+"/v1/query?view=views&key=/p0", &a)
	points := webuitest.Run(t, b, "reading the answer", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#query-result tr[data-bucket]')].map((r) => r.cells[0].innerText + ' ' + r.querySelector('td.value').innerText)`))
	var wantPoints []string
	for _, pt := range a.Points {
		wantPoints = append(wantPoints, fmt.Sprintf("%s %g", pt.Bucket.UTC().Format(time.RFC3339), pt.Value))
	}
	if len(wantPoints) != 2 || !reflect.DeepEqual(points, wantPoints) {
		t.Errorf("the page answers %q, want /v1/query's %q (two hours of /p0)", points, wantPoints)
	}
	// A view that is not there: the form says what is wrong.
	webuitest.Run(t, b, "querying a view that is not there", chromedp.Evaluate[bool](`(() => {
		const s = document.getElementById('query-view'); s.replaceChildren(el('option', { value: 'nosuch' }, 'nosuch')); s.value = 'nosuch';
		document.getElementById('query-form').requestSubmit(); return true; })()`))
	webuitest.Wait(t, b, "the query's error", `!document.getElementById('query-error').hidden
		&& document.getElementById('query-error').innerText.includes('unknown view "nosuch"')`)
	screenshotClean(t, b)
}

// screenshotClean reloads the page (the error shown last is not the
// page), asks for the total, and saves a screenshot (webuitest.Screenshot).
func screenshotClean(t *testing.T, b context.Context) {
	t.Helper()
	webuitest.Run(t, b, "reloading", chromedp.Reload())
	webuitest.Wait(t, b, "the page loaded", `document.body.dataset.loaded === 'pipeline' && document.querySelectorAll('#views tr[data-view]').length > 0`)
	webuitest.Click(t, b, "choosing the view", `#views tr[data-view="views"] button`)
	webuitest.Run(t, b, "typing the key", chromedp.SendKeys(chromedp.CSS(`#query-keys input[data-key="url"]`), "/p0"))
	webuitest.Run(t, b, "querying", chromedp.Click(chromedp.CSS(`#query-form button[type="submit"]`)))
	webuitest.Wait(t, b, "the answer", `document.getElementById('query-result').dataset.answered !== undefined`)
	webuitest.Screenshot(t, b, "agora-lambda-pipeline")
}

// offsets are a watermark as the page writes it.
func offsets(m map[int32]int64) string {
	var ps []string
	for p, o := range m {
		ps = append(ps, fmt.Sprintf("p%d: %d", p, o))
	}
	if len(ps) == 0 {
		return "–"
	}
	slices.Sort(ps) // two partitions: p0 before p1
	return strings.Join(ps, ", ")
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, body)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// send produces lines to partition 0 of topic, each its own event.
func send(t *testing.T, brokers []string, topic string, lines []string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var rs []*kgo.Record
	for _, l := range lines {
		rs = append(rs, &kgo.Record{Value: []byte(l)})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("sending events: %v", err)
	}
}
