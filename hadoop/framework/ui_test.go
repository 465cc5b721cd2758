package framework_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/agora-cluster/agora/cluster/webui/webuitest"
	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/counters"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
)

// TestUIShowsJobsProgressCountersAndAttempts opens /ui/ in headless
// Chromium while a Streaming word count runs on the framework: the job shows
// with its maps and reduces reaching 100 %, its page shows the counters
// the API reports and its attempts with links to their logs, and a job
// submitted while the page is open shows without a reload.
func TestUIShowsJobsProgressCountersAndAttempts(t *testing.T) {
	needPython(t)
	e := startEnv(t)
	dir := t.TempDir()
	writeCorpus(t, filepath.Join(dir, "in", "a.txt"), 1<<20, 1)
	first, err := e.cl.Submit(context.Background(), client.SubmitRequest{Args: wordcount(examples(t), "in", "out"), Cwd: dir, User: "analyst"})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}

	// The webui_url is the API's root; it leads to the page.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(e.fw.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "/ui/" {
		t.Errorf("GET / answered %s to %q, want 302 to /ui/", resp.Status, loc)
	}

	b := webuitest.NewBrowser(t)
	webuitest.Run(t, b, "opening the UI", chromedp.Navigate(e.fw.URL()+"/ui/?poll=0.2"))
	webuitest.Wait(t, b, "the job listed", fmt.Sprintf(`document.querySelector('#jobs tr[data-job=%q]') !== null`, first.ID))
	done := e.wait(first.ID)
	if done.State != jobtracker.JobSucceeded {
		t.Fatalf("job %s: %s", done.State, done.Error)
	}
	row := fmt.Sprintf(`#jobs tr[data-job=%q]`, first.ID)
	webuitest.Wait(t, b, "maps and reduces at 100 %", fmt.Sprintf(`(() => { const r = document.querySelector('%[1]s[data-state="SUCCEEDED"]');
		const m = r && r.querySelector('td.maps .bar'), d = r && r.querySelector('td.reduces .bar');
		return m !== null && d !== null && m.dataset.progress === '100' && d.dataset.progress === '100'
			&& m.dataset.done === m.dataset.total && d.dataset.done === '%[2]d' && d.dataset.total === '%[2]d'; })()`, row, done.Reduces.Total))
	if user := webuitest.Text(t, b, row+" td.user"); user != "analyst" {
		t.Errorf("the job's user reads %q, want the submission's %q", user, "analyst")
	}
	if text := webuitest.Text(t, b, row); !strings.Contains(text, fmt.Sprintf("100 %% (%d/%d)", done.Maps.Total, done.Maps.Total)) {
		t.Errorf("job row %q, want the maps' bar to read 100 %% (%d/%d)", text, done.Maps.Total, done.Maps.Total)
	}

	// The job's page: the counters are the API's, every attempt is there.
	webuitest.Click(t, b, "opening the job", row+` a`)
	webuitest.Wait(t, b, "the job's page", fmt.Sprintf(`document.body.dataset.loaded === 'job' && document.getElementById('job-title').dataset.job === %q
		&& document.querySelectorAll('#counters tr[data-counter]').length > 0`, first.ID))
	d, err := e.cl.Job(context.Background(), first.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	shown := webuitest.Run(t, b, "reading the counters", chromedp.Evaluate[map[string]map[string]string](`(() => {
		const c = {};
		for (const r of document.querySelectorAll('#counters tr[data-counter]')) {
			(c[r.dataset.group] = c[r.dataset.group] || {})[r.dataset.counter] = r.querySelector('td.num').innerText;
		}
		return c; })()`))
	if want := counterStrings(d.Counters); !reflect.DeepEqual(shown, want) {
		t.Errorf("the page's counters\n%v\nwant the API's\n%v", shown, want)
	}
	if d.Counters.Get("org.apache.hadoop.mapreduce.TaskCounter", "MAP_INPUT_RECORDS") == 0 {
		t.Errorf("no map input records counted: %v", d.Counters)
	}
	var attempts []string
	for _, task := range d.Tasks {
		for _, a := range task.Attempts {
			attempts = append(attempts, a.ID.String())
		}
	}
	listed := webuitest.Run(t, b, "reading the attempts", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#attempts tr[data-attempt]')].map((r) => r.dataset.attempt)`))
	if !reflect.DeepEqual(listed, attempts) {
		t.Errorf("the page lists attempts %v, want the API's %v", listed, attempts)
	}
	// The log link answers with the attempt's log.
	status := webuitest.Run(t, b, "following a log link", chromedp.Evaluate[int](`fetch(document.querySelector('#attempts tr[data-attempt] a').href).then((r) => r.status)`,
		chromedp.EvalAwaitPromise))
	if status != 200 {
		t.Errorf("an attempt's log link answered %d, want 200", status)
	}
	// The title is the job's ID and name; a job without a name (the API
	// answering as an older store's record would) shows its ID alone.
	if title, want := webuitest.Text(t, b, "#job-title"), strings.TrimSpace(d.ID+" "+d.Name); title != want {
		t.Errorf("the job's title reads %q, want %q", title, want)
	}
	webuitest.Run(t, b, "dropping the job's name from the API's answers", chromedp.Evaluate[bool](`(() => {
		const real = window.fetch;
		window.restoreFetch = () => { window.fetch = real; return true; };
		window.fetch = async (url, init) => {
			const r = await real(url, init);
			if (!String(url).includes('api/v1/jobs/') || !r.ok) return r;
			const j = await r.json();
			delete j.name;
			return new Response(JSON.stringify(j), { status: r.status, headers: r.headers });
		};
		return true; })()`))
	webuitest.Wait(t, b, "the nameless job's title: its ID alone", fmt.Sprintf(`document.getElementById('job-title').textContent.trim() === %q`, d.ID))
	webuitest.Run(t, b, "restoring the API's answers", chromedp.Evaluate[bool](`window.restoreFetch()`))
	webuitest.Run(t, b, "back to the jobs", chromedp.Click(chromedp.CSS(`nav.crumbs a`)))
	webuitest.Wait(t, b, "the TaskTrackers listed", `document.body.dataset.loaded === 'list' && document.querySelectorAll('#trackers tr[data-tracker]').length > 0`)

	// A job submitted now shows without a reload, above the first.
	webuitest.Run(t, b, "marking the page", chromedp.Evaluate[bool](`window.notReloaded = true`))
	second, err := e.cl.Submit(context.Background(), client.SubmitRequest{Args: wordcount(examples(t), "in", "out2"), Cwd: dir})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	webuitest.Wait(t, b, "the second job listed first, without a reload", fmt.Sprintf(`window.notReloaded === true
		&& document.querySelector('#jobs tbody tr').dataset.job === %q`, second.ID))
	if j := e.wait(second.ID); j.State != jobtracker.JobSucceeded {
		t.Fatalf("second job %s: %s", j.State, j.Error)
	}
	webuitest.Wait(t, b, "the second job finished", fmt.Sprintf(`document.querySelector('#jobs tr[data-job=%q][data-state="SUCCEEDED"]') !== null`, second.ID))
	webuitest.Screenshot(t, b, "agora-hadoop-jobs")
}

// counterStrings is the API's counters as the page shows them.
func counterStrings(c counters.Counters) map[string]map[string]string {
	out := map[string]map[string]string{}
	for g, names := range c {
		out[g] = map[string]string{}
		for n, v := range names {
			out[g][n] = fmt.Sprint(v)
		}
	}
	return out
}
