package main

import (
	"io"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	pageviews "github.com/agora-cluster/agora/examples/lambda-pageviews"
	"github.com/agora-cluster/agora/lambda/pipeline"
	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/view"
)

// lambdaFeed feeds a pipeline the lambda tests check: page-view events
// from a seeded generator, sent with `agora lambda send`, and the views
// computed offline from the same events, which every answer must equal.
type lambdaFeed struct {
	t       *testing.T
	spec    *plan.Spec
	brokers string
	gen     pageviews.Generator
	truth   view.Table
	sent    int64 // events sent, dead letters included
}

// newLambdaFeed feeds the pipeline of spec through brokers (comma-
// separated); seed picks the event stream.
func newLambdaFeed(t *testing.T, spec *plan.Spec, brokers string, seed uint64) *lambdaFeed {
	return &lambdaFeed{t: t, spec: spec, brokers: brokers, truth: view.Table{},
		gen: pageviews.Generator{R: rand.New(rand.NewPCG(seed, seed+1)), Start: time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC),
			Span: 5 * time.Hour, Pages: 3, Users: 30}}
}

// events makes n events and adds them to the truth; they count as sent
// once sendLines sends them.
func (f *lambdaFeed) events(n int) []string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = f.gen.Event()
		ev, err := f.spec.ParseEvent([]byte(lines[i]))
		if err != nil {
			f.t.Fatalf("the generator made an event off the schema: %s: %v", lines[i], err)
		}
		f.truth.Apply(f.spec, ev)
	}
	return lines
}

// send sends n new events.
func (f *lambdaFeed) send(n int) {
	f.t.Helper()
	f.sendLines(f.events(n))
}

// sendLines sends lines as they are (events made by events, or bad ones
// that go to the dead-letter topic).
func (f *lambdaFeed) sendLines(lines []string) {
	f.t.Helper()
	var stderr strings.Builder
	if code := lambdaSend([]string{"--brokers", f.brokers, "--topic", f.spec.Input.Topic}, strings.NewReader(strings.Join(lines, "\n")), io.Discard, &stderr); code != 0 {
		f.t.Fatalf("lambda send: exit %d: %s", code, stderr.String())
	}
	f.sent += int64(len(lines))
}

// caughtUp says whether st shows every event sent ingested and applied
// by the speed layer.
func (f *lambdaFeed) caughtUp(st pipeline.Status) bool {
	return st.Ingest.Appended == f.sent && st.SpeedNext[0]+st.SpeedNext[1] == f.sent
}

// check asks the query API at api for every view and compares the answers
// with the truth.
func (f *lambdaFeed) check(api, stage string) {
	f.t.Helper()
	checkLambdaAnswers(f.t, api, f.spec, f.truth, stage)
}

var (
	upTopicRE = regexp.MustCompile(`topic pageviews on (\S+)`)
	upQueryRE = regexp.MustCompile(`query:\s+http://(\S+)/v1/query`)
)

// upAddrs waits up to a minute for `agora lambda up` (a process of the
// test) to print where events go and where its query API is.
func upAddrs(t *testing.T, up *proc) (brokers, api string) {
	t.Helper()
	waitShowing(t, time.Minute, func() string { return "no addresses printed by lambda up: " + up.out.String() }, func() bool {
		m1, m2 := upTopicRE.FindStringSubmatch(up.out.String()), upQueryRE.FindStringSubmatch(up.out.String())
		if m1 == nil || m2 == nil {
			return false
		}
		brokers, api = m1[1], m2[1]
		return true
	})
	return brokers, api
}
