// Package pageviews is the page-view example of the lambda pipeline: its
// spec (pipeline.yaml) and a generator of page-view events, which the
// tests and `agora bench lambda` feed the pipeline.
package pageviews

import (
	_ "embed"
	"fmt"
	"math/rand/v2"
	"time"
)

// Spec is pipeline.yaml.
//
//go:embed pipeline.yaml
var Spec []byte

// Generator makes page-view events as JSON lines: Pages pages, Users
// visitors, times spread over Span from Start.
type Generator struct {
	R     *rand.Rand
	Start time.Time
	Span  time.Duration
	Pages int
	Users int
}

// Event is one page view.
func (g Generator) Event() string {
	return fmt.Sprintf(`{"ts":%d,"url":"/p%d","user":"u%d","bytes":%d}`,
		g.Start.UnixMilli()+g.R.Int64N(max(g.Span.Milliseconds(), 1)), g.R.IntN(g.Pages), g.R.IntN(g.Users), g.R.IntN(5000))
}
