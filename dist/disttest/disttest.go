// Package disttest gives tests the real upstream engines: the home of an
// installed distribution, installed on first use (`make test` installs them
// beforehand through `make test-deps`, so no test waits for a download).
package disttest

import (
	"context"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/dist"
)

// Home returns the home of the distribution spec names (NAME or
// NAME@VERSION) in the default cache, installing it if it is missing. A
// machine that cannot install it (no Java, no Maven, no registry) fails
// the test with the reason: the real engines are part of the suite, not an
// option of it. Without Java the jvm tier is skipped (failed in CI).
func Home(t testing.TB, spec string) string {
	t.Helper()
	tier.Need(t, tier.JVM, tier.JavaErr())
	d, err := dist.Resolve(spec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	home, err := dist.Installer{}.Install(ctx, d)
	if err != nil {
		t.Fatalf("the real %s is needed and could not be installed: %v", d, err)
	}
	return home
}
