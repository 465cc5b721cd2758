package master_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
)

// lockedBuffer is a log sink safe for the master's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRateLimitsClaimedPrincipalWarning: --rate_limits without framework
// authentication is logged at start-up as a warning (the principals are
// what the frameworks claim); with it, it is not.
func TestRateLimitsClaimedPrincipalWarning(t *testing.T) {
	const warning = "--rate_limits without --authenticate_frameworks"
	for _, authenticate := range []bool{false, true} {
		limits, err := auth.ParseRateLimits([]byte(`{"limits": [{"principal": "team-a", "qps": 10}]}`))
		if err != nil {
			t.Fatal(err)
		}
		var logs lockedBuffer
		clustertest.Start(t, clustertest.Options{Master: func(c *master.Config) {
			c.RateLimits = limits
			c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			if authenticate {
				creds, err := auth.ParseCredentials([]byte(`{"credentials": [{"principal": "team-a", "secret": "s"}]}`), "")
				if err != nil {
					t.Fatal(err)
				}
				if c.HTTP.Auth, err = auth.New(auth.Options{Credentials: creds, Frameworks: true}); err != nil {
					t.Fatal(err)
				}
			}
		}})
		// Start returns once the agent registered, after Run began.
		if got := strings.Contains(logs.String(), warning); got == authenticate {
			t.Errorf("framework authentication %v: start-up warning logged %v, want %v; log:\n%s", authenticate, got, !authenticate, logs.String())
		}
	}
}
