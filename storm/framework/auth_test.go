package framework

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/storm/plan"
)

// TestFrameworkPresentsItsCredential: against a master that authenticates
// frameworks, the Storm framework given a principal and its secret is
// registered under that principal; with a wrong secret the master refuses
// it and Run says so. (Nimbus is a user's that does not answer: nothing
// is launched, only the registration is under test.)
func TestFrameworkPresentsItsCredential(t *testing.T) {
	creds, err := auth.ParseCredentials([]byte(`{"credentials": [{"principal": "storm", "secret": "storm-secret"}]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Options{Credentials: creds, Frameworks: true})
	if err != nil {
		t.Fatal(err)
	}
	c := clustertest.Start(t, clustertest.Options{Master: func(cfg *master.Config) { cfg.HTTP.Auth = authn }})
	s, _ := plan.From(nil)
	run := func(secret string) (context.CancelFunc, <-chan error) {
		f, err := New(Config{Masters: []string{c.MasterAddr}, Settings: s, Home: "/h", Nimbus: "127.0.0.1:1",
			Principal: "storm", Secret: secret})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx) }()
		return cancel, done
	}

	cancel, done := run("wrong")
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(strings.ToLower(err.Error()), "auth") {
			t.Errorf("with a wrong secret Run returned %v, want the master's refusal", err)
		}
	case <-time.After(2 * time.Minute):
		t.Error("with a wrong secret Run did not return within 2 minutes")
	}
	cancel()

	cancel, done = run("storm-secret")
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("Run did not return within a minute of its context's end")
		}
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := c.State()
		if err == nil && len(st.Frameworks) == 1 && st.Frameworks[0].Active {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Storm framework did not register with its credential within 2 minutes: %+v %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
